package mappers

import (
	"fmt"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// Observation builds the FHIR R4 Observation for m: the vital's own profile
// and the base vital-signs profile in meta.profile, category vital-signs, the
// LOINC code, a UCUM valueQuantity, Patient subject, Device reference,
// effectiveDateTime, status final, and the deterministic identifier
// identifierSystem|m.Key(). The result passes fhir.CheckVitalSigns.
func Observation(m Measurement, identifierSystem string) (*observationpb.Observation, error) {
	v, ok := Lookup(m.Kind)
	if !ok {
		return nil, &FieldError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q", m.Kind)}
	}
	o := &observationpb.Observation{
		Meta:       &dtpb.Meta{Profile: []*dtpb.Canonical{fhir.Canonical(v.Profile), fhir.Canonical(fhir.ProfileVitalSigns)}},
		Identifier: []*dtpb.Identifier{fhir.Identifier(identifierSystem, m.Key())},
		// Status must be set explicitly: google/fhir's validator misses a
		// zero-valued enum and the marshaller then drops it silently.
		Status: &observationpb.Observation_StatusCode{Value: codespb.ObservationStatusCode_FINAL},
		Category: []*dtpb.CodeableConcept{fhir.Concept(
			fhir.Coding(fhir.SystemObservationCategory, "vital-signs", "Vital Signs"))},
		Code:    fhir.Concept(fhir.Coding(fhir.SystemLOINC, v.LOINC, v.Display)),
		Subject: fhir.PatientRef(m.PatientID),
		Effective: &observationpb.Observation_EffectiveX{
			Choice: &observationpb.Observation_EffectiveX_DateTime{DateTime: fhir.DateTime(m.Time)},
		},
		Value: &observationpb.Observation_ValueX{
			Choice: &observationpb.Observation_ValueX_Quantity{Quantity: fhir.Quantity(m.Value, v.UCUM)},
		},
		Device: fhir.DeviceRef(m.DeviceID),
	}
	return o, nil
}
