package mappers

// Differential tests of fhir/fhirjson, the bridge's native FHIR JSON encoder,
// against google/fhir (jsonformat behind fhirvalidate, and its validating
// unmarshaller) over everything the mappers produce: generated readings of
// every catalogue kind and every golden fixture. The contract is
// fhirjsontest.Referee.Compare's.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson/fhirjsontest"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

const diffSystem = "https://github.com/fhir-bridge/fhir-bridge/sid/observation-key"

// differ compares fhirjson with the referee and counts what it compared.
type differ struct {
	t            testing.TB
	ref          *fhirjsontest.Referee
	observations int
	devices      int
	failures     int
}

func newDiffer(t testing.TB) *differ {
	t.Helper()
	ref, err := fhirjsontest.New()
	if err != nil {
		t.Fatal(err)
	}
	return &differ{t: t, ref: ref}
}

// observation maps m and compares the encodings; it returns fhirjson's
// output. A reading the mapper refuses is the test's mistake.
func (d *differ) observation(label string, m Measurement) []byte {
	d.t.Helper()
	o, err := Observation(m, diffSystem)
	if err != nil {
		d.t.Fatalf("%s: Observation: %v", label, err)
	}
	before := proto.Clone(o)
	got, err := fhirjson.EncodeObservation(o)
	if err != nil {
		d.fail("%s: fhirjson refuses a mapper Observation: %v", label, err)
		return nil
	}
	if !proto.Equal(before, o) {
		d.fail("%s: fhirjson changed the Observation", label)
	}
	if v := d.ref.Compare(o, got, nil); v.Mismatch != "" || v.Note != "" {
		d.fail("%s: %s%s", label, v.Mismatch, v.Note)
	}
	d.observations++
	return got
}

func (d *differ) device(label string, dev Device) []byte {
	d.t.Helper()
	r := DeviceResource(dev)
	got, err := fhirjson.EncodeDevice(r)
	if err != nil {
		d.fail("%s: fhirjson refuses a mapper Device: %v", label, err)
		return nil
	}
	if v := d.ref.Compare(r, got, nil); v.Mismatch != "" || v.Note != "" {
		d.fail("%s: Device: %s%s", label, v.Mismatch, v.Note)
	}
	d.devices++
	return got
}

func (d *differ) fail(format string, args ...any) {
	d.t.Helper()
	d.failures++
	if d.failures > 20 {
		d.t.Fatalf("too many failures")
	}
	d.t.Errorf(format, args...)
}

// diffValues returns decimal literals for readings of v in its catalogue
// unit: the plausible bounds, values in between with no, one and two
// (trailing-zero) decimals, zero and negatives where plausible, large
// values, and the same values spelled with an exponent.
func diffValues(v Vital) []string {
	lo, hi := v.Plausible[0], v.Plausible[1]
	mid := lo + (hi-lo)*0.37
	fmtf := func(x float64, prec int) string { return strconv.FormatFloat(x, 'f', prec, 64) }
	vals := []string{fmtf(lo, -1), fmtf(hi, -1), fmtf(mid, 0), fmtf(mid, 1), fmtf(mid, 2)[:len(fmtf(mid, 2))-1] + "0",
		strconv.FormatFloat(mid, 'e', 3, 64), fmtf(hi*0.999, 6)}
	if lo < 0 {
		vals = append(vals, fmtf(lo*0.5, 2), "-0.5")
	}
	if lo <= 0 {
		vals = append(vals, "0", "0.000")
	}
	if v.Normal != nil && v.Normal.Low != nil && *v.Normal.Low > lo {
		vals = append(vals, fmtf(*v.Normal.Low-0.01, 2)) // interpretation L
	}
	if v.Normal != nil && v.Normal.High != nil && *v.Normal.High < hi {
		vals = append(vals, fmtf(*v.Normal.High+0.5, 1)) // interpretation H
	}
	return vals
}

