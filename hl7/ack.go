package hl7

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Acknowledgment codes of MSA-1 (HL7 table 0008).
const (
	CodeAA = "AA" // application accept: accepted and processed
	CodeAE = "AE" // application error: processed, an error was found (ERR follows)
	CodeAR = "AR" // application reject: not processed, for a reason unrelated to content
	CodeCA = "CA" // commit accept (enhanced mode)
	CodeCE = "CE" // commit error: cannot accept now, e.g. sequence number
	CodeCR = "CR" // commit reject: message type, version or processing mode incompatible
)

// ACK is the part of an acknowledgement message the sender acts on.
type ACK struct {
	// Code is MSA-1, one of the Code constants.
	Code string
	// ControlID is MSA-2: the MSH-10 of the message being acknowledged.
	ControlID string
	// Text is the human-readable reason, unescaped: MSA-3 (deprecated, still
	// sent by legacy systems) followed by, for each ERR segment, its user
	// message ERR-8, or else its diagnostic information ERR-7, or else the
	// text of the HL7 error code ERR-3.2, or else the legacy ERR-1 text.
	// Distinct parts (at most eight) are joined with "; ".
	Text string
	// ErrorCode is the first HL7 error code (table 0357, e.g. "207") found
	// in the ERR segments: ERR-3.1, or the legacy ERR-1.4.1. Empty without
	// ERR.
	ErrorCode string
	// MessageControlID is MSH-10 of the acknowledgement itself.
	MessageControlID string
}

// Accepted reports whether the message was accepted: AA, or CA in enhanced
// mode (where an application acknowledgement may still follow if MSH-16
// asked for one).
func (a ACK) Accepted() bool { return a.Code == CodeAA || a.Code == CodeCA }

// Retryable reports whether resending the same message, with the same
// MSH-10, after a backoff may succeed: CE, and AR unless its error code says
// the message type, event, processing id or version is unsupported (table
// 0357 codes 200 to 203). This is the default policy of standards digest
// section 5.8; partners use AE and AR inconsistently, so a sink may decide
// per partner from Code and ErrorCode instead.
func (a ACK) Retryable() bool {
	switch a.Code {
	case CodeCE:
		return true
	case CodeAR:
		return !unsupported(a.ErrorCode)
	}
	return false
}

// Permanent reports whether the message must not be resent unchanged: AE
// (content error), CR, and AR with error code 200 to 203 (a configuration
// error). Accepted, Retryable and Permanent are mutually exclusive, and one
// of them holds for every ACK that ParseACK returns.
func (a ACK) Permanent() bool {
	switch a.Code {
	case CodeAE, CodeCR:
		return true
	case CodeAR:
		return unsupported(a.ErrorCode)
	}
	return false
}

// Err returns nil if a is accepted and an *AckError otherwise.
func (a ACK) Err() error {
	if a.Accepted() {
		return nil
	}
	return &AckError{ACK: a}
}

func unsupported(code string) bool {
	switch code {
	case "200", "201", "202", "203":
		return true
	}
	return false
}

// AckError is a negative acknowledgement as an error value.
type AckError struct {
	ACK ACK
}

// Error describes the rejection: control id, code, error code and text.
func (e *AckError) Error() string {
	s := "hl7: message " + e.ACK.ControlID + " not accepted: " + e.ACK.Code
	if e.ACK.ErrorCode != "" {
		s += " (error " + e.ACK.ErrorCode + ")"
	}
	if e.ACK.Text != "" {
		s += ": " + e.ACK.Text
	}
	return s
}

// Temporary reports whether resending may succeed; see ACK.Retryable.
func (e *AckError) Temporary() bool { return e.ACK.Retryable() }

