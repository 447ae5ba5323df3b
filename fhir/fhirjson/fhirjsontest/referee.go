// Package fhirjsontest is the referee of fhirjson's differential tests:
// google/fhir's jsonformat marshaller behind fhirvalidate.Validate (the
// bridge's former encoder, fhir.Codec.Encode) and google/fhir's validating
// unmarshaller. It is for tests; it is as slow as the code fhirjson replaces.
package fhirjsontest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/fhir/go/jsonformat/fhirvalidate"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// Referee encodes and decodes with google/fhir. It is safe for concurrent
// use.
type Referee struct {
	m *jsonformat.Marshaller
	u *jsonformat.Unmarshaller
}

// New returns a referee writing compact R4 JSON and reading it with the
// validating unmarshaller (default time zone UTC).
func New() (*Referee, error) {
	m, err := jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
	if err != nil {
		return nil, err
	}
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, err
	}
	return &Referee{m: m, u: u}, nil
}

// Encode validates res with fhirvalidate.Validate and marshals it with
// jsonformat, as fhir.Codec.Encode does, on a clone: jsonformat rewrites
// typed references in place, and the caller's message must stay as built.
// A panic in google/fhir (it has some, e.g. on an enum number outside its
// enum) is returned as an error.
func (r *Referee) Encode(res proto.Message) (_ []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("jsonformat panicked: %v", p)
		}
	}()
	res = proto.Clone(res)
	if err := fhirvalidate.Validate(res); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return r.m.MarshalResource(res)
}

// Decode parses FHIR JSON with the validating unmarshaller; any validation
// issue is an error. The message is a ContainedResource.
func (r *Referee) Decode(b []byte) (proto.Message, error) {
	return r.u.Unmarshal(b)
}

// Verdict is the outcome of comparing a native encoding with the referee's.
type Verdict struct {
	// Mismatch describes a difference that breaks the contract; "" when
	// native and referee agree.
	Mismatch string
	// Note says why an allowed difference is allowed (e.g. native refuses a
	// resource whose referee encoding would not survive a round trip).
	Note string
	// Referee is the referee's output, when it produced one.
	Referee []byte
}

// Compare checks a native encoding of res (output native, or error
// nativeErr) against the referee. The contract:
//
//   - Where the referee encodes res faithfully (its output passes the
//     validating unmarshaller and decodes to res again), native must
//     succeed, its output must pass the validating unmarshaller, decode to
//     the same proto as the referee's, and be the same JSON value (member
//     order and insignificant whitespace aside; number literals compared as
//     written, so decimal precision counts).
//   - Where the referee refuses res, native must refuse it too.
//   - Where the referee's output does not survive its own round trip (it is
//     refused by the validating unmarshaller or decodes to something other
//     than res), or survives it but breaks a rule of FHIR R4 JSON that the
//     unmarshaller does not check (see Violation), native may refuse; if
//     native encodes, it must produce the same JSON value as the referee.
func (r *Referee) Compare(res proto.Message, native []byte, nativeErr error) Verdict {
	ref, refErr := r.Encode(res)
	if refErr != nil {
		if nativeErr == nil {
			return Verdict{Mismatch: fmt.Sprintf("native encoded what the referee refuses (%v):\n%s", refErr, native)}
		}
		return Verdict{Note: "both refuse"}
	}
	v := Verdict{Referee: ref}
	refMsg, refDecodeErr := r.Decode(ref)
	faithful := refDecodeErr == nil && proto.Equal(unwrap(refMsg), res)
	if nativeErr != nil {
		if faithful {
			if viol := Violation(ref); viol != "" {
				v.Note = "native refuses; the referee's output breaks FHIR R4: " + viol
			} else {
				v.Mismatch = fmt.Sprintf("native refused (%v) what the referee encodes faithfully:\n%s", nativeErr, ref)
			}
		} else {
			v.Note = "native refuses; the referee's output does not survive a round trip"
		}
		return v
	}
	if d := diffJSON(ref, native); d != "" {
		v.Mismatch = fmt.Sprintf("JSON differs (-referee +native):\n%s\nreferee: %s\nnative:  %s", d, ref, native)
		return v
	}
	nativeMsg, nativeDecodeErr := r.Decode(native)
	switch {
	case refDecodeErr == nil && nativeDecodeErr != nil:
		v.Mismatch = fmt.Sprintf("native output fails the validating unmarshaller: %v\n%s", nativeDecodeErr, native)
	case refDecodeErr != nil && nativeDecodeErr == nil:
		v.Mismatch = fmt.Sprintf("referee output fails the validating unmarshaller (%v) but native's passes", refDecodeErr)
	case refDecodeErr == nil:
		if !proto.Equal(refMsg, nativeMsg) {
			v.Mismatch = fmt.Sprintf("decoded protos differ (-referee +native):\n%s", cmp.Diff(refMsg, nativeMsg, protocmp.Transform()))
		}
	default:
		v.Note = "both outputs fail the validating unmarshaller"
	}
	return v
}

