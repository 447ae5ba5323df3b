package hl7

import "time"

// All patients, devices and identifiers below are synthetic.

var (
	reportTime = time.Date(2025, 1, 2, 10, 15, 0, 0, time.UTC)
	readTime   = time.Date(2025, 1, 2, 10, 14, 55, 0, time.UTC)
	bridgeApp  = HD{NamespaceID: "RPMBridge", UniversalID: "0A1B2C3D4E5F6071", UniversalIDType: UniversalIDTypeEUI64}
	bridgeEUI  = "0A1B2C3D4E5F6071"
	deviceEUI  = "FEEDABEEDEAD77C3"
)

func reportID(id string) EI {
	return EI{EntityID: id, NamespaceID: "RPMBridge", UniversalID: bridgeEUI, UniversalIDType: UniversalIDTypeEUI64}
}

func mdc(code, ref string) CWE { return CWE{Code: code, Text: ref, System: SystemMDC} }

func mdcLN(code, ref, loinc, display string) CWE {
	return CWE{Code: code, Text: ref, System: SystemMDC, AltCode: loinc, AltText: display, AltSystem: SystemLOINC}
}

func ucum(unit, mdcCode, mdcRef string) CWE {
	c := CWE{Code: unit, Text: unit, System: SystemUCUM}
	if mdcCode != "" {
		c.AltCode, c.AltText, c.AltSystem = mdcCode, mdcRef, SystemMDC
	}
	return c
}

func baseORU(controlID string) ORU {
	return ORU{
		ControlID:            controlID,
		Timestamp:            reportTime,
		SendingApplication:   bridgeApp,
		ReceivingApplication: HD{NamespaceID: "EHR"},
		ReceivingFacility:    HD{NamespaceID: "HOSP"},
		Patient: Patient{
			ID:                 "MRN7788",
			AssigningAuthority: HD{NamespaceID: "HOSP"},
			IdentifierType:     "MR",
			FamilyName:         "Doe",
			GivenName:          "Jane",
		},
		Order: Order{
			PlacerOrderNumber:  reportID("RPM-" + controlID),
			FillerOrderNumber:  reportID("RPM-" + controlID),
			UniversalServiceID: CWE{Code: "182777000", Text: "monitoring of patient", System: "SNOMED-CT"},
			ObservationTime:    readTime,
		},
	}
}

// goldenCase is one encoder golden: testdata/hl7/<name>.hl7.
type goldenCase struct {
	name string
	oru  ORU
}

