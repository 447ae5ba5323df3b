package medtech

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseJSON(t *testing.T) {
	valid := map[string]string{
		`{"a":1,"b":[true,false,null],"c":"x"}`: `{"a":1,"b":[true,false,null],"c":"x"}`,
		` [ 1 , -0.5e+3 , 1E2 , 0 ] `:           `[1,-0.5e+3,1E2,0]`,
		`"\u00e9\ud83d\ude00\n\"\/"`:            `"é😀\n\"/"`,
		`"\ud800x"`:                             `"` + "\uFFFD" + `x"`,
		"\uFEFF{}":                              `{}`,
		`{"k":1,"j":2,"k":3}`:                   `{"k":3,"j":2}`, // first position, last value
		"\"\xff\"":                              `"` + "\uFFFD" + `"`,
	}
	for in, want := range valid {
		n, err := parseJSON([]byte(in))
		if err != nil {
			t.Errorf("parseJSON(%q): %v", in, err)
			continue
		}
		if got := render(n); got != want {
			t.Errorf("parseJSON(%q) = %s, want %s", in, got, want)
		}
	}
	invalid := []string{``, ` `, `{`, `[1,]`, `{"a":1,}`, `01`, `1.`, `.5`, `-`, `1e`, `tru`, `nul`, `"abc`, "\"a\x01\"", `"\x"`, `"\u12"`, `{"a" 1}`, `{1:2}`, `[1 2]`, `1 2`, `+1`, `NaN`, "\uFEFF"}
	for _, in := range invalid {
		if _, err := parseJSON([]byte(in)); err == nil {
			t.Errorf("parseJSON(%q) succeeded", in)
		} else if json.Valid([]byte(in)) {
			t.Errorf("parseJSON(%q) failed but encoding/json accepts it", in)
		}
	}
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if _, err := parseJSON([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep document: %v", err)
	}
	ok := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := parseJSON([]byte(ok)); err != nil {
		t.Errorf("document at the depth limit: %v", err)
	}
}

func TestLineCol(t *testing.T) {
	src := []byte("ab\ncé\nx")
	for off, want := range map[int][2]int{0: {1, 1}, 2: {1, 3}, 3: {2, 1}, 6: {2, 3}, 7: {3, 1}} {
		l, c := lineCol(src, off)
		if l != want[0] || c != want[1] {
			t.Errorf("lineCol(%d) = %d:%d, want %d:%d", off, l, c, want[0], want[1])
		}
	}
}
