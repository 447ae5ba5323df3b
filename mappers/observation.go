package mappers

import (
	"fmt"
	"strconv"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"google.golang.org/protobuf/proto"
)

const systemInterpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

var categoryDisplay = map[string]string{"vital-signs": "Vital Signs", "laboratory": "Laboratory", "activity": "Activity"}

var statusCodes = map[string]codespb.ObservationStatusCode_Value{
	"":                 codespb.ObservationStatusCode_FINAL,
	"final":            codespb.ObservationStatusCode_FINAL,
	"preliminary":      codespb.ObservationStatusCode_PRELIMINARY,
	"amended":          codespb.ObservationStatusCode_AMENDED,
	"corrected":        codespb.ObservationStatusCode_CORRECTED,
	"entered-in-error": codespb.ObservationStatusCode_ENTERED_IN_ERROR,
	"unknown":          codespb.ObservationStatusCode_UNKNOWN,
}

// Observation builds the FHIR R4 Observation for m: the kind's profiles in
// meta.profile, its category, LOINC (or bridge) code plus the MDC coding, a
// UCUM valueQuantity or a dataAbsentReason, components for panels,
// referenceRange and interpretation where the catalogue gives a normal range,
// the subject and Device references, effectiveDateTime (or effectivePeriod
// for readings over an interval), and the deterministic identifier
// identifierSystem|m.Key(). An Observation claiming a vital-signs profile
// passes fhir.CheckVitalSigns.
func Observation(m Measurement, identifierSystem string) (*observationpb.Observation, error) {
	v, ok := Lookup(m.Kind)
	if m.Kind == KindCustom && m.Custom != nil {
		v, ok = m.Custom.vital(), true
	}
	if !ok {
		return nil, &FieldError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q", clip(m.Kind))}
	}
	status, ok := statusCodes[m.Status]
	if !ok {
		return nil, &FieldError{Field: "status", Reason: "unknown Observation status"}
	}
	o := &observationpb.Observation{
		Identifier: []*dtpb.Identifier{fhir.Identifier(identifierSystem, m.Key())},
		// Status is always set: google/fhir's validator misses a zero-valued
		// enum and the marshaller then drops it silently.
		Status:  &observationpb.Observation_StatusCode{Value: status},
		Code:    concept(v),
		Subject: subjectRef(m.Subject),
		Device:  fhir.DeviceRef(m.Device.ID),
	}
	if len(v.Profiles) > 0 {
		o.Meta = &dtpb.Meta{}
		for _, p := range v.Profiles {
			o.Meta.Profile = append(o.Meta.Profile, fhir.Canonical(p))
		}
	}
	if v.Category != "" {
		o.Category = []*dtpb.CodeableConcept{fhir.Concept(fhir.Coding(fhir.SystemObservationCategory, v.Category, categoryDisplay[v.Category]))}
	}
	if m.Kind == KindCustom && m.Custom != nil {
		for _, c := range m.Custom.Category {
			o.Category = append(o.Category, fhir.Concept(fhir.Coding(c.System, c.Code, c.Display)))
		}
	}
	if m.End.IsZero() {
		o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{DateTime: fhir.DateTime(m.Time)}}
	} else {
		o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_Period{
			Period: &dtpb.Period{Start: fhir.DateTime(m.Time), End: fhir.DateTime(m.End)}}}
	}
	switch {
	case len(v.Components) > 0:
		for _, c := range m.Components {
			oc, err := component(c)
			if err != nil {
				return nil, err
			}
			o.Component = append(o.Component, oc)
		}
	case m.Kind == KindCustom && m.Custom != nil && (m.Value != "" || m.Custom.ValueType == "CodeableConcept"):
		o.Value = m.Custom.value(m.Value)
	case m.Value != "":
		o.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: fhir.Quantity(m.Value, v.Unit.UCUM)}}
		o.Interpretation, o.ReferenceRange = judge(v, m.Value)
	default:
		o.DataAbsentReason = absent(m.Absent)
	}
	return o, nil
}

func component(c Component) (*observationpb.Observation_Component, error) {
	cv, ok := Lookup(c.Kind)
	if !ok {
		return nil, &FieldError{Field: "components", Reason: fmt.Sprintf("unknown kind %q", clip(c.Kind))}
	}
	oc := &observationpb.Observation_Component{Code: concept(cv)}
	if c.Value == "" {
		oc.DataAbsentReason = absent(c.Absent)
		return oc, nil
	}
	oc.Value = &observationpb.Observation_Component_ValueX{Choice: &observationpb.Observation_Component_ValueX_Quantity{Quantity: fhir.Quantity(c.Value, cv.Unit.UCUM)}}
	oc.Interpretation, oc.ReferenceRange = judge(cv, c.Value)
	return oc, nil
}

