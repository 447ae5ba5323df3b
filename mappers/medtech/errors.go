package medtech

import (
	"errors"
	"fmt"
)

// ErrRequiredValueMissing reports that an expression whose value is required
// (deviceIdExpression, timestampExpression, a defined correlationIdExpression,
// or a value with "required": true) selected nothing, null or "".
var ErrRequiredValueMissing = errors.New("required value not found")

// LoadError is a problem in a template file. Path locates the offending
// element in the file's JSON (for example
// "template[2].template.values[0].valueExpression"); Line and Column are
// 1-based and locate its text (0 when the file is not valid JSON at all).
type LoadError struct {
	Path   string
	Line   int
	Column int
	Msg    string
}

func (e *LoadError) Error() string {
	loc := e.Path
	if loc == "" {
		loc = "$"
	}
	if e.Line > 0 {
		return fmt.Sprintf("medtech: template %s (line %d, column %d): %s", loc, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("medtech: template %s: %s", loc, e.Msg)
}

// EvalError is a failure to build a measurement from a payload.
type EvalError struct {
	// TemplateType is the device template type, e.g. "CalculatedContent".
	TemplateType string
	// TypeName is the template's typeName.
	TypeName string
	// TemplatePath locates the template in its file, e.g. "template[1].template".
	TemplatePath string
	// Field is what was being extracted: "typeMatchExpression",
	// "deviceIdExpression", ..., or `value "hr"` for a value.
	Field string
	// Expression is the expression text that failed.
	Expression string
	// Err is the cause; errors.Is works with ErrRequiredValueMissing and
	// ErrMultipleTokens.
	Err error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("medtech: %s %q (%s): %s: expression %q: %v",
		e.TemplateType, e.TypeName, e.TemplatePath, e.Field, e.Expression, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

// PayloadError reports a payload that cannot be mapped at all: not JSON, or
// not a JSON object or array.
type PayloadError struct {
	Line   int
	Column int
	Msg    string
}

func (e *PayloadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("medtech: invalid payload (line %d, column %d): %s", e.Line, e.Column, e.Msg)
	}
	return "medtech: invalid payload: " + e.Msg
}
