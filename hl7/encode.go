package hl7

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Defaults written when the corresponding ORU or OBX field is empty.
const (
	DefaultProcessingID       = "P"
	DefaultAcceptAckType      = "NE"
	DefaultApplicationAckType = "AL"
	// PCD01ProfileName, PCD01ProfileNamespace, PCD01ProfileOID and
	// PCD01ProfileOIDType make up the default MSH-21.
	PCD01ProfileName      = "IHE PCD ORU-R01 2006"
	PCD01ProfileNamespace = "HL7"
	PCD01ProfileOID       = "1.3.6.1.4.1.19376.1.6.1.1.1"
	PCD01ProfileOIDType   = "ISO"
)

// maxControlID is the length of MSH-10 (ST) in v2.6.
const maxControlID = 199

// FieldError reports a missing or invalid field of an ORU. Field is the path
// in the Go model: "ControlID", "Patient.ID", "Order.FillerOrderNumber",
// "OBX[2].Identifier" and so on, where the OBX index is the position in
// ORU.Observations counted from 0 (its OBX-1 Set ID is the index plus 1).
// Reason says what is wrong and names the HL7 field.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "hl7: <Field>: <Reason>".
func (e *FieldError) Error() string { return "hl7: " + e.Field + ": " + e.Reason }

// Append encodes m as an ORU^R01 message (IHE PCD-01, HL7 v2.6) and appends
// it to dst, segments terminated by CR. It validates m first; on error it
// returns dst unchanged and a *FieldError naming the field. Append does not
// allocate when dst has room for the message.
func (m *ORU) Append(dst []byte) ([]byte, error) {
	// Structure first; UTF-8 is checked once over the output below, which is
	// valid exactly when every text value is (values are delimited by ASCII).
	if err := m.validate(false); err != nil {
		return dst, err
	}
	b := dst

	// MSH
	start := len(b)
	b = append(b, "MSH|^~\\&|"...)
	b = appendHD(b, m.SendingApplication, '^')
	b = append(b, '|')
	b = appendHD(b, m.SendingFacility, '^')
	b = append(b, '|')
	b = appendHD(b, m.ReceivingApplication, '^')
	b = append(b, '|')
	b = appendHD(b, m.ReceivingFacility, '^')
	b = append(b, '|')
	b = appendDTM(b, m.Timestamp)
	b = append(b, "||ORU^R01^ORU_R01|"...) // MSH-8 empty, MSH-9
	b = append(b, m.ControlID...)          // validated: needs no escaping
	b = append(b, '|')
	b = append(b, orDefault(m.ProcessingID, DefaultProcessingID)...)
	b = append(b, "|2.6|||"...) // MSH-12; MSH-13, MSH-14 empty
	b = append(b, orDefault(m.AcceptAckType, DefaultAcceptAckType)...)
	b = append(b, '|')
	b = append(b, orDefault(m.ApplicationAckType, DefaultApplicationAckType)...)
	b = append(b, "||UNICODE UTF-8|||"...) // MSH-17 empty, MSH-18, MSH-19, MSH-20 empty
	if m.Profile == (EI{}) {
		b = append(b, PCD01ProfileName+"^"+PCD01ProfileNamespace+"^"+PCD01ProfileOID+"^"+PCD01ProfileOIDType...)
	} else {
		b = appendEI(b, m.Profile)
	}
	b = endSegment(b, start)

	// PID
	start = len(b)
	p := &m.Patient
	b = append(b, "PID|||"...)
	b = AppendEscaped(b, p.ID)
	b = append(b, "^^^"...)
	b = appendHD(b, p.AssigningAuthority, '&')
	b = append(b, '^')
	b = AppendEscaped(b, p.IdentifierType)
	b = append(b, "||"...)
	if p.FamilyName == "" && p.GivenName == "" {
		b = append(b, "^^^^^^U"...)
	} else {
		f := len(b)
		b = AppendEscaped(b, p.FamilyName)
		b = append(b, '^')
		b = AppendEscaped(b, p.GivenName)
		b = trimRight(b, f, '^')
	}
	b = endSegment(b, start)

	// PV1
	if m.PatientClass != "" {
		start = len(b)
		b = append(b, "PV1||"...)
		b = AppendEscaped(b, m.PatientClass)
		b = endSegment(b, start)
	}

	// OBR
	start = len(b)
	o := &m.Order
	b = append(b, "OBR|1|"...)
	b = appendEI(b, o.PlacerOrderNumber)
	b = append(b, '|')
	b = appendEI(b, o.FillerOrderNumber)
	b = append(b, '|')
	b = appendCWE(b, o.UniversalServiceID)
	b = append(b, "|||"...) // OBR-5, OBR-6 empty
	b = appendDTM(b, o.ObservationTime)
	b = append(b, '|')
	b = appendDTM(b, o.ObservationEndTime)
	b = endSegment(b, start)

	for i := range m.Observations {
		b = appendOBX(b, i+1, &m.Observations[i])
	}
	if !utf8.Valid(b[len(dst):]) {
		if err := m.validate(true); err != nil {
			return dst, err
		}
		return dst, &FieldError{Field: "ORU", Reason: "text is not valid UTF-8"}
	}
	return b, nil
}

