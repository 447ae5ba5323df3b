package mappers_test

import (
	"fmt"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// A native heart-rate reading becomes a FHIR R4 Observation following the
// heartrate vital-signs profile. The unit "bpm" is written as UCUM "/min",
// the device's offset is kept, and the identifier is the reading's
// deterministic key.
func ExampleObservation() {
	payload := []byte(`{
		"kind": "heart-rate",
		"device": "hrm-0001",
		"patient": "example-patient-1",
		"time": "2026-11-25T10:15:00+01:00",
		"value": 72,
		"unit": "bpm"
	}`)
	m, err := mappers.ParseNative(payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	obs, err := mappers.Observation(m, "https://github.com/fhir-bridge/fhir-bridge/sid/observation-key")
	if err != nil {
		fmt.Println(err)
		return
	}
	codec, err := fhir.NewCodec()
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := codec.Encode(obs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output:
	// {"category":[{"coding":[{"code":"vital-signs","display":"Vital Signs","system":"http://terminology.hl7.org/CodeSystem/observation-category"}]}],"code":{"coding":[{"code":"8867-4","display":"Heart rate","system":"http://loinc.org"},{"code":"149546","display":"MDC_PULS_RATE_NON_INV","system":"urn:iso:std:iso:11073:10101"}]},"device":{"reference":"Device/hrm-0001"},"effectiveDateTime":"2026-11-25T10:15:00+01:00","identifier":[{"system":"https://github.com/fhir-bridge/fhir-bridge/sid/observation-key","value":"8d86062735e0bb6c55eb1ca341b4ffffa1c78d0afdf58ac9c7a98524566d855b"}],"interpretation":[{"coding":[{"code":"N","display":"Normal","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"}]}],"meta":{"profile":["http://hl7.org/fhir/StructureDefinition/heartrate","http://hl7.org/fhir/StructureDefinition/vitalsigns"]},"referenceRange":[{"high":{"code":"/min","system":"http://unitsofmeasure.org","unit":"/min","value":100},"low":{"code":"/min","system":"http://unitsofmeasure.org","unit":"/min","value":60}}],"resourceType":"Observation","status":"final","subject":{"reference":"Patient/example-patient-1"},"valueQuantity":{"code":"/min","system":"http://unitsofmeasure.org","unit":"/min","value":72}}
}

// A reading that cannot be mapped is refused with the field and the reason,
// never with the patient or device id.
func ExampleParseNative_refused() {
	_, err := mappers.ParseNative([]byte(`{"kind":"heart-rate","device":"hrm-0001","patient":"example-patient-1",` +
		`"time":"2026-11-25T10:15:00Z","value":401}`))
	fmt.Println(err)
	// Output:
	// field "value": 401 /min outside the plausible range 0 to 400 /min for heart-rate
}
