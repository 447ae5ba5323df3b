package medtech

import (
	"fmt"
	"strconv"
	"strings"
)

// PeriodInterval is a CodeValueFhir template's periodInterval: how
// measurements are grouped into one Observation.
type PeriodInterval int

// Period intervals, as MedTech's ObservationPeriodInterval. Files may give
// the number or the name.
const (
	PeriodCorrelationID PeriodInterval = -1   // group by correlation id
	PeriodSingle        PeriodInterval = 0    // one Observation per measurement
	PeriodHourly        PeriodInterval = 60   // one Observation per hour
	PeriodDaily         PeriodInterval = 1440 // one Observation per day
)

var periodNames = map[string]PeriodInterval{
	"correlationid": PeriodCorrelationID,
	"single":        PeriodSingle,
	"hourly":        PeriodHourly,
	"daily":         PeriodDaily,
}

// FHIR value types of a CodeValueFhir template's value or component value.
const (
	ValueSampledData     = "SampledData"
	ValueQuantity        = "Quantity"
	ValueString          = "String"
	ValueCodeableConcept = "CodeableConcept"
)

// FHIRMapping is a loaded FHIR mapping (fhirmapping.json): a CollectionFhir
// of CodeValueFhir templates. It describes Observations; turning a
// Measurement into one is the caller's job.
type FHIRMapping struct {
	// Templates in file order.
	Templates []CodeValueTemplate
	byType    map[string]int
}

// CodeValueTemplate is one CodeValueFhir template.
type CodeValueTemplate struct {
	// Path locates the template in the file, e.g. "template[0].template".
	Path string
	// TypeName binds the template to measurements of that Type.
	TypeName string
	// PeriodInterval groups measurements into Observations (0 when absent).
	PeriodInterval PeriodInterval
	// Category lists Observation.category entries.
	Category []CodeableConcept
	// Codes are the Observation.code codings.
	Codes []Coding
	// Value is the Observation value, nil when the template has none.
	Value *ValueType
	// Components are Observation.component entries.
	Components []Component
}

// Coding is a FHIR Coding.
type Coding struct {
	Code, System, Display string
}

// CodeableConcept is a FHIR CodeableConcept (text and codings).
type CodeableConcept struct {
	Text  string
	Codes []Coding
}

// Component is an Observation component: its codes and value.
type Component struct {
	Codes []Coding
	Value *ValueType
}

// ValueType describes how a measurement value becomes a FHIR value.
type ValueType struct {
	// ValueType is ValueSampledData, ValueQuantity, ValueString or
	// ValueCodeableConcept (canonical spelling; files may use any case).
	ValueType string
	// ValueName is the Measurement value name it takes its value from.
	ValueName string
	// Unit is the SampledData origin unit or the Quantity unit.
	Unit string
	// DefaultPeriod is the SampledData period in milliseconds (nil if absent).
	DefaultPeriod *float64
	// System and Code are the Quantity's coded unit.
	System, Code string
	// Text and Codes are the CodeableConcept's (the measured value is not used).
	Text  string
	Codes []Coding
}

// Lookup returns the template for a measurement type, matched ignoring case
// as MedTech does.
func (m *FHIRMapping) Lookup(typeName string) (*CodeValueTemplate, bool) {
	i, ok := m.byType[strings.ToLower(typeName)]
	if !ok {
		return nil, false
	}
	return &m.Templates[i], true
}

// TypeNames lists the templates' typeNames in file order.
func (m *FHIRMapping) TypeNames() []string {
	out := make([]string, len(m.Templates))
	for i, t := range m.Templates {
		out[i] = t.TypeName
	}
	return out
}

