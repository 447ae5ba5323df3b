package fhirjson

import (
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// Complex datatypes. Each appendX writes one JSON object; errors carry the
// path below the object, and callers prefix the member name.

// appendElementBase writes the members every element has: id and extension.
func appendElementBase(b []byte, start int, id *dtpb.String, ext []*dtpb.Extension) ([]byte, error) {
	b, err := appendStringMember(b, start, "id", id)
	if err != nil {
		return b, err
	}
	return appendExtensions(b, start, "extension", ext)
}

// appendBackboneBase adds modifierExtension to appendElementBase.
func appendBackboneBase(b []byte, start int, id *dtpb.String, ext, modExt []*dtpb.Extension) ([]byte, error) {
	b, err := appendElementBase(b, start, id, ext)
	if err != nil {
		return b, err
	}
	return appendExtensions(b, start, "modifierExtension", modExt)
}

func appendExtensions(b []byte, start int, name string, exts []*dtpb.Extension) ([]byte, error) {
	if len(exts) == 0 {
		return b, nil
	}
	b = append(key(b, start, name), '[')
	for i, e := range exts {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendExtension(b, e); err != nil {
			return b, inAt(err, name, i)
		}
	}
	return append(b, ']'), nil
}

func appendExtension(b []byte, e *dtpb.Extension) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendStringMember(b, start, "id", e.Id)
	if err != nil {
		return b, err
	}
	if e.Url == nil {
		return b, errAt("url", reasonRequired)
	}
	if b, err = appendURIMember(b, start, "url", e.Url); err != nil {
		return b, err
	}
	if b, err = appendExtensions(b, start, "extension", e.Extension); err != nil {
		return b, err
	}
	if e.Value != nil {
		if b, err = appendExtensionValue(b, start, e.Value); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendExtensionValue(b []byte, start int, v *dtpb.Extension_ValueX) ([]byte, error) {
	switch x := v.Choice.(type) {
	case *dtpb.Extension_ValueX_Boolean:
		return appendBooleanMember(b, start, "valueBoolean", x.Boolean)
	case *dtpb.Extension_ValueX_Canonical:
		return appendCanonicalMember(b, start, "valueCanonical", x.Canonical)
	case *dtpb.Extension_ValueX_Code:
		return appendCodeMember(b, start, "valueCode", x.Code)
	case *dtpb.Extension_ValueX_Date:
		return appendDateMember(b, start, "valueDate", x.Date)
	case *dtpb.Extension_ValueX_DateTime:
		return appendDateTimeMember(b, start, "valueDateTime", x.DateTime)
	case *dtpb.Extension_ValueX_Decimal:
		return appendDecimalMember(b, start, "valueDecimal", x.Decimal)
	case *dtpb.Extension_ValueX_Id:
		return appendIDMember(b, start, "valueId", x.Id)
	case *dtpb.Extension_ValueX_Instant:
		return appendInstantMember(b, start, "valueInstant", x.Instant)
	case *dtpb.Extension_ValueX_Integer:
		return appendIntegerMember(b, start, "valueInteger", x.Integer)
	case *dtpb.Extension_ValueX_Markdown:
		return appendMarkdownMember(b, start, "valueMarkdown", x.Markdown)
	case *dtpb.Extension_ValueX_PositiveInt:
		return appendPositiveIntMember(b, start, "valuePositiveInt", x.PositiveInt)
	case *dtpb.Extension_ValueX_StringValue:
		return appendStringMember(b, start, "valueString", x.StringValue)
	case *dtpb.Extension_ValueX_Time:
		return appendTimeMember(b, start, "valueTime", x.Time)
	case *dtpb.Extension_ValueX_UnsignedInt:
		return appendUnsignedIntMember(b, start, "valueUnsignedInt", x.UnsignedInt)
	case *dtpb.Extension_ValueX_Uri:
		return appendURIMember(b, start, "valueUri", x.Uri)
	case *dtpb.Extension_ValueX_Url:
		return appendURLMember(b, start, "valueUrl", x.Url)
	case *dtpb.Extension_ValueX_CodeableConcept:
		return member(b, start, "valueCodeableConcept", x.CodeableConcept, appendCodeableConcept)
	case *dtpb.Extension_ValueX_Coding:
		return member(b, start, "valueCoding", x.Coding, appendCoding)
	case *dtpb.Extension_ValueX_Identifier:
		return member(b, start, "valueIdentifier", x.Identifier, appendIdentifier)
	case *dtpb.Extension_ValueX_Period:
		return member(b, start, "valuePeriod", x.Period, appendPeriod)
	case *dtpb.Extension_ValueX_Quantity:
		return member(b, start, "valueQuantity", x.Quantity, appendQuantity)
	case *dtpb.Extension_ValueX_Range:
		return member(b, start, "valueRange", x.Range, appendRange)
	case *dtpb.Extension_ValueX_Ratio:
		return member(b, start, "valueRatio", x.Ratio, appendRatio)
	case *dtpb.Extension_ValueX_Reference:
		return referenceMember(b, start, "valueReference", x.Reference, nil)
	case *dtpb.Extension_ValueX_SampledData:
		return member(b, start, "valueSampledData", x.SampledData, appendSampledData)
	case nil:
		return b, errAt("value", reasonNoChoice)
	default:
		return b, errAt("value", "this extension value type is "+reasonUnsupported)
	}
}

// member writes `"name":{...}` for a non-nil complex value.
func member[T any](b []byte, start int, name string, v *T, f func([]byte, *T) ([]byte, error)) ([]byte, error) {
	if v == nil {
		return b, nil
	}
	b, err := f(key(b, start, name), v)
	if err != nil {
		return b, in(err, name)
	}
	return b, nil
}

// members writes `"name":[{...},...]` for a non-empty list.
func members[T any](b []byte, start int, name string, vs []*T, f func([]byte, *T) ([]byte, error)) ([]byte, error) {
	if len(vs) == 0 {
		return b, nil
	}
	b = append(key(b, start, name), '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		if v == nil {
			return b, errAt(name, "nil list item")
		}
		var err error
		if b, err = f(b, v); err != nil {
			return b, inAt(err, name, i)
		}
	}
	return append(b, ']'), nil
}

func appendCodeableConcept(b []byte, cc *dtpb.CodeableConcept) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, cc.Id, cc.Extension)
	if err != nil {
		return b, err
	}
	if b, err = members(b, start, "coding", cc.Coding, appendCoding); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "text", cc.Text); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendCoding(b []byte, c *dtpb.Coding) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, c.Id, c.Extension)
	if err != nil {
		return b, err
	}
	if b, err = appendURIMember(b, start, "system", c.System); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "version", c.Version); err != nil {
		return b, err
	}
	if b, err = appendCodeMember(b, start, "code", c.Code); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "display", c.Display); err != nil {
		return b, err
	}
	if b, err = appendBooleanMember(b, start, "userSelected", c.UserSelected); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

