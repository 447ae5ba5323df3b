package fhirjson

import (
	"math"
	"net/url"
	"strconv"
	"unicode/utf8"

	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// Error is an element fhirjson refuses to encode, with its FHIRPath-like
// location, e.g. "Observation.component[1].valueQuantity.value".
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string { return e.Path + ": " + e.Reason }

// Reasons. Validation reasons never quote the offending value, which may be
// patient data.
const (
	reasonRequired     = "required"
	reasonUnsupported  = "not supported by fhirjson (encode with google/fhir's jsonformat instead)"
	reasonPrimitiveExt = "id or extension on a primitive value is not supported by fhirjson"
	reasonEmptyRef     = "empty reference"
	reasonNoChoice     = "choice element with no value set"
)

func errAt(path, reason string) error { return &Error{Path: path, Reason: reason} }

// in prefixes the path of err with elem. It runs only on the way out of a
// failed encode, so successful encodes never build paths.
func in(err error, elem string) error {
	if e, ok := err.(*Error); ok {
		switch {
		case e.Path == "":
			e.Path = elem
		case e.Path[0] == '[':
			e.Path = elem + e.Path
		default:
			e.Path = elem + "." + e.Path
		}
	}
	return err
}

// inAt is in for the i-th item of a repeated element.
func inAt(err error, elem string, i int) error {
	return in(err, elem+"["+strconv.Itoa(i)+"]")
}

// key appends an object member name, preceded by a comma unless the object
// that starts at start (just after its '{') has no member yet.
func key(b []byte, start int, name string) []byte {
	if len(b) > start {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes a JSON string holds as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string, escaped as encoding/json does
// with HTML escaping off (google/fhir's marshaller writes through it):
// '"', '\\' and control characters escaped, invalid UTF-8 bytes replaced by
// U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	return append(appendStringBody(append(b, '"'), s), '"')
}

// Word-at-a-time test for the bytes appendStringBody must look at.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether the 8 bytes of w (little-endian) are all plain
// ASCII: no control character, '"', '\\' or byte >= 0x80.
func plainWord(w uint64) bool {
	control := (w - ones*0x20) &^ w
	quote := w ^ (ones * '"')
	quote = (quote - ones) &^ quote
	backslash := w ^ (ones * '\\')
	backslash = (backslash - ones) &^ backslash
	return (control|quote|backslash|w)&highs == 0
}

// appendStringBody is appendString without the quotes.
func appendStringBody(b []byte, s string) []byte {
	i, done := 0, 0
	for i < len(s) {
		for i+8 <= len(s) {
			w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
			if !plainWord(w) {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[done:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[done:i]...)
			b = append(b, `\ufffd`...)
			i += size
			done = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[done:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			done = i
			continue
		}
		i += size
	}
	return append(b, s[done:]...)
}

// maxString is google/fhir's limit on a string's size.
const maxString = 1 << 20

// Primitive checks return "" for a valid value, else the reason.

// checkString: FHIR string (and markdown). google/fhir's validator refuses
// control characters other than tab, LF and CR, and strings over 1 MiB; the
// FHIR regex [ \r\n\t\S]+ refuses the empty string.
func checkString(s string) string {
	if s == "" {
		return "empty string"
	}
	if len(s) > maxString {
		return "string exceeds maximum size of 1 MB"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return "string contains a control character"
		}
	}
	return ""
}

func isSpace(c byte) bool { // RE2's \s
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// checkCode: FHIR code, [^\s]+(\s[^\s]+)*: no leading, trailing or double
// whitespace.
func checkCode(s string) string {
	if s == "" {
		return "empty code"
	}
	if isSpace(s[0]) || isSpace(s[len(s)-1]) {
		return "code has leading or trailing whitespace"
	}
	for i := 1; i < len(s); i++ {
		if isSpace(s[i]) && isSpace(s[i-1]) {
			return "code has consecutive whitespace"
		}
	}
	return ""
}

// checkID: FHIR id, [A-Za-z0-9\-\.]{1,64}.
func checkID(s string) string {
	if s == "" || len(s) > 64 {
		return "not a FHIR id (1 to 64 of A-Z a-z 0-9 - .)"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return "not a FHIR id (1 to 64 of A-Z a-z 0-9 - .)"
		}
	}
	return ""
}

// checkDecimal: FHIR decimal, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
// which is also exactly a JSON number.
func checkDecimal(s string) string {
	const bad = "not a FHIR decimal"
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i == len(s):
		return bad
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return bad
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == j {
			return bad
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == j {
			return bad
		}
	}
	if i != len(s) {
		return bad
	}
	return ""
}

// uriPlain marks the bytes a URI may hold on the fast path of checkURI.
var uriPlain = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-._~:/?#=&+,;!$'()*@" {
		t[c] = true
	}
	return t
}()

// checkURI: FHIR uri, url and canonical. google/fhir's validator accepts
// whatever net/url.Parse accepts; the empty string is refused here (FHIR
// strings are never empty). Common absolute URIs (scheme, plain characters,
// no percent escapes, and a host of letters, digits, '-' and '.' with an
// optional numeric port) are accepted without calling url.Parse, which
// allocates; anything else is left to url.Parse.
func checkURI(s string) string {
	if uriFast(s) {
		return ""
	}
	if s == "" {
		return "empty uri"
	}
	if _, err := url.Parse(s); err != nil {
		return "not a valid uri"
	}
	return ""
}

// uriFast reports whether url.Parse certainly accepts s; false means "ask
// url.Parse".
func uriFast(s string) bool {
	// Scheme: [A-Za-z][A-Za-z0-9+.-]*':'.
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			continue
		}
		break
	}
	if i == 0 || i == len(s) || s[i] != ':' {
		return false
	}
	for j := i + 1; j < len(s); j++ {
		if !uriPlain[s[j]] {
			return false
		}
	}
	rest := s[i+1:]
	// url.Parse cuts the fragment, then the query, and parses an authority
	// only after "//".
	for j := 0; j < len(rest); j++ {
		if rest[j] == '#' || rest[j] == '?' {
			rest = rest[:j]
			break
		}
	}
	if len(rest) < 2 || rest[0] != '/' || rest[1] != '/' {
		return true // opaque or path: only percent escapes can fail
	}
	colon := false
	for j := 2; j < len(rest) && rest[j] != '/'; j++ {
		switch c := rest[j]; {
		case c == ':':
			if colon {
				return false
			}
			colon = true
		case colon:
			if c < '0' || c > '9' {
				return false
			}
		case !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.'):
			return false
		}
	}
	return true
}