// ParseACK reads an acknowledgement message. It accepts CR, LF or CRLF
// between segments and the delimiters the message declares in MSH-1 and
// MSH-2. The message must start with MSH and contain an MSA whose MSA-1 is a
// table 0008 code; other segments are ignored, and only the first MSA
// counts. Text fields are unescaped. It does not check MSH-9, because
// receivers label acknowledgements inconsistently.
func ParseACK(b []byte) (ACK, error) {
	// One copy of the input; every field of the result is a substring of it
	// unless it had to be unescaped.
	msh, rest := nextSegment(string(b))
	if !isSegment(msh, "MSH") {
		return ACK{}, errors.New("hl7: ACK: message does not start with an MSH segment")
	}
	d, err := parseDelims(msh)
	if err != nil {
		return ACK{}, fmt.Errorf("hl7: ACK: %w", err)
	}
	var a ACK
	a.MessageControlID = unescape(field(msh, d.field, 9), d)

	var msa string
	var texts [8]string // raw text parts, distinct
	n := 0
	addText := func(t string) {
		if t == "" || n == len(texts) {
			return
		}
		for _, have := range texts[:n] {
			if have == t {
				return
			}
		}
		texts[n] = t
		n++
	}
	for rest != "" {
		var seg string
		seg, rest = nextSegment(rest)
		if len(seg) < 3 || len(seg) > 3 && seg[3] != d.field {
			continue
		}
		switch seg[:3] {
		case "MSA":
			if msa == "" {
				msa = seg
				addText(field(seg, d.field, 3))
			}
		case "ERR":
			var f [9]string // ERR-0 to ERR-8
			splitFields(seg, d.field, f[:])
			addText(errText(&f, d))
			if a.ErrorCode == "" {
				a.ErrorCode = unescape(errCode(&f, d), d)
			}
		}
	}
	if msa == "" {
		return ACK{}, errors.New("hl7: ACK: no MSA segment")
	}
	switch code := strings.TrimSpace(field(msa, d.field, 1)); code {
	case CodeAA, CodeAE, CodeAR, CodeCA, CodeCE, CodeCR:
		a.Code = code
	case "":
		return ACK{}, errors.New("hl7: ACK: MSA-1: missing acknowledgment code")
	default:
		return ACK{}, fmt.Errorf("hl7: ACK: MSA-1: %q is not an acknowledgment code of table 0008", code)
	}
	a.ControlID = unescape(field(msa, d.field, 2), d)
	switch n {
	case 0:
	case 1:
		a.Text = unescape(texts[0], d)
	default:
		size := 2 * (n - 1)
		for _, t := range texts[:n] {
			size += len(t)
		}
		buf := make([]byte, 0, size)
		for k, t := range texts[:n] {
			if k > 0 {
				buf = append(buf, "; "...)
			}
			buf = appendUnescaped(buf, t, d)
		}
		a.Text = string(buf)
	}
	return a, nil
}

// errText returns the most readable text of an ERR segment split into f:
// ERR-8 user message, ERR-7 diagnostic information, ERR-3.2 error code
// text, or the legacy ERR-1.4.2.
func errText(f *[9]string, d delims) string {
	if t := firstRep(f[8], d); t != "" {
		return t
	}
	if f[7] != "" {
		return f[7]
	}
	if t := component(firstRep(f[3], d), d.comp, 2); t != "" {
		return t
	}
	return subcomponent(component(firstRep(f[1], d), d.comp, 4), d.sub, 2)
}

// errCode returns ERR-3.1, or the legacy ERR-1.4.1, of an ERR segment split
// into f.
func errCode(f *[9]string, d delims) string {
	if c := component(firstRep(f[3], d), d.comp, 1); c != "" {
		return c
	}
	return subcomponent(component(firstRep(f[1], d), d.comp, 4), d.sub, 1)
}

// Reply is the acknowledgement a receiver gives to one message; NewACK
// encodes it.
type Reply struct {
	// Code is MSA-1, one of the Code constants. Required.
	Code string
	// Text is written to MSA-3 and, when an ERR segment is written, to ERR-8.
	// Optional.
	Text string
	// ErrorCode is ERR-3.1 (table 0357). When Code is not AA or CA an ERR
	// segment is always written, with code 207 (application internal error)
	// if ErrorCode is empty. With AA or CA an ERR is written only when
	// ErrorCode is set. Digits only.
	ErrorCode string
	// ControlID is MSH-10 of the acknowledgement itself. Required; printable
	// ASCII without the message's delimiters.
	ControlID string
	// Time is MSH-7. Required.
	Time time.Time
}

