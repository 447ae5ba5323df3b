package fhirjson_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	devicepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/device_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	patientpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	"google.golang.org/protobuf/proto"
	anypb "google.golang.org/protobuf/types/known/anypb"
)

func withValue(q *dtpb.Quantity) func(*observationpb.Observation) {
	return func(o *observationpb.Observation) {
		o.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: q}}
	}
}

func withEffective(dt *dtpb.DateTime) func(*observationpb.Observation) {
	return func(o *observationpb.Observation) {
		o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{DateTime: dt}}
	}
}

// How a refusal relates to the referee (google/fhir).
type refusal int

const (
	// refused: the referee refuses too, or its output does not survive its
	// own validating unmarshaller.
	refused refusal = iota
	// stricter: the referee writes JSON that round-trips through its own
	// unmarshaller but breaks a FHIR R4 rule (empty string or uri, empty
	// reference, "Patient/" with no id, year 0000, nil list item); fhirjson
	// refuses on purpose.
	stricter
	// unsupported: outside fhirjson's subset; the referee encodes it.
	unsupported
)

func TestErrors(t *testing.T) {
	ref := newReferee(t)
	tests := []struct {
		name   string
		res    proto.Message
		path   string
		reason string // substring
		kind   refusal
	}{
		{"status missing", obs(func(o *observationpb.Observation) { o.Status = nil }), "Observation.status", "required", refused},
		{"status unset", obs(func(o *observationpb.Observation) { o.Status.Value = 0 }), "Observation.status", "required", refused},
		{"status unknown", obs(func(o *observationpb.Observation) { o.Status.Value = 99 }), "Observation.status", "unknown code", refused},
		{"code missing", obs(func(o *observationpb.Observation) { o.Code = nil }), "Observation.code", "required", refused},
		{"component code missing", obs(func(o *observationpb.Observation) {
			o.Component = []*observationpb.Observation_Component{{Code: o.Code}, {}}
		}), "Observation.component[1].code", "required", refused},
		{"decimal letters", obs(withValue(quantity("abc", "/min"))), "Observation.valueQuantity.value", "decimal", refused},
		{"decimal empty", obs(withValue(quantity("", "/min"))), "Observation.valueQuantity.value", "decimal", refused},
		{"decimal leading zero", obs(withValue(quantity("072", "/min"))), "Observation.valueQuantity.value", "decimal", refused},
		{"decimal bare point", obs(withValue(quantity(".5", "/min"))), "Observation.valueQuantity.value", "decimal", refused},
		{"decimal padded", obs(withValue(quantity(" 72", "/min"))), "Observation.valueQuantity.value", "decimal", refused},
		{"decimal in range", obs(func(o *observationpb.Observation) {
			o.ReferenceRange = []*observationpb.Observation_ReferenceRange{{Low: simple("60", "/min")}, {High: simple("1,5", "/min")}}
		}), "Observation.referenceRange[1].high.value", "decimal", refused},
		{"code empty", obs(withValue(&dtpb.Quantity{Value: dec("1"), Code: code("")})), "Observation.valueQuantity.code", "empty code", refused},
		{"code padded", obs(func(o *observationpb.Observation) { o.Code.Coding[0].Code = code("8867-4 ") }), "Observation.code.coding[0].code", "whitespace", refused},
		{"code double space", obs(func(o *observationpb.Observation) { o.Code.Coding[0].Code = code("a  b") }), "Observation.code.coding[0].code", "whitespace", refused},
		{"id malformed", obs(func(o *observationpb.Observation) { o.Id = &dtpb.Id{Value: "a b"} }), "Observation.id", "FHIR id", refused},
		{"id too long", obs(func(o *observationpb.Observation) { o.Id = &dtpb.Id{Value: strings.Repeat("x", 65)} }), "Observation.id", "FHIR id", refused},
		{"uri empty", obs(func(o *observationpb.Observation) { o.Code.Coding[0].System = uri("") }), "Observation.code.coding[0].system", "empty uri", stricter},
		{"uri malformed", obs(func(o *observationpb.Observation) { o.Code.Coding[0].System = uri("http://[::1") }), "Observation.code.coding[0].system", "uri", refused},
		{"uri no scheme", obs(func(o *observationpb.Observation) {
			o.Meta = &dtpb.Meta{Profile: []*dtpb.Canonical{{Value: "http://x"}, {Value: ":x"}}}
		}), "Observation.meta.profile[1]", "uri", refused},
		{"string control character", obs(func(o *observationpb.Observation) { o.Code.Coding[0].Display = str("a\x00b") }), "Observation.code.coding[0].display", "control character", refused},
		{"string empty", obs(func(o *observationpb.Observation) { o.Code.Text = str("") }), "Observation.code.text", "empty string", stricter},
		{"reference empty", obs(func(o *observationpb.Observation) { o.Subject = &dtpb.Reference{} }), "Observation.subject", "empty reference", stricter},
		{"reference id empty", obs(func(o *observationpb.Observation) { o.Subject = patientRef("") }), "Observation.subject.reference", "FHIR id", stricter},
		{"reference id nil", obs(func(o *observationpb.Observation) {
			o.Subject = &dtpb.Reference{Reference: &dtpb.Reference_PatientId{}}
		}), "Observation.subject.reference", "empty reference id", stricter},
		{"reference id slash", obs(func(o *observationpb.Observation) { o.Device = deviceRef("a/b") }), "Observation.device.reference", "FHIR id", refused},
		{"reference target type", obs(func(o *observationpb.Observation) {
			o.Subject = &dtpb.Reference{Reference: &dtpb.Reference_PractitionerId{PractitionerId: &dtpb.ReferenceId{Value: "p"}}}
		}), "Observation.subject.reference", "Practitioner", refused},
		{"reference in list", obs(func(o *observationpb.Observation) {
			o.Performer = []*dtpb.Reference{{Display: str("ok")}, {Reference: &dtpb.Reference_DeviceId{DeviceId: &dtpb.ReferenceId{Value: "d"}}}}
		}), "Observation.performer[1].reference", "Device", refused},
		{"positiveInt zero", obs(func(o *observationpb.Observation) {
			s := sampled()
			s.Dimensions.Value = 0
			o.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_SampledData{SampledData: s}}
		}), "Observation.valueSampledData.dimensions", "positiveInt", refused},
		{"sampled data origin", obs(func(o *observationpb.Observation) {
			s := sampled()
			s.Origin = nil
			o.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_SampledData{SampledData: s}}
		}), "Observation.valueSampledData.origin", "required", refused},
		{"sampled data period in component", obs(func(o *observationpb.Observation) {
			s := sampled()
			s.Period = nil
			o.Component = []*observationpb.Observation_Component{{Code: o.Code, Value: &observationpb.Observation_Component_ValueX{
				Choice: &observationpb.Observation_Component_ValueX_SampledData{SampledData: s}}}}
		}), "Observation.component[0].valueSampledData.period", "required", refused},
		{"extension url", obs(func(o *observationpb.Observation) {
			o.Extension = []*dtpb.Extension{{Value: extValue(str("x"))}}
		}), "Observation.extension[0].url", "required", refused},
		{"time zone unknown", obs(withEffective(dateTime(t0, "Mars/Olympus_Mons", dtpb.DateTime_SECOND))), "Observation.effectiveDateTime", "time zone", refused},
		{"time zone malformed", obs(withEffective(dateTime(t0, "+0100", dtpb.DateTime_SECOND))), "Observation.effectiveDateTime", "time zone", refused},
		{"precision unset", obs(withEffective(dateTime(t0, "Z", 0))), "Observation.effectiveDateTime", "precision", refused},
		{"offset beyond 14h", obs(withEffective(dateTime(t0, "+15:00", dtpb.DateTime_SECOND))), "Observation.effectiveDateTime", "offset", refused},
		{"year 0", obs(withEffective(dateTime(time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC), "Z", dtpb.DateTime_SECOND))), "Observation.effectiveDateTime", "year", stricter},
		{"year 10000", obs(withEffective(dateTime(time.Date(10000, 6, 1, 0, 0, 0, 0, time.UTC), "Z", dtpb.DateTime_SECOND))), "Observation.effectiveDateTime", "year", refused},
		{"time of day", obs(func(o *observationpb.Observation) {
			o.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Time{Time: &dtpb.Time{ValueUs: 24 * 3600 * 1e6, Precision: dtpb.Time_SECOND}}}
		}), "Observation.valueTime", "range", refused},
		{"choice unset", obs(func(o *observationpb.Observation) { o.Value = &observationpb.Observation_ValueX{} }), "Observation.value", "no value", refused},
		{"unsupported timing", obs(func(o *observationpb.Observation) {
			o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_Timing{Timing: &dtpb.Timing{Code: &dtpb.CodeableConcept{Text: str("BID")}}}}
		}), "Observation.effectiveTiming", "not supported", unsupported},
		{"unsupported text", obs(func(o *observationpb.Observation) {
			o.Text = &dtpb.Narrative{Status: &dtpb.Narrative_StatusCode{Value: codespb.NarrativeStatusCode_GENERATED},
				Div: &dtpb.Xhtml{Value: `<div xmlns="http://www.w3.org/1999/xhtml">HR 72</div>`}}
		}), "Observation.text", "not supported", unsupported},
		{"unsupported contained", obs(func(o *observationpb.Observation) {
			a, err := anypb.New(&crpb.ContainedResource{OneofResource: &crpb.ContainedResource_Patient{Patient: &patientpb.Patient{Id: &dtpb.Id{Value: "p"}}}})
			if err != nil {
				t.Fatal(err)
			}
			o.Contained = []*anypb.Any{a}
		}), "Observation.contained", "not supported", unsupported},
		{"unsupported primitive extension", obs(func(o *observationpb.Observation) {
			o.Code.Coding[0].Code.Extension = []*dtpb.Extension{{Url: uri("urn:x"), Value: extValue(str("x"))}}
		}), "Observation.code.coding[0].code", "primitive", unsupported},
		{"unsupported primitive id", obs(func(o *observationpb.Observation) { o.Status.Id = str("s") }), "Observation.status", "primitive", unsupported},
		{"unsupported extension value", obs(func(o *observationpb.Observation) {
			o.Extension = []*dtpb.Extension{{Url: uri("urn:x"), Value: extValue(&dtpb.HumanName{Family: str("Doe")})}}
		}), "Observation.extension[0].value", "not supported", unsupported},
		{"nil list item", obs(func(o *observationpb.Observation) { o.Category = []*dtpb.CodeableConcept{nil} }), "Observation.category", "nil", stricter},
		{"device name type", &devicepb.Device{DeviceName: []*devicepb.Device_DeviceName{{Name: str("n")}}}, "Device.deviceName[0].type", "required", refused},
		{"device specialization", &devicepb.Device{Specialization: []*devicepb.Device_Specialization{{}}}, "Device.specialization[0].systemType", "required", refused},
		{"device udi", &devicepb.Device{UdiCarrier: []*devicepb.Device_UdiCarrier{{DeviceIdentifier: str("x")}}}, "Device.udiCarrier", "not supported", unsupported},
		{"device id", &devicepb.Device{Id: &dtpb.Id{Value: "hrm_0001"}}, "Device.id", "FHIR id", refused},
		{"device status unknown", &devicepb.Device{Status: &devicepb.Device_StatusCode{Value: codespb.FHIRDeviceStatusCode_Value(9)}}, "Device.status", "unknown code", refused},
		{"device parent type", &devicepb.Device{Parent: patientRef("p")}, "Device.parent.reference", "Patient", refused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encode(tc.res)
			var fe *fhirjson.Error
			if !errors.As(err, &fe) {
				t.Fatalf("encode = %s, %v; want an *fhirjson.Error", got, err)
			}
			if fe.Path != tc.path || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("error %q; want path %q and a reason with %q", err, tc.path, tc.reason)
			}
			if got != nil {
				t.Errorf("output %q with the error", got)
			}
			v := ref.Compare(tc.res, nil, err)
			strict := strings.Contains(v.Note, "breaks FHIR R4")
			switch tc.kind {
			case refused:
				if v.Mismatch != "" || strict {
					t.Errorf("want both refusing or the referee corrupting; got %s%s", v.Mismatch, v.Note)
				}
			case stricter:
				if !strict {
					t.Errorf("want the referee writing JSON that breaks FHIR R4; got %s%s", v.Mismatch, v.Note)
				}
			case unsupported:
				if v.Mismatch == "" {
					t.Errorf("marked unsupported, but the referee does not encode it faithfully either (%s)", v.Note)
				}
			}
			t.Logf("%v; referee: %s%s", err, v.Note, strings.SplitN(v.Mismatch, "\n", 2)[0])
		})
	}
}
