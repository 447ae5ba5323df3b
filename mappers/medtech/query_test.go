package medtech

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const queryDoc = `{
	"patient": {"id": "p-1"},
	"limit": 100,
	"readings": [
		{"type": "bp", "sys": 120, "dia": 80.50, "ok": true, "note": "", "raw": null, "obj": {"a": 1}},
		{"type": "pulse", "value": 7.2e1, "name": "SECRET-NAME"},
		{"type": "bp", "sys": 135, "dia": 85}
	]
}`

func mustParse(t *testing.T, doc string) Token {
	t.Helper()
	v, err := ParseDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustCompile(t *testing.T, expr string) *Query {
	t.Helper()
	q, err := CompileQuery(expr)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// texts renders selected values as Text does, "<type>" for non-scalars.
func texts(vs []Token) []string {
	var out []string
	for _, v := range vs {
		s, ok := v.Text()
		if !ok {
			s = "<" + v.Type() + ">"
		}
		out = append(out, s)
	}
	return out
}

func TestQuerySelect(t *testing.T) {
	root := mustParse(t, queryDoc)
	tests := []struct {
		expr string
		want []string
	}{
		{"$.readings[?(@.type == 'bp')].sys", []string{"120", "135"}},
		{"$.readings[*].type", []string{"bp", "pulse", "bp"}},
		{"$..dia", []string{"80.50", "85"}},
		{"$.readings[1].value", []string{"7.2e1"}},
		{"$.readings[0].ok", []string{"true"}},
		{"$.readings[0].note", []string{""}},
		{"$.readings[0].raw", []string{"<null>"}},
		{"$.readings[0].obj", []string{"<object>"}},
		{"$.readings[?(@.sys > $.limit)].sys", []string{"120", "135"}},
		{"$.readings[-1:].sys", []string{"135"}},
		{"$.missing", nil},
		{"$", []string{"<object>"}},
	}
	for _, tt := range tests {
		got, err := mustCompile(t, tt.expr).Select(root, root)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		if diff := cmp.Diff(tt.want, texts(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.expr, diff)
		}
	}
}

// "$" at the start is the current value; inside a filter it is the root.
func TestQueryCurrentAndRoot(t *testing.T) {
	root := mustParse(t, queryDoc)
	matches, err := mustCompile(t, "$.readings[?(@.type == 'bp')]").Select(root, root)
	if err != nil || len(matches) != 2 {
		t.Fatalf("matches: %v, %v", matches, err)
	}
	v, ok, err := mustCompile(t, "$.sys").SelectOne(root, matches[1])
	if s, _ := v.Text(); err != nil || !ok || s != "135" {
		t.Errorf("relative $.sys = %q, %v, %v", s, ok, err)
	}
	v, ok, err = mustCompile(t, "$.patient.id").SelectOne(root, root)
	if s, _ := v.Text(); err != nil || !ok || s != "p-1" {
		t.Errorf("$.patient.id from the root = %q, %v, %v", s, ok, err)
	}
	got, err := mustCompile(t, "$[?(@ < $.limit)]").Select(root, mustParse(t, "[]"))
	if err != nil || len(got) != 0 {
		t.Errorf("filter over an empty array: %v, %v", got, err)
	}
	if got, err := mustCompile(t, "$.x").Select(root, Token{}); got != nil || err != nil {
		t.Errorf("zero current: %v, %v", got, err)
	}
}

func TestQuerySelectOne(t *testing.T) {
	root := mustParse(t, queryDoc)
	if _, _, err := mustCompile(t, "$..sys").SelectOne(root, root); !errors.Is(err, ErrMultipleTokens) {
		t.Errorf("several tokens: got %v, want ErrMultipleTokens", err)
	}
	v, ok, err := mustCompile(t, "$.nothing").SelectOne(root, root)
	if ok || err != nil || v.Exists() || v.Type() != "" {
		t.Errorf("nothing: %v %v %v", v, ok, err)
	}
	if s, ok := v.Text(); ok || s != "" {
		t.Errorf("zero Token Text = %q, %v", s, ok)
	}
}

func TestCompileQueryErrors(t *testing.T) {
	for _, expr := range []string{"$.a[", "$.a[-1]", "$.a[0,-2]", "$.a[?(@.b[-1] == 1)]", "$.a[?(@.x == 1 && @.y[-3])]", "$.a[?(@.b ==)]"} {
		if _, err := CompileQuery(expr); err == nil {
			t.Errorf("CompileQuery(%q) succeeded", expr)
		}
	}
	q := mustCompile(t, "$.a[-2:]")
	if q.String() != "$.a[-2:]" {
		t.Errorf("String() = %q", q.String())
	}
}

// Evaluation errors never quote document values, which may be patient data.
func TestQueryErrorsHideValues(t *testing.T) {
	root := mustParse(t, `{"a": [{"x": "SECRET-1", "y": 5, "re": "/SECRET-(/"}]}`)
	for _, expr := range []string{"$.a[?(@.y < @.x)]", "$.a[?(@.x =~ @.re)]"} {
		_, err := mustCompile(t, expr).Select(root, root)
		if !errors.Is(err, ErrIncomparable) {
			t.Errorf("%s: got %v, want ErrIncomparable", expr, err)
		} else if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error quotes a value: %v", expr, err)
		}
	}
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 3000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"a":[1,2,3]}`)
	}
	b.WriteString("]")
	big := mustParse(t, b.String())
	if _, err := mustCompile(t, "$..*..*..*..*").Select(big, big); !errors.Is(err, ErrTooManyTokens) {
		t.Errorf("got %v, want ErrTooManyTokens", err)
	}
}

func TestParseDocumentErrors(t *testing.T) {
	_, err := ParseDocument([]byte("{\n  \"a\": SECRET}"))
	var pe *PayloadError
	if !errors.As(err, &pe) || pe.Line != 2 || pe.Column != 8 {
		t.Fatalf("got %#v", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error quotes the document: %v", err)
	}
	if v, err := ParseDocument([]byte("\uFEFF 42 ")); err != nil || v.Type() != "number" {
		t.Errorf("BOM and a scalar document: %v, %v", v, err)
	}
}

// Text renders a value exactly as DeviceTemplate.Map renders it, so both
// template formats see the same text for the same payload.
func TestQueryTextMatchesMap(t *testing.T) {
	payload := `{"readings": [{"type": "a", "v": 72.50}, {"type": "b", "v": 7.2e1}, {"type": "c", "v": true},
		{"type": "d", "v": "x\u00e9"}, {"type": "e", "v": -0}, {"type": "f", "v": 12345678901234567890123}]}`
	tpl := mustLoad(t, collection(`{"templateType": "CalculatedContent", "template": {"typeName": "t",
		"typeMatchExpression": "$.readings[*]", "deviceIdExpression": "$.matchedToken.type", "timestampExpression": "$.ts",
		"values": [{"valueName": "v", "valueExpression": "$.matchedToken.v", "required": true}]}}`))
	withTime := strings.Replace(payload, `{"readings"`, `{"ts": "2026-01-01T00:00:00Z", "readings"`, 1)
	ms, err := tpl.Map([]byte(withTime))
	if err != nil {
		t.Fatal(err)
	}
	var fromMap []string
	for _, m := range ms {
		fromMap = append(fromMap, m.Values[0].Value)
	}
	root := mustParse(t, withTime)
	vs, err := mustCompile(t, "$.readings[*].v").Select(root, root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromMap, texts(vs)); diff != "" {
		t.Errorf("Map and Text differ (-Map +Text):\n%s", diff)
	}
}
