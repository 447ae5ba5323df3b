package mappers_test

import (
	"testing"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

var (
	benchHR    = []byte(`{"kind":"heart-rate","device":"hrm-0001","patient":"synthetic-patient-1","time":"2026-11-25T10:15:00+01:00","value":72,"unit":"bpm"}`)
	benchHRUTC = []byte(`{"kind":"heart-rate","device":"hrm-0001","patient":"synthetic-patient-1","time":"2026-11-25T09:15:00Z","value":72,"unit":"bpm"}`)
	benchBP    = []byte(`{"kind":"blood-pressure","device":"bp-0001","patient":"synthetic-patient-1","time":"2026-11-25T10:15:00+01:00",` +
		`"components":[{"kind":"systolic","value":128,"unit":"mmHg"},{"kind":"diastolic","value":82,"unit":"mmHg"}]}`)
)

// benchPanels are a single-value reading and a panel.
var benchPanels = []struct {
	name    string
	payload []byte
}{{"heart-rate", benchHR}, {"blood-pressure", benchBP}}

// BenchmarkParseNative: payload to Measurement.
func BenchmarkParseNative(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mappers.ParseNative(benchHR); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNativeToObservation: payload to Measurement to Observation proto.
func BenchmarkNativeToObservation(b *testing.B) {
	for _, bc := range benchPanels {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m, err := mappers.ParseNative(bc.payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := mappers.Observation(m, identifierSystem); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNativeToFHIRJSON adds validation and google/fhir marshalling,
// what the pipeline does per reading before posting. A non-UTC offset costs
// extra: google/fhir looks "+01:00" up as a time zone name (a failed
// tzdata search) on every marshal.
func BenchmarkNativeToFHIRJSON(b *testing.B) {
	codec, err := fhir.NewCodec()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		payload []byte
	}{{"offset", benchHR}, {"utc", benchHRUTC}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m, err := mappers.ParseNative(bc.payload)
				if err != nil {
					b.Fatal(err)
				}
				obs, err := mappers.Observation(m, identifierSystem)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := codec.Encode(obs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNativeToORU: payload to Measurement to ORU^R01 bytes.
func BenchmarkNativeToORU(b *testing.B) {
	for _, bc := range benchPanels {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				m, err := mappers.ParseNative(bc.payload)
				if err != nil {
					b.Fatal(err)
				}
				msgs, err := mappers.ORU([]mappers.Measurement{m}, mappers.ORUOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if buf, err = msgs[0].Append(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMedTechToObservation: a MedTech JsonPathContent heart rate from
// payload to Observation proto.
func BenchmarkMedTechToObservation(b *testing.B) {
	dev := []byte(`{"templateType":"CollectionContent","template":[{"templateType":"JsonPathContent","template":{
		"typeName":"heartrate","typeMatchExpression":"$..[?(@heartRate)]","deviceIdExpression":"$.deviceId",
		"patientIdExpression":"$.patientId","timestampExpression":"$.endDate",
		"values":[{"required":"true","valueExpression":"$.heartRate","valueName":"hr"}]}}]}`)
	fm := []byte(`{"templateType":"CollectionFhir","template":[{"templateType":"CodeValueFhir","template":{
		"typeName":"heartrate","codes":[{"code":"8867-4","system":"http://loinc.org"}],
		"value":{"valueType":"Quantity","valueName":"hr","unit":"count/min","system":"http://unitsofmeasure.org","code":"/min"}}}]}`)
	mt, err := mappers.LoadMedTech(dev, fm, mappers.MedTechOptions{})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"heartRate":"78","endDate":"2026-11-25T10:15:00Z","deviceId":"hrm-0001","patientId":"synthetic-patient-1"}`)
	b.ReportAllocs()
	for b.Loop() {
		ms, err := mt.Map(payload)
		if err != nil || len(ms) != 1 {
			b.Fatal(err)
		}
		if _, err := mappers.Observation(ms[0], identifierSystem); err != nil {
			b.Fatal(err)
		}
	}
}
