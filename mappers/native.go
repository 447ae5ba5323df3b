package mappers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FieldError says which input field is wrong and why. Reasons never quote
// identifiers from the input, which may be patient data.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

// prefixed returns err with its field nested under prefix.
func prefixed(prefix string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		f := prefix
		if fe.Field != "" {
			f += "." + fe.Field
		}
		return &FieldError{Field: f, Reason: fe.Reason}
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// nativeReading is the bridge's native JSON format, version 1
// (docs/native-format.md).
type nativeReading struct {
	Kind              string            `json:"kind"`
	Device            string            `json:"device"`
	DeviceInfo        *nativeDevice     `json:"deviceInfo"`
	Patient           string            `json:"patient"`
	PatientIdentifier *nativeIdentifier `json:"patientIdentifier"`
	Subject           *nativeSubject    `json:"subject"`
	Time              string            `json:"time"`
	End               string            `json:"end"`
	Value             json.Number       `json:"value"`
	Unit              string            `json:"unit"`
	DataAbsentReason  string            `json:"dataAbsentReason"`
	Components        []nativeComponent `json:"components"`
	Status            string            `json:"status"`
}

type nativeDevice struct {
	Serial       string `json:"serial"`
	EUI64        string `json:"eui64"`
	MAC          string `json:"mac"`
	Model        string `json:"model"`
	Manufacturer string `json:"manufacturer"`
}

type nativeIdentifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type nativeSubject struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type nativeComponent struct {
	Kind             string      `json:"kind"`
	Value            json.Number `json:"value"`
	Unit             string      `json:"unit"`
	DataAbsentReason string      `json:"dataAbsentReason"`
}

// fhirID is the FHIR id datatype's pattern; devices and subjects become
// literal references such as Device/<id>, so they must match it.
var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// ParseNative decodes one reading in the native JSON format and checks it.
// Every problem is a *FieldError naming the field; unknown fields are refused
// so a vendor's typo ("devce") fails loudly instead of losing data.
func ParseNative(data []byte) (Measurement, error) {
	var r nativeReading
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return Measurement{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Measurement{}, &FieldError{Reason: "trailing data after the JSON object"}
	}
	in := Input{
		Kind: r.Kind, DeviceID: r.Device, PatientID: r.Patient, Time: r.Time, End: r.End,
		Value: string(r.Value), Unit: r.Unit, Absent: r.DataAbsentReason, Status: r.Status,
	}
	if d := r.DeviceInfo; d != nil {
		in.Device = Device{Serial: d.Serial, EUI64: d.EUI64, MAC: d.MAC, Model: d.Model, Manufacturer: d.Manufacturer}
	}
	if p := r.PatientIdentifier; p != nil {
		in.PatientIdentifierSystem, in.PatientIdentifierValue = p.System, p.Value
	}
	if s := r.Subject; s != nil {
		in.SubjectType, in.SubjectID = s.Type, s.ID
	}
	for _, c := range r.Components {
		in.Components = append(in.Components, InputComponent{Kind: c.Kind, Value: string(c.Value), Unit: c.Unit, Absent: c.DataAbsentReason})
	}
	return in.Measurement()
}

// Native maps payloads in the native JSON format: one reading per payload.
type Native struct{}

// Map parses payload with ParseNative.
func (Native) Map(payload []byte) ([]Measurement, error) {
	m, err := ParseNative(payload)
	if err != nil {
		return nil, err
	}
	return []Measurement{m}, nil
}

// MapEach is Map for a payload of one reading: its failure is the
// payload's.
func (n Native) MapEach(payload []byte) ([]Result, error) {
	ms, err := n.Map(payload)
	if err != nil {
		return nil, err
	}
	return []Result{{Index: 0, Measurement: ms[0]}}, nil
}

// Result is one reading of a payload, mapped on its own: its measurement,
// or why it was refused. Index is its position among the payload's
// readings, in the order the template found them.
type Result struct {
	Index       int
	Measurement Measurement
	Err         error
}

// Input is a reading as extracted from a payload by the native format or a
// template, before checking and unit conversion. All values are text.
type Input struct {
	Kind                    string
	DeviceID                string
	Device                  Device // optional details; ID is taken from DeviceID
	PatientID               string
	PatientIdentifierSystem string
	PatientIdentifierValue  string
	SubjectType             string // "Patient" (default for vital signs), "Device", "Location"
	SubjectID               string
	Time                    string // RFC 3339
	End                     string // RFC 3339, optional
	Value                   string
	Unit                    string
	Absent                  string
	Components              []InputComponent
	Status                  string
	Provenance              Provenance
}

// InputComponent is one part of a panel in an Input.
type InputComponent struct {
	Kind, Value, Unit, Absent string
}

var errNoTime = &FieldError{Field: "time", Reason: "missing"}

// Measurement checks in against the catalogue, converts units and returns the
// canonical reading. Errors are *FieldError naming the field.
func (in Input) Measurement() (Measurement, error) {
	v, ok := Lookup(in.Kind)
	if !ok || (len(v.Components) == 0 && v.Unit.UCUM == "") {
		if in.Kind == "" {
			return Measurement{}, &FieldError{Field: "kind", Reason: "missing; one of " + strings.Join(readingKinds(), ", ")}
		}
		return Measurement{}, &FieldError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q; one of %s", clip(in.Kind), strings.Join(readingKinds(), ", "))}
	}
	if isComponentOnly(in.Kind) {
		return Measurement{}, &FieldError{Field: "kind", Reason: fmt.Sprintf("%q is a component of a panel; send it in \"components\" of its panel", in.Kind)}
	}
	m := Measurement{Kind: v.Kind, Provenance: in.Provenance}
	if err := checkID("device", in.DeviceID); err != nil {
		return Measurement{}, err
	}
	m.Device = in.Device
	m.Device.ID = in.DeviceID
	if err := checkDevice(&m.Device); err != nil {
		return Measurement{}, err
	}

	subj, err := in.subject(v)
	if err != nil {
		return Measurement{}, err
	}
	m.Subject = subj

	if in.Time == "" {
		return Measurement{}, errNoTime
	}
	if m.Time, err = parseTime("time", in.Time); err != nil {
		return Measurement{}, err
	}
	if in.End != "" {
		if m.End, err = parseTime("end", in.End); err != nil {
			return Measurement{}, err
		}
		if m.End.Before(m.Time) {
			return Measurement{}, &FieldError{Field: "end", Reason: "before time"}
		}
	}

	switch in.Status {
	case "", "final", "preliminary", "amended", "corrected", "entered-in-error", "unknown":
		m.Status = in.Status
	default:
		return Measurement{}, &FieldError{Field: "status", Reason: "must be final, preliminary, amended, corrected, entered-in-error or unknown"}
	}

	if len(v.Components) > 0 {
		if in.Value != "" {
			return Measurement{}, &FieldError{Field: "value", Reason: v.Kind + " is a panel: give its parts in \"components\", not a value"}
		}
		comps, err := components(v, in.Components)
		if err != nil {
			return Measurement{}, err
		}
		m.Components = comps
		return m, nil
	}
	if len(in.Components) > 0 {
		return Measurement{}, &FieldError{Field: "components", Reason: v.Kind + " has no components"}
	}
	if in.Value == "" {
		if in.Absent == "" {
			return Measurement{}, &FieldError{Field: "value", Reason: "missing (give dataAbsentReason when the device reported no value)"}
		}
		if !absentReasons[in.Absent] {
			return Measurement{}, &FieldError{Field: "dataAbsentReason", Reason: "not a data-absent-reason code: one of " + strings.Join(absentReasonList, ", ")}
		}
		m.Absent, m.Unit = in.Absent, v.Unit.UCUM
		return m, nil
	}
	if in.Absent != "" {
		return Measurement{}, &FieldError{Field: "dataAbsentReason", Reason: "given together with value"}
	}
	if m.Value, err = v.normalise(in.Value, in.Unit); err != nil {
		return Measurement{}, err
	}
	m.Unit = v.Unit.UCUM
	return m, nil
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &FieldError{Field: field, Reason: "must be RFC 3339 with a UTC offset, e.g. 2026-11-25T10:15:00Z"}
	}
	// RFC 3339 allows year 0000 and offsets up to ±23:59; a FHIR dateTime
	// does not, and an EHR would reject the Observation.
	if _, off := t.Zone(); t.Year() < 1 || off < -14*3600 || off > 14*3600 {
		return time.Time{}, &FieldError{Field: field, Reason: "not a valid FHIR dateTime: the year must be 0001 or later and the UTC offset between -14:00 and +14:00"}
	}
	return t, nil
}

