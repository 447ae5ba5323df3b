package template

import (
	"errors"
	"fmt"
)

// ErrMissing reports that an expression whose value is required selected
// nothing, null or "".
var ErrMissing = errors.New("required value not found")

// ErrNotScalar reports that an expression selected a JSON object or array
// where a single value is expected.
var ErrNotScalar = errors.New("selected a JSON object or array, not a single value")

// ErrTimeFormat reports that a time did not match the reading's timeFormat.
var ErrTimeFormat = errors.New("time does not match the timeFormat")

// LoadError is a problem in a template file. Path locates the offending
// element in the YAML ("readings[1].components[0].value"; "" for the file as
// a whole); Line and Column are 1-based and locate its text (0 when unknown).
type LoadError struct {
	Path   string
	Line   int
	Column int
	Reason string
}

func (e *LoadError) Error() string {
	loc := "template"
	if e.Path != "" {
		loc += ": " + e.Path
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d, column %d): %s", loc, e.Line, e.Column, e.Reason)
	}
	return loc + ": " + e.Reason
}

// EvalError is a failure to extract a reading from a payload. Its text names
// the template, the reading, the field and the expression, never a value
// from the payload, which may be patient data.
type EvalError struct {
	// Vendor is the template's vendor.
	Vendor string
	// Reading is the index of the reading in the template's readings.
	Reading int
	// Kind is the reading's kind.
	Kind string
	// Match is the index, in document order, of the token the reading's
	// match expression selected; -1 when the match expression itself failed.
	Match int
	// Field is the template field that failed, as its YAML path within the
	// reading: "match", "device", "time", "components[1].value", ...
	Field string
	// Expression is the expression text that failed.
	Expression string
	// Err is the cause; errors.Is works with ErrMissing, ErrNotScalar,
	// ErrTimeFormat, medtech.ErrMultipleTokens, medtech.ErrTooManyTokens and
	// medtech.ErrIncomparable.
	Err error
}

func (e *EvalError) Error() string {
	at := fmt.Sprintf("readings[%d] (%s)", e.Reading, e.Kind)
	if e.Match >= 0 {
		at += fmt.Sprintf(", match %d", e.Match)
	}
	return fmt.Sprintf("template %s: %s: %s: expression %q: %v", e.Vendor, at, e.Field, e.Expression, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

// PayloadError reports a payload that cannot be mapped at all: not JSON, or
// not a JSON object or array.
type PayloadError struct {
	Vendor string
	Line   int // 1-based; 0 when unknown
	Column int
	Msg    string
}

func (e *PayloadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("template %s: invalid payload (line %d, column %d): %s", e.Vendor, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("template %s: invalid payload: %s", e.Vendor, e.Msg)
}
