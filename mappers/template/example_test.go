package template_test

import (
	"fmt"

	"github.com/fhir-bridge/fhir-bridge/mappers/template"
)

// A template turns a vendor document with an array of readings into one
// Input per reading; Input.Measurement then checks each against the
// catalogue and converts units (here pounds to kilograms).
func ExampleTemplate_Map() {
	tpl, err := template.Load([]byte(`
version: 1
vendor: acme-rpm
readings:
  - kind: heart-rate
    match: "$.readings[?(@.type == 'pulse')]"
    device: "$.deviceId"
    patient: "$$.patient.id"
    time: "$.ts"
    value: "$.value"
    unit: bpm
  - kind: body-weight
    match: "$.readings[?(@.type == 'weight')]"
    device: "$.deviceId"
    patient: "$$.patient.id"
    time: "$.ts"
    value: "$.value"
    unit: "[lb_av]"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	ins, err := tpl.Map([]byte(`{
		"patient": {"id": "synthetic-patient-1"},
		"readings": [
			{"type": "weight", "deviceId": "scale-1", "ts": "2026-11-25T08:05:00+01:00", "value": 172.4},
			{"type": "pulse", "deviceId": "cuff-1", "ts": "2026-11-25T08:00:00+01:00", "value": 64}
		]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, in := range ins {
		m, err := in.Measurement()
		if err != nil {
			fmt.Println(in.Provenance.Template, err)
			continue
		}
		fmt.Println(m.Provenance.Template, m.Device.ID, m.Subject.Reference(), m.Time.Format("15:04Z07:00"), m.Value, m.Unit)
	}
	// Output:
	// acme-rpm/heart-rate cuff-1 Patient/synthetic-patient-1 08:00+01:00 64 /min
	// acme-rpm/body-weight scale-1 Patient/synthetic-patient-1 08:05+01:00 78.20 kg
}

// Load errors name the YAML path, line and column, and the reason.
func ExampleLoad_error() {
	_, err := template.Load([]byte(`version: 1
vendor: acme-rpm
readings:
  - kind: heart-rate
    match: "$.readings[*]"
    device: "$.deviceId"
    patient: "$$.patient.id"
    time: "$.ts"
    value: "$.value"
    status: done
`))
	fmt.Println(err)
	// Output:
	// template: readings[0].status (line 10, column 13): must be final, preliminary, amended, corrected, entered-in-error or unknown
}

// Map errors name the reading, the match, the field and the expression, but
// never payload values.
func ExampleEvalError() {
	tpl, err := template.Load([]byte(`version: 1
vendor: acme-rpm
readings:
  - kind: heart-rate
    match: "$.readings[*]"
    device: "$.deviceId"
    patient: "$$.patient.id"
    time: "$.ts"
    value: "$.value"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = tpl.Map([]byte(`{"patient": {"id": "synthetic-patient-1"}, "readings": [
		{"deviceId": "cuff-1", "ts": "2026-11-25T08:00:00Z", "value": 64},
		{"deviceId": "cuff-1", "ts": "2026-11-25T08:01:00Z", "value": null}]}`))
	fmt.Println(err)
	// Output:
	// template acme-rpm: readings[0] (heart-rate), match 1: value: expression "$.value": required value not found
}
