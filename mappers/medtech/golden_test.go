package medtech

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/medtech")

const (
	// compatDir holds copies of the microsoft/iomt-fhir fixtures (MIT, see
	// testdata/compat/LICENSE), so that tests never read outside the repo.
	compatDir = "testdata/compat"
	// sharedCompatDir is the shared fixture folder the copies came from; it
	// is a sibling of the repository and may be absent.
	sharedCompatDir = "../../../shared/compat/medtech"
	goldenDir       = "../../testdata/medtech"
	payloadDir      = "../../testdata/medtech/payloads"
	docDir          = compatDir + "/documentation/data_Documentation_CalculatedFunction_"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadTemplate(t testing.TB, path string) *DeviceTemplate {
	t.Helper()
	dt, err := LoadDeviceTemplate(readFile(t, path))
	if err != nil {
		t.Fatalf("LoadDeviceTemplate(%s): %v", path, err)
	}
	return dt
}

type goldenCase struct {
	name     string // golden file name without .json
	template string
	payload  string
}

var goldenCases = []goldenCase{
	// Documentation fixtures: each payload through its own template.
	{"doc_bloodpressure", docDir + "BloodPressure_Template.json", docDir + "BloodPressure_Payload.json"},
	{"doc_heartrate", docDir + "HeartRate_Template.json", docDir + "HeartRate_Payload.json"},
	{"doc_multiplematches", docDir + "MultipleMatches_Template.json", docDir + "MultipleMatches_Payload.json"},
	{"doc_multiplemeasurements", docDir + "MultipleMeasurements_Template.json", docDir + "MultipleMeasurements_Payload.json"},
	{"doc_multiplemeasurements_fromarray", docDir + "MultipleMeasurements_Template.json", docDir + "MultipleMeasurements_FromArray_Payload.json"},
	{"doc_transformdata", docDir + "TransformData_Template.json", docDir + "TransformData_Payload.json"},
	// Sample template sets with synthetic payloads.
	{"basic_all", compatDir + "/templates/basic/devicecontent.json", payloadDir + "/basic_all.json"},
	{"basic_bare", compatDir + "/templates/basic/devicecontent.json", payloadDir + "/basic_bare.json"},
	{"healthkit_all", compatDir + "/templates/healthkitOnFhir/devicecontent.json", payloadDir + "/healthkit_all.json"},
	{"sandbox_all", compatDir + "/templates/sandbox/devicecontent.json", payloadDir + "/sandbox_all.json"},
	{"sandbox_heartrate", compatDir + "/templates/sandbox/devicecontent.json", payloadDir + "/sandbox_heartrate.json"},
	// Template types the fixtures do not use.
	{"iothub_creation_time", "testdata/templates/iothub/devicecontent.json", payloadDir + "/iothub_creation_time.json"},
	{"iothub_enqueued_time", "testdata/templates/iothub/devicecontent.json", payloadDir + "/iothub_enqueued_time.json"},
	{"calculated_jmespath", "testdata/templates/calculated/devicecontent.json", payloadDir + "/calculated_jmespath.json"},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			dt := loadTemplate(t, tc.template)
			got, err := dt.Map(readFile(t, tc.payload))
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if len(got) == 0 {
				t.Fatal("Map returned no measurements")
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			path := filepath.Join(goldenDir, tc.name+".json")
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want := readFile(t, path)
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("%s differs (-want +got); run go test ./mappers/medtech -run Golden -update:\n%s", path, diff)
			}
			// The golden file decodes back to the same measurements.
			var back []Measurement
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(back, got); diff != "" {
				t.Errorf("decoded golden differs (-golden +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenFilesAreUsed catches golden files and payloads left behind.
func TestGoldenFilesAreUsed(t *testing.T) {
	used := map[string]bool{}
	for _, tc := range goldenCases {
		used[filepath.Join(goldenDir, tc.name+".json")] = true
		used[filepath.Clean(tc.payload)] = true
	}
	for _, dir := range []string{goldenDir, payloadDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if !e.IsDir() && !used[p] {
				t.Errorf("%s is not used by any golden case", p)
			}
		}
	}
}

// TestFixturesLoad loads every fixture template and FHIR mapping.
func TestFixturesLoad(t *testing.T) {
	err := filepath.WalkDir(compatDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		data := readFile(t, path)
		switch base := filepath.Base(path); {
		case base == "fhirmapping.json":
			if _, err := ParseFHIRMapping(data); err != nil {
				t.Errorf("ParseFHIRMapping(%s): %v", path, err)
			}
		case base == "devicecontent.json" || strings.HasSuffix(base, "_Template.json"):
			if _, err := LoadDeviceTemplate(data); err != nil {
				t.Errorf("LoadDeviceTemplate(%s): %v", path, err)
			}
		case strings.HasSuffix(base, "_Payload.json"):
			if _, err := parseJSON(data); err != nil {
				t.Errorf("payload %s: %v", path, err)
			}
		default:
			t.Errorf("unexpected fixture %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEveryTemplateMaps checks that the golden payloads exercise every leaf
// template of every fixture device mapping at least once.
func TestEveryTemplateMaps(t *testing.T) {
	byTemplate := map[string][]string{}
	for _, tc := range goldenCases {
		byTemplate[tc.template] = append(byTemplate[tc.template], tc.payload)
	}
	for tpl, payloads := range byTemplate {
		dt := loadTemplate(t, tpl)
		hits := map[string]int{}
		for _, p := range payloads {
			root, err := parseJSON(readFile(t, p))
			if err != nil {
				t.Fatal(err)
			}
			st := &mapState{root: root}
			for _, ct := range dt.templates {
				ms, err := ct.appendMeasurements(nil, st)
				if err != nil {
					t.Fatalf("%s with %s: %v", tpl, p, err)
				}
				hits[ct.path] += len(ms)
			}
		}
		for _, ct := range dt.templates {
			if hits[ct.path] == 0 {
				t.Errorf("%s: template %s (%s %q) never produced a measurement", tpl, ct.path, ct.kind, ct.typeName)
			}
		}
	}
}

// TestFHIRMappingCoversDeviceTypes checks, for each sample template set,
// that every typeName a device template produces has a FHIR mapping template
// and that every valueName the FHIR template binds is produced.
func TestFHIRMappingCoversDeviceTypes(t *testing.T) {
	for _, set := range []string{"basic", "healthkitOnFhir", "sandbox"} {
		t.Run(set, func(t *testing.T) {
			dir := filepath.Join(compatDir, "templates", set)
			dt := loadTemplate(t, filepath.Join(dir, "devicecontent.json"))
			fm, err := ParseFHIRMapping(readFile(t, filepath.Join(dir, "fhirmapping.json")))
			if err != nil {
				t.Fatal(err)
			}
			produced := map[string]map[string]bool{}
			for _, info := range dt.Templates() {
				if produced[info.TypeName] == nil {
					produced[info.TypeName] = map[string]bool{}
				}
				for _, v := range info.ValueNames {
					produced[info.TypeName][v] = true
				}
			}
			for _, typ := range dt.TypeNames() {
				ft, ok := fm.Lookup(typ)
				if !ok {
					t.Errorf("device typeName %q has no FHIR mapping template", typ)
					continue
				}
				var bound []string
				if ft.Value != nil {
					bound = append(bound, ft.Value.ValueName)
				}
				for _, c := range ft.Components {
					if c.Value != nil {
						bound = append(bound, c.Value.ValueName)
					}
				}
				for _, v := range bound {
					if !produced[typ][v] {
						t.Errorf("FHIR template %q binds valueName %q, which no device template of that type produces", typ, v)
					}
				}
			}
		})
	}
}

// TestCompatCopyMatchesShared checks that the in-repo fixture copies are
// byte-identical to the shared originals (skipped when those are absent).
func TestCompatCopyMatchesShared(t *testing.T) {
	if _, err := os.Stat(sharedCompatDir); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s not present", sharedCompatDir)
	}
	err := filepath.WalkDir(sharedCompatDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(sharedCompatDir, path)
		copyPath := filepath.Join(compatDir, rel)
		got, err := os.ReadFile(copyPath)
		if err != nil {
			t.Errorf("fixture %s has no copy: %v", rel, err)
			return nil
		}
		if !bytes.Equal(got, readFile(t, path)) {
			t.Errorf("%s differs from %s", copyPath, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
