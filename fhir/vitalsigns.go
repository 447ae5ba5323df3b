package fhir

import (
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// ProfileVitalSigns is the canonical URL of the R4 core vital-signs profile.
const ProfileVitalSigns = "http://hl7.org/fhir/StructureDefinition/vitalsigns"

// CheckVitalSigns checks the rules of the R4 vital-signs profile that base
// validation does not: status set, a vital-signs category, a LOINC code,
// a Patient subject, effective[x], a value or dataAbsentReason (or components,
// each with a value or dataAbsentReason), and UCUM quantities. It returns one
// issue per broken rule; none means the Observation conforms to these rules.
func CheckVitalSigns(o *observationpb.Observation) []Issue {
	var issues []Issue
	add := func(path, msg string) {
		issues = append(issues, Issue{Path: path, Severity: "error", Message: msg})
	}
	if o.GetStatus().GetValue() == codespb.ObservationStatusCode_INVALID_UNINITIALIZED {
		add("Observation.status", "missing")
	}
	if !hasCoding(o.GetCategory(), SystemObservationCategory, "vital-signs") {
		add("Observation.category", "no coding "+SystemObservationCategory+"#vital-signs")
	}
	if !hasSystem(o.GetCode(), SystemLOINC) {
		add("Observation.code", "no LOINC coding")
	}
	for i, c := range o.GetCode().GetCoding() {
		if c.GetSystem().GetValue() == "" {
			add("Observation.code.coding["+itoa(i)+"].system", "missing")
		}
	}
	if s := o.GetSubject(); s.GetPatientId() == nil && (s.GetType().GetValue() != "Patient" || s.GetIdentifier().GetValue().GetValue() == "") {
		add("Observation.subject", "must reference a Patient")
	}
	if o.GetEffective().GetDateTime() == nil && o.GetEffective().GetPeriod() == nil {
		add("Observation.effective[x]", "must be effectiveDateTime or effectivePeriod")
	}
	hasValue := o.GetValue().GetChoice() != nil
	if hasValue && o.GetDataAbsentReason() != nil {
		add("Observation.dataAbsentReason", "present together with value[x] (obs-6)")
	}
	if !hasValue && o.GetDataAbsentReason() == nil && len(o.GetComponent()) == 0 && len(o.GetHasMember()) == 0 {
		add("Observation.value[x]", "no value, dataAbsentReason, component or hasMember (vs-2)")
	}
	if q := o.GetValue().GetQuantity(); q != nil {
		checkQuantity(q, "Observation.valueQuantity", add)
	}
	for i, c := range o.GetComponent() {
		p := "Observation.component[" + itoa(i) + "]"
		if !hasSystem(c.GetCode(), SystemLOINC) {
			add(p+".code", "no LOINC coding")
		}
		if c.GetValue().GetChoice() == nil && c.GetDataAbsentReason() == nil {
			add(p, "no value and no dataAbsentReason (vs-3)")
		}
		if q := c.GetValue().GetQuantity(); q != nil {
			checkQuantity(q, p+".valueQuantity", add)
		}
	}
	return issues
}

func checkQuantity(q *dtpb.Quantity, path string, add func(string, string)) {
	if q.GetValue().GetValue() == "" {
		add(path+".value", "missing")
	}
	if q.GetSystem().GetValue() != SystemUCUM {
		add(path+".system", "must be "+SystemUCUM)
	}
	if q.GetCode().GetValue() == "" {
		add(path+".code", "missing UCUM code")
	}
}

func hasCoding(ccs []*dtpb.CodeableConcept, system, code string) bool {
	for _, cc := range ccs {
		for _, c := range cc.GetCoding() {
			if c.GetSystem().GetValue() == system && c.GetCode().GetValue() == code {
				return true
			}
		}
	}
	return false
}

func hasSystem(cc *dtpb.CodeableConcept, system string) bool {
	for _, c := range cc.GetCoding() {
		if c.GetSystem().GetValue() == system && c.GetCode().GetValue() != "" {
			return true
		}
	}
	return false
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
