package template_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/fhir-bridge/fhir-bridge/mappers/template"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Sample templates live in the repository's top-level testdata (go test runs
// in the package directory): templates/<vendor>.yaml maps every payload
// templates/payloads/<vendor>/<case>.json to templates/golden/<vendor>/<case>.json.
const (
	templatesDir = "../../testdata/templates"
	payloadsDir  = templatesDir + "/payloads"
	goldenDir    = templatesDir + "/golden"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadFile(t testing.TB, path string) *template.Template {
	t.Helper()
	tpl, err := template.Load(readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tpl
}

// golden is what a golden file holds: the Map error, or per Input the
// Measurement or the reason Input.Measurement refused it.
type golden struct {
	MapError string          `json:"mapError,omitempty"`
	Readings []goldenReading `json:"readings"`
}

type goldenReading struct {
	Template    string               `json:"template"`
	Measurement *mappers.Measurement `json:"measurement,omitempty"`
	Error       string               `json:"error,omitempty"`
}

func render(t *testing.T, tpl *template.Template, payload []byte) []byte {
	t.Helper()
	g := golden{Readings: []goldenReading{}}
	ins, err := tpl.Map(payload)
	if err != nil {
		g.MapError = err.Error()
	}
	for _, in := range ins {
		r := goldenReading{Template: in.Provenance.Template}
		if m, err := in.Measurement(); err != nil {
			r.Error = err.Error()
		} else {
			r.Measurement = &m
		}
		g.Readings = append(g.Readings, r)
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// payloadCases returns "<vendor>/<case>.json" for every payload.
func payloadCases(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
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

// TestGolden maps every sample payload through its vendor's template, runs
// each Input through Input.Measurement and compares the result with the
// golden file. Run with -update to rewrite the goldens, then review the diff.
func TestGolden(t *testing.T) {
	cases := payloadCases(t, payloadsDir)
	if len(cases) == 0 {
		t.Fatalf("no payloads under %s", payloadsDir)
	}
	for _, name := range cases {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			vendor := strings.Split(name, "/")[0]
			tpl := loadFile(t, filepath.Join(templatesDir, vendor+".yaml"))
			if tpl.Vendor() != vendor {
				t.Fatalf("template %s.yaml has vendor %q", vendor, tpl.Vendor())
			}
			got := render(t, tpl, readFile(t, filepath.Join(payloadsDir, name)))
			path := filepath.Join(goldenDir, name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want := readFile(t, path)
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs from the golden (-want +got); rerun with -update if intended:\n%s", name, diff)
			}
		})
	}
}

// TestGoldenFilesPaired checks that every payload has a golden and every
// golden a payload, and that every template file has payloads.
func TestGoldenFilesPaired(t *testing.T) {
	if diff := cmp.Diff(payloadCases(t, payloadsDir), payloadCases(t, goldenDir)); diff != "" {
		t.Errorf("payloads (-) and goldens (+) differ:\n%s", diff)
	}
	yamls, err := filepath.Glob(filepath.Join(templatesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, y := range yamls {
		vendor := strings.TrimSuffix(filepath.Base(y), ".yaml")
		if ps, _ := filepath.Glob(filepath.Join(payloadsDir, vendor, "*.json")); len(ps) == 0 {
			t.Errorf("%s has no payloads under %s", y, filepath.Join(payloadsDir, vendor))
		}
	}
}

// TestGoldenMeasurementsEncode checks that every golden measurement is
// accepted by the FHIR encoder, so the samples are end-to-end examples.
func TestGoldenMeasurementsEncode(t *testing.T) {
	for _, name := range payloadCases(t, goldenDir) {
		var g golden
		if err := json.NewDecoder(bytes.NewReader(readFile(t, filepath.Join(goldenDir, name)))).Decode(&g); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, r := range g.Readings {
			if r.Measurement == nil {
				continue
			}
			if _, err := mappers.Observation(*r.Measurement, "https://github.com/fhir-bridge/fhir-bridge/sid/observation-key"); err != nil {
				t.Errorf("%s readings[%d]: Observation: %v", name, i, err)
			}
		}
	}
}

// TestDocsExample keeps the full example in docs/templates.md working: its
// template loads and maps its payload to the four readings the text names.
func TestDocsExample(t *testing.T) {
	doc := string(readFile(t, "../../docs/templates.md"))
	block := func(lang string) string {
		_, rest, ok := strings.Cut(doc, "```"+lang+"\n")
		body, _, ok2 := strings.Cut(rest, "```")
		if !ok || !ok2 {
			t.Fatalf("no %s block in docs/templates.md", lang)
		}
		return body
	}
	tpl, err := template.Load([]byte(block("yaml")))
	if err != nil {
		t.Fatal(err)
	}
	ins, err := tpl.Map([]byte(block("json")))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		m, err := in.Measurement()
		if err != nil {
			t.Fatalf("%s: %v", in.Provenance.Template, err)
		}
		s := m.Provenance.Template + " " + m.Value + " " + m.Unit
		for _, c := range m.Components {
			s += " " + c.Kind + "=" + c.Value
		}
		got = append(got, s)
	}
	want := []string{
		"acme-rpm/blood-pressure   systolic=128 diastolic=82 mean-arterial-pressure=97",
		"acme-rpm/heart-rate 64 /min",
		"acme-rpm/body-weight 78.20 kg",
		"acme-rpm/blood-glucose-capillary 110 mg/dL",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("docs example (-want +got):\n%s", diff)
	}
}