// NewACK builds the acknowledgement of msg, an HL7 v2 message that starts
// with MSH: the acknowledgement uses msg's delimiters, swaps its sending and
// receiving application and facility (MSH-3/4 with MSH-5/6), sets MSH-9 to
// ACK^<msg's trigger event>^ACK, copies MSH-11 and MSH-12, and echoes msg's
// MSH-10 in MSA-2 (HL7 v2 chapter 2, standards digest section 5.8). Fields
// copied from msg are copied as they are, without re-escaping.
func NewACK(msg []byte, r Reply) ([]byte, error) {
	msh, _ := nextSegment(string(msg))
	if !isSegment(msh, "MSH") {
		return nil, errors.New("hl7: NewACK: message does not start with an MSH segment")
	}
	d, err := parseDelims(msh)
	if err != nil {
		return nil, fmt.Errorf("hl7: NewACK: %w", err)
	}
	if d.rep == 0 || d.esc == 0 || d.sub == 0 {
		return nil, errors.New("hl7: NewACK: MSH-2: message declares fewer than four encoding characters")
	}
	inControlID := field(msh, d.field, 9)
	if inControlID == "" {
		return nil, errors.New("hl7: NewACK: message has no MSH-10 to acknowledge")
	}
	accepted := false
	switch r.Code {
	case CodeAA, CodeCA:
		accepted = true
	case CodeAE, CodeAR, CodeCE, CodeCR:
	default:
		return nil, fmt.Errorf("hl7: NewACK: Reply.Code: %q is not an acknowledgment code of table 0008", r.Code)
	}
	if r.ControlID == "" || len(r.ControlID) > maxControlID {
		return nil, errors.New("hl7: NewACK: Reply.ControlID: missing or longer than 199 characters")
	}
	for i := 0; i < len(r.ControlID); i++ {
		if c := r.ControlID[i]; c < 0x20 || c > 0x7e || needsEscape(c, d) {
			return nil, errors.New("hl7: NewACK: Reply.ControlID: only printable ASCII without the message's delimiters is allowed")
		}
	}
	if r.Time.IsZero() {
		return nil, errors.New("hl7: NewACK: Reply.Time: missing")
	}
	if !dtmInRange(r.Time) {
		return nil, errors.New("hl7: NewACK: Reply.Time: year out of range 0-9999")
	}
	if !allDigits(r.ErrorCode) || len(r.ErrorCode) > 5 {
		return nil, fmt.Errorf("hl7: NewACK: Reply.ErrorCode: %q is not a table 0357 code", r.ErrorCode)
	}

	fs := d.field
	b := make([]byte, 0, 160+len(msh)+2*len(r.Text))
	start := len(b)
	b = append(b, "MSH"...)
	b = append(b, fs)
	b = append(b, field(msh, fs, 1)...)      // MSH-2 as declared
	for _, n := range [...]int{4, 5, 2, 3} { // MSH-5, MSH-6, MSH-3, MSH-4
		b = append(b, fs)
		b = append(b, field(msh, fs, n)...)
	}
	b = append(b, fs)
	b = appendDTM(b, r.Time)
	b = append(b, fs, fs)
	b = append(b, "ACK"...)
	if trigger := component(field(msh, fs, 8), d.comp, 2); trigger != "" {
		b = append(b, d.comp)
		b = append(b, trigger...)
		b = append(b, d.comp)
		b = append(b, "ACK"...)
	}
	b = append(b, fs)
	b = append(b, r.ControlID...)
	b = append(b, fs)
	if p := field(msh, fs, 10); p != "" {
		b = append(b, p...)
	} else {
		b = append(b, DefaultProcessingID...)
	}
	b = append(b, fs)
	if v := field(msh, fs, 11); v != "" {
		b = append(b, v...)
	} else {
		b = append(b, "2.6"...)
	}
	b = append(trimRight(b, start+3, fs), '\r')

	start = len(b)
	b = append(b, "MSA"...)
	b = append(b, fs)
	b = append(b, r.Code...)
	b = append(b, fs)
	b = append(b, inControlID...)
	b = append(b, fs)
	b = appendEscaped(b, r.Text, d)
	b = append(trimRight(b, start+3, fs), '\r')

	if !accepted || r.ErrorCode != "" {
		code, severity := r.ErrorCode, "E"
		if code == "" {
			code = "207"
		}
		if accepted {
			severity = "W"
			if code == "0" {
				severity = "I"
			}
		}
		start = len(b)
		b = append(b, "ERR"...)
		b = append(b, fs, fs, fs) // ERR-1, ERR-2 empty
		b = append(b, code...)
		if desc := errorCodeText(code); desc != "" {
			b = append(b, d.comp)
			b = append(b, desc...)
			b = append(b, d.comp)
			b = append(b, "HL70357"...)
		}
		b = append(b, fs)
		b = append(b, severity...)
		b = append(b, fs, fs, fs, fs) // ERR-5 to ERR-7 empty
		b = appendEscaped(b, r.Text, d)
		b = append(trimRight(b, start+3, fs), '\r')
	}
	return b, nil
}

