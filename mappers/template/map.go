package template

import (
	"errors"

	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/fhir-bridge/fhir-bridge/mappers/medtech"
)

// Map extracts every reading from one JSON payload: readings in template
// order and, for each, one Input per token its match expression selects, in
// document order. Values are text as in the payload (numbers keep their
// literal); times are converted to RFC 3339 by timeFormat; nothing is checked
// against the catalogue yet: run each Input through Input.Measurement, which
// refuses a bad reading without affecting the others.
//
// A payload no reading matches gives no Inputs and no error. Any failure to
// extract aborts the whole payload (nil Inputs): a *PayloadError when it is
// not a JSON object or array, an *EvalError naming the reading, the match,
// the field and the expression otherwise. No error quotes payload values.
func (t *Template) Map(payload []byte) ([]mappers.Input, error) {
	got, err := t.extract(payload, false)
	if err != nil || len(got) == 0 {
		return nil, err
	}
	out := make([]mappers.Input, len(got))
	for i, g := range got {
		out[i] = g.Input
	}
	return out, nil
}

// Extracted is one reading MapEach found: its Input, or the *EvalError that
// kept it from being extracted.
type Extracted struct {
	Input mappers.Input
	Err   error
}

// MapEach is Map with each matched token on its own: a token whose fields
// cannot be extracted (a missing device or time, a value that is not a
// scalar) is returned with its *EvalError and the others go on. A payload
// that is not JSON, or a match expression that fails, is still the error
// of the whole payload.
func (t *Template) MapEach(payload []byte) ([]Extracted, error) {
	return t.extract(payload, true)
}

func (t *Template) extract(payload []byte, each bool) ([]Extracted, error) {
	root, err := medtech.ParseDocument(payload)
	if err != nil {
		var pe *medtech.PayloadError
		if errors.As(err, &pe) {
			return nil, &PayloadError{Vendor: t.vendor, Line: pe.Line, Column: pe.Column, Msg: pe.Msg}
		}
		return nil, &PayloadError{Vendor: t.vendor, Msg: err.Error()}
	}
	if typ := root.Type(); typ != "object" && typ != "array" {
		return nil, &PayloadError{Vendor: t.vendor, Msg: "expected a JSON object or array, got " + typ}
	}
	var out []Extracted
	for i := range t.readings {
		r := &t.readings[i]
		matches, err := r.match.q.Select(root, root)
		if err != nil {
			return nil, &EvalError{Vendor: t.vendor, Reading: i, Kind: r.kind, Match: -1, Field: "match", Expression: r.match.src, Err: err}
		}
		for j, tok := range matches {
			in, err := r.input(root, tok)
			if err != nil {
				ee := &EvalError{Vendor: t.vendor, Reading: i, Kind: r.kind, Match: j, Err: err}
				var f *failure
				if errors.As(err, &f) {
					ee.Field, ee.Expression, ee.Err = f.field, f.e.src, f.err
				}
				if !each {
					return nil, ee
				}
				out = append(out, Extracted{Err: ee})
				continue
			}
			out = append(out, Extracted{Input: in})
		}
	}
	return out, nil
}

// failure is an extraction failure of one field, before Map adds where.
type failure struct {
	field string
	e     *expr
	err   error
}

func (f *failure) Error() string { return f.field + ": " + f.err.Error() }

// eval returns the text the expression selects: "" when it selects nothing,
// null or "".
func (e *expr) eval(root, tok medtech.Token) (string, error) {
	from := tok
	if e.root {
		from = root
	}
	v, ok, err := e.q.SelectOne(root, from)
	if err != nil || !ok {
		return "", err
	}
	s, ok := v.Text()
	if !ok && v.Type() != "null" {
		return "", ErrNotScalar
	}
	return s, nil
}

