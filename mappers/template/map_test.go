package template_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/fhir-bridge/fhir-bridge/mappers/medtech"
	"github.com/fhir-bridge/fhir-bridge/mappers/template"
	"github.com/google/go-cmp/cmp"
)

func mustLoad(t testing.TB, src string) *template.Template {
	t.Helper()
	tpl, err := template.Load([]byte(src))
	if err != nil {
		t.Fatalf("Load:\n%s\n%v", src, err)
	}
	return tpl
}

// panelTemplate exercises every kind of field: a panel with optional and
// absent-capable components, a value reading with literal and expression
// units and data-absent reasons, subjects of every form and device details.
const panelTemplate = `version: 1
vendor: test
defaults:
  patientIdentifierSystem: "urn:oid:1.2.3"
readings:
  - kind: blood-pressure
    match: "$.bp[*]"
    device: "$.d"
    patient: "$$.patient"
    time: "$.t"
    status: "$.st"
    deviceInfo:
      serial: "$.sn"
      manufacturer: Acme
    components:
      - kind: systolic
        value: "$.sys"
        unit: mmHg
      - kind: diastolic
        value: "$.dia"
        dataAbsentReason: "$.diaErr"
      - kind: mean-arterial-pressure
        value: "$.map"
        unit: "$.mapUnit"
        required: false
  - kind: heart-rate
    match: "$.hr[*]"
    device: "$.d"
    patientIdentifier: "$$.mrn"
    time: "$.t"
    end: "$.e"
    value: "$.v"
    dataAbsentReason: error
  - kind: body-temperature
    match: "$.temp"
    device: "$$.gw"
    subject:
      type: Patient
      id: "$$.patient"
    time: "$.t"
    value: "$.v"
    unit: "$.u"
    status: preliminary
`

