package template_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/mappers/template"
)

// base is a minimal valid template; its line numbers are fixed:
// 1 version, 2 vendor, 3 readings, 4 kind, 5 match, 6 device, 7 patient,
// 8 time, 9 value, 10 unit.
const base = `version: 1
vendor: acme
readings:
  - kind: heart-rate
    match: "$.r[*]"
    device: "$.d"
    patient: "$$.p"
    time: "$.t"
    value: "$.v"
    unit: bpm
`

// replaceLines replaces lines from to to (1-based, inclusive) of src with
// repl, which may hold several lines or none.
func replaceLines(src string, from, to int, repl string) string {
	lines := strings.Split(src, "\n")
	out := append([]string{}, lines[:from-1]...)
	if repl != "" {
		out = append(out, strings.Split(repl, "\n")...)
	}
	return strings.Join(append(out, lines[to:]...), "\n")
}

// edit replaces one line of base.
func edit(line int, repl string) string { return replaceLines(base, line, line, repl) }

// bp is a two-reading template whose second reading is a panel; its
// readings[1].components[0].value is on line 17.
const bp = `version: 1
vendor: acme
readings:
  - kind: heart-rate
    match: "$.r[*]"
    device: "$.d"
    patient: "$$.p"
    time: "$.t"
    value: "$.v"
  - kind: blood-pressure
    match: "$.bp[*]"
    device: "$.d"
    patient: "$$.p"
    time: "$.t"
    components:
      - kind: systolic
        value: "$.sys"
        unit: mmHg
      - kind: diastolic
        value: "$.dia"
`

func editBP(line int, repl string) string { return replaceLines(bp, line, line, repl) }

// cold is a Location-subject template: 4 kind, 8 subject, 9 type, 10 id.
const cold = `version: 1
vendor: cold
readings:
  - kind: fridge-temperature
    match: "$.s[*]"
    device: "$.d"
    time: "$.t"
    subject:
      type: Location
      id: "$.loc"
    value: "$.v"
`

func editCold(line int, repl string) string { return replaceLines(cold, line, line, repl) }

