package mappers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FieldError says which input field is wrong and why.
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

// nativeReading is the bridge's native JSON format, version 1
// (docs/native-format.md).
type nativeReading struct {
	Kind    string      `json:"kind"`
	Device  string      `json:"device"`
	Patient string      `json:"patient"`
	Time    string      `json:"time"`
	Value   json.Number `json:"value"`
	Unit    string      `json:"unit"`
}

// fhirID is the FHIR id datatype's pattern; device and patient become
// literal references Device/<id> and Patient/<id>, so they must match it.
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

	v, ok := Lookup(r.Kind)
	if !ok {
		kinds := Kinds()
		sort.Strings(kinds)
		if r.Kind == "" {
			return Measurement{}, &FieldError{Field: "kind", Reason: "missing; one of " + strings.Join(kinds, ", ")}
		}
		return Measurement{}, &FieldError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q; one of %s", r.Kind, strings.Join(kinds, ", "))}
	}
	if err := checkID("device", r.Device); err != nil {
		return Measurement{}, err
	}
	if err := checkID("patient", r.Patient); err != nil {
		return Measurement{}, err
	}
	if r.Time == "" {
		return Measurement{}, &FieldError{Field: "time", Reason: "missing"}
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return Measurement{}, &FieldError{Field: "time", Reason: "must be RFC 3339 with a UTC offset, e.g. 2026-11-25T10:15:00Z"}
	}
	// RFC 3339 allows year 0000 and offsets up to ±23:59; a FHIR dateTime
	// does not, and an EHR would reject the Observation.
	if _, off := t.Zone(); t.Year() < 1 || off < -14*3600 || off > 14*3600 {
		return Measurement{}, &FieldError{Field: "time", Reason: "not a valid FHIR dateTime: the year must be 0001 or later and the UTC offset between -14:00 and +14:00"}
	}
	if r.Value == "" {
		return Measurement{}, &FieldError{Field: "value", Reason: "missing"}
	}
	f, err := strconv.ParseFloat(string(r.Value), 64)
	if err != nil {
		return Measurement{}, &FieldError{Field: "value", Reason: "not a number"}
	}
	if f < v.Min || f > v.Max {
		return Measurement{}, &FieldError{Field: "value", Reason: fmt.Sprintf("%s outside the plausible range %g-%g %s for %s", r.Value, v.Min, v.Max, v.UCUM, v.Kind)}
	}
	unit := v.UCUM
	if r.Unit != "" {
		if !slices.Contains(v.Aliases, r.Unit) {
			return Measurement{}, &FieldError{Field: "unit", Reason: fmt.Sprintf("unit %q not accepted for %s; use %s", r.Unit, v.Kind, strings.Join(v.Aliases, ", "))}
		}
	}
	return Measurement{
		Kind:      v.Kind,
		DeviceID:  r.Device,
		PatientID: r.Patient,
		Time:      t,
		Value:     canonicalDecimal(string(r.Value)),
		Unit:      unit,
	}, nil
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

// canonicalDecimal turns a JSON number into a FHIR decimal literal. FHIR
// decimals have no exponent form, so 7.2e1 becomes 72; plain literals are kept
// as written to preserve the device's precision.
func canonicalDecimal(s string) string {
	if !strings.ContainsAny(s, "eE") {
		return s
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
		if want == "json.Number" {
			want = "number"
		}
		return &FieldError{Field: te.Field, Reason: fmt.Sprintf("must be a %s, got %s", want, te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Reason: fmt.Sprintf("malformed JSON at byte %d", se.Offset)}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return &FieldError{Field: strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`), Reason: "unknown field"}
	}
	if strings.Contains(err.Error(), "invalid number literal") {
		return &FieldError{Field: "value", Reason: "not a number"}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Reason: "empty or truncated JSON"}
	}
	return &FieldError{Reason: "malformed JSON: " + err.Error()}
}
