package hl7

import "strings"

// delims are the separator characters of one message, declared in MSH-1 and
// MSH-2 (HL7 v2 chapter 2). A zero byte means the character is not declared.
type delims struct {
	field, comp, rep, esc, sub byte
}

// stdDelims returns the default delimiters |^~\&, which this package always
// writes.
func stdDelims() delims {
	return delims{field: '|', comp: '^', rep: '~', esc: '\\', sub: '&'}
}

// Escape returns s escaped for use as a text value with the default
// delimiters |^~\&: the field, component, subcomponent, repetition and escape
// characters become \F\, \S\, \T\, \R\ and \E\, and control characters (bytes
// 0x00 to 0x1F and 0x7F, including CR and LF) become \Xhh\ (HL7 v2.6
// chapter 2, escape sequences). Other bytes, including UTF-8 sequences, are
// copied. Unescape(Escape(s)) == s for every s.
func Escape(s string) string {
	for i := 0; i < len(s); i++ {
		if stdSpecial(s[i]) {
			return string(AppendEscaped(make([]byte, 0, len(s)+16), s))
		}
	}
	return s
}

// AppendEscaped appends Escape(s) to dst and returns the extended slice.
func AppendEscaped(dst []byte, s string) []byte {
	if len(s) == 0 {
		return dst
	}
	start := 0
	for i := 0; i < len(s); i++ {
		// Skip eight bytes at a time while none can need escaping.
		for i+8 <= len(s) && !maybeSpecial8(s, i) {
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if !stdSpecial(c) {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '|':
			dst = append(dst, `\F\`...)
		case '^':
			dst = append(dst, `\S\`...)
		case '&':
			dst = append(dst, `\T\`...)
		case '~':
			dst = append(dst, `\R\`...)
		case '\\':
			dst = append(dst, `\E\`...)
		default:
			dst = append(dst, '\\', 'X', hexDigits[c>>4], hexDigits[c&0x0f], '\\')
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// Bytes that need escaping with the default delimiters, as bit sets: bit n
// of stdEscLo is byte n, bit n of stdEscHi is byte 64+n. They are the C0
// controls, & (38), \ (92), ^ (94), | (124), ~ (126) and DEL (127).
const (
	stdEscLo = 1<<32 - 1 | 1<<'&'
	stdEscHi = 1<<('\\'-64) | 1<<('^'-64) | 1<<('|'-64) | 1<<('~'-64) | 1<<(0x7f-64)
)

// maybeSpecial8 reports whether one of s[i:i+8] may need escaping with the
// default delimiters. False positives are allowed (bytes of 0x80 and above
// always report true); false negatives are not.
func maybeSpecial8(s string, i int) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	v := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	hasZero := func(x uint64) uint64 { return (x - ones) & ^x & highs }
	m := (v - 0x20*ones) & ^v & highs // a byte below 0x20
	m |= (v + ones | v) & highs       // a byte of 0x7F or above
	m |= hasZero(v ^ '|'*ones)
	m |= hasZero(v ^ '^'*ones)
	m |= hasZero(v ^ '~'*ones)
	m |= hasZero(v ^ '\\'*ones)
	m |= hasZero(v ^ '&'*ones)
	return m != 0
}

// stdSpecial reports whether c needs escaping with the default delimiters.
func stdSpecial(c byte) bool {
	if c < 64 {
		return uint64(stdEscLo)>>c&1 != 0
	}
	return uint64(stdEscHi)>>(c-64)&1 != 0 // shifts of 64 or more give 0
}

func needsEscape(c byte, d delims) bool {
	return c < 0x20 || c == 0x7f || c == d.field || c == d.comp || c == d.rep || c == d.esc || c == d.sub
}

const hexDigits = "0123456789ABCDEF"

// appendEscaped escapes s with d. d.esc must be set.
func appendEscaped(dst []byte, s string, d delims) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var code byte
		switch {
		case c == d.field:
			code = 'F'
		case c == d.comp:
			code = 'S'
		case c == d.sub:
			code = 'T'
		case c == d.rep:
			code = 'R'
		case c == d.esc:
			code = 'E'
		case c < 0x20 || c == 0x7f:
			code = 'X'
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		if code == 'X' {
			dst = append(dst, d.esc, 'X', hexDigits[c>>4], hexDigits[c&0x0f], d.esc)
		} else {
			dst = append(dst, d.esc, code, d.esc)
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// Unescape reverses Escape for a value read with the default delimiters
// |^~\&. It decodes \F\ \S\ \T\ \R\ \E\ and \Xhh...\ (any even number of hex
// digits), turns the formatting sequence \.br\ into a line feed and drops the
// highlighting sequences \H\ and \N\, which have no plain-text meaning. Any
// other sequence (\Z...\, \C...\, \M...\, other formatting commands, bad hex)
// and an escape character without a closing one are kept verbatim, so text
// from a careless sender is not lost.
func Unescape(s string) string {
	return unescape(s, stdDelims())
}

func unescape(s string, d delims) string {
	if d.esc == 0 || strings.IndexByte(s, d.esc) < 0 {
		return s
	}
	return string(appendUnescaped(make([]byte, 0, len(s)), s, d))
}

func appendUnescaped(dst []byte, s string, d delims) []byte {
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], d.esc)
		if j < 0 {
			return append(dst, s[i:]...)
		}
		dst = append(dst, s[i:i+j]...)
		i += j
		k := strings.IndexByte(s[i+1:], d.esc)
		if k < 0 { // unterminated: keep verbatim
			return append(dst, s[i:]...)
		}
		seq := s[i+1 : i+1+k]
		end := i + 1 + k + 1
		switch {
		case seq == "F":
			dst = append(dst, d.field)
		case seq == "S":
			dst = append(dst, d.comp)
		case seq == "T":
			dst = append(dst, d.sub)
		case seq == "R":
			dst = append(dst, d.rep)
		case seq == "E":
			dst = append(dst, d.esc)
		case seq == "H", seq == "N":
			// highlighting on/off: nothing to render in plain text
		case seq == ".br":
			dst = append(dst, '\n')
		case len(seq) >= 3 && seq[0] == 'X' && isHexPairs(seq[1:]):
			for h := 1; h < len(seq); h += 2 {
				dst = append(dst, unhex(seq[h])<<4|unhex(seq[h+1]))
			}
		default:
			dst = append(dst, s[i:end]...)
		}
		i = end
	}
	return dst
}

func isHexPairs(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