// ParseFHIRMapping parses a FHIR mapping (fhirmapping.json). Errors are
// *LoadError naming the JSON path of the problem.
func ParseFHIRMapping(data []byte) (*FHIRMapping, error) {
	root, err := parseJSON(data)
	if err != nil {
		return nil, syntaxLoadError(data, err)
	}
	l := &loader{src: data}
	if root.kind != kindObject {
		return nil, l.errf(root, "", "expected an object with templateType and template, got %s", root.kind)
	}
	typ, _, err := l.stringField(root, "", "templateType", true)
	if err != nil {
		return nil, err
	}
	if _, ok := canonicalType(typ, "CollectionFhir"); !ok {
		v, p := field(root, "", "templateType")
		return nil, l.errf(v, p, "the root templateType must be %q, got %q", "CollectionFhir", typ)
	}
	list, lpath := field(root, "", "template")
	if list == nil || list.kind != kindArray {
		at := root
		if list != nil {
			at = list
		}
		return nil, l.errf(at, lpath, "expected an array of templates for CollectionFhir")
	}
	fm := &FHIRMapping{byType: map[string]int{}}
	for i, c := range list.arr {
		cpath := fmt.Sprintf("%s[%d]", lpath, i)
		if c.kind != kindObject {
			return nil, l.errf(c, cpath, "expected an object with templateType and template, got %s", c.kind)
		}
		ctyp, _, err := l.stringField(c, cpath, "templateType", true)
		if err != nil {
			return nil, err
		}
		if _, ok := canonicalType(ctyp, "CodeValueFhir"); !ok {
			v, p := field(c, cpath, "templateType")
			return nil, l.errf(v, p, "unknown FHIR templateType %q (supported: CodeValueFhir)", ctyp)
		}
		body, bpath := field(c, cpath, "template")
		if body == nil || body.kind != kindObject {
			at := c
			if body != nil {
				at = body
			}
			return nil, l.errf(at, bpath, "expected an object for the template of type CodeValueFhir")
		}
		t, err := l.codeValue(body, bpath)
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(t.TypeName)
		if _, dup := fm.byType[key]; dup {
			v, p := field(body, bpath, "typeName")
			return nil, l.errf(v, p, "duplicate template for typeName %q", t.TypeName)
		}
		fm.byType[key] = len(fm.Templates)
		fm.Templates = append(fm.Templates, t)
	}
	return fm, nil
}

func (l *loader) codeValue(body *node, path string) (CodeValueTemplate, error) {
	t := CodeValueTemplate{Path: path}
	var err error
	if t.TypeName, _, err = l.stringField(body, path, "typeName", true); err != nil {
		return t, err
	}
	if strings.TrimSpace(t.TypeName) == "" {
		v, p := field(body, path, "typeName")
		return t, l.errf(v, p, "typeName must not be empty")
	}
	if v, p := field(body, path, "periodInterval"); v != nil && v.kind != kindNull {
		if t.PeriodInterval, err = l.period(v, p); err != nil {
			return t, err
		}
	}
	if t.Codes, err = l.codings(body, path, "codes", true); err != nil {
		return t, err
	}
	if cats, p := field(body, path, "category"); cats != nil && cats.kind != kindNull {
		if cats.kind != kindArray {
			return t, l.errf(cats, p, "expected an array of CodeableConcepts, got %s", cats.kind)
		}
		for i, c := range cats.arr {
			cp := fmt.Sprintf("%s[%d]", p, i)
			if c.kind != kindObject {
				return t, l.errf(c, cp, "expected a CodeableConcept object, got %s", c.kind)
			}
			cc := CodeableConcept{}
			if cc.Text, _, err = l.stringField(c, cp, "text", false); err != nil {
				return t, err
			}
			if cc.Codes, err = l.codings(c, cp, "codes", true); err != nil {
				return t, err
			}
			t.Category = append(t.Category, cc)
		}
	}
	if v, p := field(body, path, "value"); v != nil && v.kind != kindNull {
		if t.Value, err = l.valueType(v, p); err != nil {
			return t, err
		}
	}
	if comps, p := field(body, path, "components"); comps != nil && comps.kind != kindNull {
		if comps.kind != kindArray {
			return t, l.errf(comps, p, "expected an array of components, got %s", comps.kind)
		}
		for i, c := range comps.arr {
			cp := fmt.Sprintf("%s[%d]", p, i)
			if c.kind != kindObject {
				return t, l.errf(c, cp, "expected a component object, got %s", c.kind)
			}
			comp := Component{}
			if comp.Codes, err = l.codings(c, cp, "codes", false); err != nil {
				return t, err
			}
			if v, vp := field(c, cp, "value"); v != nil && v.kind != kindNull {
				if comp.Value, err = l.valueType(v, vp); err != nil {
					return t, err
				}
			}
			t.Components = append(t.Components, comp)
		}
	}
	return t, nil
}

