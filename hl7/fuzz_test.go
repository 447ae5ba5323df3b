package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// The fuzz targets are seeded from the golden cases and the ACK samples;
// interesting inputs found so far are kept in testdata/fuzz/<target>.
// Run one with: go test -run='^$' -fuzz=FuzzParseACK -fuzztime=30s ./hl7

func FuzzParseACK(f *testing.F) {
	for _, s := range ackSamples() {
		f.Add([]byte(s.in), "")
	}
	for i, tc := range goldenCases() {
		msg, err := tc.oru.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg, []string{"", "bad | value", "line\r\nbreak", "\\X0D\\", "Zoë"}[i])
	}
	f.Add([]byte("MSH#!~$@#DEV#WARD###20250102##ORU!R01#IN$F$1\nPID###1\n"), "bad # and !")
	now := time.Date(2025, 1, 2, 10, 15, 1, 0, time.UTC)

	f.Fuzz(func(t *testing.T, msg []byte, text string) {
		a, err := ParseACK(msg)
		if err == nil {
			if a.Code == "" {
				t.Fatalf("ParseACK succeeded with an empty Code")
			}
			n := 0
			for _, b := range []bool{a.Accepted(), a.Retryable(), a.Permanent()} {
				if b {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("ACK %+v: Accepted, Retryable, Permanent not exclusive", a)
			}
		}

		// A receiver's answer to msg must parse back to what it said.
		out, err := NewACK(msg, Reply{Code: CodeAE, Text: text, ControlID: "ACK1", Time: now})
		if err != nil {
			return
		}
		got, err := ParseACK(out)
		if err != nil {
			t.Fatalf("ParseACK(NewACK) = %v for %q", err, out)
		}
		msh, _ := nextSegment(string(msg))
		d, _ := parseDelims(msh)
		wantText := text
		if text == "" {
			wantText = "Application internal error"
		}
		want := ACK{Code: CodeAE, ControlID: unescape(field(msh, d.field, 9), d), Text: wantText, ErrorCode: "207", MessageControlID: "ACK1"}
		if got != want {
			t.Fatalf("ParseACK(NewACK) = %+v, want %+v\nack: %q", got, want, out)
		}
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for _, tc := range goldenCases() {
		msg, err := tc.oru.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		stream = AppendFrame(stream, msg)
		f.Add(AppendFrame(nil, msg), uint16(2000), uint8(7))
	}
	for _, s := range ackSamples() {
		f.Add(AppendFrame([]byte("\r\n"), []byte(s.in)), uint16(300), uint8(1))
	}
	f.Add(stream, uint16(0), uint8(0))
	f.Add([]byte("junk\x0bMSH\x1c\r"), uint16(10), uint8(3))
	f.Add([]byte("\x0bone\x0btwo\x1c\r"), uint16(10), uint8(3))
	f.Add([]byte("\x0bMSH\x1cX\x0bMSH\x1c\r"), uint16(10), uint8(2))
	f.Add([]byte("\x0b\x06\x1c\r\x0b\x15\x1c\r"), uint16(1), uint8(1))

	f.Fuzz(func(t *testing.T, data []byte, max uint16, chunk uint8) {
		limit := int(max%4096) + 1
		read := func(r io.Reader) ([]string, error) {
			rd := NewReader(r, limit)
			var frames []string
			for i := 0; ; i++ {
				fr, err := rd.ReadFrame()
				if err != nil {
					return frames, err
				}
				if len(fr) > limit {
					t.Fatalf("frame of %d bytes exceeds the maximum %d", len(fr), limit)
				}
				if bytes.IndexByte(fr, StartBlock) >= 0 || bytes.IndexByte(fr, EndBlock) >= 0 {
					t.Fatalf("frame contains a block character: %q", fr)
				}
				frames = append(frames, string(fr))
				if i > len(data) {
					t.Fatalf("more frames than input bytes")
				}
			}
		}
		whole, errWhole := read(bytes.NewReader(data))
		split, errSplit := read(bufio.NewReaderSize(chunkReader{bytes.NewReader(data), int(chunk%16) + 1}, 16))
		one, errOne := read(iotest.OneByteReader(bytes.NewReader(data)))
		for _, got := range [][]string{split, one} {
			if len(got) != len(whole) {
				t.Fatalf("frames differ by read size: %q vs %q", whole, got)
			}
			for i := range got {
				if got[i] != whole[i] {
					t.Fatalf("frame %d differs by read size: %q vs %q", i, whole[i], got[i])
				}
			}
		}
		for _, err := range []error{errWhole, errSplit, errOne} {
			if (err == io.EOF) != (errWhole == io.EOF) {
				t.Fatalf("end of stream differs by read size: %v, %v, %v", errWhole, errSplit, errOne)
			}
			if err != io.EOF && !errors.Is(err, ErrMalformedFrame) && !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}

func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range []string{"", "plain", "|^~\\&", "a\r\nb\tc", "\\F\\", "\\X0D\\", "Zoë ~Ann\\Marie", "\x00\x0b\x1c\x7f", "\xff\xfe"} {
		f.Add(s)
	}
	for _, tc := range goldenCases() {
		f.Add(tc.oru.Patient.FamilyName)
		for _, x := range tc.oru.Observations {
			f.Add(x.Value)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		esc := Escape(s)
		if string(AppendEscaped(nil, s)) != esc {
			t.Fatalf("AppendEscaped and Escape differ for %q", s)
		}
		if generic := string(appendEscaped(nil, s, stdDelims())); generic != esc {
			t.Fatalf("fast and generic escaping differ for %q: %q vs %q", s, esc, generic)
		}
		for i := 0; i < len(esc); i++ {
			if c := esc[i]; c < 0x20 || c == 0x7f || c == '|' || c == '^' || c == '~' || c == '&' {
				t.Fatalf("Escape(%q) = %q contains raw 0x%02X", s, esc, c)
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(esc) {
			t.Fatalf("Escape broke UTF-8: %q", esc)
		}
		if got := Unescape(esc); got != s {
			t.Fatalf("Unescape(Escape(%q)) = %q", s, got)
		}
		_ = Unescape(s) // never panics on arbitrary input
	})
}

func FuzzEncode(f *testing.F) {
	for _, tc := range goldenCases() {
		m := tc.oru
		x := m.Observations[len(m.Observations)-1]
		f.Add(m.ControlID, m.Patient.ID, m.Patient.FamilyName, m.Patient.GivenName, m.PatientClass,
			m.SendingFacility.NamespaceID, x.Identifier.Text, x.Hierarchy, x.Value, x.Units.Code, x.ReferenceRange)
	}
	f.Add("MSG\r1", "ID|1", "A\rPID|||evil", "B\nOBX|9", "I", "F~x", "T&t", "1.0.0.1", "v\\E\\", "u^u", "r")

	f.Fuzz(func(t *testing.T, controlID, patientID, family, given, class, facility, text, hierarchy, value, unit, refRange string) {
		m := validORU()
		m.ControlID = controlID
		m.Patient.ID = patientID
		m.Patient.FamilyName = family
		m.Patient.GivenName = given
		m.PatientClass = class
		m.SendingFacility = HD{NamespaceID: facility}
		m.Observations = append(m.Observations, OBX{
			ValueType:      "ST",
			Identifier:     CWE{Code: "150604", Text: text, System: SystemMDC},
			Hierarchy:      hierarchy,
			Value:          value,
			Units:          CWE{Code: unit, Text: unit, System: SystemUCUM},
			ReferenceRange: refRange,
			ResultStatus:   "R",
		})
		if unit == "" {
			m.Observations[2].Units = CWE{}
		}
		out, err := m.Append(nil)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "ORU" {
				t.Fatalf("Append error %v does not name a field", err)
			}
			return
		}
		checkStructure(t, &m, out)
		if _, err := ParseACK(out); err == nil {
			t.Fatalf("an ORU parsed as an ACK")
		}
	})
}
