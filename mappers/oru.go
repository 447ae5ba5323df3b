package mappers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhir-bridge/fhir-bridge/hl7"
)

// ORUOptions configure the HL7 v2 messages built from readings.
type ORUOptions struct {
	// SendingApplication is MSH-3. Default: FHIRBRIDGE.
	SendingApplication hl7.HD
	// SendingFacility, ReceivingApplication and ReceivingFacility are
	// MSH-4 to MSH-6, per interface partner. Optional.
	SendingFacility, ReceivingApplication, ReceivingFacility hl7.HD
	// PatientAuthority is PID-3.4 for patients known by their FHIR logical
	// id. Default: namespace FHIR.
	PatientAuthority hl7.HD
	// ProcessingID is MSH-11. Default: P.
	ProcessingID string
	// Timestamp is MSH-7. Default: the first reading's time, which keeps the
	// message deterministic (the same readings give the same bytes).
	Timestamp time.Time
}

// Device specialization codes (IEEE 11073-20601 profiles) for the device row.
var deviceSpecs = map[string]hl7.CWE{
	"blood-pressure":          {Code: "528391", Text: "MDC_DEV_SPEC_PROFILE_BP", System: hl7.SystemMDC},
	"spo2":                    {Code: "528388", Text: "MDC_DEV_SPEC_PROFILE_PULS_OXIM", System: hl7.SystemMDC},
	"blood-glucose":           {Code: "528401", Text: "MDC_DEV_SPEC_PROFILE_GLUCOSE", System: hl7.SystemMDC},
	"blood-glucose-capillary": {Code: "528401", Text: "MDC_DEV_SPEC_PROFILE_GLUCOSE", System: hl7.SystemMDC},
	"body-weight":             {Code: "528399", Text: "MDC_DEV_SPEC_PROFILE_SCALE", System: hl7.SystemMDC},
	"bmi":                     {Code: "528399", Text: "MDC_DEV_SPEC_PROFILE_SCALE", System: hl7.SystemMDC},
}

var genericDevice = hl7.CWE{Code: "528457", Text: "MDC_DEV_SPEC_PROFILE_GENERIC", System: hl7.SystemMDC}

// ORU builds IHE PCD-01 ORU^R01 messages for readings: one message per
// patient and device, in the order they first appear. Each message has PID,
// OBR and a PHD-style containment tree: a device row (sub-id 1, the device
// specialization code, result status X, OBX-18 the EUI-64 when known) and one
// metric row per value (1.0.0.n) with the MDC code and LOINC as alternate,
// the UCUM unit, the reference range and abnormal flag where the catalogue
// has a normal range, and the reading's time in OBX-14. Panel parts (systolic,
// diastolic, mean) are consecutive metric rows. Readings about a Device or
// Location have no place in a patient result message and are an error.
func ORU(ms []Measurement, opts ORUOptions) ([]*hl7.ORU, error) {
	if opts.SendingApplication == (hl7.HD{}) {
		opts.SendingApplication = hl7.HD{NamespaceID: "FHIRBRIDGE"}
	}
	if opts.PatientAuthority == (hl7.HD{}) {
		opts.PatientAuthority = hl7.HD{NamespaceID: "FHIR"}
	}
	type group struct {
		ms []Measurement
	}
	var order []string
	groups := map[string]*group{}
	for i, m := range ms {
		if m.Subject.Type != "Patient" {
			return nil, &FieldError{Field: fmt.Sprintf("readings[%d].subject", i), Reason: "HL7 v2 results need a patient; " + m.Kind + " readings about a " + m.Subject.Type + " go to FHIR only"}
		}
		k := m.Subject.Reference() + "\x00" + m.Device.ID
		if groups[k] == nil {
			groups[k] = &group{}
			order = append(order, k)
		}
		groups[k].ms = append(groups[k].ms, m)
	}
	out := make([]*hl7.ORU, 0, len(order))
	for _, k := range order {
		msg, err := oru(groups[k].ms, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, msg)
	}
	return out, nil
}

