package fhir

import (
	"strings"

	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// vitalProfiles are the R4 core vital-signs profiles (vitalsigns and the
// profiles derived from it).
var vitalProfiles = map[string]bool{
	"vitalsigns": true, "vitalspanel": true, "heartrate": true, "resprate": true, "oxygensat": true,
	"bodytemp": true, "bodyheight": true, "bodyweight": true, "bmi": true, "bp": true, "headcircum": true,
}

// ClaimsVitalSigns reports whether an Observation says it is a vital sign,
// through a core vital-signs profile in meta.profile or the vital-signs
// category. Such an Observation must then pass CheckVitalSigns; others (a
// glucose lab result, a fridge temperature) need not.
func ClaimsVitalSigns(o *observationpb.Observation) bool {
	for _, p := range o.GetMeta().GetProfile() {
		if name, ok := strings.CutPrefix(p.GetValue(), "http://hl7.org/fhir/StructureDefinition/"); ok && vitalProfiles[name] {
			return true
		}
	}
	return hasCoding(o.GetCategory(), SystemObservationCategory, "vital-signs")
}