func TestMap(t *testing.T) {
	tpl := mustLoad(t, panelTemplate)
	prov := func(kind string) mappers.Provenance { return mappers.Provenance{Template: "test/" + kind} }
	tests := []struct {
		name    string
		payload string
		want    []mappers.Input
	}{
		{"nothing matches", `{"other": 1}`, nil},
		{"empty array payload", `[]`, nil},
		{
			"template order, then document order",
			`{"patient": "p1", "mrn": "M1", "gw": "gw1",
			  "temp": {"t": "2026-01-01T00:02:00Z", "v": 98.6, "u": "[degF]"},
			  "hr": [{"d": "h1", "t": "2026-01-01T00:00:00Z", "v": 61}, {"d": "h2", "t": "2026-01-01T00:01:00Z", "e": "2026-01-01T00:01:30Z", "v": 62.50}],
			  "bp": [{"d": "b1", "t": "2026-01-01T00:00:00Z", "sys": 120, "dia": 80, "map": 93, "mapUnit": "mm[Hg]", "sn": "S-1", "st": "final"}]}`,
			[]mappers.Input{
				{Kind: "blood-pressure", DeviceID: "b1", Device: mappers.Device{Serial: "S-1", Manufacturer: "Acme"}, PatientID: "p1",
					Time: "2026-01-01T00:00:00Z", Status: "final", Provenance: prov("blood-pressure"),
					Components: []mappers.InputComponent{{Kind: "systolic", Value: "120", Unit: "mmHg"}, {Kind: "diastolic", Value: "80"},
						{Kind: "mean-arterial-pressure", Value: "93", Unit: "mm[Hg]"}}},
				{Kind: "heart-rate", DeviceID: "h1", PatientIdentifierSystem: "urn:oid:1.2.3", PatientIdentifierValue: "M1",
					Time: "2026-01-01T00:00:00Z", Value: "61", Provenance: prov("heart-rate")},
				{Kind: "heart-rate", DeviceID: "h2", PatientIdentifierSystem: "urn:oid:1.2.3", PatientIdentifierValue: "M1",
					Time: "2026-01-01T00:01:00Z", End: "2026-01-01T00:01:30Z", Value: "62.50", Provenance: prov("heart-rate")},
				{Kind: "body-temperature", DeviceID: "gw1", SubjectType: "Patient", SubjectID: "p1", Time: "2026-01-01T00:02:00Z",
					Value: "98.6", Unit: "[degF]", Status: "preliminary", Provenance: prov("body-temperature")},
			},
		},
		{
			"absent values, optional component, booleans and empty optionals",
			`{"patient": "p1", "mrn": "M1",
			  "hr": [{"d": "h1", "t": "2026-01-01T00:00:00Z", "v": null}],
			  "bp": [{"d": "b1", "t": "2026-01-01T00:00:00Z", "sys": 120, "dia": "", "diaErr": "error", "map": null, "sn": true, "st": ""},
			         {"d": "b2", "t": "2026-01-01T00:00:00Z", "sys": "118", "dia": 79}]}`,
			[]mappers.Input{
				{Kind: "blood-pressure", DeviceID: "b1", Device: mappers.Device{Serial: "true", Manufacturer: "Acme"}, PatientID: "p1",
					Time: "2026-01-01T00:00:00Z", Provenance: prov("blood-pressure"),
					Components: []mappers.InputComponent{{Kind: "systolic", Value: "120", Unit: "mmHg"}, {Kind: "diastolic", Absent: "error"}}},
				{Kind: "blood-pressure", DeviceID: "b2", Device: mappers.Device{Manufacturer: "Acme"}, PatientID: "p1",
					Time: "2026-01-01T00:00:00Z", Provenance: prov("blood-pressure"),
					Components: []mappers.InputComponent{{Kind: "systolic", Value: "118", Unit: "mmHg"}, {Kind: "diastolic", Value: "79"}}},
				{Kind: "heart-rate", DeviceID: "h1", PatientIdentifierSystem: "urn:oid:1.2.3", PatientIdentifierValue: "M1",
					Time: "2026-01-01T00:00:00Z", Absent: "error", Provenance: prov("heart-rate")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tpl.Map([]byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Map (-want +got):\n%s", diff)
			}
		})
	}
}

// "$" is the matched token, "$$" the payload root, and "$" inside a filter
// the payload root too.
func TestMapRootAndToken(t *testing.T) {
	tpl := mustLoad(t, `version: 1
vendor: t
readings:
  - kind: heart-rate
    match: "$.r[?(@.kind == $.want)]"
    device: "$$.r[?(@.kind == 'hub')].id"
    patient: "$$.p"
    time: "$.t"
    value: "$"
    unit: "$$.unit"
`)
	// value "$" is the matched token itself: an object, so not a value.
	_, err := tpl.Map([]byte(`{"want": "hr", "p": "p1", "unit": "bpm", "r": [{"kind": "hub", "id": "hub-1"}, {"kind": "hr", "t": "2026-01-01T00:00:00Z"}]}`))
	if !errors.Is(err, template.ErrNotScalar) {
		t.Fatalf("got %v, want ErrNotScalar", err)
	}
	tpl = mustLoad(t, `version: 1
vendor: t
readings:
  - kind: heart-rate
    match: "$.v[*]"
    device: "$$.d"
    patient: "$$.p"
    time: "$$.t"
    value: "$"
`)
	got, err := tpl.Map([]byte(`{"d": "dev", "p": "p1", "t": "2026-01-01T00:00:00Z", "v": [60, 61.0, "62"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, in := range got {
		values = append(values, in.Value)
	}
	if diff := cmp.Diff([]string{"60", "61.0", "62"}, values); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

func TestMapTimeFormats(t *testing.T) {
	tests := []struct {
		format, value, want string
		err                 bool
	}{
		{"rfc3339", `"2026-11-25T10:15:00+01:00"`, "2026-11-25T10:15:00+01:00", false},
		{"rfc3339", `"not a time"`, "not a time", false}, // passed through; Input.Measurement refuses it
		{"rfc3339", `1795593600`, "1795593600", false},
		{"unix", `1795593600`, "2026-11-25T08:00:00Z", false},
		{"unix", `"1795593600"`, "2026-11-25T08:00:00Z", false},
		{"unix", `1795593600.25`, "2026-11-25T08:00:00.25Z", false},
		{"unix", `1795593600.1234567891`, "2026-11-25T08:00:00.123456789Z", false},
		{"unix", `0`, "1970-01-01T00:00:00Z", false},
		{"unix", `253402300799`, "9999-12-31T23:59:59Z", false},
		{"unix", `253402300800`, "", true},
		{"unix", `99999999999999999999`, "", true},
		{"unix", `-1`, "", true},
		{"unix", `1.7955936e9`, "", true},
		{"unix", `"1795593600."`, "", true},
		{"unix", `"2026-11-25T08:00:00Z"`, "", true},
		{"unix", `true`, "", true},
		{"unix-ms", `1795593600123`, "2026-11-25T08:00:00.123Z", false},
		{"unix-ms", `1795593600123.5`, "2026-11-25T08:00:00.1235Z", false},
		{"unix-ms", `1795593600`, "1970-01-21T18:46:33.6Z", false},
		{"unix-ms", `253402300799999`, "9999-12-31T23:59:59.999Z", false},
		{"unix-ms", `253402300800000`, "", true},
		{`"2006-01-02 15:04:05 -0700"`, `"2026-11-25 07:10:00 +0100"`, "2026-11-25T07:10:00+01:00", false},
		{`"2006-01-02 15:04:05 -0700"`, `"2026-11-25 07:10:00"`, "", true},
		{`"02.01.2006 15:04Z07:00"`, `"25.11.2026 07:10Z"`, "2026-11-25T07:10:00Z", false},
		{`"2006-01-02T15:04:05.999999999Z07:00"`, `"2026-11-25T07:10:00.5-03:30"`, "2026-11-25T07:10:00.5-03:30", false},
	}
	for _, tt := range tests {
		t.Run(tt.format+" "+tt.value, func(t *testing.T) {
			tpl := mustLoad(t, `version: 1
vendor: t
defaults:
  timeFormat: `+tt.format+`
readings:
  - kind: heart-rate
    match: "$"
    device: "$.d"
    patient: "$.p"
    time: "$.t"
    value: "$.v"
`)
			got, err := tpl.Map([]byte(`{"d": "d1", "p": "p1", "v": 60, "t": ` + tt.value + `}`))
			if tt.err {
				var ee *template.EvalError
				if !errors.As(err, &ee) || !errors.Is(err, template.ErrTimeFormat) || ee.Field != "time" {
					t.Fatalf("got %v, %v; want an *EvalError for time wrapping ErrTimeFormat", got, err)
				}
				if v := strings.Trim(tt.value, `"`); strings.Contains(err.Error(), v) {
					t.Errorf("error quotes the payload's time: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Time != tt.want {
				t.Errorf("Time = %q, want %q", got[0].Time, tt.want)
			}
		})
	}
}

