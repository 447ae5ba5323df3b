package fhir

import (
	"strconv"
	"testing"
	"time"

	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"github.com/google/go-cmp/cmp"
)

// heartRate returns a heart-rate Observation that conforms to the R4
// vital-signs profile, built by hand: package fhir is a leaf and must not use
// the mappers. Each call returns a fresh message, so tests may mutate it.
func heartRate() *observationpb.Observation {
	return &observationpb.Observation{
		Meta:       &dtpb.Meta{Profile: []*dtpb.Canonical{Canonical("http://hl7.org/fhir/StructureDefinition/heartrate"), Canonical(ProfileVitalSigns)}},
		Identifier: []*dtpb.Identifier{Identifier("https://example.org/sid/obs-key", "k-1")},
		Status:     &observationpb.Observation_StatusCode{Value: codespb.ObservationStatusCode_FINAL},
		Category:   []*dtpb.CodeableConcept{Concept(Coding(SystemObservationCategory, "vital-signs", "Vital Signs"))},
		Code:       Concept(Coding(SystemLOINC, "8867-4", "Heart rate"), Coding(SystemMDC, "147842", "MDC_ECG_HEART_RATE")),
		Subject:    PatientRef("p-1"),
		Effective: &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{
			DateTime: DateTime(time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)),
		}},
		Value:  &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: Quantity("72", "/min")}},
		Device: DeviceRef("hrm-1"),
	}
}

// bpComponent returns a blood-pressure component with a LOINC code and a
// mm[Hg] value.
func bpComponent(loinc, value string) *observationpb.Observation_Component {
	return &observationpb.Observation_Component{
		Code:  Concept(Coding(SystemLOINC, loinc, "")),
		Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Quantity{Quantity: Quantity(value, "mm[Hg]")}},
	}
}

// bloodPressure returns a conformant BP panel: no root value, two components.
func bloodPressure() *observationpb.Observation {
	o := heartRate()
	o.Code = Concept(Coding(SystemLOINC, "85354-9", ""))
	o.Value = nil
	o.Component = []*observationpb.Observation_Component{bpComponent("8480-6", "120"), bpComponent("8462-4", "80")}
	return o
}

func dataAbsent(code string) *dtpb.CodeableConcept {
	return Concept(Coding(SystemDataAbsentReason, code, ""))
}