func TestLoadValid(t *testing.T) {
	for name, src := range map[string]string{
		"base": base, "bp": bp, "cold": cold,
		"cold without subject":     replaceLines(cold, 8, 10, ""),
		"defaults":                 "defaults:\n  timeFormat: \"2006-01-02T15:04:05.000-0700\"\n  subjectType: Patient\n  patientIdentifierSystem: urn:oid:1.2.3\n" + base,
		"identifier mapping":       edit(7, "    patientIdentifier:\n      system: \"https://example.org/mrn\"\n      value: \"$$.mrn\""),
		"identifier with default":  "defaults:\n  patientIdentifierSystem: urn:oid:1.2.3\n" + edit(7, "    patientIdentifier: \"$$.mrn\""),
		"subject as patient":       edit(7, "    subject:\n      type: Patient\n      id: \"$.pid\""),
		"unit expression":          edit(10, "    unit: \"$.u\""),
		"unit omitted":             edit(10, ""),
		"status and absent":        base + "    status: preliminary\n    dataAbsentReason: \"$.err\"\n",
		"literal absent":           base + "    dataAbsentReason: error\n",
		"end and timeFormat":       base + "    end: \"$.e\"\n    timeFormat: unix-ms\n",
		"device info":              base + "    deviceInfo:\n      serial: \"$.sn\"\n      manufacturer: Acme\n      eui64: \"$$.eui\"\n",
		"optional component":       bp + "        required: false\n",
		"bare dollar":              edit(9, "    value: \"$\""),
		"root match":               edit(5, "    match: \"$$\""),
		"anchors without aliases":  edit(2, "vendor: &v acme"),
		"step-count without end":   strings.Replace(edit(10, "    unit: steps"), "heart-rate", "step-count", 1),
		"component absent literal": bp + "        dataAbsentReason: not-performed\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := template.Load([]byte(src)); err != nil {
				t.Errorf("Load:\n%s\n%v", src, err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		path   string
		line   int
		reason string
	}{
		// The file as a whole.
		{"empty", "", "", 0, "empty template"},
		{"comments only", "# nothing here\n", "", 0, "empty template"},
		{"YAML syntax", "version: 1\nvendor: acme\n  bad: x\n", "", 3, "invalid YAML: mapping values are not allowed in this context"},
		{"two documents", base + "---\nversion: 1\n", "", 11, "more than one YAML document"},
		{"not a mapping", "- version\n- 1\n", "", 1, "must be a mapping with the keys version, vendor, defaults, readings"},
		{"unknown top key", base + "vendr: x\n", "vendr", 11, "unknown key; expected one of version, vendor, defaults, readings"},
		{"duplicate key", base + "vendor: other\n", "vendor", 11, "given twice"},
		{"complex key", "? [a]\n: b\n", "", 1, "keys must be names"},
		{"odd key quoted in path", base + "\"a b\": 1\n", `["a b"]`, 11, "unknown key"},
		{"merge key", base + "    <<: {end: \"$.e\"}\n", `readings[0]["<<"]`, 11, "YAML merge keys are not supported"},
		{"alias", edit(2, "vendor: &v acme\nother: *v"), "other", 3, "unknown key"},
		{"alias value", edit(6, "    end: &d \"$.e\"\n    device: *d"), "readings[0].device", 7, "YAML aliases are not supported"},

		// version and vendor.
		{"version missing", edit(1, ""), "version", 1, "required: version: 1"},
		{"version 2", edit(1, "version: 2"), "version", 1, "unsupported version; this bridge reads version 1"},
		{"version string", edit(1, `version: "1"`), "version", 1, "must be the number 1"},
		{"vendor missing", edit(2, ""), "vendor", 1, "required"},
		{"vendor bad", edit(2, "vendor: acme rpm!"), "vendor", 2, "must be 1-64 characters"},
		{"vendor expression", edit(2, `vendor: "$.v"`), "vendor", 2, "takes a literal, not an expression"},
		{"vendor number", edit(2, "vendor: 12"), "vendor", 2, "must be a string (quote it)"},

		// defaults.
		{"defaults not a mapping", "defaults: rfc3339\n" + base, "defaults", 1, "must be a mapping"},
		{"defaults unknown key", "defaults:\n  timezone: UTC\n" + base, "defaults.timezone", 2, "unknown key; expected one of patientIdentifierSystem, timeFormat, subjectType"},
		{"defaults layout without zone", "defaults:\n  timeFormat: \"2006-01-02 15:04:05\"\n" + base, "defaults.timeFormat", 2, "numeric UTC offset"},
		{"defaults layout with zone name", "defaults:\n  timeFormat: \"2006-01-02 15:04:05 MST\"\n" + base, "defaults.timeFormat", 2, "numeric UTC offset"},
		{"defaults layout without date", "defaults:\n  timeFormat: \"15:04:05Z07:00\"\n" + base, "defaults.timeFormat", 2, "must be rfc3339, unix, unix-ms or a Go time layout"},
		{"defaults subject type", "defaults:\n  subjectType: Room\n" + base, "defaults.subjectType", 2, "must be Patient, Device or Location"},
		{"defaults system", "defaults:\n  patientIdentifierSystem: mrn\n" + base, "defaults.patientIdentifierSystem", 2, "absolute URI"},

		// readings.
		{"readings missing", replaceLines(base, 3, 10, ""), "readings", 1, "required: a list of readings"},
		{"readings empty", replaceLines(base, 3, 10, "readings: []"), "readings", 3, "must be a non-empty list of readings"},
		{"readings mapping", replaceLines(base, 3, 10, "readings: {}"), "readings", 3, "must be a non-empty list of readings"},
		{"reading scalar", replaceLines(base, 3, 10, "readings:\n  - heart-rate"), "readings[0]", 4, "must be a mapping"},
		{"reading unknown key", edit(6, `    devce: "$.d"`), "readings[0].devce", 6, "unknown key; expected one of kind, match, device"},
		{"reading duplicate key", edit(6, `    device: "$.d"`+"\n"+`    device: "$.e"`), "readings[0].device", 7, "given twice"},
		{"kind missing", replaceLines(base, 4, 5, `  - match: "$.r[*]"`), "readings[0].kind", 4, "required"},
		{"kind unknown", edit(4, "  - kind: pulse"), "readings[0].kind", 4, "unknown kind; one of"},
		{"kind component", edit(4, "  - kind: systolic"), "readings[0].kind", 4, "systolic is a component of a panel"},
		{"kind expression", edit(4, `  - kind: "$.kind"`), "readings[0].kind", 4, "takes a literal, not an expression"},
		{"match missing", edit(5, ""), "readings[0].match", 4, "required"},
		{"match literal", edit(5, "    match: readings"), "readings[0].match", 5, "must be an expression starting with $"},
		{"match syntax", edit(5, `    match: "$.r["`), "readings[0].match", 5, `invalid JSONPath "$.r[" at offset 4: path ended with open indexer`},
		{"root syntax offset", edit(7, `    patient: "$$.p[1 2]"`), "readings[0].patient", 7, `invalid JSONPath "$$.p[1 2]" at offset 7: unexpected character '2' in indexer`},
		{"match negative index", edit(5, `    match: "$.r[-1]"`), "readings[0].match", 5, `invalid JSONPath "$.r[-1]": negative array index`},
		{"dollar name", edit(6, `    device: "$device"`), "readings[0].device", 6, "expected '.', '[' or the end after $"},
		{"double dollar name", edit(7, `    patient: "$$p"`), "readings[0].patient", 7, "expected '.', '[' or the end after $$"},
		{"device missing", edit(6, ""), "readings[0].device", 4, "required"},
		{"device empty", edit(6, "    device:"), "readings[0].device", 6, "empty"},
		{"device empty string", edit(6, `    device: ""`), "readings[0].device", 6, "empty"},
		{"device list", edit(6, "    device: [a]"), "readings[0].device", 6, "must be a string"},
		{"time missing", edit(8, ""), "readings[0].time", 4, "required"},
		{"end literal", base + "    end: now\n", "readings[0].end", 11, "must be an expression"},
		{"reading timeFormat", base + "    timeFormat: epoch\n", "readings[0].timeFormat", 11, "must be rfc3339, unix, unix-ms or a Go time layout"},
		{"value missing", edit(9, ""), "readings[0].value", 4, "required"},
		{"value literal", edit(9, "    value: 72"), "readings[0].value", 9, "must be a string"},
		{"value quoted literal", edit(9, `    value: "72"`), "readings[0].value", 9, "must be an expression"},
		{"unit not accepted", edit(10, "    unit: beats"), "readings[0].unit", 10, `"beats" is not accepted for heart-rate; use one of`},
		{"unit bad expression", edit(10, `    unit: "$.u[?(@ == )]"`), "readings[0].unit", 10, "invalid JSONPath"},
		{"status", base + "    status: done\n", "readings[0].status", 11, "must be final, preliminary, amended, corrected, entered-in-error or unknown"},
		{"status bad expression", base + "    status: \"$[\"\n", "readings[0].status", 11, "invalid JSONPath"},
		{"absent reason", base + "    dataAbsentReason: broken\n", "readings[0].dataAbsentReason", 11, "not a data-absent-reason code"},
		{"components on a value kind", base + "    components: []\n", "readings[0].components", 11, "heart-rate has no components; give value and unit"},

		// Subjects.
		{"no subject", edit(7, ""), "readings[0].patient", 4, "required: give patient, patientIdentifier or subject"},
		{"patient and subject", base + "    subject:\n      id: \"$.s\"\n", "readings[0].subject", 11, "give one of patient, patientIdentifier or subject, not patient and subject"},
		{"patient literal", edit(7, "    patient: synthetic-patient-1"), "readings[0].patient", 7, "a literal here would give every reading the same value"},
		{"identifier without system", edit(7, `    patientIdentifier: "$$.mrn"`), "readings[0].patientIdentifier", 7, "needs a system"},
		{"identifier bad system", edit(7, "    patientIdentifier:\n      system: MRN\n      value: \"$$.mrn\""), "readings[0].patientIdentifier.system", 8, "absolute URI"},
		{"identifier unknown key", edit(7, "    patientIdentifier:\n      type: MR\n      value: \"$$.mrn\""), "readings[0].patientIdentifier.type", 8, "unknown key; expected one of system, value"},
		{"identifier value missing", edit(7, "    patientIdentifier:\n      system: urn:oid:1.2"), "readings[0].patientIdentifier.value", 8, "required"},
		{"subject id missing", edit(7, "    subject:\n      type: Patient"), "readings[0].subject.id", 8, "required"},
		{"subject scalar", edit(7, `    subject: "$.s"`), "readings[0].subject", 7, "must be a mapping with the keys type, id"},
		{"subject type default not allowed", "defaults:\n  subjectType: Location\n" + edit(7, "    subject:\n      id: \"$.s\""), "readings[0].subject", 9, `subject type "Location" not allowed for heart-rate; use Patient`},
		{"subject type not allowed", editCold(9, "      type: Patient"), "readings[0].subject.type", 9, `subject type "Patient" not allowed for fridge-temperature; use Device or Location`},
		{"patient of a fridge", editCold(8, `    patient: "$.p"`+"\n    subject:"), "readings[0].subject", 9, "not patient and subject"},
		{"patient of a fridge alone", replaceLines(cold, 8, 10, `    patient: "$.p"`), "readings[0].patient", 8, "a fridge-temperature reading is about a Device or Location, not a patient; give subject"},

		// deviceInfo.
		{"device info unknown key", base + "    deviceInfo:\n      firmware: \"$.fw\"\n", "readings[0].deviceInfo.firmware", 12, "unknown key; expected one of serial, eui64, mac, model, manufacturer"},
		{"device info bad expression", base + "    deviceInfo:\n      eui64: \"$.[\"\n", "readings[0].deviceInfo.eui64", 12, "invalid JSONPath"},
		{"device info list", base + "    deviceInfo: [serial]\n", "readings[0].deviceInfo", 11, "must be a mapping"},

		// Panels and components.
		{"component value syntax", editBP(17, `        value: "$.sys[?(@ <)]"`), "readings[1].components[0].value", 17, "invalid JSONPath"},
		{"component value missing", editBP(17, ""), "readings[1].components[0].value", 16, "required"},
		{"panel with value", bp + "    value: \"$.v\"\n", "readings[1].value", 21, "blood-pressure is a panel: give value under components"},
		{"panel with unit", editBP(15, "    unit: mmHg\n    components:"), "readings[1].unit", 15, "blood-pressure is a panel: give unit under components"},
		{"panel without components", replaceLines(bp, 15, 20, ""), "readings[1].components", 10, "required: blood-pressure is a panel of systolic, diastolic, mean-arterial-pressure"},
		{"components empty", replaceLines(bp, 15, 20, "    components: []"), "readings[1].components", 15, "must be a non-empty list of components"},
		{"component not a part", editBP(19, "      - kind: heart-rate"), "readings[1].components[1].kind", 19, "not a part of blood-pressure; use systolic, diastolic, mean-arterial-pressure"},
		{"component twice", editBP(19, "      - kind: systolic"), "readings[1].components[1].kind", 19, "systolic given twice"},
		{"component unknown key", editBP(18, "        units: mmHg"), "readings[1].components[0].units", 18, "unknown key; expected one of kind, value, unit, dataAbsentReason, required"},
		{"component unit", editBP(18, "        unit: kPa"), "readings[1].components[0].unit", 18, `"kPa" is not accepted for systolic; use one of "mmHg", "mm[Hg]"`},
		{"component required text", bp + "        required: \"no\"\n", "readings[1].components[1].required", 21, "must be true or false"},
		{"component absent reason", bp + "        dataAbsentReason: lost\n", "readings[1].components[1].dataAbsentReason", 21, "not a data-absent-reason code"},
		{"component scalar", replaceLines(bp, 16, 20, "      - systolic"), "readings[1].components[0]", 16, "must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := template.Load([]byte(tt.src))
			var le *template.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load:\n%s\ngot %v, want a *LoadError", tt.src, err)
			}
			if le.Path != tt.path || le.Line != tt.line || !strings.Contains(le.Reason, tt.reason) {
				t.Errorf("Load:\n%s\ngot  path %q line %d reason %q\nwant path %q line %d reason containing %q",
					tt.src, le.Path, le.Line, le.Reason, tt.path, tt.line, tt.reason)
			}
			if tt.line > 0 && le.Column == 0 {
				t.Errorf("no column in %v", le)
			}
		})
	}
}

// The error text has the documented shape: path, line and column, reason.
func TestLoadErrorText(t *testing.T) {
	_, err := template.Load([]byte(editBP(17, `        value: "sys"`)))
	want := "template: readings[1].components[0].value (line 17, column 16): must be an expression starting with $"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v\nwant prefix %s", err, want)
	}
	_, err = template.Load(nil)
	if err == nil || err.Error() != "template: empty template: expected version, vendor and readings" {
		t.Errorf("empty: got %v", err)
	}
}

func TestVendor(t *testing.T) {
	tpl, err := template.Load([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Vendor() != "acme" {
		t.Errorf("Vendor() = %q", tpl.Vendor())
	}
}
