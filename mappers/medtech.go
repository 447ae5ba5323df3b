package mappers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhir-bridge/fhir-bridge/mappers/medtech"
)

// MedTech maps payloads with a Microsoft MedTech (IoMT FHIR Connector) pair of
// templates, read unchanged: the device mapping (devicecontent.json) extracts
// measurements, the FHIR mapping (fhirmapping.json) says what they are.
//
// Where MedTech's output is weaker than the standards, the inputs are kept
// and the output is standards-correct (docs/mapping.md lists each
// difference): a reading whose codes are in the catalogue becomes that
// catalogue kind, with its profile, category, MDC coding, UCUM unit and a
// point effectiveDateTime and valueQuantity instead of MedTech's hourly
// SampledData in effectivePeriod; other readings keep the template's codes.
type MedTech struct {
	device  *medtech.DeviceTemplate
	mapping *medtech.FHIRMapping
	opts    MedTechOptions
}

// MedTechOptions adjust how MedTech measurements become readings.
type MedTechOptions struct {
	// DefaultPatientID is the patient of measurements whose template has no
	// patientIdExpression. MedTech resolves those through the Device resource
	// at the FHIR server; the bridge needs the patient given.
	DefaultPatientID string
}

// LoadMedTech loads a device mapping and a FHIR mapping. Every type the
// device mapping produces must have a FHIR template.
func LoadMedTech(deviceContent, fhirMapping []byte, opts MedTechOptions) (*MedTech, error) {
	dev, err := medtech.LoadDeviceTemplate(deviceContent)
	if err != nil {
		return nil, fmt.Errorf("device mapping: %w", err)
	}
	fm, err := medtech.ParseFHIRMapping(fhirMapping)
	if err != nil {
		return nil, fmt.Errorf("FHIR mapping: %w", err)
	}
	for _, tn := range dev.TypeNames() {
		if _, ok := fm.Lookup(tn); !ok {
			return nil, fmt.Errorf("FHIR mapping: no CodeValueFhir template for typeName %q of the device mapping", tn)
		}
	}
	if opts.DefaultPatientID != "" {
		if err := checkID("default patient", opts.DefaultPatientID); err != nil {
			return nil, err
		}
	}
	return &MedTech{device: dev, mapping: fm, opts: opts}, nil
}

// Map extracts every measurement from payload and returns the readings, in
// the device mapping's order. See MapWithProperties.
func (t *MedTech) Map(payload []byte) ([]Measurement, error) {
	return t.MapWithProperties(payload, nil)
}

// MapEach is Map with each reading on its own: a reading the FHIR mapping
// cannot turn into a measurement (no template for its type, a value out of
// range, a missing unit) is refused alone, naming its index and field. A
// payload the device mapping cannot read at all (not JSON, an expression
// failing) is the error.
func (t *MedTech) MapEach(payload []byte) ([]Result, error) {
	ms, err := t.extract(payload, nil)
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(ms))
	for i, m := range ms {
		r, err := t.reading(m)
		if err != nil {
			err = prefixed(fmt.Sprintf("measurements[%d](%s)", i, m.Type), err)
		}
		out = append(out, Result{Index: i, Measurement: r, Err: err})
	}
	return out, nil
}