func appendOBX(b []byte, setID int, x *OBX) []byte {
	start := len(b)
	b = append(b, "OBX|"...)
	b = strconv.AppendInt(b, int64(setID), 10)
	b = append(b, '|')
	b = append(b, x.ValueType...) // validated: a table 0125 code
	b = append(b, '|')
	b = appendCWE(b, x.Identifier)
	b = append(b, '|')
	b = append(b, x.Hierarchy...) // validated: digits and dots
	b = append(b, '|')
	if x.ValueType == "CWE" {
		b = appendCWE(b, x.CodedValue)
	} else {
		b = AppendEscaped(b, x.Value)
	}
	b = append(b, '|')
	b = appendCWE(b, x.Units)
	b = append(b, '|')
	b = AppendEscaped(b, x.ReferenceRange)
	b = append(b, '|')
	for i, f := range x.AbnormalFlags {
		if i > 0 {
			b = append(b, '~')
		}
		b = AppendEscaped(b, f)
	}
	b = append(b, "|||"...) // OBX-9, OBX-10 empty
	b = append(b, resultStatus(x)...)
	b = append(b, "|||"...) // OBX-12, OBX-13 empty
	b = appendDTM(b, x.ObservationTime)
	b = append(b, "||||"...) // OBX-15 to OBX-17 empty
	b = appendEI(b, x.EquipmentID)
	b = append(b, "||"...) // OBX-19 empty
	b = appendCWE(b, x.ObservationSite)
	return endSegment(b, start)
}

func resultStatus(x *OBX) string {
	switch {
	case x.ResultStatus != "":
		return x.ResultStatus
	case hasValue(x):
		return "F"
	default:
		return "X"
	}
}

