package fhirjson_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson/fhirjsontest"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	devicepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/device_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func newReferee(t testing.TB) *fhirjsontest.Referee {
	t.Helper()
	r, err := fhirjsontest.New()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// encode encodes an Observation or a Device natively.
func encode(res proto.Message) ([]byte, error) {
	switch r := res.(type) {
	case *observationpb.Observation:
		return fhirjson.EncodeObservation(r)
	case *devicepb.Device:
		return fhirjson.EncodeDevice(r)
	}
	panic(fmt.Sprintf("unexpected %T", res))
}

// Builders.

func str(s string) *dtpb.String  { return &dtpb.String{Value: s} }
func uri(s string) *dtpb.Uri     { return &dtpb.Uri{Value: s} }
func code(s string) *dtpb.Code   { return &dtpb.Code{Value: s} }
func dec(s string) *dtpb.Decimal { return &dtpb.Decimal{Value: s} }
func coding(sys, c, display string) *dtpb.Coding {
	cd := &dtpb.Coding{System: uri(sys), Code: code(c)}
	if display != "" {
		cd.Display = str(display)
	}
	return cd
}
func concept(c ...*dtpb.Coding) *dtpb.CodeableConcept { return &dtpb.CodeableConcept{Coding: c} }
func quantity(v, unit string) *dtpb.Quantity {
	return &dtpb.Quantity{Value: dec(v), Unit: str(unit), System: uri("http://unitsofmeasure.org"), Code: code(unit)}
}
func simple(v, unit string) *dtpb.SimpleQuantity {
	return &dtpb.SimpleQuantity{Value: dec(v), Unit: str(unit), System: uri("http://unitsofmeasure.org"), Code: code(unit)}
}
func dateTime(t time.Time, tz string, p dtpb.DateTime_Precision) *dtpb.DateTime {
	return &dtpb.DateTime{ValueUs: t.UnixMicro(), Timezone: tz, Precision: p}
}
func patientRef(id string) *dtpb.Reference {
	return &dtpb.Reference{Reference: &dtpb.Reference_PatientId{PatientId: &dtpb.ReferenceId{Value: id}}}
}
func deviceRef(id string) *dtpb.Reference {
	return &dtpb.Reference{Reference: &dtpb.Reference_DeviceId{DeviceId: &dtpb.ReferenceId{Value: id}}}
}

var t0 = time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)

// baseObs is a minimal valid Observation: status and code.
func baseObs() *observationpb.Observation {
	return &observationpb.Observation{
		Status: &observationpb.Observation_StatusCode{Value: codespb.ObservationStatusCode_FINAL},
		Code:   concept(coding("http://loinc.org", "8867-4", "Heart rate")),
	}
}

func obs(mod func(o *observationpb.Observation)) *observationpb.Observation {
	o := baseObs()
	mod(o)
	return o
}

func sampled() *dtpb.SampledData {
	return &dtpb.SampledData{
		Origin: simple("0", "mV"), Period: dec("10.0"), Factor: dec("1.5"), LowerLimit: dec("-3300"), UpperLimit: dec("3300"),
		Dimensions: &dtpb.PositiveInt{Value: 3}, Data: str("2041 2043 E U L 0.50 -12"),
	}
}