func oru(ms []Measurement, opts ORUOptions) (*hl7.ORU, error) {
	first := ms[0]
	// MSH-10 is derived from the readings, so a redelivered message keeps its
	// control id and the delivery ledger can recognise it. A reading that
	// revises an earlier one (OBX-11 C or W) adds its revision: a correction
	// is a new message, never one the ledger skips as already sent.
	h := sha256.New()
	for _, m := range ms {
		h.Write([]byte(m.Key()))
		if m.Revises() {
			h.Write([]byte("+" + m.Revision()))
		}
	}
	controlID := "FB" + strings.ToUpper(hex.EncodeToString(h.Sum(nil))[:20])

	start, end := first.Time, first.Time
	for _, m := range ms {
		if m.Time.Before(start) {
			start = m.Time
		}
		last := m.Time
		if !m.End.IsZero() {
			last = m.End
		}
		if last.After(end) {
			end = last
		}
	}
	ts := opts.Timestamp
	if ts.IsZero() {
		ts = first.Time
	}
	msg := &hl7.ORU{
		ControlID:            controlID,
		Timestamp:            ts,
		SendingApplication:   opts.SendingApplication,
		SendingFacility:      opts.SendingFacility,
		ReceivingApplication: opts.ReceivingApplication,
		ReceivingFacility:    opts.ReceivingFacility,
		ProcessingID:         opts.ProcessingID,
		Patient:              pid(first.Subject, opts.PatientAuthority),
		Order: hl7.Order{
			FillerOrderNumber:  hl7.EI{EntityID: controlID, NamespaceID: opts.SendingApplication.NamespaceID},
			UniversalServiceID: hl7.CWE{Code: "182777000", Text: "monitoring of patient", System: "SNOMED-CT"},
			ObservationTime:    start,
		},
	}
	if end.After(start) {
		msg.Order.ObservationEndTime = end
	}
	var equipment hl7.EI
	if first.Device.EUI64 != "" {
		equipment = hl7.EUI64(first.Device.EUI64)
	}
	spec, ok := deviceSpecs[first.Kind]
	if !ok {
		spec = genericDevice
	}
	msg.Observations = append(msg.Observations, hl7.OBX{Identifier: spec, Hierarchy: "1", ResultStatus: "X", EquipmentID: equipment})
	n := 0
	row := func(v Vital, value string, m Measurement) {
		n++
		obx := hl7.OBX{
			Identifier:      identifier(v),
			Hierarchy:       fmt.Sprintf("1.0.0.%d", n),
			ObservationTime: m.Time,
			EquipmentID:     equipment,
		}
		if m.Kind == KindCustom && m.Custom != nil && m.Custom.ValueType == "String" {
			obx.ValueType, obx.Value = "ST", value
		} else {
			obx.ValueType, obx.Value = "NM", value
		}
		if unit := unitOf(v, m); unit != "" {
			obx.Units = unitCWE(unit, v.Unit)
		}
		switch {
		case value == "":
			// OBX-5 may be empty only with X (HL7 v2.6 OBX-5 condition),
			// so a retraction without its value is sent as X.
			obx.ResultStatus = "X"
		case m.Status == "entered-in-error":
			// A retraction: the result sent before was wrong.
			obx.ResultStatus = "W"
		case m.Status == "preliminary":
			obx.ResultStatus = "P"
		case m.Status == "corrected" || m.Status == "amended":
			obx.ResultStatus = "C"
		default:
			obx.ResultStatus = "F"
		}
		if value != "" && v.Normal != nil {
			obx.ReferenceRange = rangeText(*v.Normal)
			if interp, _ := judge(v, value); len(interp) > 0 {
				obx.AbnormalFlags = []string{interp[0].GetCoding()[0].GetCode().GetValue()}
			}
		}
		msg.Observations = append(msg.Observations, obx)
	}
	for _, m := range ms {
		v, ok := Lookup(m.Kind)
		if m.Kind == KindCustom && m.Custom != nil {
			v, ok = m.Custom.vital(), true
		}
		if !ok {
			return nil, &FieldError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q", clip(m.Kind))}
		}
		if m.Kind == KindCustom && m.Custom != nil && m.Custom.ValueType == "CodeableConcept" {
			n++
			msg.Observations = append(msg.Observations, hl7.OBX{
				ValueType: "CWE", Identifier: identifier(v), Hierarchy: fmt.Sprintf("1.0.0.%d", n),
				CodedValue: codeCWE(m.Custom.ValueCodes, m.Custom.ValueText), ResultStatus: "F",
				ObservationTime: m.Time, EquipmentID: equipment,
			})
			continue
		}
		if len(v.Components) > 0 {
			for _, c := range m.Components {
				cv, _ := Lookup(c.Kind)
				row(cv, c.Value, m)
			}
			continue
		}
		row(v, m.Value, m)
	}
	return msg, nil
}