// MapWithProperties is Map with message properties (e.g. Kafka headers) for
// the envelope. A payload that already is a MedTech envelope ({"Body": ...,
// "Properties": ..., "SystemProperties": ...}) is used as it is; anything
// else becomes the envelope's Body.
func (t *MedTech) MapWithProperties(payload []byte, props map[string]any) ([]Measurement, error) {
	ms, err := t.extract(payload, props)
	if err != nil {
		return nil, err
	}
	out := make([]Measurement, 0, len(ms))
	for i, m := range ms {
		r, err := t.reading(m)
		if err != nil {
			return nil, prefixed(fmt.Sprintf("measurements[%d](%s)", i, m.Type), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// extract runs the device mapping over payload (wrapped in an envelope
// unless it is one).
func (t *MedTech) extract(payload []byte, props map[string]any) ([]medtech.Measurement, error) {
	doc := payload
	if !isEnvelope(payload) {
		var err error
		if doc, err = medtech.Envelope(payload, props, nil); err != nil {
			return nil, err
		}
	}
	return t.device.Map(doc)
}

func (t *MedTech) reading(m medtech.Measurement) (Measurement, error) {
	tpl, ok := t.mapping.Lookup(m.Type)
	if !ok {
		return Measurement{}, &FieldError{Field: "typeName", Reason: "no FHIR mapping template"}
	}
	values := map[string]string{}
	for _, v := range m.Values {
		values[v.Name] = v.Value
	}
	in := Input{
		DeviceID:   m.DeviceID,
		PatientID:  m.PatientID,
		Time:       m.Timestamp.Format(time.RFC3339Nano),
		Provenance: Provenance{Template: "medtech/" + tpl.TypeName},
	}
	if in.PatientID == "" {
		in.PatientID = t.opts.DefaultPatientID
	}
	if kind, ok := kindOf(tpl.Codes); ok && catalogueFits(kind, tpl) {
		in.Kind = kind
		v, _ := Lookup(kind)
		if len(v.Components) > 0 {
			for _, c := range tpl.Components {
				part := partOf(v, c)
				if part == "" || c.Value == nil {
					continue
				}
				val, ok := values[c.Value.ValueName]
				if !ok {
					continue // an optional value the payload did not carry
				}
				in.Components = append(in.Components, InputComponent{Kind: part, Value: val, Unit: medtechUnit(c.Value)})
			}
		} else if tpl.Value != nil {
			in.Value = values[tpl.Value.ValueName]
			in.Unit = medtechUnit(tpl.Value)
			if in.Value == "" {
				in.Absent = "unknown"
			}
		}
		return in.Measurement()
	}
	return t.custom(in, tpl, values)
}

// custom builds a reading outside the catalogue from the template's codes.
func (t *MedTech) custom(in Input, tpl *medtech.CodeValueTemplate, values map[string]string) (Measurement, error) {
	if len(tpl.Codes) == 0 {
		return Measurement{}, &FieldError{Field: "codes", Reason: "the FHIR mapping template has no codes"}
	}
	if tpl.Value == nil {
		return Measurement{}, &FieldError{Field: "value", Reason: "readings outside the catalogue need a template value (components are supported for catalogue panels only)"}
	}
	c := &Custom{ValueType: tpl.Value.ValueType, Unit: tpl.Value.Unit, UnitSystem: tpl.Value.System, UnitCode: tpl.Value.Code, ValueText: tpl.Value.Text}
	if c.ValueType == medtech.ValueSampledData {
		c.ValueType = medtech.ValueQuantity
	}
	for _, code := range tpl.Codes {
		c.Codes = append(c.Codes, medtechCode(code))
	}
	for _, cat := range tpl.Category {
		for _, code := range cat.Codes {
			c.Category = append(c.Category, medtechCode(code))
		}
	}
	for _, code := range tpl.Value.Codes {
		c.ValueCodes = append(c.ValueCodes, medtechCode(code))
	}
	// Check the common fields with a stand-in kind, then make it custom.
	probe := in
	probe.Kind, probe.Value, probe.Unit = "heart-rate", "", ""
	probe.Absent = "unknown"
	m, err := probe.Measurement()
	if err != nil {
		return Measurement{}, err
	}
	m.Kind, m.Custom, m.Absent, m.Unit = KindCustom, c, "", c.Unit
	value := values[tpl.Value.ValueName]
	switch c.ValueType {
	case medtech.ValueQuantity:
		if value == "" {
			m.Absent = "unknown"
			break
		}
		if _, err := strconv.ParseFloat(value, 64); err != nil || strings.ContainsAny(value, "eEinfINFNaN") {
			return Measurement{}, &FieldError{Field: "values." + tpl.Value.ValueName, Reason: "not a decimal number"}
		}
		m.Value = canonicalDecimal(value)
	case medtech.ValueString:
		if value == "" {
			m.Absent = "unknown"
		}
		m.Value = value
	}
	return m, nil
}

// kindOf finds the catalogue kind whose primary or extra code is among codes.
func kindOf(codes []medtech.Coding) (string, bool) {
	for _, c := range codes {
		for _, k := range Kinds() {
			if isComponentOnly(k) {
				continue
			}
			if v, _ := Lookup(k); matches(v, c) {
				return k, true
			}
		}
	}
	return "", false
}

// catalogueFits reports whether a catalogue kind can take the template's
// value: quantities only (a CodeableConcept or String template stays custom).
func catalogueFits(kind string, tpl *medtech.CodeValueTemplate) bool {
	v, _ := Lookup(kind)
	if len(v.Components) > 0 {
		return len(tpl.Components) > 0
	}
	return tpl.Value != nil && (tpl.Value.ValueType == medtech.ValueQuantity || tpl.Value.ValueType == medtech.ValueSampledData)
}

func matches(v Vital, c medtech.Coding) bool {
	for _, vc := range append([]Code{v.Code, v.MDC}, v.Extra...) {
		if vc.Code != "" && vc.Code == c.Code && (c.System == "" || c.System == vc.System) {
			return true
		}
	}
	return false
}

// partOf picks the panel part a template component stands for: by code, or,
// when the codes are wrong (MedTech's own sample codes diastolic as heart
// rate, 8867-4), by the component's value name.
func partOf(v Vital, c medtech.Component) string {
	for _, part := range v.Components {
		pv, _ := Lookup(part)
		for _, code := range c.Codes {
			if matches(pv, code) {
				return part
			}
		}
	}
	if c.Value == nil {
		return ""
	}
	name := strings.ToLower(c.Value.ValueName)
	for _, p := range []struct{ prefix, part string }{{"sys", "systolic"}, {"dia", "diastolic"}, {"mean", "mean-arterial-pressure"}, {"map", "mean-arterial-pressure"}} {
		if strings.HasPrefix(name, p.prefix) && contains(v.Components, p.part) {
			return p.part
		}
	}
	return ""
}

func medtechUnit(v *medtech.ValueType) string {
	if v.Code != "" && (v.System == "" || v.System == "http://unitsofmeasure.org") {
		return v.Code
	}
	return v.Unit
}

func medtechCode(c medtech.Coding) Code {
	return Code{System: c.System, Code: c.Code, Display: c.Display}
}

// isEnvelope reports whether payload is a JSON object whose keys are only
// MedTech's envelope keys, including Body.
func isEnvelope(payload []byte) bool {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimPrefix(payload, []byte("\uFEFF")), &obj); err != nil {
		return false
	}
	if _, ok := obj["Body"]; !ok {
		return false
	}
	for k := range obj {
		if k != "Body" && k != "Properties" && k != "SystemProperties" {
			return false
		}
	}
	return true
}