// errorCodeText returns the HL7 table 0357 text of code, or "".
func errorCodeText(code string) string {
	switch code {
	case "0":
		return "Message accepted"
	case "100":
		return "Segment sequence error"
	case "101":
		return "Required field missing"
	case "102":
		return "Data type error"
	case "103":
		return "Table value not found"
	case "200":
		return "Unsupported message type"
	case "201":
		return "Unsupported event code"
	case "202":
		return "Unsupported processing id"
	case "203":
		return "Unsupported version id"
	case "204":
		return "Unknown key identifier"
	case "205":
		return "Duplicate key identifier"
	case "206":
		return "Application record locked"
	case "207":
		return "Application internal error"
	}
	return ""
}

// parseDelims reads MSH-1 and MSH-2 from an MSH segment. Every declared
// delimiter must be printable, non-alphanumeric ASCII and distinct from the
// others; a v2.7 truncation character (fifth) is accepted and ignored.
func parseDelims(msh string) (delims, error) {
	if len(msh) < 4 {
		return delims{}, errors.New("MSH-1: missing field separator")
	}
	fs := msh[3]
	enc := msh[4:]
	if i := strings.IndexByte(enc, fs); i >= 0 {
		enc = enc[:i]
	}
	switch {
	case len(enc) == 0:
		return delims{}, errors.New("MSH-2: missing encoding characters")
	case len(enc) > 5:
		return delims{}, fmt.Errorf("MSH-2: %q has more than five encoding characters", enc)
	}
	all := msh[3 : 4+len(enc)] // MSH-1 and MSH-2
	for i := 0; i < len(all); i++ {
		c := all[i]
		if c <= ' ' || c >= 0x7f || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' {
			if i == 0 {
				return delims{}, fmt.Errorf("MSH-1: invalid field separator 0x%02X", c)
			}
			return delims{}, fmt.Errorf("MSH-2: invalid encoding character 0x%02X", c)
		}
		if strings.IndexByte(all[:i], c) >= 0 {
			return delims{}, fmt.Errorf("MSH-2: delimiter %q declared twice", c)
		}
	}
	d := delims{field: fs, comp: enc[0]}
	if len(enc) > 1 {
		d.rep = enc[1]
	}
	if len(enc) > 2 {
		d.esc = enc[2]
	}
	if len(enc) > 3 {
		d.sub = enc[3]
	}
	return d, nil
}

// nextSegment returns the first segment of s and the remainder. Any run of
// CR and LF bytes ends a segment, so CR, LF and CRLF terminators all work and
// blank lines are skipped.
func nextSegment(s string) (seg, rest string) {
	i := 0
	for i < len(s) && (s[i] == '\r' || s[i] == '\n') {
		i++
	}
	s = s[i:]
	end := strings.IndexByte(s, '\r')
	if end < 0 {
		end = len(s)
	}
	if lf := strings.IndexByte(s[:end], '\n'); lf >= 0 {
		end = lf
	}
	return s[:end], s[end:]
}

// splitFields stores the first len(out) parts of seg split by fs in out
// (see field for the numbering) and leaves the rest of out empty.
func splitFields(seg string, fs byte, out []string) {
	for k := range out {
		i := strings.IndexByte(seg, fs)
		if i < 0 {
			out[k] = seg
			return
		}
		out[k] = seg[:i]
		seg = seg[i+1:]
	}
}

// isSegment reports whether seg is a segment named id followed by at least
// one more byte (for MSH, its field separator).
func isSegment(seg, id string) bool {
	return len(seg) >= 4 && seg[:3] == id
}

// field returns part n of seg split by fs: part 0 is the segment id, part n
// is field n, except in MSH where part n is MSH-(n+1) because MSH-1 is the
// separator itself.
func field(seg string, fs byte, n int) string {
	for ; n > 0; n-- {
		i := strings.IndexByte(seg, fs)
		if i < 0 {
			return ""
		}
		seg = seg[i+1:]
	}
	if i := strings.IndexByte(seg, fs); i >= 0 {
		return seg[:i]
	}
	return seg
}

// component returns component n (from 1) of f.
func component(f string, sep byte, n int) string {
	if sep == 0 {
		if n == 1 {
			return f
		}
		return ""
	}
	return field(f, sep, n-1)
}

// subcomponent returns subcomponent n (from 1) of c.
func subcomponent(c string, sep byte, n int) string { return component(c, sep, n) }

// firstRep returns the first repetition of f.
func firstRep(f string, d delims) string { return component(f, d.rep, 1) }
