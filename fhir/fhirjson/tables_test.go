package fhirjson

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	apb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	devicepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/device_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestEnumTables checks the code tables against the enums' descriptors,
// rendered as google/fhir does: the FHIR original code when annotated, else
// the lower-cased name with '_' as '-'.
func TestEnumTables(t *testing.T) {
	for _, tc := range []struct {
		enum  protoreflect.EnumDescriptor
		table []string
	}{
		{codespb.ObservationStatusCode_FINAL.Descriptor(), observationStatus[:]},
		{codespb.FHIRDeviceStatusCode_ACTIVE.Descriptor(), deviceStatus[:]},
		{codespb.IdentifierUseCode_USUAL.Descriptor(), identifierUse[:]},
		{codespb.QuantityComparatorCode_LESS_THAN.Descriptor(), quantityComparator[:]},
		{codespb.DeviceNameTypeCode_OTHER.Descriptor(), deviceNameType[:]},
	} {
		want := make([]string, 0)
		vals := tc.enum.Values()
		for i := 0; i < vals.Len(); i++ {
			v := vals.Get(i)
			for int(v.Number()) >= len(want) {
				want = append(want, "")
			}
			if v.Number() == 0 {
				continue
			}
			code := proto.GetExtension(v.Options(), apb.E_FhirOriginalCode).(string)
			if code == "" {
				code = strings.ReplaceAll(strings.ToLower(string(v.Name())), "_", "-")
			}
			want[v.Number()] = code
		}
		if diff := cmp.Diff(want, tc.table); diff != "" {
			t.Errorf("%s table differs from the descriptor (-want +got):\n%s", tc.enum.FullName(), diff)
		}
	}
}

// TestReferenceTargets checks each reference element's allowed target types
// against the R4 valid_reference_type annotations google/fhir validates.
func TestReferenceTargets(t *testing.T) {
	obs := (&observationpb.Observation{}).ProtoReflect().Descriptor()
	dev := (&devicepb.Device{}).ProtoReflect().Descriptor()
	for _, tc := range []struct {
		msg   protoreflect.MessageDescriptor
		field protoreflect.Name
		got   []string
	}{
		{obs, "based_on", refObservationBasedOn},
		{obs, "part_of", refObservationPartOf},
		{obs, "subject", refObservationSubject},
		{obs, "focus", refObservationFocus},
		{obs, "encounter", refObservationEncounter},
		{obs, "performer", refObservationPerformer},
		{obs, "specimen", refObservationSpecimen},
		{obs, "device", refObservationDevice},
		{obs, "has_member", refObservationHasMember},
		{obs, "derived_from", refObservationDerived},
		{dev, "definition", refDeviceDefinition},
		{dev, "patient", refPatient},
		{dev, "owner", refOrganization},
		{dev, "location", refLocation},
		{dev, "parent", refDevice},
		{(&dtpb.Identifier{}).ProtoReflect().Descriptor(), "assigner", refOrganization},
		{(&dtpb.Annotation_AuthorX{}).ProtoReflect().Descriptor(), "reference", refAnnotationAuthor},
	} {
		f := tc.msg.Fields().ByName(tc.field)
		if f == nil {
			t.Fatalf("%s has no field %s", tc.msg.FullName(), tc.field)
		}
		want := proto.GetExtension(f.Options(), apb.E_ValidReferenceType).([]string)
		if diff := cmp.Diff(want, tc.got); diff != "" {
			t.Errorf("%s.%s targets (-annotation +fhirjson):\n%s", tc.msg.FullName(), tc.field, diff)
		}
	}
	// Every typed reference in the oneof is known to typedReference.
	oneof := (&dtpb.Reference{}).ProtoReflect().Descriptor().Oneofs().ByName("reference")
	n := 0
	for i := 0; i < oneof.Fields().Len(); i++ {
		f := oneof.Fields().Get(i)
		typ := proto.GetExtension(f.Options(), apb.E_ReferencedFhirType).(string)
		if typ == "" {
			continue
		}
		n++
		r := &dtpb.Reference{}
		id := &dtpb.ReferenceId{Value: "x"}
		r.ProtoReflect().Set(f, protoreflect.ValueOfMessage(id.ProtoReflect()))
		gotType, gotID, ok := typedReference(r)
		if !ok || gotType != typ || gotID != id {
			t.Errorf("typedReference for %s = %q, %v, %v; want %q (run go generate)", f.Name(), gotType, gotID, ok, typ)
		}
	}
	if n < 140 {
		t.Errorf("only %d typed references in the R4 Reference oneof", n)
	}
}