var identifierUse = [...]string{1: "usual", 2: "official", 3: "temp", 4: "secondary", 5: "old"}

func appendIdentifier(b []byte, id *dtpb.Identifier) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, id.Id, id.Extension)
	if err != nil {
		return b, err
	}
	if u := id.Use; u != nil {
		if primitiveExt(u.Id, u.Extension) {
			return b, errAt("use", reasonPrimitiveExt)
		}
		// google/fhir omits an unset (zero) code.
		if v := int(u.Value); v != 0 {
			if v < 0 || v >= len(identifierUse) {
				return b, errAt("use", "unknown code")
			}
			b = appendString(key(b, start, "use"), identifierUse[v])
		}
	}
	if b, err = member(b, start, "type", id.Type, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = appendURIMember(b, start, "system", id.System); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "value", id.Value); err != nil {
		return b, err
	}
	if b, err = member(b, start, "period", id.Period, appendPeriod); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "assigner", id.Assigner, refOrganization); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

var quantityComparator = [...]string{1: "<", 2: "<=", 3: ">=", 4: ">"}

func appendQuantity(b []byte, q *dtpb.Quantity) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, q.Id, q.Extension)
	if err != nil {
		return b, err
	}
	if b, err = appendDecimalMember(b, start, "value", q.Value); err != nil {
		return b, err
	}
	if c := q.Comparator; c != nil {
		if primitiveExt(c.Id, c.Extension) {
			return b, errAt("comparator", reasonPrimitiveExt)
		}
		if v := int(c.Value); v != 0 {
			if v < 0 || v >= len(quantityComparator) {
				return b, errAt("comparator", "unknown code")
			}
			b = appendString(key(b, start, "comparator"), quantityComparator[v])
		}
	}
	return appendQuantityUnit(b, start, q.Unit, q.System, q.Code)
}

func appendSimpleQuantity(b []byte, q *dtpb.SimpleQuantity) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, q.Id, q.Extension)
	if err != nil {
		return b, err
	}
	if b, err = appendDecimalMember(b, start, "value", q.Value); err != nil {
		return b, err
	}
	return appendQuantityUnit(b, start, q.Unit, q.System, q.Code)
}

