package fhir

import (
	"fmt"
	"testing"
	"time"

	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

func obs() *observationpb.Observation {
	return &observationpb.Observation{
		Status:   &observationpb.Observation_StatusCode{Value: codespb.ObservationStatusCode_FINAL},
		Category: []*dtpb.CodeableConcept{Concept(Coding(SystemObservationCategory, "vital-signs", ""))},
		Code:     Concept(Coding(SystemLOINC, "8867-4", "Heart rate")),
		Subject:  PatientRef("p1"),
		Effective: &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{DateTime: DateTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}},
		Value: &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: Quantity("72", "/min")}},
	}
}

func TestZZ(t *testing.T) {
	c, _ := NewCodec()
	muts := map[string]func(o *observationpb.Observation){
		"ok":          func(o *observationpb.Observation) {},
		"code-lead-space":   func(o *observationpb.Observation) { o.Code.Coding[0].Code.Value = " x" },
		"code-dbl-space":   func(o *observationpb.Observation) { o.Code.Coding[0].Code.Value = "a  b" },
		"code-empty":   func(o *observationpb.Observation) { o.Code.Coding[0].Code.Value = "" },
		"patient-bad-id":   func(o *observationpb.Observation) { o.Subject = PatientRef("bad id!") },
		"no-code":   func(o *observationpb.Observation) { o.Code = nil },
		"no-status":   func(o *observationpb.Observation) { o.Status = nil },
		"id":   func(o *observationpb.Observation) { o.Id = &dtpb.Id{Value: "bad id"} },
		"uri":   func(o *observationpb.Observation) { o.Code.Coding[0].System.Value = "http://a b\x7f" },
		"str":   func(o *observationpb.Observation) { o.Code.Coding[0].Display.Value = "bad\x00" },
		"subject-org": func(o *observationpb.Observation) { o.Subject = &dtpb.Reference{Reference: &dtpb.Reference_OrganizationId{OrganizationId: &dtpb.ReferenceId{Value: "o1"}}} },
		"dec": func(o *observationpb.Observation) { o.Value.GetQuantity().Value.Value = "abc" },
	}
	for name, mut := range muts {
		o := obs()
		mut(o)
		b, err := c.Encode(o)
		fmt.Printf("%s: %s | %T %v\n", name, b, err, err)
	}
	for _, in := range []string{
		`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":" x"}]}}`,
		`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"x"}]},"id":"bad id"}`,
		`{"resourceType":"Observation","status":"final"}`,
		`{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"x"}]}}`,
		`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"x"}]},"subject":{"reference":"Organization/1"}}`,
		`{"resourceType":"Observation","status":"bogus","code":{"coding":[{"system":"http://loinc.org","code":"x"}]}}`,
		`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"x"}]},"foo":1}`,
		`{"resourceType":"Nope"}`,
		`{"status":"final"}`,
		`{"resourceType":"Observation",`,
		`[]`,
		`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"x"}]},"effectiveDateTime":"2026-01-02T03:04:05Z","valueQuantity":{"value":72.50}}`,
	} {
		m, err := c.Decode([]byte(in))
		fmt.Printf("DEC %T %v | %T %#v\n", m, m, err, err)
		if err != nil { fmt.Println("   ", err) }
	}
	for _, tm := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 123000000, time.FixedZone("", 5*3600+1800)),
		time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.FixedZone("", -8*3600)),
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", -8*3600)),
	} {
		o := obs()
		o.Effective.Choice = &observationpb.Observation_EffectiveX_DateTime{DateTime: DateTime(tm)}
		b, _ := c.Encode(o)
		fmt.Println(string(b))
		m, _ := c.Decode(b)
		fmt.Println(m)
	}
}