func goldenCases() []goldenCase {
	// Heart rate: one OBX, a non-UTC offset and sub-second times.
	est := time.FixedZone("EST", -5*3600)
	hr := baseORU("MSG000101")
	hr.Timestamp = time.Date(2025, 1, 2, 5, 15, 0, 250_000_000, est)
	hr.Order.ObservationTime = time.Date(2025, 1, 2, 5, 14, 55, 123_400_000, est)
	hr.Observations = []OBX{{
		ValueType:       "NM",
		Identifier:      mdcLN("147842", "MDC_ECG_HEART_RATE", "8867-4", "Heart rate"),
		Hierarchy:       "1.0.0.1",
		Value:           "72",
		Units:           ucum("/min", "264864", "MDC_DIM_BEAT_PER_MIN"),
		ResultStatus:    "R",
		ObservationTime: time.Date(2025, 1, 2, 5, 14, 55, 123_400_000, est),
		EquipmentID:     EUI64(deviceEUI),
	}}

	// Blood pressure: device row, NIBP compound row and systolic, diastolic
	// and mean in one containment tree (PHD style 1 / 1.0.1 / 1.0.1.n).
	bp := baseORU("MSG000102")
	bp.PatientClass = "R"
	bp.Order.UniversalServiceID = mdc("528391", "MDC_DEV_SPEC_PROFILE_BP")
	bp.Order.ObservationEndTime = readTime.Add(40 * time.Second)
	mmHg := ucum("mm[Hg]", "266016", "MDC_DIM_MMHG")
	bp.Observations = []OBX{
		{Identifier: mdc("528391", "MDC_DEV_SPEC_PROFILE_BP"), Hierarchy: "1", EquipmentID: EUI64(deviceEUI)},
		{Identifier: mdcLN("150020", "MDC_PRESS_BLD_NONINV", "85354-9", "Blood pressure panel with all children optional"), Hierarchy: "1.0.1", ObservationTime: readTime},
		{ValueType: "NM", Identifier: mdcLN("150021", "MDC_PRESS_BLD_NONINV_SYS", "8480-6", "Systolic blood pressure"), Hierarchy: "1.0.1.1", Value: "120", Units: mmHg, ObservationTime: readTime},
		{ValueType: "NM", Identifier: mdcLN("150022", "MDC_PRESS_BLD_NONINV_DIA", "8462-4", "Diastolic blood pressure"), Hierarchy: "1.0.1.2", Value: "80", Units: mmHg, ObservationTime: readTime},
		{ValueType: "NM", Identifier: mdcLN("150023", "MDC_PRESS_BLD_NONINV_MEAN", "8478-0", "Mean blood pressure"), Hierarchy: "1.0.1.3", Value: "93.3", Units: mmHg, ObservationTime: readTime},
	}

	// SpO2 with pulse rate, the vendor MSH-21 form and AL/NE, a reference
	// range, an abnormal flag and an observation site.
	spo2 := baseORU("MSG000103")
	spo2.SendingFacility = HD{NamespaceID: "HOME", UniversalID: "1.2.3.4.5", UniversalIDType: "ISO"}
	spo2.ProcessingID = "T"
	spo2.AcceptAckType, spo2.ApplicationAckType = "AL", "NE"
	spo2.Profile = EI{EntityID: "IHE_PCD_001", NamespaceID: "IHE PCD", UniversalID: PCD01ProfileOID, UniversalIDType: PCD01ProfileOIDType}
	spo2.Patient = Patient{ID: "HO2009001", AssigningAuthority: HD{NamespaceID: "NIST", UniversalID: "2.16.840.1.113883.3.72.5.30.2", UniversalIDType: "ISO"}, IdentifierType: "PI", FamilyName: "Hon"}
	spo2.Order.UniversalServiceID = mdc("528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM")
	spo2.Observations = []OBX{
		{Identifier: mdc("528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM"), Hierarchy: "1", EquipmentID: EUI64(deviceEUI)},
		{ValueType: "NM", Identifier: mdcLN("150456", "MDC_PULS_OXIM_SAT_O2", "2708-6", "Oxygen saturation in Arterial blood"), Hierarchy: "1.0.0.1", Value: "92", Units: ucum("%", "262688", "MDC_DIM_PERCENT"), ReferenceRange: "94-100", AbnormalFlags: []string{"L"}, ResultStatus: "R", ObservationTime: readTime, ObservationSite: CWE{Code: "49521004", Text: "left ear structure", System: "SCT"}},
		{ValueType: "NM", Identifier: mdcLN("149530", "MDC_PULS_OXIM_PULS_RATE", "8867-4", "Heart rate"), Hierarchy: "1.0.0.2", Value: "72", Units: ucum("/min", "264864", "MDC_DIM_BEAT_PER_MIN"), ResultStatus: "R", ObservationTime: readTime},
	}

	// Escaping: delimiters, CR/LF and non-ASCII text in the patient name, a
	// facility and a string value.
	esc := baseORU("MSG000104")
	esc.SendingFacility = HD{NamespaceID: "Clinic|North^East"}
	esc.Patient.FamilyName = "O'Brien|Smith^Jr & Sons"
	esc.Patient.GivenName = "Zoë ~Ann\\Marie"
	esc.Observations = []OBX{{
		ValueType:  "ST",
		Identifier: mdc("150604", "MDC_PULS_OXIM_DEV_STATUS"),
		Hierarchy:  "1.0.0.1",
		Value:      "probe off | sensor^2 & ~cable\\\r\nrecheck\tnow",
	}}

	// Missing value: the device row and a heart rate that could not be
	// obtained (no value type, no value, status X).
	miss := baseORU("MSG000105")
	miss.Patient.FamilyName, miss.Patient.GivenName = "", ""
	miss.Observations = []OBX{
		{Identifier: mdc("528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM"), Hierarchy: "1", EquipmentID: EUI64(deviceEUI)},
		{Identifier: mdcLN("149530", "MDC_PULS_OXIM_PULS_RATE", "8867-4", "Heart rate"), Hierarchy: "1.0.0.1", Units: ucum("/min", "", ""), ObservationTime: readTime},
	}

	return []goldenCase{
		{"oru-heart-rate", hr},
		{"oru-blood-pressure", bp},
		{"oru-spo2", spo2},
		{"oru-escaping", esc},
		{"oru-missing-value", miss},
	}
}

// benchBP is the blood-pressure report with exactly the three metric OBX.
func benchBP() ORU {
	m := goldenCases()[1].oru
	m.Observations = m.Observations[2:]
	return m
}

// ackSample is a real-world-shaped acknowledgement (synthetic values).
type ackSample struct {
	name string
	in   string
	want ACK
}

