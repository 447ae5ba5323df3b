package hl7

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/hl7")

// goldenDir holds the encoder goldens; segments in each file are separated
// by CR exactly as on the wire.
const goldenDir = "../testdata/hl7"

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.oru.Append(nil)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			path := filepath.Join(goldenDir, tc.name+".hl7")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(lines(want), lines(got)); diff != "" {
				t.Errorf("%s mismatch (-golden +got):\n%s", path, diff)
			}
			if string(got) != string(want) {
				t.Errorf("%s: bytes differ from the golden (terminators?)", path)
			}
		})
	}
}

// lines shows a message one segment per line, for readable diffs.
func lines(msg []byte) []string { return strings.Split(string(msg), "\r") }

// TestGoldenStructure checks every golden against the model it came from
// with the package's own segment and field readers, so escaping cannot hide
// a shifted field.
func TestGoldenStructure(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := tc.oru.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			checkStructure(t, &tc.oru, msg)
		})
	}
}

// checkStructure splits msg into segments and fields and compares what it
// finds with m. It is shared with FuzzEncode.
func checkStructure(t *testing.T, m *ORU, msg []byte) {
	t.Helper()
	if len(msg) == 0 || msg[len(msg)-1] != '\r' {
		t.Fatalf("message does not end with CR")
	}
	for _, c := range msg {
		if c == '\n' || c == StartBlock || c == EndBlock {
			t.Fatalf("message contains control byte 0x%02X", c)
		}
	}
	var segs []string
	for rest := string(msg); rest != ""; {
		var seg string
		seg, rest = nextSegment(rest)
		if len(seg) > 0 {
			segs = append(segs, seg)
		}
	}
	want := []string{"MSH", "PID"}
	if m.PatientClass != "" {
		want = append(want, "PV1")
	}
	want = append(want, "OBR")
	for range m.Observations {
		want = append(want, "OBX")
	}
	var got []string
	for _, s := range segs {
		got = append(got, s[:3])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("segments (-want +got):\n%s", diff)
	}
	d := stdDelims()
	f := func(seg string, n int) string { return unescape(field(seg, '|', n), d) }
	comp := func(seg string, n, c int) string { return unescape(component(field(seg, '|', n), '^', c), d) }
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	msh, pid := segs[0], segs[1]
	check("MSH-3.1", comp(msh, 2, 1), m.SendingApplication.NamespaceID)
	check("MSH-4.1", comp(msh, 3, 1), m.SendingFacility.NamespaceID)
	check("MSH-9", f(msh, 8), "ORU^R01^ORU_R01")
	check("MSH-10", f(msh, 9), m.ControlID)
	check("MSH-12", f(msh, 11), "2.6")
	check("MSH-18", f(msh, 17), "UNICODE UTF-8")
	check("PID-3.1", comp(pid, 3, 1), m.Patient.ID)
	check("PID-3.5", comp(pid, 3, 5), m.Patient.IdentifierType)
	if m.Patient.FamilyName != "" || m.Patient.GivenName != "" {
		check("PID-5.1", comp(pid, 5, 1), m.Patient.FamilyName)
		check("PID-5.2", comp(pid, 5, 2), m.Patient.GivenName)
	}
	i := 2
	if m.PatientClass != "" {
		check("PV1-2", f(segs[i], 2), m.PatientClass)
		i++
	}
	obr := segs[i]
	check("OBR-3.1", comp(obr, 3, 1), m.Order.FillerOrderNumber.EntityID)
	check("OBR-4.1", comp(obr, 4, 1), m.Order.UniversalServiceID.Code)
	check("OBR-4.2", comp(obr, 4, 2), m.Order.UniversalServiceID.Text)
	for k, x := range m.Observations {
		obx := segs[i+1+k]
		check("OBX-1", f(obx, 1), strconv.Itoa(k+1))
		check("OBX-3.1", comp(obx, 3, 1), x.Identifier.Code)
		check("OBX-3.2", comp(obx, 3, 2), x.Identifier.Text)
		check("OBX-3.5", comp(obx, 3, 5), x.Identifier.AltText)
		check("OBX-4", f(obx, 4), x.Hierarchy)
		if x.ValueType != "CWE" {
			check("OBX-5", f(obx, 5), x.Value)
		}
		check("OBX-6.1", comp(obx, 6, 1), x.Units.Code)
		check("OBX-7", f(obx, 7), x.ReferenceRange)
		check("OBX-11", f(obx, 11), resultStatus(&x))
		check("OBX-18.1", comp(obx, 18, 1), x.EquipmentID.EntityID)
	}
}