// Times: UTC, the offsets devices send (including the extremes the mappers
// accept), and second, millisecond, microsecond and nanosecond precision.
var diffTimes = []string{
	"2026-11-25T10:15:00Z", "2026-11-25T10:15:00+01:00", "2026-11-25T10:15:00.125-05:30", "2026-03-29T01:59:59.000250+05:45",
	"2026-11-25T23:59:59.999999999+14:00", "2026-01-01T00:00:00-14:00", "1969-12-31T23:59:59.5Z", "0001-01-01T00:00:00+01:00",
}

// namedZones are applied to a reading's time after parsing: the mapper
// writes the zone's offset at that instant.
var namedZones = []string{"America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Lord_Howe"}

var diffStatuses = []string{"", "final", "preliminary", "amended", "corrected", "entered-in-error", "unknown"}

// diffSubjects returns the subjects a reading of v may have, as Input
// fields: a patient by id or by identifier, and each other allowed type.
func diffSubjects(v Vital) []func(*Input) {
	var out []func(*Input)
	for _, typ := range v.Subjects {
		out = append(out, func(in *Input) { in.SubjectType, in.SubjectID = typ, "subject-"+strings.ToLower(typ)+"-1" })
	}
	if len(v.Subjects) > 0 {
		out = append(out, func(in *Input) {}) // the device itself, by default
		return out
	}
	return append(out,
		func(in *Input) { in.PatientID = "synthetic-patient-1" },
		func(in *Input) { in.PatientID = "P.2-x" },
		func(in *Input) {
			in.PatientIdentifierSystem, in.PatientIdentifierValue = "urn:oid:1.2.36.146.595.217.0.1", `MRN "7" \ é`
		},
	)
}

var diffDevices = []Device{
	{},
	{Serial: "SN-0001", Model: "HR-100", Manufacturer: "Synthetic Devices Inc."},
	{EUI64: "fe-ed-ab-ee-de-ad-be-ef", MAC: "00:1b:63:84:45:e6"},
	{Serial: "sn 2 \"quoted\"", EUI64: "0123456789ABCDEF", MAC: "001B638445E6", Model: "M", Manufacturer: "Ärzte & Co <GmbH>"},
}

