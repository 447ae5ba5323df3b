package mappers_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// identifierSystem is the Observation identifier namespace used in goldens.
const identifierSystem = "https://github.com/fhir-bridge/fhir-bridge/sid/observation-key"

// Golden cases live in the repository's top-level testdata (go test runs in
// the package directory): a device payload testdata/devices/<kind>/<case>.json
// maps to testdata/fhir/<kind>/<case>.json.
const (
	devicesDir = "../testdata/devices"
	fhirDir    = "../testdata/fhir"
)

// goldenSkip lists known gaps as "<kind>/<case>.json" -> reason; such cases
// are skipped with the reason. Empty: every case must match.
var goldenSkip = map[string]string{}

func newCodec(t testing.TB) *fhir.Codec {
	t.Helper()
	c, err := fhir.NewCodec()
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

// goldenCases returns "<kind>/<case>.json" for every file under dir.
func goldenCases(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filepath.ToSlash(rel))
	}
	sort.Strings(out)
	return out
}

// TestGolden maps every device payload and compares the Observation with its
// golden file semantically: both sides go through google/fhir's validating
// unmarshaller and are compared as protos, so every golden is valid R4 by
// construction and formatting does not matter. Run with -update to rewrite
// the goldens, then review the diff.
func TestGolden(t *testing.T) {
	codec := newCodec(t)
	cases := goldenCases(t, devicesDir)
	if len(cases) == 0 {
		t.Fatalf("no device cases under %s", devicesDir)
	}
	for _, name := range cases {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			t.Parallel()
			if reason, ok := goldenSkip[name]; ok {
				t.Skip(reason)
			}
			in, err := os.ReadFile(filepath.Join(devicesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := mappers.ParseNative(in)
			if err != nil {
				t.Fatalf("ParseNative: %v", err)
			}
			if kind := strings.Split(name, "/")[0]; m.Kind != kind {
				t.Errorf("payload kind %q is filed under %q", m.Kind, kind)
			}
			obs, err := mappers.Observation(m, identifierSystem)
			if err != nil {
				t.Fatalf("Observation: %v", err)
			}
			got, err := codec.Encode(obs)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}

			goldenPath := filepath.Join(fhirDir, name)
			if *update {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, got, "", "  "); err != nil {
					t.Fatal(err)
				}
				pretty.WriteByte('\n')
				if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(goldenPath, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run go test ./mappers -run Golden -update to create it)", err)
			}

			wantMsg, err := codec.Decode(want)
			if err != nil {
				t.Fatalf("golden %s is not valid FHIR R4: %v", goldenPath, err)
			}
			gotMsg, err := codec.Decode(got)
			if err != nil {
				t.Fatalf("mapper output is not valid FHIR R4: %v\n%s", err, got)
			}
			if diff := cmp.Diff(wantMsg, gotMsg, protocmp.Transform()); diff != "" {
				t.Errorf("Observation differs from %s (-golden +got):\n%s\ngot: %s", goldenPath, diff, got)
			}
			wantObs := wantMsg.(*crpb.ContainedResource).GetObservation()
			if wantObs == nil {
				t.Fatalf("golden %s is not an Observation", goldenPath)
			}
			if !fhir.ClaimsVitalSigns(wantObs) {
				return
			}
			if issues := fhir.CheckVitalSigns(wantObs); len(issues) > 0 {
				t.Errorf("golden breaks the vital-signs profile: %v", issues)
			}
		})
	}
}

// TestGoldenFilesPaired checks that every device case has a golden and
// every golden a device case, so no golden goes stale unnoticed.
func TestGoldenFilesPaired(t *testing.T) {
	if *update {
		t.Skip("goldens are being rewritten")
	}
	devices, goldens := goldenCases(t, devicesDir), goldenCases(t, fhirDir)
	if diff := cmp.Diff(devices, goldens); diff != "" {
		t.Errorf("device cases (-) and goldens (+) differ:\n%s", diff)
	}
	// The cases the mapper promises to cover.
	for _, name := range []string{"resting", "offset", "precision", "bpm-unit", "millis"} {
		p := filepath.Join(devicesDir, "heart-rate", name+".json")
		if _, err := os.Stat(p); err != nil {
			t.Errorf("required golden case missing: %v", err)
		}
	}
}

// TestGoldenContent pins what each golden case exists to show, on the raw
// golden text, so a rewrite with -update cannot quietly lose it.
func TestGoldenContent(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"resting", []string{`"effectiveDateTime": "2026-11-25T10:15:00Z"`, `"value": 72`}},
		{"offset", []string{`"effectiveDateTime": "2026-11-25T12:20:00+02:00"`}},
		{"precision", []string{`"value": 72.50`}},
		{"bpm-unit", []string{`"code": "/min"`, `"unit": "/min"`, `"effectiveDateTime": "2026-11-25T10:17:00-05:00"`}},
		{"millis", []string{`"effectiveDateTime": "2026-11-25T10:18:00.125Z"`}},
		{"exponent", []string{`"value": 58`, `"effectiveDateTime": "2026-11-25T10:19:00.000250+05:30"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(fhirDir, "heart-rate", tt.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !bytes.Contains(b, []byte(w)) {
					t.Errorf("golden lacks %s", w)
				}
			}
			for _, unwanted := range []string{"bpm", "{beats}", "5.8e1"} {
				if bytes.Contains(b, []byte(unwanted)) {
					t.Errorf("golden contains device spelling %q", unwanted)
				}
			}
		})
	}
}
