package hl7

import (
	"bytes"
	"testing"
)

// BenchmarkORUAppend measures the G3 target (docs/performance.md: ORU^R01
// build <= 3 us and <= 5 allocs) with a reused destination buffer.
func BenchmarkORUAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		oru  ORU
	}{
		{"heart-rate-1-OBX", goldenCases()[0].oru},
		{"blood-pressure-3-OBX", benchBP()},
		{"escaping-1-OBX", goldenCases()[3].oru},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := bc.oru
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = m.Append(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkParseACK measures the G3 target (ACK parse <= 1 us).
func BenchmarkParseACK(b *testing.B) {
	samples := ackSamples()
	for _, bc := range []struct {
		name string
		in   string
	}{
		{"AA", samples[0].in},
		{"AE-with-ERR", samples[3].in},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.in)
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := ParseACK(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadFrame(b *testing.B) {
	m := goldenCases()[1].oru
	msg, err := m.Append(nil)
	if err != nil {
		b.Fatal(err)
	}
	framed := AppendFrame(nil, msg)
	rd := bytes.NewReader(framed)
	r := NewReader(rd, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(framed)))
	for b.Loop() {
		rd.Reset(framed)
		if _, err := r.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}