func extensions() []*dtpb.Extension {
	ext := func(url string, v proto.Message) *dtpb.Extension {
		return &dtpb.Extension{Url: uri(url), Value: extValue(v)}
	}
	base := "https://example.org/fhir/StructureDefinition/"
	return []*dtpb.Extension{
		ext(base+"b", &dtpb.Boolean{Value: true}),
		ext(base+"i", &dtpb.Integer{Value: -42}),
		ext(base+"pi", &dtpb.PositiveInt{Value: 2147483647}),
		ext(base+"ui", &dtpb.UnsignedInt{Value: 0}),
		ext(base+"d", dec("-0.000100")),
		ext(base+"s", str("line1\nline2 \"q\" \\ é \u2028")),
		ext(base+"md", &dtpb.Markdown{Value: "*bold*"}),
		ext(base+"c", code("a b")),
		ext(base+"id", &dtpb.Id{Value: "abc-1.2"}),
		ext(base+"u", uri("urn:uuid:0b8f6e5e-2f3a-4c1e-9d3b-2a0c7e1f4a5b")),
		ext(base+"url", &dtpb.Url{Value: "https://example.org/x?y=1#z"}),
		ext(base+"can", &dtpb.Canonical{Value: "http://hl7.org/fhir/StructureDefinition/bp|4.0.1"}),
		ext(base+"date", &dtpb.Date{ValueUs: t0.UnixMicro(), Timezone: "Europe/Paris", Precision: dtpb.Date_DAY}),
		ext(base+"month", &dtpb.Date{ValueUs: t0.UnixMicro(), Timezone: "Z", Precision: dtpb.Date_MONTH}),
		ext(base+"dt", dateTime(t0, "+05:30", dtpb.DateTime_MILLISECOND)),
		ext(base+"inst", &dtpb.Instant{ValueUs: t0.UnixMicro() + 1, Timezone: "Z", Precision: dtpb.Instant_MICROSECOND}),
		ext(base+"time", &dtpb.Time{ValueUs: (13*3600+5*60+7)*1e6 + 250000, Precision: dtpb.Time_MILLISECOND}),
		ext(base+"coding", coding("http://snomed.info/sct", "123", "")),
		ext(base+"cc", &dtpb.CodeableConcept{Text: str("free text")}),
		ext(base+"ident", &dtpb.Identifier{System: uri("urn:oid:1.2.3"), Value: str("v")}),
		ext(base+"period", &dtpb.Period{Start: dateTime(t0, "Z", dtpb.DateTime_SECOND)}),
		ext(base+"q", quantity("1.50", "mg")),
		ext(base+"range", &dtpb.Range{Low: simple("1", "mg")}),
		ext(base+"ratio", &dtpb.Ratio{Numerator: quantity("1", "mg"), Denominator: quantity("2", "mL")}),
		ext(base+"ref", &dtpb.Reference{Reference: &dtpb.Reference_PractitionerId{PractitionerId: &dtpb.ReferenceId{Value: "p1"}}}),
		ext(base+"sd", sampled()),
		{Url: uri(base + "nested"), Extension: []*dtpb.Extension{
			ext("inner", str("x")),
			{Url: uri("deeper"), Extension: []*dtpb.Extension{ext("leaf", &dtpb.Boolean{})}},
		}},
	}
}

// extValue wraps a datatype as an Extension value[x].
func extValue(m proto.Message) *dtpb.Extension_ValueX {
	v := &dtpb.Extension_ValueX{}
	fields := v.ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if f := fields.Get(i); f.Message().FullName() == m.ProtoReflect().Descriptor().FullName() {
			v.ProtoReflect().Set(f, protoreflect.ValueOfMessage(m.ProtoReflect()))
			return v
		}
	}
	panic(fmt.Sprintf("%T is not an extension value type", m))
}

