package medtech

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// render writes a node as compact JSON, keeping number literals.
func render(n *node) string {
	var b strings.Builder
	var w func(*node)
	w = func(n *node) {
		switch n.kind {
		case kindNull:
			b.WriteString("null")
		case kindBool:
			b.WriteString(strconv.FormatBool(n.b))
		case kindNumber:
			b.WriteString(n.s)
		case kindString:
			b.WriteString(strconv.Quote(n.s))
		case kindArray:
			b.WriteByte('[')
			for i, v := range n.arr {
				if i > 0 {
					b.WriteByte(',')
				}
				w(v)
			}
			b.WriteByte(']')
		case kindObject:
			b.WriteByte('{')
			for i, m := range n.obj {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Quote(m.key))
				b.WriteByte(':')
				w(m.val)
			}
			b.WriteByte('}')
		}
	}
	w(n)
	return b.String()
}

const pathDoc = `{
  "Body": {
    "deviceId": "d1",
    "heartRate": 78,
    "nothing": null,
    "flag": false,
    "data": [
      {"systolic": "120", "diastolic": "80", "n": 1},
      {"systolic": "122", "diastolic": "82", "n": 2.5},
      {"systolic": "130", "n": 3, "unit": "inches"}
    ],
    "telemetry": [
      {"type": "heartRate", "value": 61},
      {"type": "spo2", "value": 0.97}
    ],
    "nested": {"heartRate": 90, "deeper": {"heartRate": 91}}
  },
  "$weird": 1,
  "@": {"x": "at"},
  "Properties": {"iothub-creation-time-utc": "2019-02-01T22:46:01Z"}
}`