// TestFHIRJSONDifferential compares fhirjson with google/fhir on
// Observations of every catalogue reading kind (and custom template
// readings) with varied values, units, times, zones, subjects, statuses,
// periods, absent values and panel parts, and on their Devices.
func TestFHIRJSONDifferential(t *testing.T) {
	d := newDiffer(t)
	kinds := readingKinds()
	if len(kinds) < 10 {
		t.Fatalf("only %d reading kinds in the catalogue", len(kinds))
	}
	perKind := map[string]int{}
	devicesSeen := map[string]bool{}
	for _, kind := range kinds {
		v := catalogue[kind]
		subjects := diffSubjects(v)
		start := d.observations
		n := 0 // rotates the optional parts across the variants
		variant := func(label string, in Input) {
			in.Kind, in.DeviceID = kind, "dev-"+strconv.Itoa(n%3)
			subjects[n%len(subjects)](&in)
			in.Status = diffStatuses[n%len(diffStatuses)]
			in.Device = diffDevices[n%len(diffDevices)]
			if v.Period || n%5 == 0 {
				in.End = "9999-12-31T23:59:59Z"
			}
			n++
			m, err := in.Measurement()
			if err != nil {
				t.Fatalf("%s/%s: Input.Measurement: %v", kind, label, err)
			}
			d.observation(kind+"/"+label, m)
			if n%4 == 0 && m.Time.Year() > 1 { // a zone must not move the reading to year 0
				loc, err := time.LoadLocation(namedZones[n/4%len(namedZones)])
				if err != nil {
					t.Fatal(err)
				}
				m.Time = m.Time.In(loc)
				d.observation(kind+"/"+label+"@"+loc.String(), m)
			}
			if key := fmt.Sprint(m.Device); !devicesSeen[key] { // Devices do not depend on the reading
				devicesSeen[key] = true
				d.device(kind+"/"+label, m.Device)
			}
		}
		if len(v.Components) > 0 {
			for i := 0; i < 3*len(diffTimes); i++ {
				tm := diffTimes[i%len(diffTimes)]
				variant("parts/"+strconv.Itoa(i)+"/"+tm, Input{Time: tm, Components: panelParts(t, v, i)})
			}
			for _, reason := range []string{"", "unknown", "error", "not-performed"} {
				variant("absent-part/"+reason, Input{Time: diffTimes[0], Components: []InputComponent{{Kind: v.Components[0], Absent: reason}}})
			}
			perKind[kind] = d.observations - start
			continue
		}
		for i, val := range diffValues(v) {
			for j, tm := range diffTimes {
				if (i+j)%2 == 1 {
					continue // half the value x time grid keeps the test quick
				}
				variant("value/"+val+"/"+tm, Input{Time: tm, Value: val, Unit: []string{"", v.Unit.UCUM}[(i+j)/2%2]})
			}
		}
		for _, unit := range v.AcceptedUnits() {
			if val, ok := inRange(v, unit); ok {
				variant("unit/"+unit, Input{Time: diffTimes[1], Value: val, Unit: unit})
			}
		}
		for _, reason := range []string{"unknown", "asked-declined", "error", "not-a-number", "negative-infinity"} {
			variant("absent/"+reason, Input{Time: diffTimes[2], Absent: reason})
		}
		perKind[kind] = d.observations - start
	}
	for i, c := range diffCustoms() {
		m := Measurement{Kind: KindCustom, Custom: c.custom, Value: c.value, Device: Device{ID: "dev-c"},
			Subject: Subject{Type: "Patient", ID: "synthetic-patient-1"}, Time: time.Date(2026, 11, 25, 10, 15, 0, 0, time.FixedZone("", 3600))}
		if c.value == "" {
			m.Absent = "unknown"
		}
		if i%2 == 1 {
			m.End = m.Time.Add(time.Hour)
		}
		d.observation("custom/"+c.name, m)
		perKind[KindCustom]++
	}
	keys := make([]string, 0, len(perKind))
	for k, n := range perKind {
		if n == 0 {
			t.Errorf("kind %s: no variant compared", k)
		}
		keys = append(keys, k+"="+strconv.Itoa(n))
	}
	sort.Strings(keys)
	t.Logf("%d Observations over %d kinds (%s), %d Devices", d.observations, len(perKind), strings.Join(keys, " "), d.devices)
}

