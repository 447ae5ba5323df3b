package fhirjson_test

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	devicepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/device_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	patientpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	anypb "google.golang.org/protobuf/types/known/anypb"
)

// filler populates messages with valid values, every field of every nested
// element down to a depth, so that a field fhirjson silently dropped would
// show up as a difference from the referee.
type filler struct {
	maxDepth int
	// choice picks the option of a choice type (value[x] and friends) by
	// its message's full name; the first option otherwise.
	choice map[protoreflect.FullName]protoreflect.Name
}

const r4 = "google.fhir.r4.core."

func (f filler) fill(m protoreflect.Message, depth int) {
	d := m.Descriptor()
	name := string(d.FullName())
	if f.primitive(m, name) {
		return
	}
	switch name {
	case r4 + "Extension":
		m.Interface().(*dtpb.Extension).Url = uri("urn:x:ext")
		m.Interface().(*dtpb.Extension).Value = extValue(str("x"))
		return
	case r4 + "Reference":
		r := m.Interface().(*dtpb.Reference)
		r.Id, r.Type = str("ref"), uri("urn:x:type")
		r.Extension = []*dtpb.Extension{{Url: uri("urn:x:ext"), Value: extValue(&dtpb.Boolean{Value: true})}}
		r.Reference = &dtpb.Reference_Uri{Uri: str("urn:x:target")}
		r.Identifier = &dtpb.Identifier{System: uri("urn:x:sys"), Value: str("v")}
		r.Display = str("shown")
		return
	case "google.protobuf.Any":
		a, err := anypb.New(&crpb.ContainedResource{OneofResource: &crpb.ContainedResource_Patient{Patient: &patientpb.Patient{Id: &dtpb.Id{Value: "p"}}}})
		if err != nil {
			panic(err)
		}
		proto.Merge(m.Interface(), a)
		return
	}
	if v := d.Fields().ByName("value"); v != nil && v.Kind() == protoreflect.EnumKind {
		m.Set(v, protoreflect.ValueOfEnum(1)) // a code: its first value
		return
	}
	fields := d.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			want, ok := f.choice[d.FullName()]
			if ok && fd.Name() != want || !ok && od.Fields().Get(0) != fd {
				continue
			}
		}
		if fd.Message() == nil || depth >= f.maxDepth {
			continue
		}
		if fd.IsList() {
			l := m.Mutable(fd).List()
			e := l.NewElement()
			f.fill(e.Message(), depth+1)
			l.Append(e)
			continue
		}
		f.fill(m.Mutable(fd).Message(), depth+1)
	}
}

// primitive fills a FHIR primitive's value (not its id or extensions).
func (f filler) primitive(m protoreflect.Message, name string) bool {
	set := func(v any) {
		m.Set(m.Descriptor().Fields().ByName("value"), protoreflect.ValueOf(v))
	}
	setTime := func(prec protoreflect.EnumNumber) {
		fs := m.Descriptor().Fields()
		m.Set(fs.ByName("value_us"), protoreflect.ValueOfInt64(t0.UnixMicro()+123456))
		if tz := fs.ByName("timezone"); tz != nil {
			m.Set(tz, protoreflect.ValueOfString("+01:00"))
		}
		m.Set(fs.ByName("precision"), protoreflect.ValueOfEnum(prec))
	}
	switch strings.TrimPrefix(name, r4) {
	case "String", "Markdown", "Code", "Id", "ReferenceId":
		set("x")
	case "Uri", "Url", "Canonical":
		set("urn:x")
	case "Oid":
		set("urn:oid:1.2.3")
	case "Uuid":
		set("urn:uuid:0b8f6e5e-2f3a-4c1e-9d3b-2a0c7e1f4a5b")
	case "Decimal":
		set("1.50")
	case "Boolean":
		set(true)
	case "Integer":
		set(int32(-7))
	case "PositiveInt", "UnsignedInt":
		set(uint32(7))
	case "Base64Binary":
		set([]byte("x"))
	case "Xhtml":
		set(`<div xmlns="http://www.w3.org/1999/xhtml">x</div>`)
	case "DateTime", "Instant":
		setTime(protoreflect.EnumNumber(dtpb.DateTime_MILLISECOND.Number()))
		if strings.HasSuffix(name, "Instant") {
			setTime(protoreflect.EnumNumber(dtpb.Instant_MILLISECOND.Number()))
		}
	case "Date":
		setTime(protoreflect.EnumNumber(dtpb.Date_DAY.Number()))
	case "Time":
		m.Set(m.Descriptor().Fields().ByName("value_us"), protoreflect.ValueOfInt64(3600e6+5))
		m.Set(m.Descriptor().Fields().ByName("precision"), protoreflect.ValueOfEnum(protoreflect.EnumNumber(dtpb.Time_MICROSECOND.Number())))
	default:
		return false
	}
	return true
}

