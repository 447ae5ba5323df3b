package fhir

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/fhir/go/jsonformat/fhirvalidate"
	"google.golang.org/protobuf/proto"
)

// Issue is one validation problem found in a resource, with the FHIRPath-like
// location of the element at fault.
type Issue struct {
	Path     string
	Severity string // "error" or "warning"
	Message  string
}

func (i Issue) String() string {
	return fmt.Sprintf("%s %s: %s", i.Severity, i.Path, i.Message)
}

// ValidationError reports the issues that made a resource invalid.
type ValidationError struct {
	Issues []Issue
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = is.Path + ": " + is.Message
	}
	return "invalid FHIR resource: " + strings.Join(parts, "; ")
}

// Codec validates and encodes R4 resources as FHIR JSON. It is safe for
// concurrent use, but the messages it encodes are not: google/fhir's marshaller
// rewrites references in place, so never encode one message from two goroutines.
type Codec struct {
	m *jsonformat.Marshaller
	u *jsonformat.Unmarshaller
}

// NewCodec returns a codec writing compact FHIR R4 JSON.
func NewCodec() (*Codec, error) {
	m, err := jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("fhir marshaller: %w", err)
	}
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("fhir unmarshaller: %w", err)
	}
	return &Codec{m: m, u: u}, nil
}

// Encode validates a resource (required fields, primitive formats, reference
// types) and marshals it. The marshaller alone validates nothing, so an invalid
// resource would otherwise leave the bridge and be rejected by the EHR.
func (c *Codec) Encode(res proto.Message) ([]byte, error) {
	if err := fhirvalidate.Validate(res); err != nil {
		return nil, &ValidationError{Issues: []Issue{{Path: resourceName(res), Severity: "error", Message: err.Error()}}}
	}
	b, err := c.m.MarshalResource(res)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", resourceName(res), err)
	}
	return b, nil
}

// Decode parses FHIR JSON with google/fhir's validating unmarshaller and
// returns the resource. Validation problems come back as a *ValidationError
// listing every issue with its path; malformed JSON or an unknown resource type
// come back as a plain error.
func (c *Codec) Decode(data []byte) (proto.Message, error) {
	r := &issueCollector{}
	msg, err := c.u.UnmarshalWithErrorReporter(data, r)
	if err != nil {
		return nil, fmt.Errorf("parse FHIR JSON: %w", err)
	}
	if r.hasErrors {
		return nil, &ValidationError{Issues: r.issues}
	}
	return msg, nil
}

// issueCollector gathers every issue instead of stopping at the first, so a
// caller sees all that is wrong with a resource at once.
type issueCollector struct {
	issues    []Issue
	hasErrors bool
}

func (r *issueCollector) ReportValidationError(path string, err error) error {
	r.hasErrors = true
	r.issues = append(r.issues, Issue{Path: path, Severity: "error", Message: err.Error()})
	return nil
}

func (r *issueCollector) ReportValidationWarning(path string, err error) error {
	r.issues = append(r.issues, Issue{Path: path, Severity: "warning", Message: err.Error()})
	return nil
}

func resourceName(m proto.Message) string {
	if m == nil {
		return "<nil>"
	}
	return string(m.ProtoReflect().Descriptor().Name())
}

// IsValidationError reports whether err carries validation issues.
func IsValidationError(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}