// concept is the kind's code: primary, extra codings, then MDC.
func concept(v Vital) *dtpb.CodeableConcept {
	cc := fhir.Concept(fhir.Coding(v.Code.System, v.Code.Code, v.Code.Display))
	for _, c := range v.Extra {
		cc.Coding = append(cc.Coding, fhir.Coding(c.System, c.Code, c.Display))
	}
	if v.MDC.Code != "" {
		cc.Coding = append(cc.Coding, fhir.Coding(v.MDC.System, v.MDC.Code, v.MDC.Display))
	}
	return cc
}

func absent(code string) *dtpb.CodeableConcept {
	if code == "" {
		code = "unknown"
	}
	return fhir.Concept(fhir.Coding(fhir.SystemDataAbsentReason, code, ""))
}

// judge returns interpretation (L, N or H) and the reference range when the
// catalogue gives a normal range for v.
func judge(v Vital, value string) ([]*dtpb.CodeableConcept, []*observationpb.Observation_ReferenceRange) {
	if v.Normal == nil {
		return nil, nil
	}
	x, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return nil, nil
	}
	rr := &observationpb.Observation_ReferenceRange{}
	code, display := "N", "Normal"
	if lo := v.Normal.Low; lo != nil {
		rr.Low = simpleQuantity(*lo, v.Unit.UCUM)
		if x < *lo {
			code, display = "L", "Low"
		}
	}
	if hi := v.Normal.High; hi != nil {
		rr.High = simpleQuantity(*hi, v.Unit.UCUM)
		if x > *hi {
			code, display = "H", "High"
		}
	}
	return []*dtpb.CodeableConcept{fhir.Concept(fhir.Coding(systemInterpretation, code, display))},
		[]*observationpb.Observation_ReferenceRange{rr}
}

func simpleQuantity(v float64, ucum string) *dtpb.SimpleQuantity {
	return &dtpb.SimpleQuantity{
		Value:  &dtpb.Decimal{Value: strconv.FormatFloat(v, 'f', -1, 64)},
		Unit:   &dtpb.String{Value: ucum},
		System: &dtpb.Uri{Value: fhir.SystemUCUM},
		Code:   &dtpb.Code{Value: ucum},
	}
}

func subjectRef(s Subject) *dtpb.Reference {
	if s.ID == "" {
		return &dtpb.Reference{
			Type:       &dtpb.Uri{Value: s.Type},
			Identifier: fhir.Identifier(s.IdentifierSystem, s.IdentifierValue),
		}
	}
	switch s.Type {
	case "Device":
		return fhir.DeviceRef(s.ID)
	case "Location":
		return fhir.LocationRef(s.ID)
	default:
		return fhir.PatientRef(s.ID)
	}
}

// vital presents a custom reading's codes as a catalogue entry without
// profile, category, unit checks or ranges.
func (c *Custom) vital() Vital {
	v := Vital{Kind: KindCustom}
	if len(c.Codes) > 0 {
		v.Code, v.Extra = c.Codes[0], c.Codes[1:]
	}
	return v
}

func (c *Custom) value(text string) *observationpb.Observation_ValueX {
	switch c.ValueType {
	case "String":
		return &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_StringValue{StringValue: &dtpb.String{Value: text}}}
	case "CodeableConcept":
		cc := &dtpb.CodeableConcept{}
		for _, code := range c.ValueCodes {
			cc.Coding = append(cc.Coding, fhir.Coding(code.System, code.Code, code.Display))
		}
		if c.ValueText != "" {
			cc.Text = &dtpb.String{Value: c.ValueText}
		}
		return &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_CodeableConcept{CodeableConcept: cc}}
	default:
		q := &dtpb.Quantity{Value: &dtpb.Decimal{Value: text}}
		if c.Unit != "" {
			q.Unit = &dtpb.String{Value: c.Unit}
		}
		if c.UnitSystem != "" && c.UnitCode != "" {
			q.System, q.Code = &dtpb.Uri{Value: c.UnitSystem}, &dtpb.Code{Value: c.UnitCode}
		}
		return &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: q}}
	}
}

// Bundle maps readings to a collection Bundle: each reading's Observation in
// order, then one Device per device seen. Every Observation that claims a
// vital-signs profile is checked against its rules first.
func Bundle(ms []Measurement, identifierSystem string) (*crpb.Bundle, error) {
	var obs, devices []proto.Message
	seen := map[string]bool{}
	for i, m := range ms {
		o, err := Observation(m, identifierSystem)
		if err != nil {
			return nil, fmt.Errorf("reading %d: %w", i, err)
		}
		if fhir.ClaimsVitalSigns(o) {
			if issues := fhir.CheckVitalSigns(o); len(issues) > 0 {
				return nil, fmt.Errorf("reading %d: %w", i, &fhir.ValidationError{Issues: issues})
			}
		}
		obs = append(obs, o)
		if !seen[m.Device.ID] {
			seen[m.Device.ID] = true
			devices = append(devices, DeviceResource(m.Device))
		}
	}
	return fhir.CollectionBundle(append(obs, devices...)...)
}
