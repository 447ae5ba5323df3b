package hl7

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseACK(t *testing.T) {
	for _, tc := range ackSamples() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseACK([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseACK: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ACK (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseACKTextLimit(t *testing.T) {
	in := "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK1|P|2.6\rMSA|AE|MSG1|p0\r"
	for i := 1; i <= 10; i++ {
		in += "ERR|||207|E||||p" + strconv.Itoa(i) + "\r"
	}
	in += "ERR|||207|E||||p1\r" // duplicate text
	a, err := ParseACK([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := "p0; p1; p2; p3; p4; p5; p6; p7"; a.Text != want {
		t.Errorf("Text = %q, want the first eight distinct parts %q", a.Text, want)
	}
}

func TestParseACKErrors(t *testing.T) {
	const msh = "MSH|^~\\&|EHR|HOSP|RPMBridge||20250102101501||ACK^R01^ACK|ACK1|P|2.6\r"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "does not start with an MSH segment"},
		{"only terminators", "\r\n\r", "does not start with an MSH segment"},
		{"no MSH", "PID|||1\rMSA|AA|1\r", "does not start with an MSH segment"},
		{"MSH not first", "MSA|AA|1\r" + msh, "does not start with an MSH segment"},
		{"MSH without separator", "MSH", "does not start with an MSH segment"},
		{"no encoding characters", "MSH||EHR\rMSA|AA|1\r", "MSH-2: missing encoding characters"},
		{"too many encoding characters", "MSH|^~\\&#*|EHR\rMSA|AA|1\r", "MSH-2"},
		{"duplicate delimiter", "MSH|^^\\&|EHR\rMSA|AA|1\r", "declared twice"},
		{"alphanumeric separator", "MSHA^~\\&AEHR\rMSAAAAA1\r", "MSH-1: invalid field separator"},
		{"space separator", "MSH ^~\\& EHR\r", "MSH-1: invalid field separator"},
		{"control encoding character", "MSH|^\x01\\&|EHR\r", "MSH-2: invalid encoding character"},
		{"no MSA", msh + "ERR|||207\r", "no MSA segment"},
		{"MSA-like segment", msh + "MSAX|AA|1\r", "no MSA segment"},
		{"MSA-1 missing", msh + "MSA||MSG1\r", "MSA-1: missing"},
		{"MSA-1 bare segment", msh + "MSA\r", "MSA-1: missing"},
		{"MSA-1 unknown", msh + "MSA|XX|MSG1\r", `MSA-1: "XX" is not an acknowledgment code`},
		{"MSA-1 lower case", msh + "MSA|aa|MSG1\r", `MSA-1: "aa"`},
		{"MSA-1 with component", msh + "MSA|AA^x|MSG1\r", `MSA-1: "AA^x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseACK([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseACK succeeded with %+v, want error containing %q", a, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "hl7: ACK: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to start with \"hl7: ACK: \" and contain %q", err, tc.want)
			}
		})
	}
}

func TestACKClassification(t *testing.T) {
	tests := []struct {
		code, errCode                  string
		accepted, retryable, permanent bool
	}{
		{CodeAA, "", true, false, false},
		{CodeCA, "", true, false, false},
		{CodeAE, "", false, false, true},
		{CodeAE, "207", false, false, true},
		{CodeAR, "", false, true, false},
		{CodeAR, "207", false, true, false},
		{CodeAR, "200", false, false, true},
		{CodeAR, "201", false, false, true},
		{CodeAR, "202", false, false, true},
		{CodeAR, "203", false, false, true},
		{CodeAR, "204", false, true, false},
		{CodeCE, "", false, true, false},
		{CodeCR, "", false, false, true},
	}
	for _, tc := range tests {
		a := ACK{Code: tc.code, ErrorCode: tc.errCode, ControlID: "MSG1", Text: "why"}
		if a.Accepted() != tc.accepted || a.Retryable() != tc.retryable || a.Permanent() != tc.permanent {
			t.Errorf("%s/%s: Accepted, Retryable, Permanent = %v, %v, %v; want %v, %v, %v", tc.code, tc.errCode,
				a.Accepted(), a.Retryable(), a.Permanent(), tc.accepted, tc.retryable, tc.permanent)
		}
		err := a.Err()
		if tc.accepted {
			if err != nil {
				t.Errorf("%s: Err() = %v, want nil", tc.code, err)
			}
			continue
		}
		var ae *AckError
		if !errors.As(err, &ae) {
			t.Fatalf("%s: Err() = %v, want *AckError", tc.code, err)
		}
		if ae.Temporary() != tc.retryable {
			t.Errorf("%s/%s: Temporary() = %v, want %v", tc.code, tc.errCode, ae.Temporary(), tc.retryable)
		}
		if !strings.Contains(err.Error(), "MSG1 not accepted: "+tc.code) || !strings.HasSuffix(err.Error(), ": why") {
			t.Errorf("Err().Error() = %q", err)
		}
	}
}

// oruFor returns a golden ORU as bytes.
func oruFor(t *testing.T, i int) []byte {
	t.Helper()
	m := goldenCases()[i].oru
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewACK(t *testing.T) {
	now := time.Date(2025, 1, 2, 10, 15, 1, 0, time.UTC)
	oru := oruFor(t, 2) // SpO2: has a sending facility
	tests := []struct {
		name string
		in   []byte
		r    Reply
		want string // the whole acknowledgement, segments joined by CR
		ack  ACK
	}{
		{
			name: "AA",
			in:   oru,
			r:    Reply{Code: CodeAA, ControlID: "ACK000103", Time: now},
			want: "MSH|^~\\&|EHR|HOSP|RPMBridge^0A1B2C3D4E5F6071^EUI-64|HOME^1.2.3.4.5^ISO|20250102101501+0000||ACK^R01^ACK|ACK000103|T|2.6\r" +
				"MSA|AA|MSG000103\r",
			ack: ACK{Code: CodeAA, ControlID: "MSG000103", MessageControlID: "ACK000103"},
		},
		{
			name: "AE default error code, escaped text",
			in:   oru,
			r:    Reply{Code: CodeAE, Text: "OBX-5 | bad\r", ControlID: "ACK000104", Time: now},
			want: "MSH|^~\\&|EHR|HOSP|RPMBridge^0A1B2C3D4E5F6071^EUI-64|HOME^1.2.3.4.5^ISO|20250102101501+0000||ACK^R01^ACK|ACK000104|T|2.6\r" +
				"MSA|AE|MSG000103|OBX-5 \\F\\ bad\\X0D\\\r" +
				"ERR|||207^Application internal error^HL70357|E||||OBX-5 \\F\\ bad\\X0D\\\r",
			ack: ACK{Code: CodeAE, ControlID: "MSG000103", Text: "OBX-5 | bad\r", ErrorCode: "207", MessageControlID: "ACK000104"},
		},
		{
			name: "AR unsupported version, no text",
			in:   oru,
			r:    Reply{Code: CodeAR, ErrorCode: "203", ControlID: "ACK000105", Time: now},
			want: "MSH|^~\\&|EHR|HOSP|RPMBridge^0A1B2C3D4E5F6071^EUI-64|HOME^1.2.3.4.5^ISO|20250102101501+0000||ACK^R01^ACK|ACK000105|T|2.6\r" +
				"MSA|AR|MSG000103\r" +
				"ERR|||203^Unsupported version id^HL70357|E\r",
			ack: ACK{Code: CodeAR, ControlID: "MSG000103", Text: "Unsupported version id", ErrorCode: "203", MessageControlID: "ACK000105"},
		},
		{
			name: "CA with informational error 0",
			in:   oru,
			r:    Reply{Code: CodeCA, ErrorCode: "0", ControlID: "ACK000106", Time: now},
			want: "MSH|^~\\&|EHR|HOSP|RPMBridge^0A1B2C3D4E5F6071^EUI-64|HOME^1.2.3.4.5^ISO|20250102101501+0000||ACK^R01^ACK|ACK000106|T|2.6\r" +
				"MSA|CA|MSG000103\r" +
				"ERR|||0^Message accepted^HL70357|I\r",
			ack: ACK{Code: CodeCA, ControlID: "MSG000103", Text: "Message accepted", ErrorCode: "0", MessageControlID: "ACK000106"},
		},
		{
			name: "CR with unknown local error code",
			in:   oru,
			r:    Reply{Code: CodeCR, ErrorCode: "9001", Text: "nope", ControlID: "ACK000107", Time: now},
			want: "MSH|^~\\&|EHR|HOSP|RPMBridge^0A1B2C3D4E5F6071^EUI-64|HOME^1.2.3.4.5^ISO|20250102101501+0000||ACK^R01^ACK|ACK000107|T|2.6\r" +
				"MSA|CR|MSG000103|nope\r" +
				"ERR|||9001|E||||nope\r",
			ack: ACK{Code: CodeCR, ControlID: "MSG000103", Text: "nope", ErrorCode: "9001", MessageControlID: "ACK000107"},
		},
		{
			name: "custom delimiters, LF terminators, minimal MSH",
			in:   []byte("MSH#!~$@#DEV#WARD###20250102##ORU!R01#IN$F$1\nPID###1\n"),
			r:    Reply{Code: CodeAE, Text: "bad # and !", ControlID: "ACK1", Time: now},
			want: "MSH#!~$@###DEV#WARD#20250102101501+0000##ACK!R01!ACK#ACK1#P#2.6\r" +
				"MSA#AE#IN$F$1#bad $F$ and $S$\r" +
				"ERR###207!Application internal error!HL70357#E####bad $F$ and $S$\r",
			ack: ACK{Code: CodeAE, ControlID: "IN#1", Text: "bad # and !", ErrorCode: "207", MessageControlID: "ACK1"},
		},
		{
			name: "no trigger event",
			in:   []byte("MSH|^~\\&|A|B|C|D|20250102||ORU|X1|D|2.5.1\r"),
			r:    Reply{Code: CodeAA, ControlID: "Y1", Time: now},
			want: "MSH|^~\\&|C|D|A|B|20250102101501+0000||ACK|Y1|D|2.5.1\rMSA|AA|X1\r",
			ack:  ACK{Code: CodeAA, ControlID: "X1", MessageControlID: "Y1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewACK(tc.in, tc.r)
			if err != nil {
				t.Fatalf("NewACK: %v", err)
			}
			if diff := cmp.Diff(lines([]byte(tc.want)), lines(got)); diff != "" {
				t.Errorf("NewACK (-want +got):\n%s", diff)
			}
			a, err := ParseACK(got)
			if err != nil {
				t.Fatalf("ParseACK(NewACK): %v", err)
			}
			if diff := cmp.Diff(tc.ack, a); diff != "" {
				t.Errorf("ParseACK(NewACK) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewACKErrors(t *testing.T) {
	now := time.Date(2025, 1, 2, 10, 15, 1, 0, time.UTC)
	oru := oruFor(t, 0)
	ok := Reply{Code: CodeAA, ControlID: "A1", Time: now}
	tests := []struct {
		name string
		in   []byte
		r    func(r *Reply)
		want string
	}{
		{"not HL7", []byte("hello"), nil, "does not start with an MSH segment"},
		{"bad delimiters", []byte("MSH|^^\\&|A\r"), nil, "declared twice"},
		{"two encoding characters", []byte("MSH|^~|A|B|C|D|2025||ORU^R01|X|P|2.6\r"), nil, "fewer than four encoding characters"},
		{"no MSH-10", []byte("MSH|^~\\&|A|B|C|D|2025||ORU^R01||P|2.6\r"), nil, "no MSH-10"},
		{"bad code", oru, func(r *Reply) { r.Code = "OK" }, `Reply.Code: "OK"`},
		{"missing control id", oru, func(r *Reply) { r.ControlID = "" }, "Reply.ControlID: missing"},
		{"control id with delimiter", oru, func(r *Reply) { r.ControlID = "A^1" }, "Reply.ControlID: only printable ASCII"},
		{"missing time", oru, func(r *Reply) { r.Time = time.Time{} }, "Reply.Time: missing"},
		{"time out of range", oru, func(r *Reply) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "Reply.Time: year out of range"},
		{"error code not numeric", oru, func(r *Reply) { r.ErrorCode = "E1" }, `Reply.ErrorCode: "E1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			if tc.r != nil {
				tc.r(&r)
			}
			got, err := NewACK(tc.in, r)
			if err == nil {
				t.Fatalf("NewACK succeeded: %q", got)
			}
			if !strings.HasPrefix(err.Error(), "hl7: NewACK: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseACKAllocs(t *testing.T) {
	in := []byte(ackSamples()[0].in)
	n := testing.AllocsPerRun(100, func() {
		if _, err := ParseACK(in); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 { // the one copy of the input
		t.Errorf("ParseACK of an AA allocates %.0f times, want <= 1", n)
	}
}