func pid(s Subject, authority hl7.HD) hl7.Patient {
	if s.ID != "" {
		return hl7.Patient{ID: s.ID, AssigningAuthority: authority, IdentifierType: "PI"}
	}
	a := hl7.HD{NamespaceID: s.IdentifierSystem}
	if oid, ok := strings.CutPrefix(s.IdentifierSystem, "urn:oid:"); ok {
		a = hl7.HD{UniversalID: oid, UniversalIDType: "ISO"}
	}
	return hl7.Patient{ID: s.IdentifierValue, AssigningAuthority: a, IdentifierType: "MR"}
}

// identifier is OBX-3: MDC first with LOINC as the alternate when both
// exist, as PCD-01 wants; otherwise the codes the reading has.
func identifier(v Vital) hl7.CWE {
	primary := hl7.CWE{Code: v.Code.Code, Text: v.Code.Display, System: v2System(v.Code.System)}
	if v.MDC.Code == "" {
		return primary
	}
	c := hl7.CWE{Code: v.MDC.Code, Text: v.MDC.Display, System: hl7.SystemMDC}
	if v.Code.System == "http://loinc.org" {
		c.AltCode, c.AltText, c.AltSystem = v.Code.Code, v.Code.Display, hl7.SystemLOINC
	}
	return c
}

func codeCWE(codes []Code, text string) hl7.CWE {
	if len(codes) == 0 {
		return hl7.CWE{Text: text}
	}
	c := hl7.CWE{Code: codes[0].Code, Text: codes[0].Display, System: v2System(codes[0].System)}
	if c.Text == "" {
		c.Text = text
	}
	return c
}

// v2System names a FHIR code system in HL7 v2 (table 0396); systems with no
// v2 name are local ("99" prefix, as the table reserves).
func v2System(system string) string {
	switch system {
	case "http://loinc.org":
		return hl7.SystemLOINC
	case "urn:iso:std:iso:11073:10101":
		return hl7.SystemMDC
	case "http://snomed.info/sct":
		return "SCT"
	case "http://unitsofmeasure.org":
		return hl7.SystemUCUM
	case SystemBridge:
		return "99FHB"
	default:
		return "99LOC"
	}
}

func unitOf(v Vital, m Measurement) string {
	if m.Kind == KindCustom && m.Custom != nil {
		if m.Custom.UnitCode != "" {
			return m.Custom.UnitCode
		}
		return m.Custom.Unit
	}
	return v.Unit.UCUM
}

func unitCWE(ucum string, u Unit) hl7.CWE {
	c := hl7.CWE{Code: ucum, Text: ucum, System: hl7.SystemUCUM}
	if u.UCUM == ucum && u.MDC != "" {
		c.AltCode, c.AltText, c.AltSystem = u.MDC, u.MDCName, hl7.SystemMDC
	}
	return c
}

func rangeText(r Range) string {
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return trimFloat(*p)
	}
	switch {
	case r.Low != nil && r.High != nil:
		return f(r.Low) + "-" + f(r.High)
	case r.Low != nil:
		return ">" + f(r.Low)
	default:
		return "<" + f(r.High)
	}
}

func trimFloat(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