func (in Input) subject(v Vital) (Subject, error) {
	s := Subject{Type: in.SubjectType, ID: in.SubjectID}
	switch {
	case in.PatientID != "" || in.PatientIdentifierValue != "":
		if s.Type != "" && s.Type != "Patient" || s.ID != "" {
			return Subject{}, &FieldError{Field: "subject", Reason: "give either patient or subject, not both"}
		}
		s = Subject{Type: "Patient", ID: in.PatientID, IdentifierSystem: in.PatientIdentifierSystem, IdentifierValue: in.PatientIdentifierValue}
		if s.ID != "" {
			if err := checkID("patient", s.ID); err != nil {
				return Subject{}, err
			}
			if s.IdentifierValue != "" {
				return Subject{}, &FieldError{Field: "patientIdentifier", Reason: "give either patient or patientIdentifier, not both"}
			}
		} else if s.IdentifierSystem == "" || !strings.Contains(s.IdentifierSystem, ":") {
			return Subject{}, &FieldError{Field: "patientIdentifier.system", Reason: "required: an absolute URI naming the identifier's namespace"}
		} else if len(s.IdentifierValue) > 128 || strings.ContainsAny(s.IdentifierValue, "|\r\n") {
			return Subject{}, &FieldError{Field: "patientIdentifier.value", Reason: "at most 128 characters, without '|' or line breaks"}
		}
	case s.Type == "" && s.ID == "":
		if v.defaultSubject() == "Patient" {
			return Subject{}, &FieldError{Field: "patient", Reason: "missing"}
		}
		// Cold-chain and device-health readings are about the device itself.
		s = Subject{Type: v.defaultSubject(), ID: in.DeviceID}
		if s.Type == "Location" {
			s.Type = "Device"
		}
	default:
		if s.Type == "" {
			s.Type = v.defaultSubject()
		}
		if err := checkID("subject.id", s.ID); err != nil {
			return Subject{}, err
		}
	}
	if !v.subjectAllowed(s.Type) {
		allowed := v.Subjects
		if len(allowed) == 0 {
			allowed = []string{"Patient"}
		}
		return Subject{}, &FieldError{Field: "subject.type", Reason: fmt.Sprintf("%q not allowed for %s; use %s", clip(s.Type), v.Kind, strings.Join(allowed, " or "))}
	}
	return s, nil
}

