package mappers_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/google/go-cmp/cmp"
)

// reading returns a valid native payload with the given fields replaced
// (key=raw JSON value) or, for a value of "-", removed. Fields keep a fixed
// order so the raw input is easy to read in failures.
func reading(over ...string) []byte {
	fields := [][2]string{
		{"kind", `"heart-rate"`},
		{"device", `"hrm-0001"`},
		{"patient", `"synthetic-patient-1"`},
		{"time", `"2026-11-25T10:15:00Z"`},
		{"value", `72`},
		{"unit", `"/min"`},
	}
	for i := 0; i+1 < len(over); i += 2 {
		found := false
		for j := range fields {
			if fields[j][0] == over[i] {
				fields[j][1], found = over[i+1], true
			}
		}
		if !found {
			fields = append(fields, [2]string{over[i], over[i+1]})
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for _, f := range fields {
		if f[1] == "-" {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteString(`"` + f[0] + `":` + f[1])
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// sameTime compares instants and the offset they are written in.
var sameTime = cmp.Comparer(func(a, b time.Time) bool {
	return a.Equal(b) && a.Format(time.RFC3339Nano) == b.Format(time.RFC3339Nano)
})

func TestParseNative(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	want := func(value string, mods ...func(*mappers.Measurement)) mappers.Measurement {
		m := mappers.Measurement{Kind: "heart-rate", Device: mappers.Device{ID: "hrm-0001"}, Subject: mappers.Subject{Type: "Patient", ID: "synthetic-patient-1"}, Time: at, Value: value, Unit: "/min"}
		for _, f := range mods {
			f(&m)
		}
		return m
	}
	tests := []struct {
		name string
		in   []byte
		want mappers.Measurement
	}{
		{name: "integer value in UTC", in: reading(), want: want("72")},
		{name: "unit omitted defaults to the catalogue unit", in: reading("unit", "-"), want: want("72")},
		{name: "unit bpm becomes /min", in: reading("unit", `"bpm"`), want: want("72")},
		{name: "unit beats/min becomes /min", in: reading("unit", `"beats/min"`), want: want("72")},
		{name: "unit {beats}/min becomes /min", in: reading("unit", `"{beats}/min"`), want: want("72")},
		{name: "unit 1/min becomes /min", in: reading("unit", `"1/min"`), want: want("72")},
		{name: "empty unit is treated as omitted", in: reading("unit", `""`), want: want("72")},
		// A numeric string is accepted: encoding/json fills a json.Number from
		// a string holding a valid JSON number. Some vendors quote numbers.
		{name: "value as a numeric string is accepted", in: reading("value", `"72"`), want: want("72")},
		{name: "exponent is written out", in: reading("value", `7.2e1`), want: want("72")},
		{name: "upper-case exponent with sign", in: reading("value", `7.25E+1`), want: want("72.5")},
		{name: "negative exponent", in: reading("value", `725e-1`), want: want("72.5")},
		{name: "precision kept: 72.0", in: reading("value", `72.0`), want: want("72.0")},
		{name: "precision kept: 72.50", in: reading("value", `72.50`), want: want("72.50")},
		{name: "lowest plausible value", in: reading("value", `0`), want: want("0")},
		{name: "highest plausible value", in: reading("value", `400`), want: want("400")},
		{name: "negative zero is zero", in: reading("value", `-0`), want: want("-0")},
		{
			name: "offset kept",
			in:   reading("time", `"2026-11-25T12:15:00+02:00"`),
			want: want("72", func(m *mappers.Measurement) { m.Time = at.In(time.FixedZone("", 2*3600)) }),
		},
		{
			name: "-00:00 is UTC",
			in:   reading("time", `"2026-11-25T10:15:00-00:00"`),
			want: want("72"),
		},
		{
			name: "largest FHIR offset",
			in:   reading("time", `"2026-11-26T00:15:00+14:00"`),
			want: want("72", func(m *mappers.Measurement) { m.Time = at.In(time.FixedZone("", 14*3600)) }),
		},
		{
			name: "most negative FHIR offset",
			in:   reading("time", `"2026-11-24T20:15:00-14:00"`),
			want: want("72", func(m *mappers.Measurement) { m.Time = at.In(time.FixedZone("", -14*3600)) }),
		},
		{
			name: "fractional seconds",
			in:   reading("time", `"2026-11-25T10:15:00.250Z"`),
			want: want("72", func(m *mappers.Measurement) { m.Time = at.Add(250 * time.Millisecond) }),
		},
		{
			name: "64-character ids",
			in:   reading("device", `"`+strings.Repeat("d", 64)+`"`, "patient", `"`+strings.Repeat("P", 64)+`"`),
			want: want("72", func(m *mappers.Measurement) {
				m.Device.ID, m.Subject.ID = strings.Repeat("d", 64), strings.Repeat("P", 64)
			}),
		},
		{
			name: "ids with dots and dashes",
			in:   reading("device", `"a.b-C.9"`, "patient", `"-.-"`),
			want: want("72", func(m *mappers.Measurement) { m.Device.ID, m.Subject.ID = "a.b-C.9", "-.-" }),
		},
		{
			name: "year 0001 is a valid FHIR year",
			in:   reading("time", `"0001-01-01T00:00:00Z"`),
			want: want("72", func(m *mappers.Measurement) { m.Time = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC) }),
		},
		{name: "whitespace around the object", in: []byte(" \n\t" + string(reading()) + "\n "), want: want("72")},
		// encoding/json matches field names case-insensitively, so "Device"
		// fills device. Documented here as current behaviour, not a promise.
		{
			name: "field names match case-insensitively",
			in:   reading("device", "-", "Device", `"hrm-0001"`),
			want: want("72"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mappers.ParseNative(tt.in)
			if err != nil {
				t.Fatalf("ParseNative(%s): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, sameTime); diff != "" {
				t.Errorf("ParseNative(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseNativeErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		field  string
		reason string // substring of FieldError.Reason
	}{
		{name: "missing kind", in: reading("kind", "-"), field: "kind", reason: "missing; one of battery-level, blood-glucose"},
		{name: "empty kind", in: reading("kind", `""`), field: "kind", reason: "missing"},
		{name: "unknown kind", in: reading("kind", `"blood-sugar"`), field: "kind", reason: `unknown kind "blood-sugar"; one of battery-level`},
		{name: "component kind as a reading", in: reading("kind", `"systolic"`), field: "kind", reason: `"systolic" is a component of a panel`},
		{name: "panel with a value", in: reading("kind", `"blood-pressure"`), field: "value", reason: "blood-pressure is a panel"},
		{name: "kind of the wrong case", in: reading("kind", `"Heart-Rate"`), field: "kind", reason: "unknown kind"},
		{name: "kind not a string", in: reading("kind", `7`), field: "kind", reason: "must be a string, got number"},
		{name: "missing device", in: reading("device", "-"), field: "device", reason: "missing"},
		{name: "device with a space", in: reading("device", `"hrm 0001"`), field: "device", reason: "1-64 characters"},
		{name: "device of 65 characters", in: reading("device", `"`+strings.Repeat("d", 65)+`"`), field: "device", reason: "1-64 characters"},
		{name: "device with a slash", in: reading("device", `"Device/hrm-0001"`), field: "device", reason: "a FHIR id"},
		{name: "device with a non-ASCII letter", in: reading("device", `"hrm-ü"`), field: "device", reason: "a FHIR id"},
		{name: "missing patient", in: reading("patient", "-"), field: "patient", reason: "missing"},
		{name: "patient with an underscore", in: reading("patient", `"synthetic_patient"`), field: "patient", reason: "a FHIR id"},
		{name: "patient null", in: reading("patient", `null`), field: "patient", reason: "missing"},
		{name: "missing time", in: reading("time", "-"), field: "time", reason: "missing"},
		{name: "time without offset", in: reading("time", `"2026-11-25T10:15:00"`), field: "time", reason: "RFC 3339 with a UTC offset"},
		{name: "time as a date only", in: reading("time", `"2026-11-25"`), field: "time", reason: "RFC 3339"},
		{name: "time with a space separator", in: reading("time", `"2026-11-25 10:15:00Z"`), field: "time", reason: "RFC 3339"},
		{name: "time as epoch seconds", in: reading("time", `1764065700`), field: "time", reason: "must be a string, got number"},
		{name: "offset beyond +14:00", in: reading("time", `"2026-11-25T10:15:00+14:30"`), field: "time", reason: "UTC offset between -14:00 and +14:00"},
		{name: "offset beyond -14:00", in: reading("time", `"2026-11-25T10:15:00-15:00"`), field: "time", reason: "UTC offset between -14:00 and +14:00"},
		{name: "largest RFC 3339 offset", in: reading("time", `"2026-11-25T10:15:00+23:59"`), field: "time", reason: "not a valid FHIR dateTime"},
		{name: "year 0000", in: reading("time", `"0000-11-25T10:15:00Z"`), field: "time", reason: "year must be 0001 or later"},
		{name: "missing value", in: reading("value", "-"), field: "value", reason: "missing"},
		{name: "value null", in: reading("value", `null`), field: "value", reason: "missing"},
		{name: "value a non-numeric string", in: reading("value", `"seventy-two"`), field: "value", reason: "not a number"},
		{name: "value an empty string", in: reading("value", `""`), field: "value", reason: "not a number"},
		{name: "value a string with a unit", in: reading("value", `"72 bpm"`), field: "value", reason: "not a number"},
		{name: "value a boolean", in: reading("value", `true`), field: "value", reason: "must be a number, got bool"},
		{name: "value an object", in: reading("value", `{"v":72}`), field: "value", reason: "must be a number, got object"},
		{name: "value below the plausible range", in: reading("value", `-1`), field: "value", reason: "-1 /min outside the plausible range 0 to 400 /min for heart-rate"},
		{name: "value above the plausible range", in: reading("value", `401`), field: "value", reason: "401 /min outside the plausible range 0 to 400 /min"},
		{name: "value just above the range", in: reading("value", `400.001`), field: "value", reason: "outside the plausible range"},
		{name: "value overflowing float64", in: reading("value", `1e400`), field: "value", reason: "not a number"},
		{name: "bad unit", in: reading("unit", `"mmHg"`), field: "unit", reason: `unit "mmHg" not accepted for heart-rate; use one of "/min", "1/min", "beats/min", "bpm"`},
		{name: "unit of the wrong case", in: reading("unit", `"BPM"`), field: "unit", reason: "not accepted"},
		{name: "unknown field", in: reading("devce", `"hrm-0001"`), field: "devce", reason: "unknown field"},
		{name: "malformed JSON", in: []byte(`{"kind":"heart-rate",}`), field: "", reason: "malformed JSON at byte"},
		{name: "not JSON at all", in: []byte(`kind=heart-rate`), field: "", reason: "malformed JSON"},
		{name: "trailing data", in: append(reading(), " x"...), field: "", reason: "trailing data after the JSON object"},
		{name: "two objects", in: append(reading(), reading()...), field: "", reason: "trailing data"},
		{name: "empty input", in: nil, field: "", reason: "empty or truncated JSON"},
		{name: "only whitespace", in: []byte(" \n"), field: "", reason: "empty or truncated JSON"},
		{name: "truncated object", in: reading()[:30], field: "", reason: "empty or truncated JSON"},
		{name: "JSON null", in: []byte(`null`), field: "kind", reason: "missing"},
		{name: "empty object", in: []byte(`{}`), field: "kind", reason: "missing"},
		{name: "an array", in: []byte(`[` + string(reading()) + `]`), field: "", reason: "got array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mappers.ParseNative(tt.in)
			if err == nil {
				t.Fatalf("ParseNative(%s) = %+v, want an error", tt.in, m)
			}
			var fe *mappers.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseNative(%s): error %T %v, want *FieldError", tt.in, err, err)
			}
			if fe.Field != tt.field {
				t.Errorf("Field %q, want %q (error: %v)", fe.Field, tt.field, err)
			}
			if !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("Reason %q lacks %q", fe.Reason, tt.reason)
			}
			if !reflect.DeepEqual(m, mappers.Measurement{}) {
				t.Errorf("Measurement %+v returned with an error, want zero", m)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	tests := []struct {
		err  *mappers.FieldError
		want string
	}{
		{&mappers.FieldError{Field: "value", Reason: "missing"}, `field "value": missing`},
		{&mappers.FieldError{Reason: "trailing data after the JSON object"}, "trailing data after the JSON object"},
		{&mappers.FieldError{Field: "bad\x00field", Reason: "unknown field"}, `field "bad\x00field": unknown field`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// TestParseNativeErrorsOmitIdentifiers checks that no error echoes the
// patient or device id: errors are logged and audited, and ids may be PHI.
func TestParseNativeErrorsOmitIdentifiers(t *testing.T) {
	const patient, device = "zq-patient-4711-distinctive", "zq-device-0815-distinctive"
	ids := []string{"patient", `"` + patient + `"`, "device", `"` + device + `"`}
	with := func(over ...string) []byte { return reading(append(append([]string{}, ids...), over...)...) }
	tests := []struct {
		name string
		in   []byte
	}{
		{"missing time", with("time", "-")},
		{"time without offset", with("time", `"2026-11-25T10:15:00"`)},
		{"value out of range", with("value", `401`)},
		{"value not a number", with("value", `"abc"`)},
		{"value wrong type", with("value", `[72]`)},
		{"bad unit", with("unit", `"mmHg"`)},
		{"unknown kind", with("kind", `"blood-sugar"`)},
		{"unknown field", with("devce", `"x"`)},
		{"trailing data", append(with(), " }"...)},
		{"malformed", append(with()[:len(with())-1], `,}`...)},
		{"truncated", with()[:len(with())-5]},
		{"patient invalid", reading("patient", `"zq patient 4711 distinctive"`)},
		{"device invalid", reading("device", `"zq device 0815 distinctive"`)},
		{"patient wrong type", reading("patient", `["`+patient+`"]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mappers.ParseNative(tt.in)
			if err == nil {
				t.Fatalf("ParseNative(%s) succeeded", tt.in)
			}
			msg := err.Error()
			for _, secret := range []string{"4711", "0815", "distinctive"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q echoes the identifier (%q)", msg, secret)
				}
			}
		})
	}
}