// A per-reading timeFormat overrides the default, for time and end alike.
func TestMapReadingTimeFormat(t *testing.T) {
	tpl := mustLoad(t, `version: 1
vendor: t
defaults:
  timeFormat: unix
readings:
  - kind: step-count
    match: "$"
    device: "$.d"
    patient: "$.p"
    time: "$.s"
    end: "$.e"
    timeFormat: unix-ms
    value: "$.v"
  - kind: heart-rate
    match: "$"
    device: "$.d"
    patient: "$.p"
    time: "$.hrt"
    value: "$.v"
`)
	got, err := tpl.Map([]byte(`{"d": "d1", "p": "p1", "v": 60, "s": 1795593600000, "e": 1795597200000, "hrt": 1795593600}`))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Time != "2026-11-25T08:00:00Z" || got[0].End != "2026-11-25T09:00:00Z" || got[1].Time != "2026-11-25T08:00:00Z" {
		t.Errorf("times: %+v", got)
	}
}

// secret appears in every payload of TestMapErrors; no error may quote it.
const secret = "SECRET-PATIENT-DATA"

func TestMapErrors(t *testing.T) {
	tpl := mustLoad(t, panelTemplate)
	unix := mustLoad(t, strings.Replace(panelTemplate, "readings:", "  timeFormat: unix\nreadings:", 1))
	layout := mustLoad(t, strings.Replace(panelTemplate, "readings:", "  timeFormat: \"2006-01-02 15:04 -0700\"\nreadings:", 1))
	compare := mustLoad(t, `version: 1
vendor: cmp
readings:
  - kind: heart-rate
    match: "$.r[?(@.a < @.b)]"
    device: "$.d"
    patient: "$.p"
    time: "$.t"
    value: "$.v"
`)
	// Payload fragments: a valid blood-pressure token and root fields.
	const (
		root = `"patient": "p1", "mrn": "M1", "gw": "gw1", "name": "` + secret + `"`
		bpOK = `{"d": "b1", "t": "2026-01-01T00:00:00Z", "sys": 120, "dia": 80}`
	)
	tests := []struct {
		name     string
		tpl      *template.Template
		payload  string
		reading  int
		match    int
		field    string
		expr     string
		sentinel error
	}{
		{"device missing", tpl, `{` + root + `, "bp": [` + bpOK + `, {"t": "2026-01-01T00:00:00Z", "sys": 1, "note": "` + secret + `"}]}`,
			0, 1, "device", "$.d", template.ErrMissing},
		{"device null", tpl, `{` + root + `, "bp": [{"d": null, "t": "x"}]}`, 0, 0, "device", "$.d", template.ErrMissing},
		{"device empty", tpl, `{` + root + `, "bp": [{"d": "", "t": "x"}]}`, 0, 0, "device", "$.d", template.ErrMissing},
		{"device object", tpl, `{` + root + `, "bp": [{"d": {"id": "` + secret + `"}, "t": "x"}]}`, 0, 0, "device", "$.d", template.ErrNotScalar},
		{"device array", tpl, `{` + root + `, "bp": [{"d": ["` + secret + `"], "t": "x"}]}`, 0, 0, "device", "$.d", template.ErrNotScalar},
		{"time missing", tpl, `{` + root + `, "bp": [{"d": "b1", "sys": 1}]}`, 0, 0, "time", "$.t", template.ErrMissing},
		{"time not unix", unix, `{` + root + `, "bp": [{"d": "b1", "t": "` + secret + `"}]}`, 0, 0, "time", "$.t", template.ErrTimeFormat},
		{"time not layout", layout, `{` + root + `, "bp": [{"d": "b1", "t": "` + secret + `"}]}`, 0, 0, "time", "$.t", template.ErrTimeFormat},
		{"end not unix", unix, `{` + root + `, "hr": [{"d": "h1", "t": 1, "e": "` + secret + `", "v": 1}]}`, 1, 0, "end", "$.e", template.ErrTimeFormat},
		{"patient missing", tpl, `{"mrn": "M1", "bp": [` + bpOK + `]}`, 0, 0, "patient", "$$.patient", template.ErrMissing},
		{"patient identifier object", tpl, `{"patient": "p1", "mrn": {"v": "` + secret + `"}, "hr": [{"d": "h1", "t": "x", "v": 1}]}`,
			1, 0, "patientIdentifier", "$$.mrn", template.ErrNotScalar},
		{"subject id missing", tpl, `{"gw": "g", "name": "` + secret + `", "temp": {"t": "x", "v": 1, "u": "Cel"}}`, 2, 0, "subject.id", "$$.patient", template.ErrMissing},
		{"device info object", tpl, `{` + root + `, "bp": [{"d": "b1", "t": "x", "sn": {"x": "` + secret + `"}}]}`, 0, 0, "deviceInfo.serial", "$.sn", template.ErrNotScalar},
		{"status object", tpl, `{` + root + `, "bp": [{"d": "b1", "t": "x", "st": ["` + secret + `"]}]}`, 0, 0, "status", "$.st", template.ErrNotScalar},
		{"component value missing", tpl, `{` + root + `, "bp": [{"d": "b1", "t": "x", "dia": 80}]}`, 0, 0, "components[0].value", "$.sys", template.ErrMissing},
		{"component value and reason missing", tpl, `{` + root + `, "bp": [{"d": "b1", "t": "x", "sys": 120, "diaErr": null}]}`,
			0, 0, "components[1].value", "$.dia", template.ErrMissing},
		{"component reason object", tpl, `{` + root + `, "bp": [{"d": "b1", "t": "x", "sys": 120, "diaErr": {}}]}`,
			0, 0, "components[1].dataAbsentReason", "$.diaErr", template.ErrNotScalar},
		{"component unit missing", tpl, `{` + root + `, "bp": [{"d": "b1", "t": "x", "sys": 120, "dia": 80, "map": 90}]}`,
			0, 0, "components[2].unit", "$.mapUnit", template.ErrMissing},
		{"optional component object", tpl, `{` + root + `, "bp": [{"d": "b1", "t": "x", "sys": 120, "dia": 80, "map": {}}]}`,
			0, 0, "components[2].value", "$.map", template.ErrNotScalar},
		{"value missing", tpl, `{` + root + `, "temp": {"t": "x", "u": "Cel"}}`, 2, 0, "value", "$.v", template.ErrMissing},
		{"unit missing", tpl, `{` + root + `, "temp": {"t": "x", "v": 37}}`, 2, 0, "unit", "$.u", template.ErrMissing},
		{"value several", mustLoad(t, strings.Replace(panelTemplate, `value: "$.v"
    unit: "$.u"`, `value: "$..v"
    unit: "$.u"`, 1)), `{` + root + `, "temp": {"t": "x", "v": 37, "u": "Cel", "x": {"v": "` + secret + `"}}}`, 2, 0, "value", "$..v", medtech.ErrMultipleTokens},
		{"match comparison", compare, `{"r": [{"a": 5, "b": "` + secret + `"}]}`, 0, -1, "match", "$.r[?(@.a < @.b)]", medtech.ErrIncomparable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.tpl.Map([]byte(tt.payload))
			var ee *template.EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("got %v, %v; want an *EvalError", got, err)
			}
			if got != nil {
				t.Errorf("got Inputs %v with the error", got)
			}
			if ee.Reading != tt.reading || ee.Match != tt.match || ee.Field != tt.field || ee.Expression != tt.expr || !errors.Is(err, tt.sentinel) {
				t.Errorf("got %#v (%v)\nwant reading %d match %d field %q expression %q wrapping %v", ee, ee.Err, tt.reading, tt.match, tt.field, tt.expr, tt.sentinel)
			}
			if ee.Vendor != tt.tpl.Vendor() || ee.Kind == "" {
				t.Errorf("vendor %q kind %q", ee.Vendor, ee.Kind)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes payload data: %v", err)
			}
		})
	}
}

