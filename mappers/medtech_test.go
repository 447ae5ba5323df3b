package mappers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

const (
	compatDir  = "medtech/testdata/compat"
	docDir     = compatDir + "/documentation/data_Documentation_CalculatedFunction_"
	docMapping = "../testdata/medtech/fhirmapping/documentation.json"
	payloadDir = "../testdata/medtech/payloads"
	medtechOut = "../testdata/medtech/fhir"
)

// medtechCases maps every MedTech fixture: the documentation device templates
// (which ship without a FHIR mapping, so the repository supplies one) and the
// basic, healthkitOnFhir and sandbox template pairs with synthetic payloads.
var medtechCases = []struct {
	name, device, mapping, payload string
}{
	{"doc_bloodpressure", docDir + "BloodPressure_Template.json", docMapping, docDir + "BloodPressure_Payload.json"},
	{"doc_heartrate", docDir + "HeartRate_Template.json", docMapping, docDir + "HeartRate_Payload.json"},
	{"doc_multiplematches", docDir + "MultipleMatches_Template.json", docMapping, docDir + "MultipleMatches_Payload.json"},
	{"doc_multiplemeasurements", docDir + "MultipleMeasurements_Template.json", docMapping, docDir + "MultipleMeasurements_Payload.json"},
	{"doc_multiplemeasurements_fromarray", docDir + "MultipleMeasurements_Template.json", docMapping, docDir + "MultipleMeasurements_FromArray_Payload.json"},
	{"doc_transformdata", docDir + "TransformData_Template.json", docMapping, docDir + "TransformData_Payload.json"},
	{"basic_all", compatDir + "/templates/basic/devicecontent.json", compatDir + "/templates/basic/fhirmapping.json", payloadDir + "/basic_all.json"},
	{"basic_bare", compatDir + "/templates/basic/devicecontent.json", compatDir + "/templates/basic/fhirmapping.json", payloadDir + "/basic_bare.json"},
	{"healthkit_all", compatDir + "/templates/healthkitOnFhir/devicecontent.json", compatDir + "/templates/healthkitOnFhir/fhirmapping.json", payloadDir + "/healthkit_all.json"},
	{"sandbox_all", compatDir + "/templates/sandbox/devicecontent.json", compatDir + "/templates/sandbox/fhirmapping.json", payloadDir + "/sandbox_all.json"},
	{"sandbox_heartrate", compatDir + "/templates/sandbox/devicecontent.json", compatDir + "/templates/sandbox/fhirmapping.json", payloadDir + "/sandbox_heartrate.json"},
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadMedTech(t *testing.T, device, mapping string) *mappers.MedTech {
	t.Helper()
	mt, err := mappers.LoadMedTech(read(t, device), read(t, mapping), mappers.MedTechOptions{DefaultPatientID: "synthetic-patient-1"})
	if err != nil {
		t.Fatalf("LoadMedTech: %v", err)
	}
	return mt
}

// TestMedTechGolden maps each MedTech fixture to a FHIR collection Bundle and
// compares it semantically with testdata/medtech/fhir/<case>.json.
func TestMedTechGolden(t *testing.T) {
	codec := newCodec(t)
	for _, tc := range medtechCases {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMedTech(t, tc.device, tc.mapping).Map(read(t, tc.payload))
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if len(ms) == 0 {
				t.Fatal("no readings")
			}
			bundle, err := mappers.Bundle(ms, identifierSystem)
			if err != nil {
				t.Fatalf("Bundle: %v", err)
			}
			got, err := codec.Encode(bundle)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			path := filepath.Join(medtechOut, tc.name+".json")
			if *update {
				var pretty bytes.Buffer
				json.Indent(&pretty, got, "", "  ")
				pretty.WriteByte('\n')
				os.MkdirAll(medtechOut, 0o755)
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := codec.Decode(read(t, path))
			if err != nil {
				t.Fatalf("golden %s is not valid R4: %v", path, err)
			}
			gotMsg, err := codec.Decode(got)
			if err != nil {
				t.Fatalf("output is not valid R4: %v", err)
			}
			if diff := cmp.Diff(want, gotMsg, protocmp.Transform()); diff != "" {
				t.Errorf("Bundle differs from %s (-golden +got):\n%s", path, diff)
			}
		})
	}
}

