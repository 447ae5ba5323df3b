package medtech

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFHIRMappingBasic(t *testing.T) {
	fm, err := ParseFHIRMapping(readFile(t, compatDir+"/templates/basic/fhirmapping.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"heartrate", "steps", "hrv", "bloodpressure", "deviceWorn", "deviceRemoved"}
	if diff := cmp.Diff(want, fm.TypeNames()); diff != "" {
		t.Errorf("TypeNames (-want +got):\n%s", diff)
	}
	period := 1000.0
	hr, ok := fm.Lookup("HeartRate") // case-insensitive, as MedTech
	if !ok {
		t.Fatal("Lookup(HeartRate) failed")
	}
	wantHR := CodeValueTemplate{
		Path:           "template[0].template",
		TypeName:       "heartrate",
		PeriodInterval: PeriodHourly,
		Codes:          []Coding{{Code: "8867-4", System: "http://loinc.org", Display: "Heart rate"}},
		Value:          &ValueType{ValueType: ValueSampledData, ValueName: "hr", Unit: "count/min", DefaultPeriod: &period},
	}
	if diff := cmp.Diff(wantHR, *hr); diff != "" {
		t.Errorf("heartrate (-want +got):\n%s", diff)
	}
	bp, _ := fm.Lookup("bloodpressure")
	if len(bp.Components) != 2 || bp.Value != nil || bp.Components[1].Value.ValueName != "systolic" || len(bp.Components[1].Codes) != 2 {
		t.Errorf("bloodpressure components: %+v", bp)
	}
	worn, _ := fm.Lookup("deviceWorn")
	wantWorn := &ValueType{ValueType: ValueCodeableConcept, ValueName: "deviceWorn", Text: "Device Worn",
		Codes: []Coding{{Code: "deviceWorn", System: "https://www.mydevice.com/v1", Display: "Device Worn"}}}
	if diff := cmp.Diff(wantWorn, worn.Value); diff != "" || worn.PeriodInterval != PeriodSingle {
		t.Errorf("deviceWorn (-want +got):\n%s", diff)
	}
	if _, ok := fm.Lookup("nope"); ok {
		t.Error("Lookup(nope) succeeded")
	}
}

func TestParseFHIRMappingQuantityAndOptions(t *testing.T) {
	fm, err := ParseFHIRMapping([]byte(`{"templateType": "CollectionFhirTemplate", "template": [
	  {"templateType": "codeValueFhir", "template": {"typeName": "bodyMass", "periodInterval": "Daily",
	    "category": [{"text": "Vital Signs", "codes": [{"code": "vital-signs", "system": "http://terminology.hl7.org/CodeSystem/observation-category"}]}],
	    "codes": [{"code": "29463-7", "system": "http://loinc.org"}],
	    "value": {"valueType": "quantity", "valueName": "w", "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}},
	  {"templateType": "CodeValueFhir", "template": {"typeName": "note", "periodInterval": -1, "codes": [],
	    "value": {"valueType": "string", "valueName": "text"}}}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	mass, _ := fm.Lookup("bodymass")
	want := CodeValueTemplate{
		Path: "template[0].template", TypeName: "bodyMass", PeriodInterval: PeriodDaily,
		Category: []CodeableConcept{{Text: "Vital Signs", Codes: []Coding{{Code: "vital-signs", System: "http://terminology.hl7.org/CodeSystem/observation-category"}}}},
		Codes:    []Coding{{Code: "29463-7", System: "http://loinc.org"}},
		Value:    &ValueType{ValueType: ValueQuantity, ValueName: "w", Unit: "kg", System: "http://unitsofmeasure.org", Code: "kg"},
	}
	if diff := cmp.Diff(want, *mass); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	note, _ := fm.Lookup("note")
	if note.PeriodInterval != PeriodCorrelationID || note.Value.ValueType != ValueString {
		t.Errorf("note: %+v", note)
	}
}

func TestParseFHIRMappingErrors(t *testing.T) {
	const hr = `{"templateType": "CodeValueFhir", "template": {"typeName": "hr", "codes": [{"code": "8867-4"}], "value": {"valueType": "SampledData", "valueName": "hr"}}}`
	wrap := func(ts ...string) string {
		return `{"templateType": "CollectionFhir", "template": [` + strings.Join(ts, ",") + `]}`
	}
	tests := []struct{ name, doc, path, msg string }{
		{"not json", `{`, "", "invalid JSON"},
		{"root type", `{"templateType": "CollectionContent", "template": []}`, "templateType", `must be "CollectionFhir"`},
		{"unknown template type", wrap(hr, `{"templateType": "QuantityFhir", "template": {}}`), "template[1].templateType", `unknown FHIR templateType "QuantityFhir"`},
		{"unknown value type", wrap(strings.Replace(hr, "SampledData", "Ratio", 1)), "template[0].template.value.valueType", `unknown valueType "Ratio"`},
		{"missing codes", wrap(strings.Replace(hr, `"codes": [{"code": "8867-4"}], `, "", 1)), "template[0].template.codes", "required property"},
		{"quantity needs system", wrap(strings.Replace(hr, `{"valueType": "SampledData", "valueName": "hr"}`, `{"valueType": "Quantity", "valueName": "hr", "unit": "/min", "code": "/min"}`, 1)), "template[0].template.value.system", "required property"},
		{"bad period", wrap(strings.Replace(hr, `"typeName": "hr",`, `"typeName": "hr", "periodInterval": 30,`, 1)), "template[0].template.periodInterval", "unsupported periodInterval 30"},
		{"duplicate type", wrap(hr, strings.Replace(hr, `"hr",`, `"HR",`, 1)), "template[1].template.typeName", "duplicate template"},
		{"component not object", wrap(strings.Replace(hr, `"value":`, `"components": [1], "value":`, 1)), "template[0].template.components[0]", "expected a component object"},
		{"bad default period", wrap(strings.Replace(hr, `"valueName": "hr"}`, `"valueName": "hr", "defaultPeriod": "soon"}`, 1)), "template[0].template.value.defaultPeriod", "invalid defaultPeriod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFHIRMapping([]byte(tc.doc))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want *LoadError", err)
			}
			if le.Path != tc.path || !strings.Contains(le.Msg, tc.msg) {
				t.Errorf("got path %q msg %q, want %q / %q", le.Path, le.Msg, tc.path, tc.msg)
			}
		})
	}
}
