package hl7_test

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/fhir-bridge/fhir-bridge/hl7"
)

func ExampleORU_Append() {
	at := time.Date(2025, 1, 2, 10, 14, 55, 0, time.UTC)
	m := hl7.ORU{
		ControlID:            "MSG000123",
		Timestamp:            at.Add(5 * time.Second),
		SendingApplication:   hl7.HD{NamespaceID: "RPMBridge", UniversalID: "0A1B2C3D4E5F6071", UniversalIDType: hl7.UniversalIDTypeEUI64},
		ReceivingApplication: hl7.HD{NamespaceID: "EHR"},
		ReceivingFacility:    hl7.HD{NamespaceID: "HOSP"},
		Patient:              hl7.Patient{ID: "MRN7788", AssigningAuthority: hl7.HD{NamespaceID: "HOSP"}, IdentifierType: "MR", FamilyName: "Doe", GivenName: "Jane"},
		Order: hl7.Order{
			FillerOrderNumber:  hl7.EI{EntityID: "RPM-000123", NamespaceID: "RPMBridge", UniversalID: "0A1B2C3D4E5F6071", UniversalIDType: hl7.UniversalIDTypeEUI64},
			UniversalServiceID: hl7.CWE{Code: "528388", Text: "MDC_DEV_SPEC_PROFILE_PULS_OXIM", System: hl7.SystemMDC},
			ObservationTime:    at,
		},
		Observations: []hl7.OBX{
			{Identifier: hl7.CWE{Code: "528388", Text: "MDC_DEV_SPEC_PROFILE_PULS_OXIM", System: hl7.SystemMDC}, Hierarchy: "1", EquipmentID: hl7.EUI64("FEEDABEEDEAD77C3")},
			{
				ValueType:       "NM",
				Identifier:      hl7.CWE{Code: "150456", Text: "MDC_PULS_OXIM_SAT_O2", System: hl7.SystemMDC, AltCode: "2708-6", AltText: "Oxygen saturation in Arterial blood", AltSystem: hl7.SystemLOINC},
				Hierarchy:       "1.0.0.1",
				Value:           "97",
				Units:           hl7.CWE{Code: "%", Text: "%", System: hl7.SystemUCUM},
				ResultStatus:    "R",
				ObservationTime: at,
			},
		},
	}
	msg, err := m.Append(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.ReplaceAll(string(msg), "\r", "\n"))
	// Output:
	// MSH|^~\&|RPMBridge^0A1B2C3D4E5F6071^EUI-64||EHR|HOSP|20250102101500+0000||ORU^R01^ORU_R01|MSG000123|P|2.6|||NE|AL||UNICODE UTF-8|||IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO
	// PID|||MRN7788^^^HOSP^MR||Doe^Jane
	// OBR|1||RPM-000123^RPMBridge^0A1B2C3D4E5F6071^EUI-64|528388^MDC_DEV_SPEC_PROFILE_PULS_OXIM^MDC|||20250102101455+0000
	// OBX|1||528388^MDC_DEV_SPEC_PROFILE_PULS_OXIM^MDC|1|||||||X|||||||FEEDABEEDEAD77C3^^FEEDABEEDEAD77C3^EUI-64
	// OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC^2708-6^Oxygen saturation in Arterial blood^LN|1.0.0.1|97|%^%^UCUM|||||R|||20250102101455+0000
}

func ExampleParseACK() {
	ack, err := hl7.ParseACK([]byte("MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK1|P|2.6\r" +
		"MSA|AE|MSG000123\r" +
		"ERR||PID^1^3|101^Required field missing^HL70357|E||||Patient identifier missing\r"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ack.Code, ack.ControlID, ack.ErrorCode, ack.Accepted(), ack.Permanent())
	fmt.Println(ack.Err())
	// Output:
	// AE MSG000123 101 false true
	// hl7: message MSG000123 not accepted: AE (error 101): Patient identifier missing
}

func ExampleReader() {
	var stream []byte
	stream = hl7.AppendFrame(stream, []byte("MSH|^~\\&|A\rMSA|AA|1\r"))
	stream = hl7.AppendFrame(stream, []byte("MSH|^~\\&|A\rMSA|AA|2\r"))
	r := hl7.NewReader(bufio.NewReader(bytes.NewReader(stream)), 0)
	for {
		msg, err := r.ReadFrame()
		if err != nil {
			fmt.Println(err)
			return
		}
		ack, err := hl7.ParseACK(msg)
		fmt.Println(ack.Code, ack.ControlID, err)
	}
	// Output:
	// AA 1 <nil>
	// AA 2 <nil>
	// EOF
}

func ExampleEscape() {
	s := hl7.Escape("Smith|Jones ^ Co & \\ ~\r\n")
	fmt.Println(s)
	fmt.Printf("%q\n", hl7.Unescape(s))
	// Output:
	// Smith\F\Jones \S\ Co \T\ \E\ \R\\X0D\\X0A\
	// "Smith|Jones ^ Co & \\ ~\r\n"
}