func (l *loader) period(v *node, path string) (PeriodInterval, error) {
	var n int64
	switch v.kind {
	case kindNumber:
		i, err := strconv.ParseInt(v.s, 10, 32)
		if err != nil {
			return 0, l.errf(v, path, "invalid periodInterval %s", v.s)
		}
		n = i
	case kindString:
		if p, ok := periodNames[strings.ToLower(strings.TrimSpace(v.s))]; ok {
			return p, nil
		}
		i, err := strconv.ParseInt(strings.TrimSpace(v.s), 10, 32)
		if err != nil {
			return 0, l.errf(v, path, "invalid periodInterval %q", v.s)
		}
		n = i
	default:
		return 0, l.errf(v, path, "expected a periodInterval number, got %s", v.kind)
	}
	switch p := PeriodInterval(n); p {
	case PeriodCorrelationID, PeriodSingle, PeriodHourly, PeriodDaily:
		return p, nil
	}
	return 0, l.errf(v, path, "unsupported periodInterval %d (supported: -1, 0, 60, 1440)", n)
}

func (l *loader) codings(obj *node, base, name string, required bool) ([]Coding, error) {
	v, path := field(obj, base, name)
	if v == nil || v.kind == kindNull {
		if required {
			return nil, l.errf(obj, path, "required property %q is missing", name)
		}
		return nil, nil
	}
	if v.kind != kindArray {
		return nil, l.errf(v, path, "expected an array of codings, got %s", v.kind)
	}
	out := make([]Coding, 0, len(v.arr))
	for i, c := range v.arr {
		cp := fmt.Sprintf("%s[%d]", path, i)
		if c.kind != kindObject {
			return nil, l.errf(c, cp, "expected a coding object, got %s", c.kind)
		}
		var cd Coding
		var err error
		if cd.Code, _, err = l.stringField(c, cp, "code", false); err != nil {
			return nil, err
		}
		if cd.System, _, err = l.stringField(c, cp, "system", false); err != nil {
			return nil, err
		}
		if cd.Display, _, err = l.stringField(c, cp, "display", false); err != nil {
			return nil, err
		}
		out = append(out, cd)
	}
	return out, nil
}

func (l *loader) valueType(v *node, path string) (*ValueType, error) {
	if v.kind != kindObject {
		return nil, l.errf(v, path, "expected a value object, got %s", v.kind)
	}
	typ, _, err := l.stringField(v, path, "valueType", true)
	if err != nil {
		return nil, err
	}
	canon, ok := canonicalType(typ, ValueSampledData, ValueQuantity, ValueString, ValueCodeableConcept)
	if !ok {
		n, p := field(v, path, "valueType")
		return nil, l.errf(n, p, "unknown valueType %q (supported: %s, %s, %s, %s)", typ,
			ValueSampledData, ValueQuantity, ValueString, ValueCodeableConcept)
	}
	vt := &ValueType{ValueType: canon}
	if vt.ValueName, _, err = l.stringField(v, path, "valueName", false); err != nil {
		return nil, err
	}
	switch canon {
	case ValueSampledData:
		if vt.Unit, _, err = l.stringField(v, path, "unit", false); err != nil {
			return nil, err
		}
		if n, p := field(v, path, "defaultPeriod"); n != nil && n.kind != kindNull {
			s := n.s
			if n.kind != kindNumber && n.kind != kindString {
				return nil, l.errf(n, p, "expected a defaultPeriod number, got %s", n.kind)
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || f < 0 {
				return nil, l.errf(n, p, "invalid defaultPeriod %s", describeNode(n))
			}
			vt.DefaultPeriod = &f
		}
	case ValueQuantity:
		// MedTech requires all three properties for a Quantity.
		if vt.Unit, _, err = l.stringField(v, path, "unit", true); err != nil {
			return nil, err
		}
		if vt.System, _, err = l.stringField(v, path, "system", true); err != nil {
			return nil, err
		}
		if vt.Code, _, err = l.stringField(v, path, "code", true); err != nil {
			return nil, err
		}
	case ValueCodeableConcept:
		if vt.Text, _, err = l.stringField(v, path, "text", false); err != nil {
			return nil, err
		}
		if vt.Codes, err = l.codings(v, path, "codes", true); err != nil {
			return nil, err
		}
	}
	return vt, nil
}