// handBuilt covers the supported subset beyond what the mappers set.
func handBuilt() []struct {
	name string
	res  proto.Message
} {
	full := &observationpb.Observation{
		Id: &dtpb.Id{Value: "obs-1"},
		Meta: &dtpb.Meta{
			VersionId:   &dtpb.Id{Value: "3"},
			LastUpdated: &dtpb.Instant{ValueUs: t0.UnixMicro() + 123000, Timezone: "Z", Precision: dtpb.Instant_MILLISECOND},
			Source:      uri("urn:bridge"),
			Profile:     []*dtpb.Canonical{{Value: "http://hl7.org/fhir/StructureDefinition/heartrate"}, {Value: "http://hl7.org/fhir/StructureDefinition/vitalsigns"}},
			Security:    []*dtpb.Coding{coding("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N", "normal")},
			Tag:         []*dtpb.Coding{{Code: code("t"), UserSelected: &dtpb.Boolean{Value: false}, Version: str("1")}},
		},
		ImplicitRules:     uri("http://example.org/rules"),
		Language:          code("en-GB"),
		Extension:         extensions(),
		ModifierExtension: []*dtpb.Extension{{Url: uri("http://example.org/mod"), Value: &dtpb.Extension_ValueX{Choice: &dtpb.Extension_ValueX_Boolean{Boolean: &dtpb.Boolean{Value: true}}}}},
		Identifier: []*dtpb.Identifier{
			{Use: &dtpb.Identifier_UseCode{Value: codespb.IdentifierUseCode_OFFICIAL}, Type: concept(coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "")),
				System: uri("https://example.org/sid"), Value: str("abc"), Period: &dtpb.Period{End: dateTime(t0, "-05:00", dtpb.DateTime_DAY)},
				Assigner: &dtpb.Reference{Reference: &dtpb.Reference_OrganizationId{OrganizationId: &dtpb.ReferenceId{Value: "org"}}, Display: str("Org")}},
			{Use: &dtpb.Identifier_UseCode{}, Value: str("unset use is omitted")},
		},
		BasedOn:        []*dtpb.Reference{{Reference: &dtpb.Reference_ServiceRequestId{ServiceRequestId: &dtpb.ReferenceId{Value: "sr", History: &dtpb.Id{Value: "2"}}}}},
		PartOf:         []*dtpb.Reference{{Reference: &dtpb.Reference_ProcedureId{ProcedureId: &dtpb.ReferenceId{Value: "pr"}}}},
		Status:         &observationpb.Observation_StatusCode{Value: codespb.ObservationStatusCode_ENTERED_IN_ERROR},
		Category:       []*dtpb.CodeableConcept{concept(coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs"))},
		Code:           &dtpb.CodeableConcept{Coding: []*dtpb.Coding{coding("http://loinc.org", "8867-4", "Heart rate"), coding("urn:iso:std:iso:11073:10101", "149546", "MDC_PULS_RATE_NON_INV")}, Text: str("HR")},
		Subject:        &dtpb.Reference{Reference: &dtpb.Reference_GroupId{GroupId: &dtpb.ReferenceId{Value: "g"}}},
		Focus:          []*dtpb.Reference{{Reference: &dtpb.Reference_MedicationId{MedicationId: &dtpb.ReferenceId{Value: "m"}}}, {Reference: &dtpb.Reference_Fragment{Fragment: str("contained-1")}}},
		Encounter:      &dtpb.Reference{Reference: &dtpb.Reference_Uri{Uri: str("Encounter/e1")}},
		Effective:      &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_Instant{Instant: &dtpb.Instant{ValueUs: t0.UnixMicro(), Timezone: "+01:00", Precision: dtpb.Instant_SECOND}}},
		Issued:         &dtpb.Instant{ValueUs: t0.UnixMicro() + 999999, Timezone: "America/New_York", Precision: dtpb.Instant_MICROSECOND},
		Performer:      []*dtpb.Reference{{Reference: &dtpb.Reference_PractitionerRoleId{PractitionerRoleId: &dtpb.ReferenceId{Value: "pr"}}}, {Identifier: &dtpb.Identifier{Value: str("only identifier")}}, {Display: str("only display")}},
		Value:          &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_SampledData{SampledData: sampled()}},
		Interpretation: []*dtpb.CodeableConcept{concept(coding("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "N", "Normal"))},
		Note: []*dtpb.Annotation{
			{Author: &dtpb.Annotation_AuthorX{Choice: &dtpb.Annotation_AuthorX_StringValue{StringValue: str("nurse")}}, Time: dateTime(t0, "Z", dtpb.DateTime_SECOND), Text: &dtpb.Markdown{Value: "note"}},
			{Author: &dtpb.Annotation_AuthorX{Choice: &dtpb.Annotation_AuthorX_Reference{Reference: patientRef("p")}}, Text: &dtpb.Markdown{Value: "by patient"}},
		},
		BodySite: concept(coding("http://snomed.info/sct", "368209003", "Right arm")),
		Method:   &dtpb.CodeableConcept{Text: str("oscillometric")},
		Specimen: &dtpb.Reference{Reference: &dtpb.Reference_SpecimenId{SpecimenId: &dtpb.ReferenceId{Value: "s"}}},
		Device:   &dtpb.Reference{Reference: &dtpb.Reference_DeviceMetricId{DeviceMetricId: &dtpb.ReferenceId{Value: "dm"}}, Type: uri("DeviceMetric")},
		ReferenceRange: []*observationpb.Observation_ReferenceRange{{
			Id: str("rr"), Extension: []*dtpb.Extension{{Url: uri("urn:x"), Value: &dtpb.Extension_ValueX{Choice: &dtpb.Extension_ValueX_Code{Code: code("y")}}}},
			Low: simple("60", "/min"), High: simple("100", "/min"), Type: concept(coding("http://terminology.hl7.org/CodeSystem/referencerange-meaning", "normal", "")),
			AppliesTo: []*dtpb.CodeableConcept{{Text: str("adults")}}, Age: &dtpb.Range{Low: simple("18", "a"), High: simple("65", "a")}, Text: str("60-100"),
		}},
		HasMember:   []*dtpb.Reference{{Reference: &dtpb.Reference_ObservationId{ObservationId: &dtpb.ReferenceId{Value: "o2"}}}},
		DerivedFrom: []*dtpb.Reference{{Reference: &dtpb.Reference_MediaId{MediaId: &dtpb.ReferenceId{Value: "md"}}}},
		Component: []*observationpb.Observation_Component{
			{Id: str("c1"), Code: concept(coding("urn:x", "a", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_SampledData{SampledData: &dtpb.SampledData{Origin: simple("0", "mV"), Period: dec("4"), Dimensions: &dtpb.PositiveInt{Value: 1}, Data: str("1 2 3")}}}},
			{Code: concept(coding("urn:x", "b", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Quantity{Quantity: &dtpb.Quantity{Value: dec("5"), Comparator: &dtpb.Quantity_ComparatorCode{Value: codespb.QuantityComparatorCode_LESS_THAN_OR_EQUAL_TO}}}}},
			{Code: concept(coding("urn:x", "c", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_CodeableConcept{CodeableConcept: concept(coding("urn:y", "z", "Z"))}}},
			{Code: concept(coding("urn:x", "d", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_StringValue{StringValue: str("s")}}},
			{Code: concept(coding("urn:x", "e", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Boolean{Boolean: &dtpb.Boolean{Value: true}}}},
			{Code: concept(coding("urn:x", "f", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Integer{Integer: &dtpb.Integer{Value: -2147483648}}}},
			{Code: concept(coding("urn:x", "g", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Range{Range: &dtpb.Range{High: simple("3", "mg")}}}},
			{Code: concept(coding("urn:x", "h", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Ratio{Ratio: &dtpb.Ratio{Numerator: quantity("1", "mg")}}}},
			{Code: concept(coding("urn:x", "i", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Time{Time: &dtpb.Time{ValueUs: 86399999999, Precision: dtpb.Time_MICROSECOND}}}},
			{Code: concept(coding("urn:x", "j", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_DateTime{DateTime: dateTime(t0, "Asia/Kolkata", dtpb.DateTime_YEAR)}}},
			{Code: concept(coding("urn:x", "k", "")), Value: &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Period{Period: &dtpb.Period{Start: dateTime(t0, "-14:00", dtpb.DateTime_SECOND), End: dateTime(t0, "+14:00", dtpb.DateTime_SECOND)}}}},
			{Code: concept(coding("urn:x", "l", "")), DataAbsentReason: concept(coding("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown", "")),
				Interpretation: []*dtpb.CodeableConcept{{Text: str("t")}}, ReferenceRange: []*observationpb.Observation_ReferenceRange{{High: simple("1", "1")}},
				ModifierExtension: []*dtpb.Extension{{Url: uri("urn:m"), Value: &dtpb.Extension_ValueX{Choice: &dtpb.Extension_ValueX_Boolean{Boolean: &dtpb.Boolean{}}}}}},
		},
	}
	values := []struct {
		name string
		v    *observationpb.Observation_ValueX
	}{
		{"quantity-comparator", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: &dtpb.Quantity{Value: dec("1.000"), Comparator: &dtpb.Quantity_ComparatorCode{Value: codespb.QuantityComparatorCode_GREATER_THAN}, Unit: str("%")}}}},
		{"codeable-concept", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_CodeableConcept{CodeableConcept: &dtpb.CodeableConcept{Coding: []*dtpb.Coding{coding("urn:a", "b", "c")}, Text: str("t")}}}},
		{"string", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_StringValue{StringValue: str("Ünïcödé \"quoted\" \\ / <tag> &amp; \t tab")}}},
		{"boolean", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Boolean{Boolean: &dtpb.Boolean{}}}},
		{"integer", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Integer{Integer: &dtpb.Integer{Value: 2147483647}}}},
		{"range", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Range{Range: &dtpb.Range{Low: simple("1.0", "kg"), High: simple("2.00", "kg")}}}},
		{"ratio", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Ratio{Ratio: &dtpb.Ratio{Numerator: quantity("1", "mg"), Denominator: quantity("1e3", "mL")}}}},
		{"time", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Time{Time: &dtpb.Time{ValueUs: 0, Precision: dtpb.Time_SECOND}}}},
		{"date-time", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_DateTime{DateTime: dateTime(t0, "UTC", dtpb.DateTime_MICROSECOND)}}},
		{"period", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Period{Period: &dtpb.Period{Start: dateTime(t0, "Z", dtpb.DateTime_MONTH)}}}},
		{"sampled-data-minimal", &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_SampledData{SampledData: &dtpb.SampledData{Origin: &dtpb.SimpleQuantity{Value: dec("0")}, Period: dec("0.5"), Dimensions: &dtpb.PositiveInt{Value: 1}}}}},
	}
	cases := []struct {
		name string
		res  proto.Message
	}{{"observation-full", full}}
	for _, v := range values {
		cases = append(cases, struct {
			name string
			res  proto.Message
		}{"value-" + v.name, obs(func(o *observationpb.Observation) { o.Value = v.v })})
	}
	add := func(name string, res proto.Message) {
		cases = append(cases, struct {
			name string
			res  proto.Message
		}{name, res})
	}
	add("minimal", baseObs())
	add("subject-by-identifier", obs(func(o *observationpb.Observation) {
		o.Subject = &dtpb.Reference{Type: uri("Patient"), Identifier: &dtpb.Identifier{System: uri("urn:oid:1.2.36.146.595.217.0.1"), Value: str("MRN|12345")}}
	}))
	add("reference-type-only", obs(func(o *observationpb.Observation) { o.Subject = &dtpb.Reference{Type: uri("Patient")} }))
	add("reference-extension-only", obs(func(o *observationpb.Observation) {
		o.Subject = &dtpb.Reference{Extension: []*dtpb.Extension{{Url: uri("http://hl7.org/fhir/StructureDefinition/data-absent-reason"), Value: extValue(code("unknown"))}}}
	}))
	add("subject-location", obs(func(o *observationpb.Observation) {
		o.Subject = &dtpb.Reference{Reference: &dtpb.Reference_LocationId{LocationId: &dtpb.ReferenceId{Value: "fridge-ward-3"}}}
	}))
	add("effective-period", obs(func(o *observationpb.Observation) {
		o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_Period{Period: &dtpb.Period{
			Start: dateTime(t0, "+01:00", dtpb.DateTime_SECOND), End: dateTime(t0.Add(time.Hour), "+01:00", dtpb.DateTime_SECOND)}}}
	}))
	add("empty-complex", obs(func(o *observationpb.Observation) {
		// google/fhir writes empty complex values as {}; so does fhirjson.
		o.Method = &dtpb.CodeableConcept{}
		o.Category = []*dtpb.CodeableConcept{{}}
	}))
	add("invalid-utf8-string", obs(func(o *observationpb.Observation) {
		o.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_StringValue{StringValue: str("a\xffb")}}
	}))
	add("device-mapper-like", &devicepb.Device{
		Id:     &dtpb.Id{Value: "hrm-0001"},
		Meta:   &dtpb.Meta{Profile: []*dtpb.Canonical{{Value: "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"}}},
		Status: &devicepb.Device_StatusCode{Value: codespb.FHIRDeviceStatusCode_ACTIVE},
		Identifier: []*dtpb.Identifier{{Type: concept(coding("http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers", "SYSID", "IEEE 11073 System Identifier")),
			System: uri("urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"), Value: str("FE-ED-AB-EE-DE-AD-BE-EF")}},
		SerialNumber: str("SN 1"), Manufacturer: str("Acme"), ModelNumber: str("HR-1"),
		Type: concept(coding("urn:iso:std:iso:11073:10101", "65573", "MDC_MOC_VMS_MDS_SIMP")),
	})
	add("device-full", &devicepb.Device{
		Id: &dtpb.Id{Value: "d1"}, Meta: &dtpb.Meta{VersionId: &dtpb.Id{Value: "1"}}, Language: code("en"), Extension: extensions()[:3],
		Identifier: []*dtpb.Identifier{{Value: str("x")}},
		Definition: &dtpb.Reference{Reference: &dtpb.Reference_DeviceDefinitionId{DeviceDefinitionId: &dtpb.ReferenceId{Value: "dd"}}},
		Status:     &devicepb.Device_StatusCode{Value: codespb.FHIRDeviceStatusCode_ENTERED_IN_ERROR}, StatusReason: []*dtpb.CodeableConcept{{Text: str("r")}},
		DistinctIdentifier: str("di"), Manufacturer: str("M"),
		ManufactureDate: dateTime(t0, "Z", dtpb.DateTime_DAY), ExpirationDate: dateTime(t0.AddDate(5, 0, 0), "+02:00", dtpb.DateTime_SECOND),
		LotNumber: str("lot"), SerialNumber: str("sn"),
		DeviceName: []*devicepb.Device_DeviceName{{Name: str("Pulse Ox"), Type: &devicepb.Device_DeviceName_TypeCode{Value: codespb.DeviceNameTypeCode_USER_FRIENDLY_NAME}},
			{Name: str("P"), Type: &devicepb.Device_DeviceName_TypeCode{Value: codespb.DeviceNameTypeCode_MODEL_NAME}}},
		ModelNumber: str("m"), PartNumber: str("p"), Type: concept(coding("urn:iso:std:iso:11073:10101", "65573", "")),
		Specialization: []*devicepb.Device_Specialization{{SystemType: concept(coding("urn:iso:std:iso:11073:10101", "528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM")), Version: str("1")}},
		Version:        []*devicepb.Device_Version{{Type: concept(coding("urn:iso:std:iso:11073:10101", "531974", "")), Component: &dtpb.Identifier{Value: str("c")}, Value: str("1.2")}},
		Property: []*devicepb.Device_Property{{Type: concept(coding("urn:x", "p", "")), ValueQuantity: []*dtpb.Quantity{quantity("1", "s")},
			ValueCode: []*dtpb.CodeableConcept{concept(coding("urn:x", "v", ""))}}},
		Patient: patientRef("p"), Owner: &dtpb.Reference{Reference: &dtpb.Reference_OrganizationId{OrganizationId: &dtpb.ReferenceId{Value: "o"}}},
		Location: &dtpb.Reference{Reference: &dtpb.Reference_LocationId{LocationId: &dtpb.ReferenceId{Value: "l"}}},
		Url:      uri("http://device.local/"), Note: []*dtpb.Annotation{{Text: &dtpb.Markdown{Value: "n"}}},
		Safety: []*dtpb.CodeableConcept{{Text: str("MR unsafe")}}, Parent: deviceRef("gateway-1"),
	})
	add("device-status-unset", &devicepb.Device{Status: &devicepb.Device_StatusCode{}})
	add("device-empty", &devicepb.Device{})
	return cases
}