// TestURIFastPath: whatever uriFast accepts, url.Parse accepts.
func TestURIFastPath(t *testing.T) {
	for _, s := range uriSeeds {
		checkURIFast(t, s)
	}
}

var uriSeeds = []string{
	"http://loinc.org", "urn:iso:std:iso:11073:10101", "http://unitsofmeasure.org", "https://h:8080/p?q#f",
	"http://a:b:c", "http://a b", "http://[::1]:80/", "http://[::1", "http://x/%zz", "http://x/%41", ":x", "1a:x",
	"a:", "a:b", "a://", "a://@", "a://u@h", "http://h:", "http://h:x", "mailto:a@b", "http://h#a%zz", "http://h?%zz",
	"urn:oid:1.2.3", "http://h\x7f", "http://h\x00", "a+b-c.d://h.i-j/k", "http://ex.org/a|b", "http://ex.org/ä",
}

func checkURIFast(t *testing.T, s string) {
	t.Helper()
	if !uriFast(s) {
		return
	}
	if _, err := url.Parse(s); err != nil {
		t.Errorf("uriFast(%q) = true, but url.Parse: %v", s, err)
	}
}

func FuzzURIFastPath(f *testing.F) {
	for _, s := range uriSeeds {
		f.Add(s)
	}
	f.Fuzz(checkURIFast)
}

// TestStringEscaping: appendString writes what encoding/json writes with
// HTML escaping off, byte for byte.
func TestStringEscaping(t *testing.T) {
	for _, s := range stringSeeds {
		checkEscaping(t, s)
	}
}

var stringSeeds = []string{
	"", "plain", `q"uote`, `back\slash`, "tab\tnl\ncr\r", "\x00\x01\x1f\x7f", "\b\f", "<&>", "ä€𝄞", "\u2028\u2029",
	"bad\xffutf8", "\xed\xa0\x80", "trunc\xe2\x82", "é\u00e9",
}

func checkEscaping(t *testing.T, s string) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if got := appendString(nil, s); !bytes.Equal(got, want) {
		t.Errorf("appendString(%q) = %s, want %s", s, got, want)
	}
}

func FuzzStringEscaping(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(checkEscaping)
}

// TestPrimitiveChecks pins the primitive rules to the R4 regexes.
func TestPrimitiveChecks(t *testing.T) {
	for _, tc := range []struct {
		check func(string) string
		name  string
		ok    []string
		bad   []string
	}{
		{checkDecimal, "decimal", []string{"0", "-0", "72", "72.50", "-1.5", "1e5", "1E-5", "1.0e+10", "0.000"},
			[]string{"", "-", "01", ".5", "5.", "+5", " 72", "72 ", "1e", "1e+", "0x10", "NaN", "Inf", "1_000", "1.2.3"}},
		{checkCode, "code", []string{"a", "a b", "/min", "mm[Hg]", "a\u00a0b", "\x01"},
			[]string{"", " a", "a ", "a  b", "a\t\tb", "\n", "a\f"}},
		{checkID, "id", []string{"a", "A-1.b", strings.Repeat("x", 64)},
			[]string{"", "a b", "a/b", "a_b", strings.Repeat("x", 65), "ä"}},
		{checkString, "string", []string{"a", " ", "a\tb\nc\r", "ä"},
			[]string{"", "a\x00", "\x1f", "\x0b", strings.Repeat("x", maxString+1)}},
		{checkURI, "uri", []string{"http://loinc.org", "urn:x", "a", "/relative", "http://x/%41"},
			[]string{"", ":x", "http://x/%zz", "http://[::1", "http://a b/", "a\x01"}},
	} {
		for _, s := range tc.ok {
			if r := tc.check(s); r != "" {
				t.Errorf("%s %q refused: %s", tc.name, s, r)
			}
		}
		for _, s := range tc.bad {
			if r := tc.check(s); r == "" {
				t.Errorf("%s %q accepted", tc.name, s)
			}
		}
	}
}
