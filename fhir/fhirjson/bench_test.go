package fhirjson_test

import (
	"testing"

	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/fhir/go/jsonformat/fhirvalidate"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"google.golang.org/protobuf/proto"
)

// benchReadings are the bridge's typical readings, as the mappers build
// them (the payloads of mappers' own benchmarks).
var benchReadings = []struct{ name, payload string }{
	{"heart-rate-utc", `{"kind":"heart-rate","device":"hrm-0001","patient":"synthetic-patient-1","time":"2026-11-25T09:15:00Z","value":72,"unit":"bpm"}`},
	{"heart-rate-offset", `{"kind":"heart-rate","device":"hrm-0001","patient":"synthetic-patient-1","time":"2026-11-25T10:15:00+01:00","value":72,"unit":"bpm"}`},
	{"blood-pressure", `{"kind":"blood-pressure","device":"bp-0001","patient":"synthetic-patient-1","time":"2026-11-25T10:15:00+01:00",` +
		`"components":[{"kind":"systolic","value":128,"unit":"mmHg"},{"kind":"diastolic","value":82,"unit":"mmHg"}]}`},
}

func benchObservation(b *testing.B, payload string) *observationpb.Observation {
	b.Helper()
	m, err := mappers.ParseNative([]byte(payload))
	if err != nil {
		b.Fatal(err)
	}
	o, err := mappers.Observation(m, "https://github.com/fhir-bridge/fhir-bridge/sid/observation-key")
	if err != nil {
		b.Fatal(err)
	}
	return o
}

// BenchmarkEncodeObservation compares, on the same Observations:
//
//   - native: fhirjson.AppendObservation into a reused buffer (the hot path);
//   - native-encode: fhirjson.EncodeObservation, a fresh slice per call;
//   - jsonformat+validate: fhirvalidate.Validate then jsonformat's
//     MarshalResource, what fhir.Codec.Encode does. jsonformat rewrites
//     references in place, so each iteration encodes a fresh clone (made
//     with the timer stopped), as the bridge encodes a fresh Observation
//     per reading.
func BenchmarkEncodeObservation(b *testing.B) {
	b.Run("native", func(b *testing.B) {
		for _, r := range benchReadings {
			b.Run(r.name, func(b *testing.B) {
				o := benchObservation(b, r.payload)
				buf, err := fhirjson.AppendObservation(nil, o)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(buf)))
				b.ReportAllocs()
				for b.Loop() {
					if buf, err = fhirjson.AppendObservation(buf[:0], o); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
	b.Run("native-encode", func(b *testing.B) {
		for _, r := range benchReadings {
			b.Run(r.name, func(b *testing.B) {
				o := benchObservation(b, r.payload)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := fhirjson.EncodeObservation(o); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
	b.Run("jsonformat+validate", func(b *testing.B) {
		m, err := jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range benchReadings {
			b.Run(r.name, func(b *testing.B) {
				o := benchObservation(b, r.payload)
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					fresh := proto.Clone(o)
					b.StartTimer()
					if err := fhirvalidate.Validate(fresh); err != nil {
						b.Fatal(err)
					}
					if _, err := m.MarshalResource(fresh); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
