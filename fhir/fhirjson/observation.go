package fhirjson

import (
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// observationStatus is ObservationStatusCode by enum number.
var observationStatus = [...]string{1: "registered", 2: "preliminary", 3: "final", 4: "amended", 5: "corrected",
	6: "cancelled", 7: "entered-in-error", 8: "unknown"}

// EncodeObservation returns the FHIR R4 JSON of o in a new slice, or nil
// and an *Error.
func EncodeObservation(o *observationpb.Observation) ([]byte, error) {
	b, err := AppendObservation(make([]byte, 0, 2048), o)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendObservation appends the compact FHIR R4 JSON of o to dst. On error
// it returns dst as given and an *Error naming the element at fault. o is
// only read, so one Observation may be encoded from several goroutines.
func AppendObservation(dst []byte, o *observationpb.Observation) ([]byte, error) {
	if o == nil {
		return dst, errAt("Observation", "nil resource")
	}
	b, err := appendObservation(dst, o)
	if err != nil {
		return dst, in(err, "Observation")
	}
	return b, nil
}

func appendObservation(b []byte, o *observationpb.Observation) ([]byte, error) {
	b = append(b, `{"resourceType":"Observation"`...)
	start := len(b) - 1 // members always follow resourceType
	b, err := appendResourceBase(b, start, o.Id, o.Meta, o.ImplicitRules, o.Language, o.Text, len(o.Contained), o.Extension, o.ModifierExtension)
	if err != nil {
		return b, err
	}
	if b, err = members(b, start, "identifier", o.Identifier, appendIdentifier); err != nil {
		return b, err
	}
	if b, err = referenceMembers(b, start, "basedOn", o.BasedOn, refObservationBasedOn); err != nil {
		return b, err
	}
	if b, err = referenceMembers(b, start, "partOf", o.PartOf, refObservationPartOf); err != nil {
		return b, err
	}
	s := o.Status
	if s == nil || s.Value == 0 {
		return b, errAt("status", reasonRequired)
	}
	if primitiveExt(s.Id, s.Extension) {
		return b, errAt("status", reasonPrimitiveExt)
	}
	if v := int(s.Value); v < 0 || v >= len(observationStatus) {
		return b, errAt("status", "unknown code")
	}
	b = appendString(key(b, start, "status"), observationStatus[s.Value])
	if b, err = members(b, start, "category", o.Category, appendCodeableConcept); err != nil {
		return b, err
	}
	if o.Code == nil {
		return b, errAt("code", reasonRequired)
	}
	if b, err = member(b, start, "code", o.Code, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "subject", o.Subject, refObservationSubject); err != nil {
		return b, err
	}
	if b, err = referenceMembers(b, start, "focus", o.Focus, refObservationFocus); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "encounter", o.Encounter, refObservationEncounter); err != nil {
		return b, err
	}
	if e := o.Effective; e != nil {
		switch x := e.Choice.(type) {
		case *observationpb.Observation_EffectiveX_DateTime:
			b, err = appendDateTimeMember(b, start, "effectiveDateTime", x.DateTime)
		case *observationpb.Observation_EffectiveX_Period:
			b, err = member(b, start, "effectivePeriod", x.Period, appendPeriod)
		case *observationpb.Observation_EffectiveX_Instant:
			b, err = appendInstantMember(b, start, "effectiveInstant", x.Instant)
		case nil:
			err = errAt("effective", reasonNoChoice)
		default:
			err = errAt("effectiveTiming", reasonUnsupported)
		}
		if err != nil {
			return b, err
		}
	}
	if b, err = appendInstantMember(b, start, "issued", o.Issued); err != nil {
		return b, err
	}
	if b, err = referenceMembers(b, start, "performer", o.Performer, refObservationPerformer); err != nil {
		return b, err
	}
	if o.Value != nil {
		if b, err = appendObservationValue(b, start, o.Value); err != nil {
			return b, err
		}
	}
	if b, err = member(b, start, "dataAbsentReason", o.DataAbsentReason, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = members(b, start, "interpretation", o.Interpretation, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = members(b, start, "note", o.Note, appendAnnotation); err != nil {
		return b, err
	}
	if b, err = member(b, start, "bodySite", o.BodySite, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = member(b, start, "method", o.Method, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "specimen", o.Specimen, refObservationSpecimen); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "device", o.Device, refObservationDevice); err != nil {
		return b, err
	}
	if b, err = members(b, start, "referenceRange", o.ReferenceRange, appendReferenceRange); err != nil {
		return b, err
	}
	if b, err = referenceMembers(b, start, "hasMember", o.HasMember, refObservationHasMember); err != nil {
		return b, err
	}
	if b, err = referenceMembers(b, start, "derivedFrom", o.DerivedFrom, refObservationDerived); err != nil {
		return b, err
	}
	if b, err = members(b, start, "component", o.Component, appendComponent); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// appendResourceBase writes the DomainResource members fhirjson supports and
// refuses text (Narrative) and contained resources.
func appendResourceBase(b []byte, start int, id *dtpb.Id, meta *dtpb.Meta, implicitRules *dtpb.Uri, language *dtpb.Code,
	text *dtpb.Narrative, contained int, ext, modExt []*dtpb.Extension) ([]byte, error) {
	b, err := appendIDMember(b, start, "id", id)
	if err != nil {
		return b, err
	}
	if b, err = member(b, start, "meta", meta, appendMeta); err != nil {
		return b, err
	}
	if b, err = appendURIMember(b, start, "implicitRules", implicitRules); err != nil {
		return b, err
	}
	if b, err = appendCodeMember(b, start, "language", language); err != nil {
		return b, err
	}
	if text != nil {
		return b, errAt("text", reasonUnsupported)
	}
	if contained > 0 {
		return b, errAt("contained", reasonUnsupported)
	}
	if b, err = appendExtensions(b, start, "extension", ext); err != nil {
		return b, err
	}
	return appendExtensions(b, start, "modifierExtension", modExt)
}

func appendObservationValue(b []byte, start int, v *observationpb.Observation_ValueX) ([]byte, error) {
	switch x := v.Choice.(type) {
	case *observationpb.Observation_ValueX_Quantity:
		return member(b, start, "valueQuantity", x.Quantity, appendQuantity)
	case *observationpb.Observation_ValueX_CodeableConcept:
		return member(b, start, "valueCodeableConcept", x.CodeableConcept, appendCodeableConcept)
	case *observationpb.Observation_ValueX_StringValue:
		return appendStringMember(b, start, "valueString", x.StringValue)
	case *observationpb.Observation_ValueX_Boolean:
		return appendBooleanMember(b, start, "valueBoolean", x.Boolean)
	case *observationpb.Observation_ValueX_Integer:
		return appendIntegerMember(b, start, "valueInteger", x.Integer)
	case *observationpb.Observation_ValueX_Range:
		return member(b, start, "valueRange", x.Range, appendRange)
	case *observationpb.Observation_ValueX_Ratio:
		return member(b, start, "valueRatio", x.Ratio, appendRatio)
	case *observationpb.Observation_ValueX_SampledData:
		return member(b, start, "valueSampledData", x.SampledData, appendSampledData)
	case *observationpb.Observation_ValueX_Time:
		return appendTimeMember(b, start, "valueTime", x.Time)
	case *observationpb.Observation_ValueX_DateTime:
		return appendDateTimeMember(b, start, "valueDateTime", x.DateTime)
	case *observationpb.Observation_ValueX_Period:
		return member(b, start, "valuePeriod", x.Period, appendPeriod)
	case nil:
		return b, errAt("value", reasonNoChoice)
	default:
		return b, errAt("value", reasonUnsupported)
	}
}

func appendComponentValue(b []byte, start int, v *observationpb.Observation_Component_ValueX) ([]byte, error) {
	switch x := v.Choice.(type) {
	case *observationpb.Observation_Component_ValueX_Quantity:
		return member(b, start, "valueQuantity", x.Quantity, appendQuantity)
	case *observationpb.Observation_Component_ValueX_CodeableConcept:
		return member(b, start, "valueCodeableConcept", x.CodeableConcept, appendCodeableConcept)
	case *observationpb.Observation_Component_ValueX_StringValue:
		return appendStringMember(b, start, "valueString", x.StringValue)
	case *observationpb.Observation_Component_ValueX_Boolean:
		return appendBooleanMember(b, start, "valueBoolean", x.Boolean)
	case *observationpb.Observation_Component_ValueX_Integer:
		return appendIntegerMember(b, start, "valueInteger", x.Integer)
	case *observationpb.Observation_Component_ValueX_Range:
		return member(b, start, "valueRange", x.Range, appendRange)
	case *observationpb.Observation_Component_ValueX_Ratio:
		return member(b, start, "valueRatio", x.Ratio, appendRatio)
	case *observationpb.Observation_Component_ValueX_SampledData:
		return member(b, start, "valueSampledData", x.SampledData, appendSampledData)
	case *observationpb.Observation_Component_ValueX_Time:
		return appendTimeMember(b, start, "valueTime", x.Time)
	case *observationpb.Observation_Component_ValueX_DateTime:
		return appendDateTimeMember(b, start, "valueDateTime", x.DateTime)
	case *observationpb.Observation_Component_ValueX_Period:
		return member(b, start, "valuePeriod", x.Period, appendPeriod)
	case nil:
		return b, errAt("value", reasonNoChoice)
	default:
		return b, errAt("value", reasonUnsupported)
	}
}

func appendReferenceRange(b []byte, r *observationpb.Observation_ReferenceRange) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendBackboneBase(b, start, r.Id, r.Extension, r.ModifierExtension)
	if err != nil {
		return b, err
	}
	if b, err = member(b, start, "low", r.Low, appendSimpleQuantity); err != nil {
		return b, err
	}
	if b, err = member(b, start, "high", r.High, appendSimpleQuantity); err != nil {
		return b, err
	}
	if b, err = member(b, start, "type", r.Type, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = members(b, start, "appliesTo", r.AppliesTo, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = member(b, start, "age", r.Age, appendRange); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "text", r.Text); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendComponent(b []byte, c *observationpb.Observation_Component) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendBackboneBase(b, start, c.Id, c.Extension, c.ModifierExtension)
	if err != nil {
		return b, err
	}
	if c.Code == nil {
		return b, errAt("code", reasonRequired)
	}
	if b, err = member(b, start, "code", c.Code, appendCodeableConcept); err != nil {
		return b, err
	}
	if c.Value != nil {
		if b, err = appendComponentValue(b, start, c.Value); err != nil {
			return b, err
		}
	}
	if b, err = member(b, start, "dataAbsentReason", c.DataAbsentReason, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = members(b, start, "interpretation", c.Interpretation, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = members(b, start, "referenceRange", c.ReferenceRange, appendReferenceRange); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}
