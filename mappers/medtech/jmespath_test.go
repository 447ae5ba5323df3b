package medtech

import (
	"strings"
	"testing"
)

// TestCustomFunctions covers every function of MedTech's CustomFunctions.md
// (plus appendString, which MedTech registers without documenting it), with
// the documented examples and the error cases.
func TestCustomFunctions(t *testing.T) {
	tests := []struct {
		expr, data string
		want       string // rendered result
		err        string
	}{
		// add: integer arithmetic for integers, float otherwise.
		{expr: "add(`10`, `10`)", want: "20"},
		{expr: "add(left, right)", data: `{"left": 40, "right": 50}`, want: "90"},
		{expr: "add(left, right)", data: `{"left": 0, "right": 50}`, want: "50"},
		{expr: "add(`-1`, `10.5`)", want: "9.5"},
		{expr: "add(`4611686018427387904`, `4611686018427387904`)", err: "overflow"},
		{expr: "add(left, right)", data: `{"left": "bad", "right": 100}`, err: "invalid type"},
		{expr: "add(left, right)", data: `{"left": [1], "right": 100}`, err: "invalid type"},
		{expr: "add(left)", data: `{"left": 1}`, err: "argument"},
		// subtract.
		{expr: "subtract(`10`, `10`)", want: "0"},
		{expr: "subtract(left, right)", data: `{"left": 40, "right": 50}`, want: "-10"},
		{expr: "subtract(left, right)", data: `{"left": 0, "right": 50}`, want: "-50"},
		{expr: "subtract(`1.5`, `0.25`)", want: "1.25"},
		{expr: "subtract(`-9223372036854775807`, `10`)", err: "overflow"},
		// multiply.
		{expr: "multiply(`10`, `10`)", want: "100"},
		{expr: "multiply(left, right)", data: `{"left": 40, "right": 50}`, want: "2000"},
		{expr: "multiply(left, right)", data: `{"left": 0, "right": 50}`, want: "0"},
		{expr: "multiply(to_number(h), `0.0254`)", data: `{"h": "78"}`, want: "1.9811999999999999"},
		{expr: "multiply(`4611686018427387904`, `4`)", err: "overflow"},
		// divide: integer division truncates (MedTech divides two integers as longs).
		{expr: "divide(`10`, `10`)", want: "1"},
		{expr: "divide(left, right)", data: `{"left": 100, "right": 25}`, want: "4"},
		{expr: "divide(left, right)", data: `{"left": 40, "right": 50}`, want: "0"},
		// Go numbers are float64: an integral 40.0 counts as an integer (MedTech would say 0.8).
		{expr: "divide(left, right)", data: `{"left": 40.0, "right": 50}`, want: "0"},
		{expr: "divide(left, right)", data: `{"left": 40.5, "right": 50}`, want: "0.81"},
		{expr: "divide(`1`, `0.5`)", want: "2"},
		{expr: "divide(left, right)", data: `{"left": 0, "right": 50}`, want: "0"},
		{expr: "divide(`-7`, `2`)", want: "-3"},
		{expr: "divide(left, right)", data: `{"left": 50, "right": 0}`, err: "division by zero"},
		{expr: "divide(`1.5`, `0`)", err: "not a finite number"},
		// pow.
		{expr: "pow(`10`, `10`)", want: "10000000000"},
		{expr: "pow(left, right)", data: `{"left": 40, "right": 50}`, err: "overflow"},
		{expr: "pow(left, right)", data: `{"left": 0, "right": 50}`, want: "0"},
		{expr: "pow(left, right)", data: `{"left": 100, "right": 0.5}`, want: "10"},
		{expr: "pow(`0`, `0`)", want: "1"},
		{expr: "pow(`10`, `2.5`)", want: "316.22776601683796"},
		{expr: "pow(`100`, `-2`)", want: "0"}, // integers: Convert.ToInt64(0.0001)
		{expr: "pow(`100.5`, `-2`)", want: "0.00009900745031063588"},
		{expr: "pow(`-8`, `0.5`)", err: "not a finite number"},
		// insertString: positions count characters, end of string allowed.
		{expr: "insertString(original, toInsert, pos)", data: `{"original": "mple", "toInsert": "sa", "pos": 0}`, want: `"sample"`},
		{expr: "insertString(original, toInsert, pos)", data: `{"original": "suess", "toInsert": "cc", "pos": 2}`, want: `"success"`},
		{expr: "insertString(original, toInsert, pos)", data: `{"original": "myString", "toInsert": "!!", "pos": 8}`, want: `"myString!!"`},
		{expr: "insertString(original, toInsert, length(original))", data: `{"original": "myString", "toInsert": "!!"}`, want: `"myString!!"`},
		{expr: "insertString(original, toInsert, `1`)", data: `{"original": "héllo", "toInsert": "-"}`, want: `"h-éllo"`},
		{expr: "insertString(original, toInsert, pos)", data: `{"original": "myString", "toInsert": "!!", "pos": 100}`, err: "out of range"},
		{expr: "insertString(original, toInsert, pos)", data: `{"original": "myString", "toInsert": "!!", "pos": -1}`, err: "out of range"},
		{expr: "insertString(original, toInsert, pos)", data: `{"original": "text", "toInsert": "x", "pos": 1.5}`, err: "not an integer"},
		{expr: "insertString(original, toInsert, pos)", data: `{"original": 6, "toInsert": "x", "pos": 0}`, err: "invalid type"},
		{expr: "insertString(original, toInsert)", data: `{"original": "a", "toInsert": "b"}`, err: "argument"},
		// appendString (registered by MedTech, not in CustomFunctions.md).
		{expr: "appendString(a, b)", data: `{"a": "sample ", "b": "text"}`, want: `"sample text"`},
		{expr: "appendString(a, b)", data: `{"a": "x", "b": 1}`, err: "invalid type"},
		// fromUnixTimestamp / fromUnixTimestampMs: ISO 8601 in UTC.
		{expr: "fromUnixTimestamp(unix)", data: `{"unix": 1625677200}`, want: `"2021-07-07T17:00:00Z"`},
		{expr: "fromUnixTimestamp(unix)", data: `{"unix": 0}`, want: `"1970-01-01T00:00:00Z"`},
		{expr: "fromUnixTimestamp(unix)", data: `{"unix": -1}`, want: `"1969-12-31T23:59:59Z"`},
		{expr: "fromUnixTimestamp(unix)", data: `{"unix": 1.5}`, err: "not an integer"},
		{expr: "fromUnixTimestamp(unix)", data: `{"unix": "badData"}`, err: "invalid type"},
		{expr: "fromUnixTimestamp(unix)", data: `{"unix": 253402300800}`, err: "outside the supported date range"},
		{expr: "fromUnixTimestampMs(unix)", data: `{"unix": 1626799080000}`, want: `"2021-07-20T16:38:00Z"`},
		{expr: "fromUnixTimestampMs(unix)", data: `{"unix": 0}`, want: `"1970-01-01T00:00:00Z"`},
		{expr: "fromUnixTimestampMs(unix)", data: `{"unix": 1626799080123}`, want: `"2021-07-20T16:38:00.123Z"`},
		{expr: "fromUnixTimestampMs(unix)", data: `{"unix": -1}`, want: `"1969-12-31T23:59:59.999Z"`},
		{expr: "fromUnixTimestampMs(unix, unix)", data: `{"unix": 0}`, err: "argument"},
		// keys/values/items are deterministic (sorted by key).
		{expr: "keys(@)", data: `{"b": 1, "a": 2, "c": 3}`, want: `["a","b","c"]`},
		{expr: "values(@)", data: `{"b": 1, "a": 2, "c": 3}`, want: `[2,1,3]`},
		{expr: "items(@)", data: `{"b": 1, "a": 2}`, want: `[["a",2],["b",1]]`},
		// Standard functions still work.
		{expr: "to_number('12.5')", want: "12.5"},
		{expr: "length('abc')", want: "3"},
	}
	for _, tc := range tests {
		t.Run(tc.expr+" "+tc.data, func(t *testing.T) {
			e, err := compileJMESPath(tc.expr)
			var res any
			if err == nil {
				data := any(nil)
				if tc.data != "" {
					n, perr := parseJSON([]byte(tc.data))
					if perr != nil {
						t.Fatal(perr)
					}
					data = toData(n)
				}
				res, err = e.search(data)
			}
			if tc.err != "" {
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
			if got := render(fromData(res)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCompileJMESPath(t *testing.T) {
	tests := []struct {
		expr       string
		projection bool
		err        string
	}{
		{expr: "Body.readings[?type == 'temp']", projection: true},
		{expr: "Body[*].heartRate", projection: true},
		{expr: "Body.list[*].v", projection: true},
		{expr: "Body[]", projection: true},
		{expr: "Body.readings[?type == 'temp'] | [0]", projection: false},
		{expr: "Body.heartRate", projection: false},
		{expr: "Body.*", err: "object wildcard projection"},
		{expr: "Body.[", err: "invalid JMESPath"},
		{expr: "nosuchfunction(@)", err: ""},
	}
	for _, tc := range tests {
		e, err := compileJMESPath(tc.expr)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("compile(%q): got %v, want error containing %q", tc.expr, err, tc.err)
			}
		case tc.expr == "nosuchfunction(@)":
			// Unknown functions fail when evaluated.
			if err == nil {
				if _, err := e.search(map[string]any{}); err == nil {
					t.Errorf("unknown function evaluated without error")
				}
			}
		case err != nil:
			t.Errorf("compile(%q): %v", tc.expr, err)
		case e.projection != tc.projection:
			t.Errorf("compile(%q).projection = %v, want %v", tc.expr, e.projection, tc.projection)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	for f, want := range map[float64]string{0: "0", 20: "20", -10: "-10", 0.8: "0.8", 1e21: "1e+21", 1e-8: "1e-08", 123456789: "123456789", 0.0001: "0.0001"} {
		if got := formatNumber(f); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", f, got, want)
		}
	}
}