// appendQuantityUnit writes unit, system and code and closes the object.
func appendQuantityUnit(b []byte, start int, unit *dtpb.String, system *dtpb.Uri, code *dtpb.Code) ([]byte, error) {
	b, err := appendStringMember(b, start, "unit", unit)
	if err != nil {
		return b, err
	}
	if b, err = appendURIMember(b, start, "system", system); err != nil {
		return b, err
	}
	if b, err = appendCodeMember(b, start, "code", code); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendPeriod(b []byte, p *dtpb.Period) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, p.Id, p.Extension)
	if err != nil {
		return b, err
	}
	if b, err = appendDateTimeMember(b, start, "start", p.Start); err != nil {
		return b, err
	}
	if b, err = appendDateTimeMember(b, start, "end", p.End); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendRange(b []byte, r *dtpb.Range) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, r.Id, r.Extension)
	if err != nil {
		return b, err
	}
	if b, err = member(b, start, "low", r.Low, appendSimpleQuantity); err != nil {
		return b, err
	}
	if b, err = member(b, start, "high", r.High, appendSimpleQuantity); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendRatio(b []byte, r *dtpb.Ratio) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, r.Id, r.Extension)
	if err != nil {
		return b, err
	}
	if b, err = member(b, start, "numerator", r.Numerator, appendQuantity); err != nil {
		return b, err
	}
	if b, err = member(b, start, "denominator", r.Denominator, appendQuantity); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// appendSampledData writes a SampledData; origin, period and dimensions are
// required (FHIR R4 SampledData, 1..1 each).
func appendSampledData(b []byte, s *dtpb.SampledData) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, s.Id, s.Extension)
	if err != nil {
		return b, err
	}
	if s.Origin == nil {
		return b, errAt("origin", reasonRequired)
	}
	if b, err = member(b, start, "origin", s.Origin, appendSimpleQuantity); err != nil {
		return b, err
	}
	if s.Period == nil {
		return b, errAt("period", reasonRequired)
	}
	if b, err = appendDecimalMember(b, start, "period", s.Period); err != nil {
		return b, err
	}
	if b, err = appendDecimalMember(b, start, "factor", s.Factor); err != nil {
		return b, err
	}
	if b, err = appendDecimalMember(b, start, "lowerLimit", s.LowerLimit); err != nil {
		return b, err
	}
	if b, err = appendDecimalMember(b, start, "upperLimit", s.UpperLimit); err != nil {
		return b, err
	}
	if s.Dimensions == nil {
		return b, errAt("dimensions", reasonRequired)
	}
	if b, err = appendPositiveIntMember(b, start, "dimensions", s.Dimensions); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "data", s.Data); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendMeta(b []byte, m *dtpb.Meta) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, m.Id, m.Extension)
	if err != nil {
		return b, err
	}
	if b, err = appendIDMember(b, start, "versionId", m.VersionId); err != nil {
		return b, err
	}
	if b, err = appendInstantMember(b, start, "lastUpdated", m.LastUpdated); err != nil {
		return b, err
	}
	if b, err = appendURIMember(b, start, "source", m.Source); err != nil {
		return b, err
	}
	if len(m.Profile) > 0 {
		b = append(key(b, start, "profile"), '[')
		for i, p := range m.Profile {
			if i > 0 {
				b = append(b, ',')
			}
			if p == nil {
				return b, errAt("profile", "nil list item")
			}
			if primitiveExt(p.Id, p.Extension) {
				return b, inAt(errAt("", reasonPrimitiveExt), "profile", i)
			}
			if b, err = appendURIValue(b, "", p.Value); err != nil {
				return b, inAt(err, "profile", i)
			}
		}
		b = append(b, ']')
	}
	if b, err = members(b, start, "security", m.Security, appendCoding); err != nil {
		return b, err
	}
	if b, err = members(b, start, "tag", m.Tag, appendCoding); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendAnnotation(b []byte, a *dtpb.Annotation) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, a.Id, a.Extension)
	if err != nil {
		return b, err
	}
	if a.Author != nil {
		switch x := a.Author.Choice.(type) {
		case *dtpb.Annotation_AuthorX_Reference:
			b, err = referenceMember(b, start, "authorReference", x.Reference, refAnnotationAuthor)
		case *dtpb.Annotation_AuthorX_StringValue:
			b, err = appendStringMember(b, start, "authorString", x.StringValue)
		default:
			err = errAt("author", reasonNoChoice)
		}
		if err != nil {
			return b, err
		}
	}
	if b, err = appendDateTimeMember(b, start, "time", a.Time); err != nil {
		return b, err
	}
	if a.Text == nil {
		return b, errAt("text", reasonRequired)
	}
	if b, err = appendMarkdownMember(b, start, "text", a.Text); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}
