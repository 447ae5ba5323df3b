package template_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/mappers/medtech"
	"github.com/fhir-bridge/fhir-bridge/mappers/template"
)

// fuzzPayload is mapped through every template FuzzLoad loads.
var fuzzPayload = []byte(`{"p": "p1", "r": [{"d": "d1", "t": "2026-01-01T00:00:00Z", "v": 60}, {"d": "d2", "t": 1795593600, "v": "61", "s": {}}],
	"bp": [{"d": "b1", "t": "2026-01-01T00:00:00Z", "sys": 120, "dia": 80}]}`)

// FuzzLoad loads arbitrary template bytes: Load must not panic, must fail
// only with a *LoadError locating the problem inside the file, and a
// template that loads must map a payload without panicking.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{base, bp, cold, panelTemplate, "", "version: 1", "readings: [{}]", "version: 1\nvendor: v\nreadings:\n  - kind: blood-pressure\n"} {
		f.Add([]byte(s))
	}
	paths, err := filepath.Glob(templatesDir + "/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		f.Add(readFile(f, p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tpl, err := template.Load(data)
		if err != nil {
			var le *template.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v is not a *LoadError", err, err)
			}
			if le.Reason == "" || le.Line < 0 || le.Line > bytes.Count(data, []byte("\n"))+2 || (le.Line > 0) != (le.Column > 0) {
				t.Fatalf("bad location or reason: %#v", le)
			}
			return
		}
		if tpl.Vendor() == "" {
			t.Fatal("loaded a template without a vendor")
		}
		ins, err := tpl.Map(fuzzPayload)
		checkMap(t, tpl, data, fuzzPayload, len(ins), err)
		for _, in := range ins {
			if !strings.HasPrefix(in.Provenance.Template, tpl.Vendor()+"/") || in.DeviceID == "" || in.Time == "" {
				t.Fatalf("incomplete input %+v", in)
			}
			_, _ = in.Measurement()
		}
	})
}

// payloadStrings returns the strings (keys and values) in a JSON document.
func payloadStrings(payload []byte) []string {
	var out []string
	dec := json.NewDecoder(bytes.NewReader(payload))
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		if s, ok := tok.(string); ok {
			out = append(out, s)
		}
	}
}

// checkMap checks the outcome of Map: only the documented error types, and
// no text from the payload in an error unless the template holds it too.
func checkMap(t *testing.T, tpl *template.Template, src, payload []byte, n int, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if n != 0 {
		t.Fatalf("%d inputs returned with error %v", n, err)
	}
	var pe *template.PayloadError
	var ee *template.EvalError
	switch {
	case errors.As(err, &pe):
		body := bytes.TrimPrefix(payload, []byte("\xEF\xBB\xBF"))
		var v any
		if json.Unmarshal(body, &v) == nil && !strings.Contains(pe.Msg, "nested deeper than") {
			switch v.(type) {
			case map[string]any, []any:
				t.Fatalf("refused a JSON object or array: %v", err)
			}
		}
	case errors.As(err, &ee):
		known := false
		for _, s := range []error{template.ErrMissing, template.ErrNotScalar, template.ErrTimeFormat,
			medtech.ErrMultipleTokens, medtech.ErrTooManyTokens, medtech.ErrIncomparable} {
			known = known || errors.Is(err, s)
		}
		if !known {
			t.Fatalf("undocumented cause: %v", err)
		}
	default:
		t.Fatalf("error %T %v is neither *PayloadError nor *EvalError", err, err)
	}
	// Error text may only repeat payload text that is also in the template
	// or in the errors' fixed wording.
	var where string
	if ee != nil {
		where = ee.Kind + " " + ee.Field + " " + ee.Expression // from the template, perhaps unescaped
	}
	vocabulary := parserWords + string(src) + tpl.Vendor() + where + " readings match components value " +
		template.ErrMissing.Error() + template.ErrNotScalar.Error() + template.ErrTimeFormat.Error() +
		medtech.ErrMultipleTokens.Error() + medtech.ErrTooManyTokens.Error() + medtech.ErrIncomparable.Error() +
		" unix-ms: expected a whole or decimal number of seconds milliseconds since 1970-01-01T00:00:00Z after 9999-12-31T23:59:59Z"
	msg := err.Error()
	for _, s := range payloadStrings(payload) {
		if len(s) >= 4 && strings.Contains(msg, s) && !strings.Contains(vocabulary, s) {
			t.Fatalf("error quotes payload text %q: %v", s, err)
		}
	}
}

// parserWords is the wording of payload syntax errors (medtech's JSON
// parser); the only payload text they hold is one quoted character.
const parserWords = `template invalid payload (line column ): not valid JSON: unexpected end of input, expected a value, ` +
	`expected a property name, expected ':', expected ',' or '}', expected ',' or ']', after the top-level value, ` +
	`invalid literal, expected "true" "false" "null", invalid control character in string, unexpected end of input in string escape, ` +
	`invalid \u escape in string, invalid escape character in string, document nested deeper than 256 levels, ` +
	`invalid number: expected a digit after the decimal point in the exponent, empty document, unexpected end of input in object array, ` +
	`expected a JSON object or array, got string number boolean null `

// FuzzMap maps arbitrary payloads through the sample acme-rpm template.
func FuzzMap(f *testing.F) {
	src, err := os.ReadFile(templatesDir + "/acme-rpm.yaml")
	if err != nil {
		f.Fatal(err)
	}
	tpl, err := template.Load(src)
	if err != nil {
		f.Fatal(err)
	}
	paths, err := filepath.Glob(payloadsDir + "/*/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		f.Add(readFile(f, p))
	}
	for _, s := range []string{``, `null`, `[]`, `{}`, `"x"`, `{"readings": [{"type": "bp"}]}`,
		`{"patient": {"id": ["x"]}, "readings": [{"type": "pulse", "deviceId": "d", "ts": "t", "value": {}}]}`,
		`{"readings": [{"type": "glucose", "deviceId": "d", "ts": "t", "value": null}], "patient": {"id": "p"}}`,
		`{"readings": [{"type": "weight", "unit": "lb", "deviceId": {"a": "SECRET"}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ins, err := tpl.Map(payload)
		checkMap(t, tpl, src, payload, len(ins), err)
		for _, in := range ins {
			if !strings.HasPrefix(in.Provenance.Template, "acme-rpm/") || in.DeviceID == "" || in.Time == "" {
				t.Fatalf("incomplete input %+v", in)
			}
			if in.PatientID == "" {
				t.Fatalf("no patient in %+v", in)
			}
			_, _ = in.Measurement()
		}
	})
}
