package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validHR = `{"resourceType":"Observation","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/heartrate"]},
"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},
"effectiveDateTime":"2026-11-25T10:15:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`

func runValidateFile(t *testing.T, body string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"fhir-bridge", "validate", path}, func(string) string { return "" }, &out, &out)
	return out.String(), err
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
		wantOut []string
	}{
		{name: "valid heart rate", body: validHR, wantOut: []string{"valid"}},
		{
			name:    "vital sign without category and subject",
			body:    strings.Replace(strings.Replace(validHR, `"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],`, "", 1), `"subject":{"reference":"Patient/p1"},`, "", 1),
			wantErr: true,
			wantOut: []string{"error Observation.category:", "error Observation.subject:"},
		},
		{
			name:    "bundle entry path",
			body:    `{"resourceType":"Bundle","type":"collection","entry":[{"resource":` + strings.Replace(validHR, `"status":"final",`, `"status":"final","valueString":"x",`, 1) + `}]}`,
			wantErr: true,
		},
		{
			name:    "non-vital observation is not held to the vital-signs rules",
			body:    `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]}}`,
			wantOut: []string{"valid"},
		},
		{name: "not JSON", body: "nope", wantErr: true},
		{name: "unknown element", body: `{"resourceType":"Observation","status":"final","code":{},"bogus":1}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runValidateFile(t, tt.body)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v; output:\n%s", err, tt.wantErr, out)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestValidateBundleIssuePath(t *testing.T) {
	noSubject := strings.Replace(validHR, `"subject":{"reference":"Patient/p1"},`, "", 1)
	out, err := runValidateFile(t, `{"resourceType":"Bundle","type":"collection","entry":[{"resource":`+validHR+`},{"resource":`+noSubject+`}]}`)
	if err == nil {
		t.Fatalf("bundle with an invalid entry passed:\n%s", out)
	}
	if !strings.Contains(out, "Bundle.entry[1].resource.Observation.subject") {
		t.Errorf("issue path not prefixed with the entry:\n%s", out)
	}
	if strings.Contains(out, "Bundle.entry[0]") {
		t.Errorf("valid entry reported:\n%s", out)
	}
}