func hasValue(x *OBX) bool {
	if x.ValueType == "CWE" {
		return !x.CodedValue.IsZero()
	}
	return x.Value != ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// endSegment drops trailing empty fields of the segment that starts at start
// and terminates it. Escaped values never end in a raw '|', so only empty
// fields are removed.
func endSegment(b []byte, start int) []byte {
	return append(trimRight(b, start+3, '|'), '\r')
}

func trimRight(b []byte, start int, sep byte) []byte {
	for len(b) > start && b[len(b)-1] == sep {
		b = b[:len(b)-1]
	}
	return b
}

// appendHD writes h with sep between its parts: '^' for a field, '&' inside a
// component (CX-4).
func appendHD(b []byte, h HD, sep byte) []byte {
	start := len(b)
	b = AppendEscaped(b, h.NamespaceID)
	b = append(b, sep)
	b = AppendEscaped(b, h.UniversalID)
	b = append(b, sep)
	b = AppendEscaped(b, h.UniversalIDType)
	return trimRight(b, start, sep)
}

func appendEI(b []byte, e EI) []byte {
	start := len(b)
	b = AppendEscaped(b, e.EntityID)
	b = append(b, '^')
	b = AppendEscaped(b, e.NamespaceID)
	b = append(b, '^')
	b = AppendEscaped(b, e.UniversalID)
	b = append(b, '^')
	b = AppendEscaped(b, e.UniversalIDType)
	return trimRight(b, start, '^')
}

func appendCWE(b []byte, c CWE) []byte {
	start := len(b)
	b = AppendEscaped(b, c.Code)
	b = append(b, '^')
	b = AppendEscaped(b, c.Text)
	b = append(b, '^')
	b = AppendEscaped(b, c.System)
	if c.AltCode != "" || c.AltText != "" || c.AltSystem != "" {
		b = append(b, '^')
		b = AppendEscaped(b, c.AltCode)
		b = append(b, '^')
		b = AppendEscaped(b, c.AltText)
		b = append(b, '^')
		b = AppendEscaped(b, c.AltSystem)
	}
	return trimRight(b, start, '^')
}

// validate checks m and returns the first problem as a *FieldError. Text
// values are checked for valid UTF-8 only if checkUTF8 is set.
func (m *ORU) validate(checkUTF8 bool) error {
	c := checker{utf8: checkUTF8}
	c.controlID("ControlID", "MSH-10", m.ControlID)
	c.time("Timestamp", "MSH-7", m.Timestamp, true)
	c.hd("SendingApplication", "MSH-3", m.SendingApplication, true)
	c.hd("SendingFacility", "MSH-4", m.SendingFacility, false)
	c.hd("ReceivingApplication", "MSH-5", m.ReceivingApplication, false)
	c.hd("ReceivingFacility", "MSH-6", m.ReceivingFacility, false)
	c.oneOf("ProcessingID", "MSH-11", m.ProcessingID, "P", "D", "T")
	c.oneOf("AcceptAckType", "MSH-15", m.AcceptAckType, "AL", "ER", "NE", "SU")
	c.oneOf("ApplicationAckType", "MSH-16", m.ApplicationAckType, "AL", "ER", "NE", "SU")
	if m.Profile != (EI{}) {
		c.ei("Profile", "MSH-21", m.Profile, true)
	}

	p := &m.Patient
	c.required("Patient.ID", "PID-3.1", p.ID)
	if p.AssigningAuthority == (HD{}) {
		c.fail("Patient.AssigningAuthority", "missing (PID-3.4)")
	}
	c.hd("Patient.AssigningAuthority", "PID-3.4", p.AssigningAuthority, false)
	c.required("Patient.IdentifierType", "PID-3.5", p.IdentifierType)
	c.text("Patient.FamilyName", "PID-5.1", p.FamilyName)
	c.text("Patient.GivenName", "PID-5.2", p.GivenName)
	c.text("PatientClass", "PV1-2", m.PatientClass)

	o := &m.Order
	c.ei("Order.PlacerOrderNumber", "OBR-2", o.PlacerOrderNumber, false)
	c.ei("Order.FillerOrderNumber", "OBR-3", o.FillerOrderNumber, true)
	c.cwe("Order.UniversalServiceID", "OBR-4", o.UniversalServiceID, true)
	c.time("Order.ObservationTime", "OBR-7", o.ObservationTime, true)
	c.time("Order.ObservationEndTime", "OBR-8", o.ObservationEndTime, false)

	if len(m.Observations) == 0 && c.err == nil {
		c.fail("Observations", "at least one OBX is required")
	}
	for i := range m.Observations {
		if c.err != nil {
			break
		}
		c.obx = i
		c.inOBX = true
		c.validateOBX(&m.Observations[i])
	}
	if c.err != nil {
		return c.err
	}
	return nil
}

func (c *checker) validateOBX(x *OBX) {
	c.cwe("Identifier", "OBX-3", x.Identifier, true)
	if x.Hierarchy == "" {
		c.fail("Hierarchy", "missing (OBX-4), PCD-01 requires the containment path")
	} else if !isDotted(x.Hierarchy) {
		c.fail("Hierarchy", "not a dotted containment path like 1.0.0.1 (OBX-4)")
	}
	switch x.ValueType {
	case "":
		if x.Value != "" || !x.CodedValue.IsZero() {
			c.fail("ValueType", "missing (OBX-2), required when a value is set")
		}
	case "NM":
		if x.Value != "" && !isNM(x.Value) {
			c.fail("Value", "not an NM decimal literal (OBX-5)")
		}
	case "ST", "TX":
		c.text("Value", "OBX-5", x.Value)
	case "DTM":
		if x.Value != "" && !isDTM(x.Value) {
			c.fail("Value", "not a DTM value (OBX-5)")
		}
	case "CWE":
		if x.Value != "" {
			c.fail("Value", "set CodedValue, not Value, for value type CWE (OBX-5)")
		}
		c.cwe("CodedValue", "OBX-5", x.CodedValue, false)
	default:
		c.fail("ValueType", "unsupported value type (OBX-2); use NM, ST, TX, DTM or CWE")
	}
	if x.ValueType != "CWE" && !x.CodedValue.IsZero() {
		c.fail("CodedValue", "set only for value type CWE (OBX-5)")
	}
	c.cwe("Units", "OBX-6", x.Units, false)
	c.text("ReferenceRange", "OBX-7", x.ReferenceRange)
	for _, f := range x.AbnormalFlags {
		if f == "" {
			c.fail("AbnormalFlags", "empty flag (OBX-8)")
		}
		c.text("AbnormalFlags", "OBX-8", f)
	}
	switch x.ResultStatus {
	case "", "C", "D", "F", "I", "N", "O", "P", "R", "S", "U", "W", "X":
	default:
		c.fail("ResultStatus", "not in HL7 table 0085 (OBX-11)")
	}
	if x.ValueType != "" && !hasValue(x) {
		switch x.ResultStatus {
		case "X", "N", "I", "D":
		default:
			c.fail("Value", "missing (OBX-5); for a value that cannot be obtained set ResultStatus X, or leave ValueType empty")
		}
	}
	c.time("ObservationTime", "OBX-14", x.ObservationTime, false)
	c.ei("EquipmentID", "OBX-18", x.EquipmentID, false)
	c.cwe("ObservationSite", "OBX-20", x.ObservationSite, false)
}

// checker collects the first validation error. Field names are only built
// when something fails, so validating a good message does not allocate.
type checker struct {
	err   *FieldError
	utf8  bool // check text for valid UTF-8
	inOBX bool
	obx   int
}

func (c *checker) fail(field, reason string) {
	if c.err != nil {
		return
	}
	if c.inOBX {
		field = "OBX[" + strconv.Itoa(c.obx) + "]." + field
	}
	c.err = &FieldError{Field: field, Reason: reason}
}

func (c *checker) text(field, hl7 string, s string) {
	if c.utf8 && !utf8.ValidString(s) {
		c.fail(field, "not valid UTF-8 ("+hl7+")")
	}
}

func (c *checker) required(field, hl7, s string) {
	if s == "" {
		c.fail(field, "missing ("+hl7+")")
	}
	c.text(field, hl7, s)
}

func (c *checker) oneOf(field, hl7, s string, allowed ...string) {
	if s == "" {
		return
	}
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	c.fail(field, "value not allowed ("+hl7+")")
}

func (c *checker) controlID(field, hl7, s string) {
	if s == "" {
		c.fail(field, "missing ("+hl7+")")
		return
	}
	if len(s) > maxControlID {
		c.fail(field, "longer than 199 characters ("+hl7+")")
		return
	}
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < 0x20 || ch > 0x7e || ch == '|' || ch == '^' || ch == '~' || ch == '\\' || ch == '&' {
			c.fail(field, "only printable ASCII without |^~\\& is allowed ("+hl7+")")
			return
		}
	}
}

