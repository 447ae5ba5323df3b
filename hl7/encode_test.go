package hl7

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// validORU is a complete report with one numeric OBX and one header row, the
// base every validation case mutates.
func validORU() ORU {
	m := baseORU("MSG000200")
	m.Observations = []OBX{
		{Identifier: mdc("528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM"), Hierarchy: "1", EquipmentID: EUI64(deviceEUI)},
		{ValueType: "NM", Identifier: mdcLN("150456", "MDC_PULS_OXIM_SAT_O2", "2708-6", "Oxygen saturation in Arterial blood"), Hierarchy: "1.0.0.1", Value: "97", Units: ucum("%", "", "")},
	}
	return m
}

func TestAppendValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *ORU)
		field  string
		reason string // substring of FieldError.Reason
	}{
		{"control id missing", func(m *ORU) { m.ControlID = "" }, "ControlID", "missing (MSH-10)"},
		{"control id too long", func(m *ORU) { m.ControlID = strings.Repeat("A", 200) }, "ControlID", "longer than 199"},
		{"control id with delimiter", func(m *ORU) { m.ControlID = "MSG|1" }, "ControlID", "printable ASCII"},
		{"control id with CR", func(m *ORU) { m.ControlID = "MSG\r1" }, "ControlID", "printable ASCII"},
		{"timestamp missing", func(m *ORU) { m.Timestamp = time.Time{} }, "Timestamp", "missing (MSH-7)"},
		{"timestamp year", func(m *ORU) { m.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "Timestamp", "year out of range"},
		{"sending application missing", func(m *ORU) { m.SendingApplication = HD{} }, "SendingApplication", "missing namespace id or universal id (MSH-3)"},
		{"sending application type missing", func(m *ORU) { m.SendingApplication.UniversalIDType = "" }, "SendingApplication", "without universal id type (MSH-3)"},
		{"sending application bad EUI-64", func(m *ORU) { m.SendingApplication.UniversalID = "0A1B2C3D4E5F607" }, "SendingApplication", "not an EUI-64"},
		{"sending facility type without id", func(m *ORU) { m.SendingFacility = HD{NamespaceID: "X", UniversalIDType: "ISO"} }, "SendingFacility", "type without universal id (MSH-4)"},
		{"receiving facility bad UTF-8", func(m *ORU) { m.ReceivingFacility.NamespaceID = "\xff" }, "ReceivingFacility", "not valid UTF-8 (MSH-6)"},
		{"processing id", func(m *ORU) { m.ProcessingID = "X" }, "ProcessingID", "not allowed (MSH-11)"},
		{"accept ack type", func(m *ORU) { m.AcceptAckType = "YES" }, "AcceptAckType", "not allowed (MSH-15)"},
		{"application ack type", func(m *ORU) { m.ApplicationAckType = "al" }, "ApplicationAckType", "not allowed (MSH-16)"},
		{"profile without entity id", func(m *ORU) { m.Profile = EI{NamespaceID: "HL7"} }, "Profile", "missing entity identifier (MSH-21.1)"},
		{"patient id missing", func(m *ORU) { m.Patient.ID = "" }, "Patient.ID", "missing (PID-3.1)"},
		{"assigning authority missing", func(m *ORU) { m.Patient.AssigningAuthority = HD{} }, "Patient.AssigningAuthority", "missing (PID-3.4)"},
		{"assigning authority type missing", func(m *ORU) { m.Patient.AssigningAuthority.UniversalID = "1.2.3" }, "Patient.AssigningAuthority", "without universal id type (PID-3.4)"},
		{"identifier type missing", func(m *ORU) { m.Patient.IdentifierType = "" }, "Patient.IdentifierType", "missing (PID-3.5)"},
		{"family name bad UTF-8", func(m *ORU) { m.Patient.FamilyName = "Do\xc3" }, "Patient.FamilyName", "not valid UTF-8 (PID-5.1)"},
		{"given name bad UTF-8", func(m *ORU) { m.Patient.GivenName = "\x80" }, "Patient.GivenName", "not valid UTF-8 (PID-5.2)"},
		{"patient class bad UTF-8", func(m *ORU) { m.PatientClass = "\xfe" }, "PatientClass", "not valid UTF-8 (PV1-2)"},
		{"placer without entity id", func(m *ORU) { m.Order.PlacerOrderNumber.EntityID = ""; m.Order.PlacerOrderNumber.UniversalID = "" }, "Order.PlacerOrderNumber", "missing entity identifier (OBR-2.1)"},
		{"filler missing", func(m *ORU) { m.Order.FillerOrderNumber = EI{} }, "Order.FillerOrderNumber", "missing entity identifier (OBR-3.1)"},
		{"filler bad EUI-64", func(m *ORU) { m.Order.FillerOrderNumber.UniversalID = "not-an-eui" }, "Order.FillerOrderNumber", "not an EUI-64"},
		{"service missing", func(m *ORU) { m.Order.UniversalServiceID = CWE{} }, "Order.UniversalServiceID", "missing (OBR-4)"},
		{"service without system", func(m *ORU) { m.Order.UniversalServiceID.System = "" }, "Order.UniversalServiceID", "missing coding system (OBR-4.3)"},
		{"observation time missing", func(m *ORU) { m.Order.ObservationTime = time.Time{} }, "Order.ObservationTime", "missing (OBR-7)"},
		{"observation end time year", func(m *ORU) { m.Order.ObservationEndTime = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, "Order.ObservationEndTime", "year out of range"},
		{"no observations", func(m *ORU) { m.Observations = nil }, "Observations", "at least one OBX"},
		{"identifier missing", func(m *ORU) { m.Observations[1].Identifier = CWE{} }, "OBX[1].Identifier", "missing (OBX-3)"},
		{"identifier code missing", func(m *ORU) { m.Observations[1].Identifier.Code = "" }, "OBX[1].Identifier", "missing code (OBX-3.1)"},
		{"identifier system missing", func(m *ORU) { m.Observations[0].Identifier.System = "" }, "OBX[0].Identifier", "missing coding system (OBX-3.3)"},
		{"identifier alternate code missing", func(m *ORU) { m.Observations[1].Identifier.AltCode = "" }, "OBX[1].Identifier", "missing alternate code (OBX-3.4)"},
		{"identifier alternate system missing", func(m *ORU) { m.Observations[1].Identifier.AltSystem = "" }, "OBX[1].Identifier", "missing alternate coding system (OBX-3.6)"},
		{"hierarchy missing", func(m *ORU) { m.Observations[1].Hierarchy = "" }, "OBX[1].Hierarchy", "missing (OBX-4)"},
		{"hierarchy malformed", func(m *ORU) { m.Observations[1].Hierarchy = "1..1" }, "OBX[1].Hierarchy", "dotted containment path"},
		{"hierarchy trailing dot", func(m *ORU) { m.Observations[1].Hierarchy = "1.0." }, "OBX[1].Hierarchy", "dotted containment path"},
		{"value type missing", func(m *ORU) { m.Observations[1].ValueType = "" }, "OBX[1].ValueType", "missing (OBX-2)"},
		{"value type unsupported", func(m *ORU) { m.Observations[1].ValueType = "NA" }, "OBX[1].ValueType", "unsupported value type"},
		{"NM not numeric", func(m *ORU) { m.Observations[1].Value = "97%" }, "OBX[1].Value", "not an NM"},
		{"NM two points", func(m *ORU) { m.Observations[1].Value = "9.7.1" }, "OBX[1].Value", "not an NM"},
		{"NM exponent", func(m *ORU) { m.Observations[1].Value = "1e3" }, "OBX[1].Value", "not an NM"},
		{"value missing", func(m *ORU) { m.Observations[1].Value = "" }, "OBX[1].Value", "missing (OBX-5)"},
		{"ST bad UTF-8", func(m *ORU) { m.Observations[1].ValueType, m.Observations[1].Value = "ST", "\xff" }, "OBX[1].Value", "not valid UTF-8 (OBX-5)"},
		{"DTM malformed", func(m *ORU) { m.Observations[1].ValueType, m.Observations[1].Value = "DTM", "2025-01-02" }, "OBX[1].Value", "not a DTM"},
		{"CWE with Value", func(m *ORU) { m.Observations[1].ValueType = "CWE" }, "OBX[1].Value", "set CodedValue"},
		{"CodedValue with NM", func(m *ORU) { m.Observations[1].CodedValue = mdc("1", "X") }, "OBX[1].CodedValue", "only for value type CWE"},
		{"CodedValue without system", func(m *ORU) {
			m.Observations[1].ValueType, m.Observations[1].Value, m.Observations[1].CodedValue = "CWE", "", CWE{Code: "N"}
		}, "OBX[1].CodedValue", "missing coding system (OBX-5.3)"},
		{"units without system", func(m *ORU) { m.Observations[1].Units.System = "" }, "OBX[1].Units", "missing coding system (OBX-6.3)"},
		{"reference range bad UTF-8", func(m *ORU) { m.Observations[1].ReferenceRange = "\xff" }, "OBX[1].ReferenceRange", "not valid UTF-8 (OBX-7)"},
		{"abnormal flag empty", func(m *ORU) { m.Observations[1].AbnormalFlags = []string{"H", ""} }, "OBX[1].AbnormalFlags", "empty flag (OBX-8)"},
		{"result status unknown", func(m *ORU) { m.Observations[1].ResultStatus = "A" }, "OBX[1].ResultStatus", "table 0085 (OBX-11)"},
		{"observation time year", func(m *ORU) { m.Observations[1].ObservationTime = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC) }, "OBX[1].ObservationTime", "year out of range 0-9999 (OBX-14)"},
		{"equipment bad EUI-64", func(m *ORU) { m.Observations[0].EquipmentID = EUI64("FEEDABEEDEAD77CZ") }, "OBX[0].EquipmentID", "not an EUI-64 of 16 hex digits (OBX-18)"},
		{"equipment namespace only", func(m *ORU) { m.Observations[0].EquipmentID = EI{NamespaceID: "X"} }, "OBX[0].EquipmentID", "missing entity identifier (OBX-18.1)"},
		{"site without code", func(m *ORU) { m.Observations[1].ObservationSite = CWE{Text: "left ear"} }, "OBX[1].ObservationSite", "missing code (OBX-20.1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validORU()
			tc.mutate(&m)
			dst := []byte("prefix")
			got, err := m.Append(dst)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Append error = %v, want a *FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("FieldError = {%q, %q}, want field %q with reason containing %q", fe.Field, fe.Reason, tc.field, tc.reason)
			}
			if want := "hl7: " + tc.field + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
			if string(got) != "prefix" {
				t.Errorf("dst = %q after an error, want it unchanged", got)
			}
		})
	}
}

func TestAppendAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *ORU)
		want   string // substring of the output
	}{
		{"valid base", func(m *ORU) {}, "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC^2708-6^Oxygen saturation in Arterial blood^LN|1.0.0.1|97|%^%^UCUM|||||F\r"},
		{"value type set but not obtained", func(m *ORU) { m.Observations[1].Value, m.Observations[1].ResultStatus = "", "X" }, "|1.0.0.1||%^%^UCUM|||||X\r"},
		{"signed decimal", func(m *ORU) { m.Observations[1].Value = "-0.50" }, "|1.0.0.1|-0.50|"},
		{"leading point", func(m *ORU) { m.Observations[1].Value = "+.5" }, "|1.0.0.1|+.5|"},
		{"coded value", func(m *ORU) {
			m.Observations[1].ValueType, m.Observations[1].Value = "CWE", ""
			m.Observations[1].CodedValue = CWE{Code: "N", Text: "Normal", System: "HL70078"}
		}, "OBX|2|CWE|150456^MDC_PULS_OXIM_SAT_O2^MDC^2708-6^Oxygen saturation in Arterial blood^LN|1.0.0.1|N^Normal^HL70078|"},
		{"DTM value", func(m *ORU) { m.Observations[1].ValueType, m.Observations[1].Value = "DTM", "20250102101455.12+0100" }, "|20250102101455.12+0100|"},
		{"text value", func(m *ORU) { m.Observations[1].ValueType, m.Observations[1].Value = "TX", "a|b" }, "|TX|"},
		{"abnormal flags repeat", func(m *ORU) { m.Observations[1].AbnormalFlags = []string{"H", "A"} }, "|%^%^UCUM||H~A|||F\r"},
		{"PV1 written when class set", func(m *ORU) { m.PatientClass = "O" }, "\rPV1||O\rOBR|"},
		{"patient name given only", func(m *ORU) { m.Patient.FamilyName = "" }, "||^Jane\r"},
		{"patient name family only", func(m *ORU) { m.Patient.GivenName = "" }, "||Doe\r"},
		{"patient name unknown", func(m *ORU) { m.Patient.FamilyName, m.Patient.GivenName = "", "" }, "||^^^^^^U\r"},
		{"assigning authority by OID", func(m *ORU) { m.Patient.AssigningAuthority = HD{UniversalID: "1.2.3", UniversalIDType: "ISO"} }, "PID|||MRN7788^^^&1.2.3&ISO^MR||"},
		{"explicit status on header row", func(m *ORU) { m.Observations[0].ResultStatus = "R" }, "|1|||||||R|||||||FEEDABEEDEAD77C3"},
		{"empty placer", func(m *ORU) { m.Order.PlacerOrderNumber = EI{} }, "OBR|1||RPM-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validORU()
			tc.mutate(&m)
			got, err := m.Append(nil)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !strings.Contains(string(got), tc.want) {
				t.Errorf("output does not contain %q:\n%s", tc.want, strings.ReplaceAll(string(got), "\r", "\n"))
			}
		})
	}
}