// TestHandBuilt compares fhirjson with the referee on resources covering
// the whole supported subset.
func TestHandBuilt(t *testing.T) {
	ref := newReferee(t)
	for _, tc := range handBuilt() {
		t.Run(tc.name, func(t *testing.T) {
			before := proto.Clone(tc.res)
			got, err := encode(tc.res)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !proto.Equal(before, tc.res) {
				t.Fatal("encode changed the message")
			}
			v := ref.Compare(tc.res, got, err)
			if v.Mismatch != "" {
				t.Fatal(v.Mismatch)
			}
			if v.Note != "" {
				t.Log(v.Note)
			}
		})
	}
}

// TestRefereeCatchesDifferences makes sure the comparison is not vacuous:
// small changes to a correct encoding are caught.
func TestRefereeCatchesDifferences(t *testing.T) {
	ref := newReferee(t)
	o := obs(func(o *observationpb.Observation) {
		o.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: quantity("72.50", "/min")}}
		o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{DateTime: dateTime(t0, "+01:00", dtpb.DateTime_SECOND)}}
		o.Subject = patientRef("p1")
	})
	good, err := fhirjson.EncodeObservation(o)
	if err != nil {
		t.Fatal(err)
	}
	if v := ref.Compare(o, good, nil); v.Mismatch != "" {
		t.Fatal(v.Mismatch)
	}
	for _, tc := range [][2]string{
		{`72.50`, `72.5`},
		{`+01:00"`, `+00:00"`},
		{`T11:15:00+01:00`, `T10:15:00Z`},
		{`Patient/p1`, `Patient/p2`},
		{`"status":"final",`, ``},
		{`"display":"Heart rate"`, `"display":"Heart rate "`},
	} {
		bad := strings.Replace(string(good), tc[0], tc[1], 1)
		if bad == string(good) {
			t.Fatalf("%s not in %s", tc[0], good)
		}
		if v := ref.Compare(o, []byte(bad), nil); v.Mismatch == "" {
			t.Errorf("replacing %s by %s went unnoticed", tc[0], tc[1])
		}
	}
	if v := ref.Compare(o, nil, errors.New("refused")); v.Mismatch == "" {
		t.Error("a refusal of a faithful resource went unnoticed")
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestTypedReferences: every typed reference of R4 Reference (149 resource
// types) renders as google/fhir renders it, with and without a version.
func TestTypedReferences(t *testing.T) {
	ref := newReferee(t)
	oneof := (&dtpb.Reference{}).ProtoReflect().Descriptor().Oneofs().ByName("reference")
	n := 0
	for i := 0; i < oneof.Fields().Len(); i++ {
		f := oneof.Fields().Get(i)
		if f.Message().FullName() != "google.fhir.r4.core.ReferenceId" {
			continue
		}
		n++
		for _, history := range []string{"", "7"} {
			r := &dtpb.Reference{}
			id := &dtpb.ReferenceId{Value: "id-" + string(f.Name())[:3]}
			if history != "" {
				id.History = &dtpb.Id{Value: history}
			}
			r.ProtoReflect().Set(f, protoreflect.ValueOfMessage(id.ProtoReflect()))
			o := obs(func(o *observationpb.Observation) { o.Focus = []*dtpb.Reference{r} })
			got, err := fhirjson.EncodeObservation(o)
			if v := ref.Compare(o, got, err); v.Mismatch != "" || v.Note != "" {
				t.Errorf("%s: %s%s", f.Name(), v.Mismatch, v.Note)
			}
		}
	}
	if n < 140 {
		t.Errorf("only %d typed references", n)
	}
}

// TestConcurrentEncode: fhirjson only reads the message, so one Observation
// may be encoded from several goroutines (run with -race).
func TestConcurrentEncode(t *testing.T) {
	cases := handBuilt()
	o := cases[0].res.(*observationpb.Observation)
	want, err := fhirjson.EncodeObservation(o)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for j := 0; j < 20; j++ {
				var err error
				if buf, err = fhirjson.AppendObservation(buf[:0], o); err != nil || string(buf) != string(want) {
					errs <- fmt.Errorf("concurrent encode differs: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
