package hl7

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain text 123", "plain text 123"},
		{"a|b", `a\F\b`},
		{"a^b", `a\S\b`},
		{"a&b", `a\T\b`},
		{"a~b", `a\R\b`},
		{`a\b`, `a\E\b`},
		{"|^~\\&", `\F\\S\\R\\E\\T\`},
		{"line1\r\nline2", `line1\X0D\\X0A\line2`},
		{"tab\there\x00\x1f\x7f", `tab\X09\here\X00\\X1F\\X7F\`},
		{"\x0b\x1c", `\X0B\\X1C\`},
		{"Zoë Müller – 東京", "Zoë Müller – 東京"},
		{`\F\`, `\E\F\E\`},
	}
	for _, tc := range tests {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := string(AppendEscaped([]byte("x"), tc.in)); got != "x"+tc.want {
			t.Errorf("AppendEscaped(x, %q) = %q, want %q", tc.in, got, "x"+tc.want)
		}
		if got := Unescape(tc.want); got != tc.in {
			t.Errorf("Unescape(%q) = %q, want %q", tc.want, got, tc.in)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"no escapes", "no escapes"},
		{`\X0D0A\`, "\r\n"},
		{`\x0d\`, `\x0d\`},               // lower-case x is not the hex sequence
		{`\Xe282ac\`, "€"},               // lower-case hex digits are accepted
		{`\X0\`, `\X0\`},                 // odd number of digits: verbatim
		{`\XZZ\`, `\XZZ\`},               // not hex: verbatim
		{`\X\`, `\X\`},                   // no digits: verbatim
		{`a\H\bold\N\b`, "aboldb"},       // highlighting dropped
		{`one\.br\two`, "one\ntwo"},      // line break
		{`\.sp2\x`, `\.sp2\x`},           // other formatting kept
		{`\Zlocal\`, `\Zlocal\`},         // locally defined kept
		{`C:\path\file`, `C:\path\file`}, // unknown sequence from a careless sender kept
		{`trailing\`, `trailing\`},       // unterminated kept
		{`\E`, `\E`},                     // unterminated kept
		{`\\`, `\\`},                     // empty sequence kept
		{`\E\\F\`, `\|`},
	}
	for _, tc := range tests {
		if got := Unescape(tc.in); got != tc.want {
			t.Errorf("Unescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	var all strings.Builder
	for c := 0; c < 256; c++ {
		all.WriteByte(byte(c))
	}
	inputs := []string{all.String(), `\X41\`, `\E\`, "|||", "\r\r\n\n", "€|€^€", strings.Repeat("a\\", 100)}
	for _, in := range inputs {
		esc := Escape(in)
		for i := 0; i < len(esc); i++ {
			if c := esc[i]; c < 0x20 || c == 0x7f || c == '|' || c == '^' || c == '~' || c == '&' {
				t.Fatalf("Escape(%q) contains raw 0x%02X", in, c)
			}
		}
		if got := Unescape(esc); got != in {
			t.Errorf("Unescape(Escape(%q)) = %q", in, got)
		}
	}
}

func TestEscapeCustomDelims(t *testing.T) {
	d := delims{field: '#', comp: '!', rep: '~', esc: '$', sub: '@'}
	in := "a#b!c~d$e@f|g^h\\i&j\r"
	esc := string(appendEscaped(nil, in, d))
	if want := `a$F$b$S$c$R$d$E$e$T$f|g^h\i&j$X0D$`; esc != want {
		t.Errorf("escaped = %q, want %q", esc, want)
	}
	if got := unescape(esc, d); got != in {
		t.Errorf("round trip = %q, want %q", got, in)
	}
}

func TestEscapeNoAllocWithoutSpecials(t *testing.T) {
	s := "MDC_PULS_OXIM_SAT_O2"
	if n := testing.AllocsPerRun(100, func() { _ = Escape(s); _ = Unescape(s) }); n != 0 {
		t.Errorf("Escape/Unescape of plain text allocate %.0f times", n)
	}
}