func TestCheckVitalSigns(t *testing.T) {
	tests := []struct {
		name  string
		obs   func() *observationpb.Observation
		paths []string // expected Issue.Path values, in order; nil for none
	}{
		{
			name: "conformant heart rate",
			obs:  heartRate,
		},
		{
			name: "conformant with dataAbsentReason instead of a value",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Value = nil
				o.DataAbsentReason = dataAbsent("error")
				return o
			},
		},
		{
			name: "conformant with effectivePeriod",
			obs: func() *observationpb.Observation {
				o := heartRate()
				start := DateTime(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
				end := DateTime(time.Date(2026, 11, 25, 10, 5, 0, 0, time.UTC))
				o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_Period{
					Period: &dtpb.Period{Start: start, End: end},
				}}
				return o
			},
		},
		{
			name: "conformant blood-pressure panel with components",
			obs:  bloodPressure,
		},
		{
			name: "conformant component with dataAbsentReason",
			obs: func() *observationpb.Observation {
				o := bloodPressure()
				o.Component[1].Value = nil
				o.Component[1].DataAbsentReason = dataAbsent("not-performed")
				return o
			},
		},
		{
			name: "conformant grouper with hasMember and no value",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Value = nil
				o.HasMember = []*dtpb.Reference{{Reference: &dtpb.Reference_ObservationId{ObservationId: &dtpb.ReferenceId{Value: "o-2"}}}}
				return o
			},
		},
		{
			name:  "missing status",
			obs:   func() *observationpb.Observation { o := heartRate(); o.Status = nil; return o },
			paths: []string{"Observation.status"},
		},
		{
			name: "status set to the zero enum value",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Status = &observationpb.Observation_StatusCode{}
				return o
			},
			paths: []string{"Observation.status"},
		},
		{
			name: "no vital-signs category",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Category = []*dtpb.CodeableConcept{Concept(Coding(SystemObservationCategory, "laboratory", ""))}
				return o
			},
			paths: []string{"Observation.category"},
		},
		{
			name: "vital-signs code in the wrong system",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Category = []*dtpb.CodeableConcept{Concept(Coding("http://example.org/category", "vital-signs", ""))}
				return o
			},
			paths: []string{"Observation.category"},
		},
		{
			name: "no LOINC coding",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Code = Concept(Coding(SystemMDC, "147842", "MDC_ECG_HEART_RATE"))
				return o
			},
			paths: []string{"Observation.code"},
		},
		{
			name: "LOINC system with an empty code",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Code = Concept(Coding(SystemLOINC, "", ""))
				return o
			},
			paths: []string{"Observation.code"},
		},
		{
			name: "coding without system",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Code.Coding = append(o.Code.Coding, &dtpb.Coding{Code: &dtpb.Code{Value: "HR"}})
				return o
			},
			paths: []string{"Observation.code.coding[2].system"},
		},
		{
			name: "subject is a Device",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Subject = DeviceRef("hrm-1")
				return o
			},
			paths: []string{"Observation.subject"},
		},
		{
			name:  "no subject",
			obs:   func() *observationpb.Observation { o := heartRate(); o.Subject = nil; return o },
			paths: []string{"Observation.subject"},
		},
		{
			name:  "no effective",
			obs:   func() *observationpb.Observation { o := heartRate(); o.Effective = nil; return o },
			paths: []string{"Observation.effective[x]"},
		},
		{
			name: "effectiveInstant is not allowed",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_Instant{
					Instant: &dtpb.Instant{ValueUs: 1, Timezone: "Z", Precision: dtpb.Instant_SECOND},
				}}
				return o
			},
			paths: []string{"Observation.effective[x]"},
		},
		{
			name: "value and dataAbsentReason both",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.DataAbsentReason = dataAbsent("error")
				return o
			},
			paths: []string{"Observation.dataAbsentReason"},
		},
		{
			name:  "neither value nor dataAbsentReason nor component",
			obs:   func() *observationpb.Observation { o := heartRate(); o.Value = nil; return o },
			paths: []string{"Observation.value[x]"},
		},
		{
			name: "quantity without UCUM system and code",
			obs: func() *observationpb.Observation {
				o := heartRate()
				q := o.GetValue().GetQuantity()
				q.System, q.Code = nil, nil
				return o
			},
			paths: []string{"Observation.valueQuantity.system", "Observation.valueQuantity.code"},
		},
		{
			name: "quantity in another unit system",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.GetValue().GetQuantity().System = &dtpb.Uri{Value: SystemMDC}
				return o
			},
			paths: []string{"Observation.valueQuantity.system"},
		},
		{
			name: "quantity without a value",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.GetValue().GetQuantity().Value = nil
				return o
			},
			paths: []string{"Observation.valueQuantity.value"},
		},
		{
			name: "component without value or dataAbsentReason",
			obs: func() *observationpb.Observation {
				o := bloodPressure()
				o.Component[0].Value = nil
				return o
			},
			paths: []string{"Observation.component[0]"},
		},
		{
			name: "component coded without LOINC",
			obs: func() *observationpb.Observation {
				o := bloodPressure()
				o.Component[1].Code = Concept(Coding(SystemMDC, "150022", "MDC_PRESS_BLD_NONINV_DIA"))
				return o
			},
			paths: []string{"Observation.component[1].code"},
		},
		{
			name: "component quantity without UCUM system",
			obs: func() *observationpb.Observation {
				o := bloodPressure()
				o.Component[1].GetValue().GetQuantity().System = nil
				return o
			},
			paths: []string{"Observation.component[1].valueQuantity.system"},
		},
		{
			name: "eleventh component without a value has a two-digit index",
			obs: func() *observationpb.Observation {
				o := bloodPressure()
				for len(o.Component) < 11 {
					o.Component = append(o.Component, bpComponent("8478-0", "93"))
				}
				o.Component[10].Value = nil
				return o
			},
			paths: []string{"Observation.component[10]"},
		},
		{
			name: "several rules broken at once, one issue each",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.Status = nil
				o.Subject = nil
				o.Effective = nil
				return o
			},
			paths: []string{"Observation.status", "Observation.subject", "Observation.effective[x]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issues := CheckVitalSigns(tt.obs())
			var paths []string
			for _, is := range issues {
				paths = append(paths, is.Path)
				if is.Severity != "error" {
					t.Errorf("issue %v: severity %q, want error", is, is.Severity)
				}
				if is.Message == "" {
					t.Errorf("issue at %s has no message", is.Path)
				}
			}
			if diff := cmp.Diff(tt.paths, paths); diff != "" {
				t.Errorf("issue paths (-want +got):\n%s\nissues: %v", diff, issues)
			}
		})
	}
}

func TestCheckVitalSignsEmptyObservation(t *testing.T) {
	// An empty message must not panic and must break every top-level rule.
	got := CheckVitalSigns(&observationpb.Observation{})
	var paths []string
	for _, is := range got {
		paths = append(paths, is.Path)
	}
	want := []string{
		"Observation.status", "Observation.category", "Observation.code",
		"Observation.subject", "Observation.effective[x]", "Observation.value[x]",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("issue paths (-want +got):\n%s", diff)
	}
}

func TestIssueString(t *testing.T) {
	is := Issue{Path: "Observation.status", Severity: "error", Message: "missing"}
	if got, want := is.String(), "error Observation.status: missing"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestItoa(t *testing.T) {
	for _, n := range []int{0, 7, 10, 42, 100, 1234} {
		if got, want := itoa(n), strconv.Itoa(n); got != want {
			t.Errorf("itoa(%d) = %q, want %q", n, got, want)
		}
	}
}