// appendURIValue checks and appends a uri, url or canonical. One that
// passes uriFast holds only plain ASCII, so it needs no escaping.
func appendURIValue(b []byte, name, s string) ([]byte, error) {
	if uriFast(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"'), nil
	}
	if r := checkURI(s); r != "" {
		return b, errAt(name, r)
	}
	return appendString(b, s), nil
}

// Primitive members. Each appends `"name":value` to the object that starts
// at start, or nothing for a nil primitive.

func primitiveExt(id *dtpb.String, ext []*dtpb.Extension) bool {
	return id != nil || len(ext) > 0
}

func appendStringMember(b []byte, start int, name string, p *dtpb.String) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	if r := checkString(p.Value); r != "" {
		return b, errAt(name, r)
	}
	return appendString(key(b, start, name), p.Value), nil
}

func appendMarkdownMember(b []byte, start int, name string, p *dtpb.Markdown) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	if r := checkString(p.Value); r != "" {
		return b, errAt(name, r)
	}
	return appendString(key(b, start, name), p.Value), nil
}

func appendCodeMember(b []byte, start int, name string, p *dtpb.Code) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	if r := checkCode(p.Value); r != "" {
		return b, errAt(name, r)
	}
	return appendString(key(b, start, name), p.Value), nil
}

func appendIDMember(b []byte, start int, name string, p *dtpb.Id) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	if r := checkID(p.Value); r != "" {
		return b, errAt(name, r)
	}
	return appendString(key(b, start, name), p.Value), nil
}

func appendURIMember(b []byte, start int, name string, p *dtpb.Uri) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	return appendURIValue(key(b, start, name), name, p.Value)
}

func appendURLMember(b []byte, start int, name string, p *dtpb.Url) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	return appendURIValue(key(b, start, name), name, p.Value)
}

func appendCanonicalMember(b []byte, start int, name string, p *dtpb.Canonical) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	return appendURIValue(key(b, start, name), name, p.Value)
}

