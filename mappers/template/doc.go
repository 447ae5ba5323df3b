// Package template loads the bridge's native vendor templates (YAML, version
// 1; docs/templates.md) and uses them to extract readings from vendor JSON
// payloads as mappers.Input values, ready for Input.Measurement and then the
// FHIR R4 Observation and HL7 v2 encoders.
//
//	t, err := template.Load(yamlBytes) // *LoadError: YAML path, line, reason
//	ins, err := t.Map(payload)         // []mappers.Input; *PayloadError or *EvalError
//	for _, in := range ins {
//		m, err := in.Measurement() // catalogue checks and unit conversion, per reading
//	}
//
// A template names a vendor and lists readings. Each reading has a catalogue
// kind and a match expression selecting zero or more tokens of the payload;
// every selected token becomes one Input, whose fields come from further
// expressions evaluated against that token ("$.sys") or against the payload
// root ("$$.patient.id"). Expressions are JSONPath in the Json.NET dialect
// MedTech templates use, evaluated by package medtech, so both template
// formats read payloads identically.
//
// Load compiles every expression and checks kinds, components, literal
// units, statuses, data-absent reasons, subjects and time formats against
// the catalogue (mappers.Lookup), so a loaded template fails only on
// payloads that do not fit it. Unknown keys are errors.
//
// Map is pure and deterministic: readings in template order, matches in
// document order, Provenance.Template set to "<vendor>/<kind>". A required
// field (device, time, value, a unit or subject expression) that selects
// nothing, null or "" aborts the payload with an *EvalError; errors name
// template, reading, match, field and expression but never payload values,
// which may be patient data. A Template is immutable and safe for concurrent
// use.
package template