func ackSamples() []ackSample {
	return []ackSample{
		{
			name: "AA CR",
			in:   "MSH|^~\\&|EHR|HOSP|RPMBridge^0A1B2C3D4E5F6071^EUI-64||20250102101501+0000||ACK^R01^ACK|ACK000101|P|2.6\rMSA|AA|MSG000101\r",
			want: ACK{Code: "AA", ControlID: "MSG000101", MessageControlID: "ACK000101"},
		},
		{
			name: "AA LF with text, no final terminator",
			in:   "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK|ACK000102|P|2.5.1\nMSA|AA|MSG000102|Message accepted",
			want: ACK{Code: "AA", ControlID: "MSG000102", Text: "Message accepted", MessageControlID: "ACK000102"},
		},
		{
			name: "AE with ERR v2.5",
			in: "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501+0000||ACK^R01^ACK|ACK000103|P|2.6\r" +
				"MSA|AE|MSG000103\r" +
				"ERR||PID^1^3|101^Required field missing^HL70357|E||||Patient identifier \\T\\ authority missing\r",
			want: ACK{Code: "AE", ControlID: "MSG000103", Text: "Patient identifier & authority missing", ErrorCode: "101", MessageControlID: "ACK000103"},
		},
		{
			name: "AE with MSA-3 and two ERR",
			in: "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK000104|P|2.6\r" +
				"MSA|AE|MSG000104|Validation failed\r" +
				"ERR||OBX^1^5|102^Data type error^HL70357|E\r" +
				"ERR||OBX^2^3|103^Table value not found^HL70357|W||||Unknown code 999\\X0D0A\\see log\r",
			want: ACK{Code: "AE", ControlID: "MSG000104", Text: "Validation failed; Data type error; Unknown code 999\r\nsee log", ErrorCode: "102", MessageControlID: "ACK000104"},
		},
		{
			name: "AE diagnostic in ERR-7",
			in: "MSH|^~\\&|Engine||RPMBridge||20250102101501+0100||ACK^R01^ACK|ACK000105|P|2.6|||NE|AL\n" +
				"MSA|AE|MSG000105\n" +
				"ERR|||100|E|||No OBR segment found\n",
			want: ACK{Code: "AE", ControlID: "MSG000105", Text: "No OBR segment found", ErrorCode: "100", MessageControlID: "ACK000105"},
		},
		{
			name: "AR unsupported version",
			in: "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK000106|P|2.6\r" +
				"MSA|AR|MSG000106\r" +
				"ERR|||203^Unsupported version id^HL70357|E\r",
			want: ACK{Code: "AR", ControlID: "MSG000106", Text: "Unsupported version id", ErrorCode: "203", MessageControlID: "ACK000106"},
		},
		{
			name: "AR system down, CRLF",
			in: "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK000107|P|2.6\r\n" +
				"MSA|AR|MSG000107|Database unavailable, try again later\r\n",
			want: ACK{Code: "AR", ControlID: "MSG000107", Text: "Database unavailable, try again later", MessageControlID: "ACK000107"},
		},
		{
			name: "CA",
			in:   "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK000108|P|2.6\rMSA|CA|MSG000108\r",
			want: ACK{Code: "CA", ControlID: "MSG000108", MessageControlID: "ACK000108"},
		},
		{
			name: "CE",
			in:   "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK000109|P|2.6\rMSA|CE|MSG000109|Sequence number out of order\r",
			want: ACK{Code: "CE", ControlID: "MSG000109", Text: "Sequence number out of order", MessageControlID: "ACK000109"},
		},
		{
			name: "CR LF with legacy ERR-1",
			in: "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK|ACK000110|P|2.3\n" +
				"MSA|CR|MSG000110\n" +
				"ERR|MSH^1^9^200&Unsupported message type&HL70357\n",
			want: ACK{Code: "CR", ControlID: "MSG000110", Text: "Unsupported message type", ErrorCode: "200", MessageControlID: "ACK000110"},
		},
		{
			name: "custom delimiters #!~$@",
			in: "MSH#!~$@#EHR#HOSP#RPMBridge!0A1B2C3D4E5F6071!EUI-64##20250102101501##ACK!R01!ACK#ACK000111#P#2.6\r" +
				"MSA#AE#MSG000111#value $F$12 $S$ $T$ $R$ $E$ rejected\r" +
				"ERR###102!Data type error!HL70357#E\r",
			want: ACK{Code: "AE", ControlID: "MSG000111", Text: "value #12 ! @ ~ $ rejected; Data type error", ErrorCode: "102", MessageControlID: "ACK000111"},
		},
		{
			name: "custom field separator ! and leading blank lines",
			in:   "\r\n\r\nMSH!^~\\&!EHR!HOSP!RPMBridge!!20250102101501!!ACK^R01^ACK!ACK000112!P!2.6\rMSA! AA !MSG000112!ok\\.br\\done\r",
			want: ACK{Code: "AA", ControlID: "MSG000112", Text: "ok\ndone", MessageControlID: "ACK000112"},
		},
		{
			name: "v2.7 truncation character",
			in:   "MSH|^~\\&#|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK000114|P|2.7\rMSA|AA|MSG000114|fine \\E\\ dandy\r",
			want: ACK{Code: "AA", ControlID: "MSG000114", Text: "fine \\ dandy", MessageControlID: "ACK000114"},
		},
		{
			name: "first MSA wins, other segments ignored",
			in: "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK000113|P|2.6\r" +
				"SFT|Engine|1.0\rMSA|AA|MSG000113\rMSA|AE|MSG000999\r",
			want: ACK{Code: "AA", ControlID: "MSG000113", MessageControlID: "ACK000113"},
		},
	}
}
