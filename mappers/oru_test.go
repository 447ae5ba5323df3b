package mappers_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/google/go-cmp/cmp"
)

// HL7 goldens are stored with one segment per line for review; on the wire
// segments end with CR.
const hl7Dir = "../testdata/hl7"

// encodeORU renders readings as ORU^R01 messages, segments ending in "\n",
// messages separated by a blank line.
func encodeORU(t *testing.T, ms []mappers.Measurement) ([]byte, error) {
	t.Helper()
	msgs, err := mappers.ORU(ms, mappers.ORUOptions{})
	if err != nil {
		return nil, err
	}
	var out []byte
	for i, m := range msgs {
		if i > 0 {
			out = append(out, '\n')
		}
		b, err := m.Append(nil)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if _, err := hl7.ParseACK(b); err == nil {
			t.Fatalf("an ORU parsed as an ACK")
		}
		out = append(out, bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))...)
	}
	return out, nil
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./mappers -run Golden -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-golden +got):\n%s", path, diff)
	}
}

// TestGoldenHL7 maps every device case to ORU^R01 and compares the bytes with
// testdata/hl7/<kind>/<case>.hl7. Readings about a Device or Location have no
// HL7 form; for them the test checks the refusal instead.
func TestGoldenHL7(t *testing.T) {
	for _, name := range goldenCases(t, devicesDir) {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(devicesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := mappers.ParseNative(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeORU(t, []mappers.Measurement{m})
			if m.Subject.Type != "Patient" {
				var fe *mappers.FieldError
				if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "need a patient") {
					t.Fatalf("reading about a %s: err %v, want a refusal naming the patient", m.Subject.Type, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ORU: %v", err)
			}
			checkGolden(t, filepath.Join(hl7Dir, strings.TrimSuffix(name, ".json")+".hl7"), got)
		})
	}
}

// TestMedTechGoldenHL7 maps every MedTech fixture to ORU^R01.
func TestMedTechGoldenHL7(t *testing.T) {
	for _, tc := range medtechCases {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMedTech(t, tc.device, tc.mapping).Map(read(t, tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeORU(t, ms)
			if err != nil {
				t.Fatalf("ORU: %v", err)
			}
			checkGolden(t, filepath.Join("../testdata/medtech/hl7", tc.name+".hl7"), got)
		})
	}
}

func TestORUDeterministicAndGrouped(t *testing.T) {
	a, _ := mappers.ParseNative([]byte(`{"kind":"heart-rate","device":"d1","patient":"p1","time":"2026-11-25T10:00:00Z","value":70}`))
	b, _ := mappers.ParseNative([]byte(`{"kind":"spo2","device":"d1","patient":"p1","time":"2026-11-25T10:00:00Z","value":97}`))
	c, _ := mappers.ParseNative([]byte(`{"kind":"heart-rate","device":"d2","patient":"p2","time":"2026-11-25T10:00:00Z","value":71}`))
	msgs, err := mappers.ORU([]mappers.Measurement{a, b, c}, mappers.ORUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want one per patient and device", len(msgs))
	}
	if n := len(msgs[0].Observations); n != 3 {
		t.Errorf("first message has %d OBX, want a device row and two metrics", n)
	}
	again, _ := mappers.ORU([]mappers.Measurement{a, b, c}, mappers.ORUOptions{})
	if msgs[0].ControlID != again[0].ControlID || msgs[0].ControlID == msgs[1].ControlID {
		t.Errorf("control ids %q %q %q: want stable per content and distinct per message", msgs[0].ControlID, again[0].ControlID, msgs[1].ControlID)
	}
}