func components(v Vital, in []InputComponent) ([]Component, error) {
	given := map[string]InputComponent{}
	for i, c := range in {
		field := "components[" + strconv.Itoa(i) + "]"
		if !contains(v.Components, c.Kind) {
			return nil, &FieldError{Field: field + ".kind", Reason: fmt.Sprintf("%q is not a part of %s; use %s", clip(c.Kind), v.Kind, strings.Join(v.Components, ", "))}
		}
		if _, dup := given[c.Kind]; dup {
			return nil, &FieldError{Field: field + ".kind", Reason: c.Kind + " given twice"}
		}
		given[c.Kind] = c
	}
	var out []Component
	for i, kind := range v.Components {
		cv, _ := Lookup(kind)
		c, ok := given[kind]
		field := "components[" + kind + "]"
		switch {
		case !ok && i >= 2:
			continue // parts after the first two (e.g. mean arterial pressure) are optional
		case !ok:
			// The profile wants every required part present; a part the device
			// did not report says so (vs-3) rather than vanishing.
			out = append(out, Component{Kind: kind, Unit: cv.Unit.UCUM, Absent: "unknown"})
		case c.Value == "":
			reason := c.Absent
			if reason == "" {
				reason = "unknown"
			}
			if !absentReasons[reason] {
				return nil, &FieldError{Field: field + ".dataAbsentReason", Reason: "not a data-absent-reason code"}
			}
			out = append(out, Component{Kind: kind, Unit: cv.Unit.UCUM, Absent: reason})
		default:
			val, err := cv.normalise(c.Value, c.Unit)
			if err != nil {
				return nil, prefixed(field, err)
			}
			out = append(out, Component{Kind: kind, Value: val, Unit: cv.Unit.UCUM})
		}
	}
	if len(given) == 0 {
		return nil, &FieldError{Field: "components", Reason: "missing: " + v.Kind + " needs at least one of " + strings.Join(v.Components, ", ")}
	}
	return out, nil
}