func TestMapErrorText(t *testing.T) {
	tpl := mustLoad(t, panelTemplate)
	_, err := tpl.Map([]byte(`{"patient": "p1", "bp": [{"d": "b1", "t": "x", "sys": 1, "dia": 2}, {"d": "b2", "t": "x"}]}`))
	want := `template test: readings[0] (blood-pressure), match 1: components[0].value: expression "$.sys": required value not found`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	_, err = mustLoad(t, `version: 1
vendor: cmp
readings:
  - kind: heart-rate
    match: "$[?(@.a < @.b)]"
    device: "$.d"
    patient: "$.p"
    time: "$.t"
    value: "$.v"
`).Map([]byte(`[{"a": 1, "b": "x"}]`))
	want = `template cmp: readings[0] (heart-rate): match: expression "$[?(@.a < @.b)]": filter compares values that cannot be converted to a common type`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestMapPayloadErrors(t *testing.T) {
	tpl := mustLoad(t, panelTemplate)
	tests := []struct {
		payload    string
		line, col  int
		msg        string
		wantPrefix string
	}{
		{"", 1, 1, "not valid JSON: empty document", "template test: invalid payload (line 1, column 1)"},
		{"{\n  \"patient\": " + secret + "}", 2, 14, "not valid JSON", ""},
		{`{"a": 1} {"b": 2}`, 1, 10, "not valid JSON", ""},
		{`"` + secret + `"`, 0, 0, "expected a JSON object or array, got string", "template test: invalid payload: expected"},
		{`42`, 0, 0, "expected a JSON object or array, got number", ""},
		{`null`, 0, 0, "expected a JSON object or array, got null", ""},
	}
	for _, tt := range tests {
		got, err := tpl.Map([]byte(tt.payload))
		var pe *template.PayloadError
		if !errors.As(err, &pe) || got != nil {
			t.Errorf("Map(%q) = %v, %v; want a *PayloadError", tt.payload, got, err)
			continue
		}
		if pe.Line != tt.line || pe.Column != tt.col || !strings.Contains(pe.Msg, tt.msg) || pe.Vendor != "test" {
			t.Errorf("Map(%q): got %#v", tt.payload, pe)
		}
		if !strings.HasPrefix(err.Error(), tt.wantPrefix) {
			t.Errorf("Map(%q): %q lacks prefix %q", tt.payload, err, tt.wantPrefix)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes payload data: %v", err)
		}
	}
}

// Map is deterministic and safe for concurrent use.
func TestMapConcurrent(t *testing.T) {
	tpl := loadFile(t, templatesDir+"/acme-rpm.yaml")
	payload := readFile(t, payloadsDir+"/acme-rpm/morning.json")
	want, err := tpl.Map(payload)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				got, err := tpl.Map(payload)
				if err != nil {
					errs <- err
					return
				}
				if diff := cmp.Diff(want, got); diff != "" {
					errs <- fmt.Errorf("run %d differs:\n%s", j, diff)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMapEachKeepsTheOtherReadings: a token whose fields cannot be
// extracted (here: no time) is returned with its error, the others with
// their Inputs, in the same order; Map refuses the whole payload.
func TestMapEachKeepsTheOtherReadings(t *testing.T) {
	tpl := mustLoad(t, `version: 1
vendor: t
readings:
  - kind: heart-rate
    match: "$.r[*]"
    device: "$$.d"
    patient: "$$.p"
    time: "$.t"
    value: "$.v"
    unit: bpm
`)
	payload := []byte(`{"d": "dev", "p": "p1", "r": [{"t": "2026-01-01T00:00:00Z", "v": 60}, {"v": 61}, {"t": "2026-01-01T00:02:00Z", "v": 62}]}`)
	if _, err := tpl.Map(payload); err == nil {
		t.Fatal("Map accepted a payload with a reading missing its time")
	}
	got, err := tpl.MapEach(payload)
	if err != nil {
		t.Fatal(err)
	}
	var ee *template.EvalError
	if len(got) != 3 || got[0].Err != nil || got[2].Err != nil || !errors.As(got[1].Err, &ee) || ee.Field != "time" ||
		got[0].Input.Value != "60" || got[2].Input.Value != "62" {
		t.Errorf("MapEach = %+v, want readings 0 and 2 with their values and reading 1 with an EvalError on time", got)
	}
}