// appendDecimalMember writes the decimal's literal as it is, so its precision
// survives ("72.50" stays 72.50).
func appendDecimalMember(b []byte, start int, name string, p *dtpb.Decimal) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	if r := checkDecimal(p.Value); r != "" {
		return b, errAt(name, r)
	}
	return append(key(b, start, name), p.Value...), nil
}

func appendBooleanMember(b []byte, start int, name string, p *dtpb.Boolean) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	return strconv.AppendBool(key(b, start, name), p.Value), nil
}

func appendIntegerMember(b []byte, start int, name string, p *dtpb.Integer) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	return strconv.AppendInt(key(b, start, name), int64(p.Value), 10), nil
}

func appendPositiveIntMember(b []byte, start int, name string, p *dtpb.PositiveInt) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	if p.Value == 0 || p.Value > math.MaxInt32 {
		return b, errAt(name, "positiveInt out of range 1..2,147,483,647")
	}
	return strconv.AppendUint(key(b, start, name), uint64(p.Value), 10), nil
}

func appendUnsignedIntMember(b []byte, start int, name string, p *dtpb.UnsignedInt) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	if p.Value > math.MaxInt32 {
		return b, errAt(name, "unsignedInt out of range 0..2,147,483,647")
	}
	return strconv.AppendUint(key(b, start, name), uint64(p.Value), 10), nil
}

func appendDateTimeMember(b []byte, start int, name string, p *dtpb.DateTime) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	var prec precision
	switch p.Precision {
	case dtpb.DateTime_YEAR:
		prec = precYear
	case dtpb.DateTime_MONTH:
		prec = precMonth
	case dtpb.DateTime_DAY:
		prec = precDay
	case dtpb.DateTime_SECOND:
		prec = precSecond
	case dtpb.DateTime_MILLISECOND:
		prec = precMilli
	case dtpb.DateTime_MICROSECOND:
		prec = precMicro
	default:
		return b, errAt(name, "invalid dateTime precision")
	}
	b = append(key(b, start, name), '"')
	b, r := appendTimestamp(b, p.ValueUs, p.Timezone, prec)
	if r != "" {
		return b, errAt(name, r)
	}
	return append(b, '"'), nil
}

func appendInstantMember(b []byte, start int, name string, p *dtpb.Instant) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	var prec precision
	switch p.Precision {
	case dtpb.Instant_SECOND:
		prec = precSecond
	case dtpb.Instant_MILLISECOND:
		prec = precMilli
	case dtpb.Instant_MICROSECOND:
		prec = precMicro
	default:
		return b, errAt(name, "invalid instant precision")
	}
	b = append(key(b, start, name), '"')
	b, r := appendTimestamp(b, p.ValueUs, p.Timezone, prec)
	if r != "" {
		return b, errAt(name, r)
	}
	return append(b, '"'), nil
}

func appendDateMember(b []byte, start int, name string, p *dtpb.Date) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	var prec precision
	switch p.Precision {
	case dtpb.Date_YEAR:
		prec = precYear
	case dtpb.Date_MONTH:
		prec = precMonth
	case dtpb.Date_DAY:
		prec = precDay
	default:
		return b, errAt(name, "invalid date precision")
	}
	b = append(key(b, start, name), '"')
	b, r := appendTimestamp(b, p.ValueUs, p.Timezone, prec)
	if r != "" {
		return b, errAt(name, r)
	}
	return append(b, '"'), nil
}

func appendTimeMember(b []byte, start int, name string, p *dtpb.Time) ([]byte, error) {
	if p == nil {
		return b, nil
	}
	if primitiveExt(p.Id, p.Extension) {
		return b, errAt(name, reasonPrimitiveExt)
	}
	var prec precision
	switch p.Precision {
	case dtpb.Time_SECOND:
		prec = precSecond
	case dtpb.Time_MILLISECOND:
		prec = precMilli
	case dtpb.Time_MICROSECOND:
		prec = precMicro
	default:
		return b, errAt(name, "invalid time precision")
	}
	if p.ValueUs < 0 || p.ValueUs >= 24*3600*1e6 {
		return b, errAt(name, "time of day out of range 00:00:00 to 23:59:59.999999")
	}
	b = append(key(b, start, name), '"')
	b = appendClock(b, p.ValueUs, prec)
	return append(b, '"'), nil
}
