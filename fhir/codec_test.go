package fhir

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"
)

func newCodec(t testing.TB) *Codec {
	t.Helper()
	c, err := NewCodec()
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	c := newCodec(t)
	tests := []struct {
		name string
		obs  func() *observationpb.Observation
	}{
		{"heart rate", heartRate},
		{"blood pressure panel", bloodPressure},
		{
			name: "decimal precision and offset kept",
			obs: func() *observationpb.Observation {
				o := heartRate()
				o.GetValue().GetQuantity().Value.Value = "72.50"
				o.GetEffective().GetDateTime().Timezone = "+05:30"
				o.GetEffective().GetDateTime().Precision = dtpb.DateTime_MILLISECOND
				return o
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := c.Encode(tt.obs())
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			msg, err := c.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			cr, ok := msg.(*crpb.ContainedResource)
			if !ok {
				t.Fatalf("Decode returned %T, want *ContainedResource", msg)
			}
			// Compare with a fresh message: Encode may rewrite references in
			// the message it was given.
			if diff := cmp.Diff(tt.obs(), cr.GetObservation(), protocmp.Transform()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// The decoded resource encodes to the same bytes: encoding is stable.
			again, err := c.Encode(cr.GetObservation())
			if err != nil {
				t.Fatalf("re-Encode: %v", err)
			}
			if !bytes.Equal(b, again) {
				t.Errorf("re-encoding differs:\n first %s\nsecond %s", b, again)
			}
		})
	}
}

func TestEncodeOutput(t *testing.T) {
	o := heartRate()
	o.GetValue().GetQuantity().Value.Value = "72.50"
	b, err := newCodec(t).Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"resourceType":"Observation"`,
		`"status":"final"`,
		`"subject":{"reference":"Patient/p-1"}`,
		`"device":{"reference":"Device/hrm-1"}`,
		`"effectiveDateTime":"2026-11-25T10:15:00Z"`,
		`"value":72.50`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("output lacks %s:\n%s", want, b)
		}
	}
	if bytes.ContainsAny(b, "\n\t") {
		t.Errorf("output is not compact:\n%s", b)
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	c := newCodec(t)
	tests := []struct {
		name string
		mut  func(o *observationpb.Observation)
		want string // substring of the issue message
	}{
		{
			name: "code with a leading space",
			mut:  func(o *observationpb.Observation) { o.Code.Coding[0].Code.Value = " 8867-4" },
			want: "invalid Code format",
		},
		{
			name: "code with two consecutive spaces",
			mut:  func(o *observationpb.Observation) { o.Code.Coding[0].Code.Value = "8867  4" },
			want: "invalid Code format",
		},
		{
			name: "empty code",
			mut:  func(o *observationpb.Observation) { o.Code.Coding[0].Code.Value = "" },
			want: "invalid Code format",
		},
		{
			name: "resource id with a space",
			mut:  func(o *observationpb.Observation) { o.Id = &dtpb.Id{Value: "bad id"} },
			want: "invalid Id format",
		},
		{
			name: "subject of a type Observation.subject does not allow",
			mut: func(o *observationpb.Observation) {
				o.Subject = &dtpb.Reference{Reference: &dtpb.Reference_OrganizationId{OrganizationId: &dtpb.ReferenceId{Value: "o-1"}}}
			},
			want: "invalid reference to a Organization resource",
		},
		{
			name: "string with a NUL character",
			mut:  func(o *observationpb.Observation) { o.Code.Coding[0].Display.Value = "Heart\x00rate" },
			want: "invalid characters",
		},
		{
			name: "missing required status",
			mut:  func(o *observationpb.Observation) { o.Status = nil },
			want: `missing required field "status"`,
		},
		{
			name: "missing required code",
			mut:  func(o *observationpb.Observation) { o.Code = nil },
			want: `missing required field "code"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := heartRate()
			tt.mut(o)
			b, err := c.Encode(o)
			if err == nil {
				t.Fatalf("Encode succeeded: %s", b)
			}
			if b != nil {
				t.Errorf("Encode returned output with an error: %s", b)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v, want *ValidationError", err, err)
			}
			if !IsValidationError(err) {
				t.Error("IsValidationError = false")
			}
			if len(ve.Issues) == 0 {
				t.Fatal("no issues")
			}
			if got := ve.Issues[0].Path; got != "Observation" {
				t.Errorf("issue path %q, want Observation", got)
			}
			if !strings.Contains(ve.Issues[0].Message, tt.want) {
				t.Errorf("issue message %q lacks %q", ve.Issues[0].Message, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "invalid FHIR resource: ") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	c := newCodec(t)
	const okCode = `"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]}`
	tests := []struct {
		name string
		in   string
		// For a *ValidationError, the expected issue paths and a substring of
		// the first message; for a plain error, a substring of Error().
		paths   []string
		message string
	}{
		{name: "empty input", in: ``, message: "invalid JSON"},
		{name: "malformed JSON", in: `{"resourceType":"Observation",`, message: "invalid JSON"},
		{name: "a JSON array", in: `[]`, message: "invalid JSON"},
		{name: "no resourceType", in: `{"status":"final"}`, message: "resourceType"},
		{name: "unknown resourceType", in: `{"resourceType":"Nope"}`, message: "unknown resource type"},
		{
			name:    "unknown field",
			in:      `{"resourceType":"Observation","status":"final",` + okCode + `,"statuss":"final"}`,
			message: "unknown field",
		},
		{
			name:    "status outside its value set",
			in:      `{"resourceType":"Observation","status":"done",` + okCode + `}`,
			message: "Observation.status",
		},
		{
			name:    "effectiveDateTime with an impossible offset",
			in:      `{"resourceType":"Observation","status":"final",` + okCode + `,"effectiveDateTime":"2026-11-25T10:15:00+23:00"}`,
			message: "Observation.effectiveDateTime",
		},
		{
			name:    "bad coding code",
			in:      `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":" 8867-4"}]}}`,
			paths:   []string{"Observation.code.coding[0].code"},
			message: "invalid Code format",
		},
		{
			name:    "bad id",
			in:      `{"resourceType":"Observation","id":"bad id","status":"final",` + okCode + `}`,
			paths:   []string{"Observation.id"},
			message: "invalid Id format",
		},
		{
			name:    "subject of a disallowed type",
			in:      `{"resourceType":"Observation","status":"final",` + okCode + `,"subject":{"reference":"Organization/o-1"}}`,
			paths:   []string{"Observation.subject"},
			message: "Organization",
		},
		{
			name:    "missing required status",
			in:      `{"resourceType":"Observation",` + okCode + `}`,
			paths:   []string{"Observation"},
			message: `missing required field "status"`,
		},
		{
			name:    "every issue is reported, not just the first",
			in:      `{"resourceType":"Observation","id":"bad id","status":"final","code":{"coding":[{"system":"http://loinc.org","code":" x"}]}}`,
			paths:   []string{"Observation.id", "Observation.code.coding[0].code"},
			message: "invalid",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := c.Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded: %v", msg)
			}
			if msg != nil {
				t.Errorf("Decode returned a message with an error: %v", msg)
			}
			var ve *ValidationError
			if tt.paths == nil {
				if errors.As(err, &ve) {
					t.Fatalf("got *ValidationError %v, want a plain error", err)
				}
				if !strings.Contains(err.Error(), tt.message) {
					t.Errorf("error %q lacks %q", err, tt.message)
				}
				return
			}
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v, want *ValidationError", err, err)
			}
			var paths []string
			for _, is := range ve.Issues {
				paths = append(paths, is.Path)
				if is.Severity != "error" {
					t.Errorf("issue %v: severity %q", is, is.Severity)
				}
			}
			if diff := cmp.Diff(tt.paths, paths, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("issue paths (-want +got):\n%s", diff)
			}
			if !strings.Contains(ve.Issues[0].Message, tt.message) {
				t.Errorf("message %q lacks %q", ve.Issues[0].Message, tt.message)
			}
			for _, p := range tt.paths {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("Error() %q does not name %s", err, p)
				}
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	err := &ValidationError{Issues: []Issue{
		{Path: "Observation.id", Severity: "error", Message: "bad"},
		{Path: "Observation.code", Severity: "error", Message: "worse"},
	}}
	if got, want := err.Error(), "invalid FHIR resource: Observation.id: bad; Observation.code: worse"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !IsValidationError(errors.Join(errors.New("context"), err)) {
		t.Error("IsValidationError does not see a wrapped *ValidationError")
	}
	if IsValidationError(errors.New("plain")) {
		t.Error("IsValidationError(plain error) = true")
	}
}