// get evaluates e for field; a missing value is an error when required.
func get(root, tok medtech.Token, field string, e *expr, required bool) (string, error) {
	if e == nil {
		return "", nil
	}
	s, err := e.eval(root, tok)
	if err == nil && s == "" && required {
		err = ErrMissing
	}
	if err != nil {
		return "", &failure{field: field, e: e, err: err}
	}
	return s, nil
}

// get returns the literal, or evaluates the expression.
func (t text) get(root, tok medtech.Token, field string, required bool) (string, error) {
	if t.e == nil {
		return t.lit, nil
	}
	return get(root, tok, field, t.e, required)
}

func (r *reading) timeField(root, tok medtech.Token, field string, e *expr, required bool) (string, error) {
	s, err := get(root, tok, field, e, required)
	if err != nil || s == "" {
		return s, err
	}
	if s, err = r.timeFormat.convert(s); err != nil {
		return "", &failure{field: field, e: e, err: err}
	}
	return s, nil
}

// input extracts one reading from the matched token tok. Fields are
// extracted in a fixed order (device, time, end, subject, device details,
// status, value or components), so the first failure is reported.
func (r *reading) input(root, tok medtech.Token) (mappers.Input, error) {
	in := mappers.Input{Kind: r.kind, Provenance: mappers.Provenance{Template: r.provenance}}
	var err error
	if in.DeviceID, err = get(root, tok, "device", r.device, true); err != nil {
		return in, err
	}
	if in.Time, err = r.timeField(root, tok, "time", r.time, true); err != nil {
		return in, err
	}
	if in.End, err = r.timeField(root, tok, "end", r.end, false); err != nil {
		return in, err
	}
	switch {
	case r.patient != nil:
		in.PatientID, err = get(root, tok, "patient", r.patient, true)
	case r.identifier != nil:
		in.PatientIdentifierSystem = r.idSystem
		in.PatientIdentifierValue, err = get(root, tok, "patientIdentifier", r.identifier, true)
	case r.subjectID != nil:
		in.SubjectType = r.subject
		in.SubjectID, err = get(root, tok, "subject.id", r.subjectID, true)
	}
	if err != nil {
		return in, err
	}
	for _, d := range r.deviceInfo {
		s, err := d.t.get(root, tok, d.name, false)
		if err != nil {
			return in, err
		}
		d.set(&in.Device, s)
	}
	if in.Status, err = r.status.get(root, tok, "status", false); err != nil {
		return in, err
	}
	if r.value != nil {
		in.Value, in.Unit, in.Absent, err = extractValue(root, tok, readingValueFields, r.value, r.unit, r.absent, false)
		return in, err
	}
	in.Components = make([]mappers.InputComponent, 0, len(r.components))
	for _, c := range r.components {
		v, u, a, err := extractValue(root, tok, c.fields, c.value, c.unit, c.absent, c.optional)
		if err != nil {
			return in, err
		}
		if v != "" || a != "" {
			in.Components = append(in.Components, mappers.InputComponent{Kind: c.kind, Value: v, Unit: u, Absent: a})
		}
	}
	return in, nil
}

// extractValue reads a value with its unit, or its data-absent reason when
// the value selects nothing. A missing value without a reason is an error
// unless optional, and then gives nothing at all.
func extractValue(root, tok medtech.Token, f valueFields, ve *expr, unit, absent text, optional bool) (v, u, a string, err error) {
	if v, err = get(root, tok, f.value, ve, false); err != nil {
		return "", "", "", err
	}
	if v == "" {
		if a, err = absent.get(root, tok, f.absent, false); err != nil {
			return "", "", "", err
		}
		if a == "" && !optional {
			err = &failure{field: f.value, e: ve, err: ErrMissing}
		}
		return "", "", a, err
	}
	// A unit expression is required: guessing the catalogue unit for a
	// value the vendor sent in another unit would be wrong silently.
	if u, err = unit.get(root, tok, f.unit, true); err != nil {
		return "", "", "", err
	}
	return v, u, "", nil
}
