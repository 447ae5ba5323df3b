package mappers_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/google/go-cmp/cmp"
)

func baseMeasurement() mappers.Measurement {
	return mappers.Measurement{
		Kind:   "heart-rate",
		Device: mappers.Device{ID: "hrm-0001"}, Subject: mappers.Subject{Type: "Patient", ID: "synthetic-patient-1"},
		Time:  time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC),
		Value: "72",
		Unit:  "/min",
	}
}

var hexKey = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestKeyDeterministic(t *testing.T) {
	m := baseMeasurement()
	k := m.Key()
	if !hexKey.MatchString(k) {
		t.Fatalf("Key() = %q, want 64 lower-case hex characters", k)
	}
	if again := baseMeasurement().Key(); again != k {
		t.Errorf("Key() of an equal Measurement = %q, want %q", again, k)
	}
	// The same payload parsed twice gives the same key.
	a, err := mappers.ParseNative(reading())
	if err != nil {
		t.Fatal(err)
	}
	b, err := mappers.ParseNative(reading())
	if err != nil {
		t.Fatal(err)
	}
	if a.Key() != b.Key() {
		t.Errorf("keys of one payload parsed twice differ: %s, %s", a.Key(), b.Key())
	}
	if a.Key() != k {
		t.Errorf("parsed key %s differs from the key of the equal Measurement %s", a.Key(), k)
	}
	if strings.Contains(k, m.Subject.ID) || strings.Contains(k, m.Device.ID) {
		t.Errorf("key %q carries an identifier in clear", k)
	}
}

func TestKeyIdentity(t *testing.T) {
	base := baseMeasurement()
	tests := []struct {
		name string
		mod  func(*mappers.Measurement)
		same bool
	}{
		{name: "other device", mod: func(m *mappers.Measurement) { m.Device.ID = "hrm-0002" }},
		{name: "other patient", mod: func(m *mappers.Measurement) { m.Subject.ID = "synthetic-patient-2" }},
		{name: "other kind", mod: func(m *mappers.Measurement) { m.Kind = "not-in-catalogue" }},
		{name: "one second later", mod: func(m *mappers.Measurement) { m.Time = m.Time.Add(time.Second) }},
		{name: "one microsecond later", mod: func(m *mappers.Measurement) { m.Time = m.Time.Add(time.Microsecond) }},
		{name: "one nanosecond later", mod: func(m *mappers.Measurement) { m.Time = m.Time.Add(time.Nanosecond) }},
		{
			name: "characters moved between device and patient",
			mod: func(m *mappers.Measurement) {
				// "hrm-0001"+"synthetic-patient-1" == "hrm-0001s"+"ynthetic-patient-1"
				m.Device.ID, m.Subject.ID = "hrm-0001s", "ynthetic-patient-1"
			},
		},
		{
			name: "device and patient swapped",
			mod:  func(m *mappers.Measurement) { m.Device.ID, m.Subject.ID = m.Subject.ID, m.Device.ID },
		},
		{
			name: "same instant at +05:30",
			mod:  func(m *mappers.Measurement) { m.Time = m.Time.In(time.FixedZone("IST", 5*3600+30*60)) },
			same: true,
		},
		{
			name: "same instant at -08:00",
			mod:  func(m *mappers.Measurement) { m.Time = m.Time.In(time.FixedZone("", -8*3600)) },
			same: true,
		},
		{
			name: "same instant in a named zone",
			mod: func(m *mappers.Measurement) {
				loc, err := time.LoadLocation("America/New_York")
				if err != nil {
					loc = time.FixedZone("EST", -5*3600)
				}
				m.Time = m.Time.In(loc)
			},
			same: true,
		},
		// Value and unit are not part of the reading's identity: a re-sent
		// reading deduplicates even if a gateway reformats its value.
		{name: "other value", mod: func(m *mappers.Measurement) { m.Value = "72.0" }, same: true},
		{name: "other unit", mod: func(m *mappers.Measurement) { m.Unit = "bpm" }, same: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMeasurement()
			tt.mod(&m)
			if same := m.Key() == base.Key(); same != tt.same {
				t.Errorf("key equal to the base key: %v, want %v", same, tt.same)
			}
		})
	}
}

func TestKeyFromPayloadsInDifferentOffsets(t *testing.T) {
	utc, err := mappers.ParseNative(reading("time", `"2026-11-25T10:15:00Z"`))
	if err != nil {
		t.Fatal(err)
	}
	local, err := mappers.ParseNative(reading("time", `"2026-11-25T11:15:00+01:00"`))
	if err != nil {
		t.Fatal(err)
	}
	if utc.Key() != local.Key() {
		t.Errorf("one instant in two offsets gives two keys: %s, %s", utc.Key(), local.Key())
	}
}