func TestAppendAppendsToDst(t *testing.T) {
	m := validORU()
	want, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Append([]byte("xyz"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "xyz"+string(want) {
		t.Errorf("Append did not append to dst: %q", got)
	}
}

func TestAppendDefaults(t *testing.T) {
	m := validORU()
	got, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	msh, _ := nextSegment(string(got))
	want := "MSH|^~\\&|RPMBridge^0A1B2C3D4E5F6071^EUI-64||EHR|HOSP|20250102101500+0000||ORU^R01^ORU_R01|MSG000200|P|2.6|||NE|AL||UNICODE UTF-8|||IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
	if diff := cmp.Diff(want, string(msh)); diff != "" {
		t.Errorf("MSH (-want +got):\n%s", diff)
	}
}

func TestAppendDTM(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+30*60)
	nst := time.FixedZone("NST", -(3*3600 + 30*60))
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), "20250102030405+0000"},
		{time.Date(2025, 1, 2, 3, 4, 5, 500_000_000, time.UTC), "20250102030405.5+0000"},
		{time.Date(2025, 1, 2, 3, 4, 5, 120_000_000, time.UTC), "20250102030405.12+0000"},
		{time.Date(2025, 1, 2, 3, 4, 5, 123_000_000, ist), "20250102030405.123+0530"},
		{time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, nst), "20250102030405.1234-0330"},
		{time.Date(2025, 1, 2, 3, 4, 5, 99_999, time.UTC), "20250102030405+0000"}, // below 100 us: truncated
		{time.Date(999, 12, 31, 23, 59, 59, 0, time.UTC), "09991231235959+0000"},
		{time.Time{}, ""},
	}
	for _, tc := range tests {
		if got := string(appendDTM(nil, tc.t)); got != tc.want {
			t.Errorf("appendDTM(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestValueSyntax(t *testing.T) {
	nm := map[string]bool{"0": true, "72": true, "-0.5": true, "+1.": true, ".5": true, "": false, "-": false, ".": false, "1.2.3": false, "1e3": false, " 1": false, "١": false}
	for s, want := range nm {
		if got := isNM(s); got != want {
			t.Errorf("isNM(%q) = %v, want %v", s, got, want)
		}
	}
	dtm := map[string]bool{"2025": true, "202501": true, "20250102": true, "2025010210": true, "202501021015": true, "20250102101500": true, "20250102101500.1234": true, "20250102101500+0100": true, "20250102-0500": true,
		"": false, "20250": false, "20250102101500.": false, "20250102101500.12345": false, "2025010210.5": false, "20250102+01": false, "2025-01-02": false}
	for s, want := range dtm {
		if got := isDTM(s); got != want {
			t.Errorf("isDTM(%q) = %v, want %v", s, got, want)
		}
	}
	dotted := map[string]bool{"1": true, "1.0.0.1": true, "12.345": true, "": false, ".1": false, "1.": false, "1..2": false, "1.a": false}
	for s, want := range dotted {
		if got := isDotted(s); got != want {
			t.Errorf("isDotted(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestAppendAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		oru  ORU
	}{{"heart rate", goldenCases()[0].oru}, {"blood pressure", benchBP()}} {
		m := tc.oru
		buf := make([]byte, 0, 4096)
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			buf, err = m.Append(buf[:0])
			if err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 0 {
			t.Errorf("%s: Append with a reused buffer allocates %.1f times per message, want 0", tc.name, allocs)
		}
	}
}