// absentReasons are the R4 data-absent-reason codes.
var absentReasonList = []string{"unknown", "asked-unknown", "temp-unknown", "not-asked", "asked-declined", "masked",
	"not-applicable", "unsupported", "as-text", "error", "not-a-number", "negative-infinity", "positive-infinity",
	"not-performed", "not-permitted"}

var absentReasons = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range absentReasonList {
		m[c] = true
	}
	return m
}()

var hex16 = regexp.MustCompile(`^[0-9A-Fa-f]{16}$`)
var hex12 = regexp.MustCompile(`^[0-9A-Fa-f]{12}$`)

// checkDevice normalises EUI-64 and MAC to bare upper-case hex.
func checkDevice(d *Device) error {
	if d.EUI64 != "" {
		e := strings.ToUpper(stripSeparators(d.EUI64))
		if !hex16.MatchString(e) {
			return &FieldError{Field: "deviceInfo.eui64", Reason: "must be 16 hex digits (EUI-64), separators allowed"}
		}
		d.EUI64 = e
	}
	if d.MAC != "" {
		e := strings.ToUpper(stripSeparators(d.MAC))
		if !hex12.MatchString(e) {
			return &FieldError{Field: "deviceInfo.mac", Reason: "must be 12 hex digits (EUI-48), separators allowed"}
		}
		d.MAC = e
	}
	for name, s := range map[string]string{"serial": d.Serial, "model": d.Model, "manufacturer": d.Manufacturer} {
		if len(s) > 200 {
			return &FieldError{Field: "deviceInfo." + name, Reason: "longer than 200 characters"}
		}
	}
	return nil
}

func stripSeparators(s string) string {
	return strings.NewReplacer("-", "", ":", "", " ", "", ".", "").Replace(s)
}

func checkID(field, v string) error {
	if v == "" {
		return &FieldError{Field: field, Reason: "missing"}
	}
	if !fhirID.MatchString(v) {
		return &FieldError{Field: field, Reason: "must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.' (a FHIR id)"}
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func isComponentOnly(kind string) bool {
	for _, v := range catalogue {
		if contains(v.Components, kind) {
			return true
		}
	}
	return false
}

// readingKinds lists the kinds a reading may have (panels, not their parts).
func readingKinds() []string {
	var out []string
	for _, k := range Kinds() {
		if !isComponentOnly(k) {
			out = append(out, k)
		}
	}
	return out
}

// clip shortens an echoed input token so errors stay bounded.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// canonicalDecimal turns a JSON number into a FHIR decimal literal. FHIR
// decimals have no exponent form, so 7.2e1 becomes 72; plain literals are kept
// as written to preserve the device's precision.
func canonicalDecimal(s string) string {
	if !strings.ContainsAny(s, "eE") {
		return strings.TrimPrefix(s, "+")
	}
	f, _ := strconv.ParseFloat(s, 64)
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// jsonError turns encoding/json's errors into FieldErrors without echoing
// input values, which may carry patient data.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.String()
		switch want {
		case "json.Number":
			want = "number"
		case "*mappers.nativeDevice", "*mappers.nativeIdentifier", "*mappers.nativeSubject", "mappers.nativeComponent":
			want = "object"
		case "[]mappers.nativeComponent":
			want = "array"
		}
		return &FieldError{Field: te.Field, Reason: fmt.Sprintf("must be a %s, got %s", want, te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Reason: fmt.Sprintf("malformed JSON at byte %d", se.Offset)}
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return &FieldError{Field: clip(strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)), Reason: "unknown field"}
	}
	if strings.Contains(msg, "invalid number literal") {
		return &FieldError{Field: "value", Reason: "not a number"}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Reason: "empty or truncated JSON"}
	}
	return &FieldError{Reason: "malformed JSON"}
}
