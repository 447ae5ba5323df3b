package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func frame(msg string) string { return string(AppendFrame(nil, []byte(msg))) }

func TestAppendFrame(t *testing.T) {
	got := AppendFrame([]byte("x"), []byte("MSH|^~\\&\r"))
	if want := "x\x0bMSH|^~\\&\r\x1c\r"; string(got) != want {
		t.Errorf("AppendFrame = %q, want %q", got, want)
	}
	if got := AppendFrame(nil, nil); string(got) != "\x0b\x1c\r" {
		t.Errorf("AppendFrame(empty) = %q", got)
	}
}

// readAll reads frames until an error and returns copies of them and the
// error.
func readAll(r *Reader) ([]string, error) {
	var frames []string
	for {
		f, err := r.ReadFrame()
		if err != nil {
			return frames, err
		}
		frames = append(frames, string(f))
	}
}

// splitReaders returns readers over s that deliver it in different chunk
// sizes, so frames are split across reads at every position.
func splitReaders(s string) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":     func() io.Reader { return strings.NewReader(s) },
		"one byte":  func() io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":      func() io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"small buf": func() io.Reader { return bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(s)), 16) },
	}
}

func TestReaderFrames(t *testing.T) {
	long := strings.Repeat("OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.0.1|97\r", 40) // > any small buffer
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty stream", "", nil},
		{"whitespace only", "\r\n \t", nil},
		{"one frame", frame("MSH|^~\\&|A\rMSA|AA|1\r"), []string{"MSH|^~\\&|A\rMSA|AA|1\r"}},
		{"empty frame", frame(""), []string{""}},
		{"R2 commit ack", "\x0b\x06\x1c\r", []string{"\x06"}},
		{"back to back", frame("one") + frame("two") + frame("three"), []string{"one", "two", "three"}},
		{"whitespace between", "\r\n" + frame("one") + "\n\r\n " + frame("two") + "\n", []string{"one", "two"}},
		{"long frame", frame(long) + frame("x"), []string{long, "x"}},
		{"CR inside a frame", frame("a\rb\r"), []string{"a\rb\r"}},
	}
	for _, tc := range tests {
		for rname, mk := range splitReaders(tc.in) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				got, err := readAll(NewReader(mk(), 0))
				if err != io.EOF {
					t.Fatalf("final error = %v, want io.EOF", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("frames (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		max    int
		frames []string
		is     error
		msg    string
	}{
		{"garbage prefix", "junk" + frame("one"), 0, nil, ErrMalformedFrame, "byte 0x6A before the start block"},
		{"garbage between frames", frame("one") + "X" + frame("two"), 0, []string{"one"}, ErrMalformedFrame, "0x58"},
		{"missing end block", "\x0bMSH|^~\\&|A\r", 0, nil, io.ErrUnexpectedEOF, "no end block"},
		{"missing CR after end block", "\x0bMSH\x1c", 0, nil, io.ErrUnexpectedEOF, "no CR after the end block"},
		{"wrong byte after end block", "\x0bMSH\x1cX" + frame("two"), 0, nil, ErrMalformedFrame, "0x58 after the end block"},
		{"start block inside", "\x0bone\x0btwo\x1c\r", 0, nil, ErrMalformedFrame, "start block inside"},
		{"oversize", frame(strings.Repeat("a", 11)), 10, nil, ErrFrameTooLarge, "more than 10 bytes"},
		{"oversize after a good frame", frame(strings.Repeat("a", 10)) + frame(strings.Repeat("b", 100)), 10, []string{strings.Repeat("a", 10)}, ErrFrameTooLarge, ""},
		{"oversize without end", "\x0b" + strings.Repeat("a", 5000), 100, nil, ErrFrameTooLarge, ""},
	}
	for _, tc := range tests {
		for rname, mk := range splitReaders(tc.in) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				r := NewReader(mk(), tc.max)
				got, err := readAll(r)
				if diff := cmp.Diff(tc.frames, got); diff != "" {
					t.Errorf("frames before the error (-want +got):\n%s", diff)
				}
				if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error = %v, want %v containing %q", err, tc.is, tc.msg)
				}
				// The error is sticky: the stream position is lost.
				if _, again := r.ReadFrame(); again != err {
					t.Errorf("second ReadFrame error = %v, want the same %v", again, err)
				}
			})
		}
	}
}

// flakyReader fails its first read, then reads from r.
type flakyReader struct {
	failed bool
	r      io.Reader
}

var errTimeout = errors.New("i/o timeout")

func (f *flakyReader) Read(p []byte) (int, error) {
	if !f.failed {
		f.failed = true
		return 0, errTimeout
	}
	return f.r.Read(p)
}

func TestReaderErrorBetweenFramesIsNotSticky(t *testing.T) {
	r := NewReader(&flakyReader{r: strings.NewReader(frame("one"))}, 0)
	if _, err := r.ReadFrame(); !errors.Is(err, errTimeout) {
		t.Fatalf("first ReadFrame error = %v, want the timeout", err)
	}
	got, err := r.ReadFrame()
	if err != nil || string(got) != "one" {
		t.Fatalf("ReadFrame after an idle error = %q, %v; want \"one\"", got, err)
	}
}

func TestReaderExactMax(t *testing.T) {
	msg := strings.Repeat("z", 64)
	for rname, mk := range splitReaders(frame(msg)) {
		got, err := NewReader(mk(), 64).ReadFrame()
		if err != nil || string(got) != msg {
			t.Errorf("%s: ReadFrame = %q, %v; want the 64-byte frame", rname, got, err)
		}
	}
}

func TestReaderDefaultMax(t *testing.T) {
	big := bytes.Repeat([]byte("a"), DefaultMaxFrameSize+1)
	_, err := NewReader(bytes.NewReader(AppendFrame(nil, big)), 0).ReadFrame()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("error = %v, want ErrFrameTooLarge", err)
	}
	ok := big[:DefaultMaxFrameSize]
	got, err := NewReader(bytes.NewReader(AppendFrame(nil, ok)), -1).ReadFrame()
	if err != nil || len(got) != DefaultMaxFrameSize {
		t.Errorf("ReadFrame of a 1 MiB frame = %d bytes, %v", len(got), err)
	}
}

func TestFrameRoundTripWithACK(t *testing.T) {
	oru := oruFor(t, 3) // escaping case: CR/LF/TAB in values must not break framing
	var stream []byte
	stream = AppendFrame(stream, oru)
	stream = AppendFrame(stream, oru)
	r := NewReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	for i := 0; i < 2; i++ {
		got, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, oru) {
			t.Fatalf("frame %d differs from the message", i)
		}
	}
}