// unwrap returns the resource inside a ContainedResource.
func unwrap(m proto.Message) proto.Message {
	rm := m.ProtoReflect()
	od := rm.Descriptor().Oneofs().ByName("oneof_resource")
	if od == nil {
		return m
	}
	if f := rm.WhichOneof(od); f != nil {
		return rm.Get(f).Message().Interface()
	}
	return m
}

// diffJSON compares two JSON texts as values, numbers as their literals.
func diffJSON(a, b []byte) string {
	va, err := decodeJSON(a)
	if err != nil {
		return "referee output is not JSON: " + err.Error()
	}
	vb, err := decodeJSON(b)
	if err != nil {
		return "native output is not JSON: " + err.Error()
	}
	if reflect.DeepEqual(va, vb) {
		return ""
	}
	return cmp.Diff(va, vb)
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

// FHIR R4 dateTime and instant (datatypes.html); google/fhir's own pattern
// also lets year 0000 through.
var fhirDateTime = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)

// A relative literal reference "Type/id[/_history/version]" (references.html).
var (
	relativeRef = regexp.MustCompile(`^[A-Z][A-Za-z]+/`)
	literalRef  = regexp.MustCompile(`^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$`)
)

// dateTimeMembers are the dateTime and instant members of the resources
// fhirjson writes.
var dateTimeMembers = map[string]bool{
	"effectiveDateTime": true, "effectiveInstant": true, "issued": true, "lastUpdated": true, "start": true, "end": true,
	"valueDateTime": true, "valueInstant": true, "manufactureDate": true, "expirationDate": true,
}

// Violation returns the first rule of FHIR R4 JSON (json.html) that the
// JSON text b breaks among those google/fhir's validating unmarshaller does
// not check, or "": an empty string, object or array; a relative literal
// reference whose id is not a FHIR id ("Patient/", "Patient/a b"); a
// dateTime or instant outside the R4 pattern (year 0000).
func Violation(b []byte) string {
	v, err := decodeJSON(b)
	if err != nil {
		return "not JSON"
	}
	return violation(v, "", "")
}

func violation(v any, path, name string) string {
	switch x := v.(type) {
	case string:
		switch {
		case x == "":
			return "empty string at " + path
		case name == "reference" && relativeRef.MatchString(x) && !literalRef.MatchString(x):
			return "literal reference without a valid id at " + path
		case dateTimeMembers[name] && !fhirDateTime.MatchString(x):
			return "not an R4 dateTime at " + path
		}
	case map[string]any:
		if len(x) == 0 {
			return "empty object at " + path
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if r := violation(x[k], path+"."+k, k); r != "" {
				return r
			}
		}
	case []any:
		if len(x) == 0 {
			return "empty array at " + path
		}
		for i, e := range x {
			if r := violation(e, fmt.Sprintf("%s[%d]", path, i), name); r != "" {
				return r
			}
		}
	}
	return ""
}