func (c *checker) time(field, hl7 string, t time.Time, required bool) {
	if t.IsZero() {
		if required {
			c.fail(field, "missing ("+hl7+")")
		}
		return
	}
	if !dtmInRange(t) {
		c.fail(field, "year out of range 0-9999 ("+hl7+")")
	}
}

func (c *checker) hd(field, hl7 string, h HD, required bool) {
	if required && h.NamespaceID == "" && h.UniversalID == "" {
		c.fail(field, "missing namespace id or universal id ("+hl7+")")
	}
	c.text(field, hl7, h.NamespaceID)
	c.universalID(field, hl7, h.UniversalID, h.UniversalIDType)
}

func (c *checker) ei(field, hl7 string, e EI, required bool) {
	if required && e.EntityID == "" {
		c.fail(field, "missing entity identifier ("+hl7+".1)")
	}
	if e == (EI{}) {
		return
	}
	if e.EntityID == "" && e.UniversalID == "" {
		c.fail(field, "missing entity identifier ("+hl7+".1)")
	}
	c.text(field, hl7, e.EntityID)
	c.text(field, hl7, e.NamespaceID)
	c.universalID(field, hl7, e.UniversalID, e.UniversalIDType)
}

func (c *checker) universalID(field, hl7, id, typ string) {
	switch {
	case id != "" && typ == "":
		c.fail(field, "universal id without universal id type ("+hl7+")")
	case id == "" && typ != "":
		c.fail(field, "universal id type without universal id ("+hl7+")")
	case typ == UniversalIDTypeEUI64 && !isEUI64(id):
		c.fail(field, "universal id is not an EUI-64 of 16 hex digits ("+hl7+")")
	}
	c.text(field, hl7, id)
	c.text(field, hl7, typ)
}