// panelParts returns the i-th combination of a panel's parts: all given,
// the optional third left out, one part absent, values at the plausible
// edges, in other units.
func panelParts(t *testing.T, v Vital, i int) []InputComponent {
	t.Helper()
	var out []InputComponent
	for j, part := range v.Components {
		pv := catalogue[part]
		vals := diffValues(pv)
		c := InputComponent{Kind: part, Value: vals[(i+j)%len(vals)]}
		switch {
		case j == 2 && i%2 == 0:
			continue // optional part left out
		case j == 1 && i%3 == 2:
			c.Value, c.Absent = "", "temp-unknown"
		case i%4 == 3:
			for _, unit := range pv.AcceptedUnits() {
				if val, ok := inRange(pv, unit); ok && unit != pv.Unit.UCUM {
					c.Value, c.Unit = val, unit
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// inRange returns a value in unit that converts to a plausible reading of v.
func inRange(v Vital, unit string) (string, bool) {
	for _, s := range []string{"37.2", "98.6", "72", "5.5", "150", "1.75", "70000", "-20.5", "0.5", "3", "40"} {
		if _, err := v.normalise(s, unit); err == nil {
			return s, true
		}
	}
	return "", false
}

type diffCustom struct {
	name   string
	custom *Custom
	value  string
}

// diffCustoms are template readings outside the catalogue (MedTech custom
// kinds): quantities with and without units, strings, CodeableConcepts.
func diffCustoms() []diffCustom {
	hrv := []Code{{System: "http://loinc.org", Code: "80404-7", Display: "R-R interval.standard deviation (Heart rate variability)"}}
	cat := []Code{{System: "http://terminology.hl7.org/CodeSystem/observation-category", Code: "vital-signs", Display: "Vital Signs"}}
	return []diffCustom{
		{"quantity", &Custom{Codes: hrv, Category: cat, ValueType: "Quantity", Unit: "ms", UnitSystem: "http://unitsofmeasure.org", UnitCode: "ms"}, "48.250"},
		{"quantity-unit-text-only", &Custom{Codes: hrv, ValueType: "Quantity", Unit: "milliseconds"}, "-3"},
		{"quantity-absent", &Custom{Codes: hrv, ValueType: "Quantity"}, ""},
		{"string", &Custom{Codes: append(hrv, Code{System: "urn:oid:2.16.840.1.113883.6.24", Code: "8867-4"}), ValueType: "String"}, "irregular \"rhythm\"\nsee note"},
		{"codeable-concept", &Custom{Codes: hrv, ValueType: "CodeableConcept", ValueText: "Sinus rhythm",
			ValueCodes: []Code{{System: "http://snomed.info/sct", Code: "64730000", Display: "Normal sinus rhythm"}}}, ""},
		{"codeable-concept-codes-only", &Custom{Codes: hrv, ValueType: "CodeableConcept", ValueCodes: []Code{{System: "http://snomed.info/sct", Code: "64730000"}}}, "x"},
	}
}

// Fixture locations, relative to the package directory.
const (
	diffDevicesDir   = "../testdata/devices"
	diffFHIRDir      = "../testdata/fhir"
	diffMedTechFHIR  = "../testdata/medtech/fhir"
	diffMedTechData  = "../testdata/medtech/payloads"
	diffCompat       = "medtech/testdata/compat"
	diffDocMapping   = "../testdata/medtech/fhirmapping/documentation.json"
	diffTemplateGold = "../testdata/templates/golden"
)

func diffRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func diffGlob(t *testing.T, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures match %s: %v", pattern, err)
	}
	return paths
}

// TestFHIRJSONGoldens runs every fixture that maps to FHIR through fhirjson:
// the native payloads (whose fhirjson output must also decode to the
// golden Observation), the MedTech fixtures (whose Observations and
// Devices must decode to the golden Bundle's entries, in order), and the
// template goldens' Measurements.
func TestFHIRJSONGoldens(t *testing.T) {
	d := newDiffer(t)

	for _, path := range diffGlob(t, filepath.Join(diffDevicesDir, "*", "*.json")) {
		rel, _ := filepath.Rel(diffDevicesDir, path)
		m, err := ParseNative(diffRead(t, path))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		got := d.observation(rel, m)
		d.device(rel, m.Device)
		want, err := d.ref.Decode(diffRead(t, filepath.Join(diffFHIRDir, rel)))
		if err != nil {
			t.Fatalf("golden %s: %v", rel, err)
		}
		if got != nil {
			d.sameResource(rel, want, got)
		}
	}
	natives := d.observations

	for _, path := range diffGlob(t, filepath.Join(diffMedTechFHIR, "*.json")) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		device, mapping, payload := medtechFixture(t, name)
		mt, err := LoadMedTech(diffRead(t, device), diffRead(t, mapping), MedTechOptions{DefaultPatientID: "synthetic-patient-1"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ms, err := mt.Map(diffRead(t, payload))
		if err != nil || len(ms) == 0 {
			t.Fatalf("%s: Map: %d readings, %v", name, len(ms), err)
		}
		golden, err := d.ref.Decode(diffRead(t, path))
		if err != nil {
			t.Fatalf("golden %s: %v", path, err)
		}
		entries := golden.(*crpb.ContainedResource).GetBundle().GetEntry()
		var got [][]byte
		seen := map[string]bool{}
		var devices []Device
		for i, m := range ms {
			got = append(got, d.observation(name+"/"+strconv.Itoa(i), m))
			if !seen[m.Device.ID] {
				seen[m.Device.ID] = true
				devices = append(devices, m.Device)
			}
		}
		for _, dev := range devices {
			got = append(got, d.device(name+"/"+dev.ID, dev))
		}
		if len(got) != len(entries) {
			t.Errorf("%s: %d resources, golden Bundle has %d entries", name, len(got), len(entries))
			continue
		}
		for i, b := range got {
			if b != nil {
				d.sameResource(name+"/entry"+strconv.Itoa(i), entries[i].GetResource(), b)
			}
		}
	}
	medtech := d.observations - natives

	for _, path := range diffGlob(t, filepath.Join(diffTemplateGold, "*", "*.json")) {
		var g struct {
			Readings []struct{ Measurement *Measurement }
		}
		if err := json.Unmarshal(diffRead(t, path), &g); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for i, r := range g.Readings {
			if r.Measurement != nil {
				label := path + "#" + strconv.Itoa(i)
				d.observation(label, *r.Measurement)
				d.device(label, r.Measurement.Device)
			}
		}
	}
	t.Logf("goldens: %d native, %d MedTech, %d template Observations; %d Devices", natives, medtech, d.observations-natives-medtech, d.devices)
}

// sameResource decodes fhirjson output b with the validating unmarshaller
// and compares it with a golden resource.
func (d *differ) sameResource(label string, want proto.Message, b []byte) {
	d.t.Helper()
	got, err := d.ref.Decode(b)
	if err != nil {
		d.fail("%s: %v", label, err)
		return
	}
	if !proto.Equal(want, got) {
		d.fail("%s: fhirjson output differs from the golden (-golden +fhirjson):\n%s", label, cmp.Diff(want, got, protocmp.Transform()))
	}
}

// medtechFixture finds the device mapping, FHIR mapping and payload of the
// MedTech golden name: a documentation sample ("doc_<sample>", with the
// repository's documentation FHIR mapping) or a payload of the compat
// template set its name starts with ("basic_all" -> templates/basic).
func medtechFixture(t *testing.T, name string) (device, mapping, payload string) {
	t.Helper()
	if sample, ok := strings.CutPrefix(name, "doc_"); ok {
		const prefix = "data_Documentation_CalculatedFunction_"
		base := func(path, suffix string) string {
			return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), prefix), suffix)
		}
		var payloadBase string
		for _, p := range diffGlob(t, filepath.Join(diffCompat, "documentation", prefix+"*_Payload.json")) {
			if b := base(p, "_Payload.json"); strings.ToLower(b) == sample {
				payload, payloadBase = p, b
			}
		}
		// The template is the longest one the payload's name starts with
		// (MultipleMeasurements_FromArray uses MultipleMeasurements).
		for _, p := range diffGlob(t, filepath.Join(diffCompat, "documentation", prefix+"*_Template.json")) {
			if b := base(p, "_Template.json"); strings.HasPrefix(payloadBase, b) && (device == "" || len(b) > len(base(device, "_Template.json"))) {
				device = p
			}
		}
		if payload == "" || device == "" {
			t.Fatalf("%s: no documentation sample", name)
		}
		return device, diffDocMapping, payload
	}
	set, _, _ := strings.Cut(name, "_")
	for _, dir := range diffGlob(t, filepath.Join(diffCompat, "templates", "*")) {
		if strings.HasPrefix(filepath.Base(dir), set) {
			return filepath.Join(dir, "devicecontent.json"), filepath.Join(dir, "fhirmapping.json"), filepath.Join(diffMedTechData, name+".json")
		}
	}
	t.Fatalf("%s: no template set", name)
	return "", "", ""
}

// FuzzObservationEncoding fuzzes a reading's fields (kind, value, unit,
// time and zone, ids, subject, status) straight into a Measurement, past
// the input checks, and requires of every Observation mappers.Observation
// builds the fhirjsontest.Referee.Compare contract: fhirjson writes what
// google/fhir writes, and refuses only what google/fhir refuses or
// corrupts (or writes as JSON that breaks FHIR R4, e.g. "Device/" for an
// empty id). Times are kept to local years 0001-9999 and offsets within
// ±14:00, the range the mappers' input accepts.
func FuzzObservationEncoding(f *testing.F) {
	for _, path := range diffGlobF(f, filepath.Join(diffDevicesDir, "*", "*.json")) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		m, err := ParseNative(b)
		if err != nil {
			f.Fatal(err)
		}
		_, off := m.Time.Zone()
		sub := uint8(0)
		if m.Subject.ID == "" {
			sub = 3
		}
		f.Add(m.Kind, m.Value, m.Unit, m.Time.Unix(), uint32(m.Time.Nanosecond()), int16(off/60), m.Device.ID, m.Subject.ID+m.Subject.IdentifierValue, sub, uint8(0))
	}
	for i, kind := range readingKinds() {
		f.Add(kind, "72.50", "", int64(1795000000+i), uint32(i*1000), int16(i*37-300), "dev-"+kind, "p-1", uint8(i), uint8(i))
	}
	f.Add(KindCustom, "irregular", "ms", int64(0), uint32(0), int16(840), "d", "p", uint8(1), uint8(1))
	f.Add("heart-rate", "7.2e1", "/min", int64(-62135596800), uint32(999999999), int16(-840), "", "", uint8(3), uint8(2))
	f.Add("heart-rate", " 72", "", int64(253402300799), uint32(0), int16(0), "a/b", "p q", uint8(0), uint8(0))
	d := newDiffer(f)
	f.Fuzz(func(t *testing.T, kind, value, unit string, sec int64, nanos uint32, offMin int16, deviceID, subjectID string, subject, status uint8) {
		kinds := append(readingKinds(), KindCustom)
		if _, ok := catalogue[kind]; !ok && kind != KindCustom {
			kind = kinds[int(uint(len(kind)))%len(kinds)]
		}
		off := (int(offMin)%(14*60+1) + 14*60 + 1) % (14*60 + 1) // 0..840
		if offMin < 0 {
			off = -off
		}
		loc := time.FixedZone("", off*60)
		lo := time.Date(1, 1, 1, 0, 0, 0, 0, loc).Unix()
		hi := time.Date(9999, 12, 31, 23, 59, 59, 0, loc).Unix()
		if sec < lo || sec > hi {
			sec = lo + int64(uint64(sec)%uint64(hi-lo+1))
		}
		m := Measurement{
			Kind: kind, Device: Device{ID: deviceID}, Value: value, Unit: unit,
			Time:   time.Unix(sec, int64(nanos%1e9)).In(loc),
			Status: diffStatuses[int(status)%len(diffStatuses)],
		}
		switch subject % 4 {
		case 0:
			m.Subject = Subject{Type: "Patient", ID: subjectID}
		case 1:
			m.Subject = Subject{Type: "Device", ID: subjectID}
		case 2:
			m.Subject = Subject{Type: "Location", ID: subjectID}
		case 3:
			m.Subject = Subject{Type: "Patient", IdentifierSystem: unit, IdentifierValue: subjectID}
		}
		if status%3 == 1 {
			m.End = m.Time.Add(time.Duration(nanos) * time.Millisecond)
		}
		v := catalogue[kind]
		switch {
		case kind == KindCustom:
			m.Custom = &Custom{Codes: []Code{{System: "urn:x:" + unit, Code: value, Display: subjectID}},
				ValueType: []string{"Quantity", "String", "CodeableConcept"}[status%3], Unit: unit, UnitSystem: "http://unitsofmeasure.org", UnitCode: unit,
				ValueCodes: []Code{{System: deviceID, Code: unit}}, ValueText: value}
		case len(v.Components) > 0:
			m.Value = ""
			for i, part := range v.Components {
				c := Component{Kind: part, Value: value, Unit: unit}
				if i == 1 {
					c.Value, c.Absent = "", unit
				}
				m.Components = append(m.Components, c)
			}
		case value == "":
			m.Absent = unit
		}
		o, err := Observation(m, diffSystem)
		if err != nil {
			return
		}
		got, err := fhirjson.EncodeObservation(o)
		if v := d.ref.Compare(o, got, err); v.Mismatch != "" {
			t.Fatalf("%+v:\n%s", m, v.Mismatch)
		}
		r := DeviceResource(Device{ID: deviceID, Serial: subjectID, Model: unit, Manufacturer: value})
		got, err = fhirjson.EncodeDevice(r)
		if v := d.ref.Compare(r, got, err); v.Mismatch != "" {
			t.Fatalf("Device %q: %s", deviceID, v.Mismatch)
		}
	})
}

func diffGlobF(f *testing.F, pattern string) []string {
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures match %s: %v", pattern, err)
	}
	return paths
}