func TestJSONPathDialect(t *testing.T) {
	doc, err := parseJSON([]byte(pathDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want []string
		err  string
	}{
		// Root, children, optional "$".
		{path: "$", want: []string{render(doc)}},
		{path: "", want: []string{render(doc)}},
		{path: "$.Body.deviceId", want: []string{`"d1"`}},
		{path: "Body.deviceId", want: []string{`"d1"`}},
		{path: "$['Body']['deviceId']", want: []string{`"d1"`}},
		{path: "$.Body['deviceId','heartRate']", want: []string{`"d1"`, `78`}},
		{path: "$.Properties.iothub-creation-time-utc", want: []string{`"2019-02-01T22:46:01Z"`}},
		{path: "$weird", want: []string{`1`}},
		{path: "$.Body.missing", want: nil},
		{path: "$.Body.nothing", want: []string{`null`}},
		{path: "$.body.deviceId", want: nil}, // property names are case-sensitive
		// Top-level "@" is a property name, not the current token.
		{path: "@.x", want: []string{`"at"`}},
		// Wildcards and indexes.
		{path: "$.Body.nested.*", want: []string{`90`, `{"heartRate":91}`}},
		{path: "$.Body.data[*].n", want: []string{`1`, `2.5`, `3`}},
		{path: "$.Body.data[1].n", want: []string{`2.5`}},
		{path: "$.Body.data[0,2].n", want: []string{`1`, `3`}},
		{path: "$.Body.data[5]", want: nil},
		{path: "$.Body.data[-1]", err: "negative array index"},
		{path: "$.Body.data[1:].n", want: []string{`2.5`, `3`}},
		{path: "$.Body.data[:2].n", want: []string{`1`, `2.5`}},
		{path: "$.Body.data[-2:].n", want: []string{`2.5`, `3`}},
		{path: "$.Body.data[::2].n", want: []string{`1`, `3`}},
		{path: "$.Body.data[::-1].n", want: []string{`3`, `2.5`, `1`}},
		{path: "$.Body.deviceId[0]", want: nil},
		// Recursive descent, document order, parent before child.
		{path: "$..heartRate", want: []string{`78`, `90`, `91`}},
		{path: "$..['heartRate']", want: []string{`78`, `90`, `91`}},
		{path: "$.Body.nested..*", want: []string{`{"heartRate":90,"deeper":{"heartRate":91}}`, `90`, `{"heartRate":91}`, `91`}},
		{path: "$..data[0].n", want: []string{`1`}},
		{path: "$.Body.data..[0]", want: []string{`{"systolic":"120","diastolic":"80","n":1}`}}, // "..[n]" is "[n]"
		// Filters: existence without a dot, null still exists.
		{path: "$..[?(@heartRate)].deviceId", want: []string{`"d1"`}},
		{path: "$..[?(@nothing)].deviceId", want: []string{`"d1"`}},
		{path: "$..[?(@systolic && @diastolic)].n", want: []string{`1`, `2.5`}},
		{path: "$..[?(@.systolic && @.diastolic)].n", want: []string{`1`, `2.5`}},
		{path: "$..[?(@diastolic || @unit)].n", want: []string{`1`, `2.5`, `3`}},
		{path: "$.Body.telemetry[?(@.type == 'heartRate')].value", want: []string{`61`}},
		{path: "$.Body.telemetry[?(@.type != 'heartRate')].value", want: []string{`0.97`}},
		{path: "$..[?(@unit == 'inches')].systolic", want: []string{`"130"`}},
		// The filter applies to array items only (object members are JProperty tokens).
		{path: "$.Body.nested[?(@.heartRate)]", want: nil},
		// Numeric comparisons; integers and floats compare by value.
		{path: "$.Body.data[?(@.n > 1)].n", want: []string{`2.5`, `3`}},
		{path: "$.Body.data[?(@.n >= 2.5)].n", want: []string{`2.5`, `3`}},
		{path: "$.Body.data[?(@.n < 3)].n", want: []string{`1`, `2.5`}},
		{path: "$.Body.data[?(@.n <= 1.0)].n", want: []string{`1`}},
		{path: "$.Body.data[?(@.n == 3.0)].n", want: []string{`3`}},
		{path: "$.Body.data[?(@.n === 3)].n", want: []string{`3`}},
		{path: "$.Body.data[?(@.n !== 3)].n", want: []string{`1`, `2.5`}},
		{path: "$.Body.data[?(@.n <> 3)].n", want: []string{`1`, `2.5`}},
		// "==" never coerces strings and numbers.
		{path: "$.Body.data[?(@.systolic == 120)].n", want: nil},
		{path: "$.Body.data[?(@.systolic == '120')].n", want: []string{`1`}},
		// "<" converts the right side to the left side's type: text comparison here.
		{path: "$.Body.data[?(@.systolic > 121)].n", want: []string{`2.5`, `3`}},
		{path: "$.Body.data[?(@.n > '2')].n", want: []string{`2.5`, `3`}},
		{path: "$.Body.data[?(@.n > 'x')].n", err: "cannot compare"},
		// A missing left side never matches, even for "!=".
		{path: "$.Body.data[?(@.unit != 'inches')].n", want: nil},
		// Booleans and null constants.
		{path: "$..[?(@.flag == false)].deviceId", want: []string{`"d1"`}},
		{path: "$..[?(@.nothing == null)].deviceId", want: []string{`"d1"`}},
		// "&&" and "||" nest right: a && (b || c).
		{path: "$.Body.data[?(@.n == 1 && @.unit || @.diastolic)].n", want: []string{`1`}},
		{path: "$.Body.data[?(@.unit || @.n == 1 && @.diastolic)].n", want: []string{`1`, `3`}},
		// Regex.
		{path: "$.Body.telemetry[?(@.type =~ /^HEART/i)].value", want: []string{`61`}},
		{path: "$.Body.telemetry[?(@.type =~ /^heart/)].value", want: []string{`61`}},
		// "$" inside a filter is the evaluation root.
		{path: "$.Body.telemetry[?(@.value == $.Body.heartRate)]", want: nil},
		{path: "$.Body.data[?(@.n == $.Body.data[0].n)].systolic", want: []string{`"120"`}},
		// Syntax errors.
		{path: "$.", err: "unexpected end"},
		{path: "$..", err: "unexpected end"},
		{path: "$.Body[", err: "open indexer"},
		{path: "$.Body[x]", err: "unexpected character"},
		{path: "$.Body[0]x", err: "following indexer"},
		{path: "$.Body[?(@.a == )]", err: ""},
		{path: "$.Body[?(@.a ~ 1)]", err: "operator"},
		{path: "$.Body[?@.a]", err: "expected '('"},
		{path: "$.Body[?(@.a == 'x)]", err: "open string"},
		{path: "$.a b", err: "unexpected character"},
		{path: "$[1:2:0]", err: "step cannot be zero"},
		{path: "$[?(@.a =~ /(/)]", err: "invalid regex"},
		{path: "$[?(@.a =~ 'x')]", err: "needs a /regex/"},
		{path: "$['a\\q']", err: "unknown escape"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			jp, err := compileJSONPath(tc.path)
			var res []*node
			if err == nil {
				res, err = jp.selectTokens(doc, doc)
			}
			if tc.err != "" || (err != nil && tc.want == nil) {
				if err == nil {
					t.Fatalf("got %v, want an error containing %q", res, tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %q does not contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range res {
				got = append(got, render(n))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONPathSelectToken(t *testing.T) {
	doc, err := parseJSON([]byte(pathDoc))
	if err != nil {
		t.Fatal(err)
	}
	jp, _ := compileJSONPath("$..heartRate")
	if _, err := jp.selectToken(doc, doc); !errors.Is(err, ErrMultipleTokens) {
		t.Errorf("selectToken over several tokens: got %v, want ErrMultipleTokens", err)
	}
	jp, _ = compileJSONPath("$.Body.missing")
	if n, err := jp.selectToken(doc, doc); n != nil || err != nil {
		t.Errorf("selectToken of nothing: got %v, %v", n, err)
	}
	// "$" is the token the expression is evaluated against.
	body := doc.get("Body")
	jp, _ = compileJSONPath("$.deviceId")
	if n, err := jp.selectToken(body, body); err != nil || n == nil || n.s != "d1" {
		t.Errorf("relative $: got %v, %v", n, err)
	}
}

func TestJSONPathResultBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 3000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"a":[1,2,3]}`)
	}
	b.WriteString("]")
	doc, err := parseJSON([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	jp, err := compileJSONPath("$..*..*..*..*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jp.selectTokens(doc, doc); !errors.Is(err, errTooManyResults) {
		t.Errorf("got %v, want errTooManyResults", err)
	}
}

func TestCompareScalars(t *testing.T) {
	tests := []struct {
		l, r scalar
		want int
		err  bool
	}{
		{scalar{k: scInt, i: 1}, scalar{k: scInt, i: 2}, -1, false},
		{scalar{k: scInt, i: 2}, scalar{k: scFloat, f: 2.0}, 0, false},
		{scalar{k: scFloat, f: 0.1 + 0.2}, scalar{k: scFloat, f: 0.3}, 0, false}, // Json.NET's tolerance
		{scalar{k: scInt, i: 5}, scalar{k: scString, s: "5"}, 0, false},
		{scalar{k: scInt, i: 5}, scalar{k: scString, s: "x"}, 0, true},
		{scalar{k: scString, s: "100"}, scalar{k: scInt, i: 70}, -1, false},
		{scalar{k: scString, s: "b"}, scalar{k: scString, s: "a"}, 1, false},
		{scalar{k: scBool, b: true}, scalar{k: scString, s: "False"}, 1, false},
		{scalar{k: scBool, b: true}, scalar{k: scString, s: "x"}, 0, true},
		{scalar{k: scNull}, scalar{k: scInt, i: 1}, -1, false},
		{scalar{k: scInt, i: 1}, scalar{k: scNull}, 1, false},
		{scalar{k: scNull}, scalar{k: scNull}, 0, false},
	}
	for _, tc := range tests {
		got, err := compareScalars(tc.l, tc.r)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("compare(%v, %v) = %d, %v; want %d, err %v", tc.l, tc.r, got, err, tc.want, tc.err)
		}
	}
}

func TestFormatDotNetDouble(t *testing.T) {
	for f, want := range map[float64]string{0: "0", 1.5: "1.5", 0.0001: "0.0001", 0.00001: "1E-05", 1e15: "1E+15", 123456789012345: "123456789012345"} {
		if got := formatDotNetDouble(f); got != want {
			t.Errorf("formatDotNetDouble(%v) = %q, want %q", f, got, want)
		}
	}
}