func (c *checker) cwe(field, hl7 string, v CWE, required bool) {
	if v.IsZero() {
		if required {
			c.fail(field, "missing ("+hl7+")")
		}
		return
	}
	if v.Code == "" {
		c.fail(field, "missing code ("+hl7+".1)")
	}
	if v.System == "" {
		c.fail(field, "missing coding system ("+hl7+".3)")
	}
	if v.AltCode != "" || v.AltText != "" || v.AltSystem != "" {
		if v.AltCode == "" {
			c.fail(field, "missing alternate code ("+hl7+".4)")
		}
		if v.AltSystem == "" {
			c.fail(field, "missing alternate coding system ("+hl7+".6)")
		}
	}
	if c.utf8 {
		for _, s := range [...]string{v.Code, v.Text, v.System, v.AltCode, v.AltText, v.AltSystem} {
			c.text(field, hl7, s)
		}
	}
}

// isDotted reports whether s is one or more decimal numbers separated by
// single dots.
func isDotted(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case '0' <= ch && ch <= '9':
			digits++
		case ch == '.' && digits > 0:
			digits = 0
		default:
			return false
		}
	}
	return digits > 0
}

// isNM reports whether s is an HL7 NM: an optional sign, digits and at most
// one decimal point, with at least one digit.
func isNM(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case '0' <= ch && ch <= '9':
			digits++
		case ch == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// isDTM reports whether s looks like an HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ].
func isDTM(s string) bool {
	if i := lastIndexSign(s); i >= 0 {
		if len(s)-i != 5 || !allDigits(s[i+1:]) {
			return false
		}
		s = s[:i]
	}
	date := s
	frac := ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			date, frac = s[:i], s[i+1:]
			if len(date) != 14 || len(frac) < 1 || len(frac) > 4 || !allDigits(frac) {
				return false
			}
			break
		}
	}
	switch len(date) {
	case 4, 6, 8, 10, 12, 14:
		return allDigits(date)
	}
	return false
}

func lastIndexSign(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '+' || s[i] == '-' {
			return i
		}
	}
	return -1
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isEUI64(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}