// TestMedTechStandardsCorrections pins the differences from MedTech's own
// output that docs/mapping.md promises.
func TestMedTechStandardsCorrections(t *testing.T) {
	ms, err := loadMedTech(t, compatDir+"/templates/basic/devicecontent.json", compatDir+"/templates/basic/fhirmapping.json").Map(read(t, payloadDir+"/basic_all.json"))
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]mappers.Measurement{}
	for _, m := range ms {
		byKind[m.Kind] = m
	}
	hr, ok := byKind["heart-rate"]
	if !ok {
		t.Fatalf("heart rate (8867-4, SampledData in MedTech) not recognised as the catalogue kind: %+v", ms)
	}
	if hr.Unit != "/min" || !hr.End.IsZero() {
		t.Errorf("heart rate: unit %q end %v, want /min and a point reading", hr.Unit, hr.End)
	}
	bp, ok := byKind["blood-pressure"]
	if !ok {
		t.Fatal("blood pressure not recognised")
	}
	// MedTech's sample codes the diastolic component as 8867-4 (heart rate);
	// the bridge recognises it by its value name and writes 8462-4.
	kinds := map[string]bool{}
	for _, c := range bp.Components {
		kinds[c.Kind] = c.Value != ""
	}
	if !kinds["systolic"] || !kinds["diastolic"] {
		t.Errorf("blood pressure components %+v, want systolic and diastolic with values", bp.Components)
	}
	custom, ok := byKind[mappers.KindCustom]
	if !ok || custom.Custom == nil || len(custom.Custom.Codes) == 0 {
		t.Fatalf("readings outside the catalogue (hrv, device events) must keep their template codes: %+v", ms)
	}
	obs, err := mappers.Observation(hr, identifierSystem)
	if err != nil {
		t.Fatal(err)
	}
	if !fhir.ClaimsVitalSigns(obs) || obs.GetEffective().GetDateTime() == nil || obs.GetValue().GetQuantity() == nil {
		t.Errorf("heart rate Observation lacks profile, effectiveDateTime or valueQuantity")
	}
}

func TestLoadMedTechErrors(t *testing.T) {
	dev := read(t, compatDir+"/templates/basic/devicecontent.json")
	fm := read(t, compatDir+"/templates/basic/fhirmapping.json")
	other := read(t, compatDir+"/templates/sandbox/fhirmapping.json")
	if _, err := mappers.LoadMedTech(dev, other, mappers.MedTechOptions{}); err == nil {
		t.Error("a FHIR mapping without the device mapping's types was accepted")
	}
	if _, err := mappers.LoadMedTech(fm, dev, mappers.MedTechOptions{}); err == nil {
		t.Error("swapped files were accepted")
	}
	if _, err := mappers.LoadMedTech(dev, fm, mappers.MedTechOptions{DefaultPatientID: "not an id"}); err == nil {
		t.Error("an invalid default patient was accepted")
	}
	mt, err := mappers.LoadMedTech(read(t, docDir+"HeartRate_Template.json"), read(t, docMapping), mappers.MedTechOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mt.Map(read(t, docDir+"HeartRate_Payload.json"))
	var fe *mappers.FieldError
	if !errors.As(err, &fe) || fe.Field != "measurements[0](heartrate).patient" {
		t.Errorf("no patient and no default: err %v, want a FieldError on measurements[0](heartrate).patient", err)
	}
	if _, err := mt.Map([]byte("{not json")); err == nil {
		t.Error("malformed payload accepted")
	}
}