func TestObservation(t *testing.T) {
	m := baseMeasurement()
	obs, err := mappers.Observation(m, identifierSystem)
	if err != nil {
		t.Fatal(err)
	}
	if issues := fhir.CheckVitalSigns(obs); len(issues) > 0 {
		t.Errorf("Observation breaks the vital-signs profile: %v", issues)
	}
	ids := obs.GetIdentifier()
	if len(ids) != 1 || ids[0].GetSystem().GetValue() != identifierSystem || ids[0].GetValue().GetValue() != m.Key() {
		t.Errorf("identifier %v, want %s|%s", ids, identifierSystem, m.Key())
	}
	var profiles []string
	for _, p := range obs.GetMeta().GetProfile() {
		profiles = append(profiles, p.GetValue())
	}
	if diff := cmp.Diff([]string{"http://hl7.org/fhir/StructureDefinition/heartrate", fhir.ProfileVitalSigns}, profiles); diff != "" {
		t.Errorf("meta.profile (-want +got):\n%s", diff)
	}
	if got := obs.GetSubject().GetPatientId().GetValue(); got != m.Subject.ID {
		t.Errorf("subject Patient/%s, want Patient/%s", got, m.Subject.ID)
	}
	if got := obs.GetDevice().GetDeviceId().GetValue(); got != m.Device.ID {
		t.Errorf("device Device/%s, want Device/%s", got, m.Device.ID)
	}
	q := obs.GetValue().GetQuantity()
	if q.GetValue().GetValue() != "72" || q.GetCode().GetValue() != "/min" || q.GetSystem().GetValue() != fhir.SystemUCUM {
		t.Errorf("valueQuantity %v", q)
	}

	// Mapping is pure: a second call gives an equal, independent message.
	again, err := mappers.Observation(m, identifierSystem)
	if err != nil {
		t.Fatal(err)
	}
	if obs == again {
		t.Error("Observation returned the same message twice")
	}
	b1, err := newCodec(t).Encode(obs)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := newCodec(t).Encode(again)
	if err != nil {
		t.Fatal(err)
	}
	if string(b1) != string(b2) {
		t.Errorf("two mappings of one Measurement encode differently:\n%s\n%s", b1, b2)
	}
}

func TestObservationUnknownKind(t *testing.T) {
	m := baseMeasurement()
	m.Kind = "glucose"
	obs, err := mappers.Observation(m, identifierSystem)
	var fe *mappers.FieldError
	if !errors.As(err, &fe) || fe.Field != "kind" || !strings.Contains(fe.Reason, `unknown kind "glucose"`) {
		t.Fatalf("Observation with an unknown kind: %v, %v; want a kind FieldError", obs, err)
	}
	if obs != nil {
		t.Errorf("Observation returned %v with an error", obs)
	}
}

func TestCatalogue(t *testing.T) {
	kinds := mappers.Kinds()
	if len(kinds) == 0 {
		t.Fatal("empty catalogue")
	}
	for _, k := range kinds {
		v, ok := mappers.Lookup(k)
		if !ok || v.Kind != k {
			t.Errorf("Lookup(%q) = %+v, %v", k, v, ok)
			continue
		}
		if v.Code.System == "" || v.Code.Code == "" || v.Code.Display == "" {
			t.Errorf("%s: incomplete code %+v", k, v.Code)
		}
		if len(v.Components) > 0 {
			for _, c := range v.Components {
				if _, ok := mappers.Lookup(c); !ok {
					t.Errorf("%s: component %q not in the catalogue", k, c)
				}
			}
			continue
		}
		if v.Unit.UCUM == "" {
			t.Errorf("%s: no unit", k)
		}
		if v.Plausible[0] >= v.Plausible[1] {
			t.Errorf("%s: plausible range %v is empty", k, v.Plausible)
		}
		found := false
		for _, a := range v.AcceptedUnits() {
			found = found || a == v.Unit.UCUM
		}
		if !found {
			t.Errorf("%s: the UCUM unit %q is not among the accepted spellings %q", k, v.Unit.UCUM, v.AcceptedUnits())
		}
		if v.Category == "vital-signs" && len(v.Profiles) == 0 {
			t.Errorf("%s: vital sign without a profile", k)
		}
	}
	if _, ok := mappers.Lookup("no-such-kind"); ok {
		t.Error("Lookup of an unknown kind succeeded")
	}
	hr, _ := mappers.Lookup("heart-rate")
	if hr.Code.Code != "8867-4" || hr.Unit.UCUM != "/min" || hr.Profiles[0] != "http://hl7.org/fhir/StructureDefinition/heartrate" {
		t.Errorf("heart-rate entry %+v does not match the R4 heartrate profile", hr)
	}
}