// coverage fills, one at a time, each field of base (and each option of the
// given choice types) and encodes it. Every field must either encode to
// what the referee writes, or be refused as unsupported; it returns the
// unsupported ones.
// base returns a fresh resource and the message inside it whose fields are
// filled.
func coverage(t *testing.T, base func() (proto.Message, protoreflect.Message), choices map[protoreflect.FullName]bool) []string {
	t.Helper()
	ref := newReferee(t)
	var unsupported []string
	try := func(label string, res proto.Message) {
		got, err := encode(res)
		var fe *fhirjson.Error
		if err != nil {
			if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "not supported") {
				t.Errorf("%s: %v", label, err)
			}
			unsupported = append(unsupported, label)
			return
		}
		if v := ref.Compare(res, got, nil); v.Mismatch != "" || v.Note != "" {
			t.Errorf("%s: %s%s", label, v.Mismatch, v.Note)
		}
	}
	_, target := base()
	fields := target.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		res, m := base()
		if m.Has(fd) {
			continue // set by base
		}
		choice := fd.Message().FullName()
		if !choices[choice] {
			f := filler{maxDepth: 4}
			if fd.IsList() {
				e := m.Mutable(fd).List().NewElement()
				f.fill(e.Message(), 0)
				m.Mutable(fd).List().Append(e)
			} else {
				f.fill(m.Mutable(fd).Message(), 0)
			}
			try(string(fd.Name()), res)
			continue
		}
		options := fd.Message().Oneofs().Get(0).Fields()
		for j := 0; j < options.Len(); j++ {
			res, m := base()
			f := filler{maxDepth: 4, choice: map[protoreflect.FullName]protoreflect.Name{choice: options.Get(j).Name()}}
			f.fill(m.Mutable(fd).Message(), 0)
			try(string(fd.Name())+"."+string(options.Get(j).Name()), res)
		}
	}
	sort.Strings(unsupported)
	return unsupported
}

// TestObservationCoverage: every Observation field (and every value[x] and
// effective[x] option), filled with nested content four levels deep, either
// encodes exactly as google/fhir does or is refused as unsupported; the
// unsupported ones are exactly those the package documents.
func TestObservationCoverage(t *testing.T) {
	got := coverage(t, func() (proto.Message, protoreflect.Message) {
		o := baseObs()
		return o, o.ProtoReflect()
	}, map[protoreflect.FullName]bool{
		r4 + "Observation.EffectiveX": true, r4 + "Observation.ValueX": true,
	})
	want := []string{"contained", "effective.timing", "text"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unsupported Observation fields (-documented +found):\n%s", diff)
	}
	// Components, with every value[x] option.
	got = coverage(t, func() (proto.Message, protoreflect.Message) {
		c := &observationpb.Observation_Component{Code: concept(coding("urn:x", "c", ""))}
		return obs(func(o *observationpb.Observation) { o.Component = []*observationpb.Observation_Component{c} }), c.ProtoReflect()
	}, map[protoreflect.FullName]bool{r4 + "Observation.Component.ValueX": true})
	if len(got) > 0 {
		t.Errorf("unsupported component fields: %v", got)
	}
}

func TestDeviceCoverage(t *testing.T) {
	got := coverage(t, func() (proto.Message, protoreflect.Message) {
		d := &devicepb.Device{}
		return d, d.ProtoReflect()
	}, nil)
	want := []string{"contact", "contained", "text", "udi_carrier"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unsupported Device fields (-documented +found):\n%s", diff)
	}
}

// TestExtensionCoverage: every Extension value[x] option.
func TestExtensionCoverage(t *testing.T) {
	got := coverage(t, func() (proto.Message, protoreflect.Message) {
		e := &dtpb.Extension{Url: uri("urn:x")}
		return obs(func(o *observationpb.Observation) { o.Extension = []*dtpb.Extension{e} }), e.ProtoReflect()
	}, map[protoreflect.FullName]bool{r4 + "Extension.ValueX": true})
	want := []string{}
	for _, n := range strings.Fields(`base64_binary oid uuid address age annotation attachment contact_point count distance
		duration human_name money signature timing contact_detail contributor data_requirement expression
		parameter_definition related_artifact trigger_definition usage_context dosage`) {
		want = append(want, "value."+n)
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unsupported extension values (-documented +found):\n%s", diff)
	}
}
