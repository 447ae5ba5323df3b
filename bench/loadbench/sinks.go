package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The sinks run as subprocesses of loadbench (`loadbench fhir-sink`,
// `loadbench mllp-sink`) so that their CPU and garbage collection are not
// mixed into the parent's producer, and so that the bridge talks to them
// over real sockets as it would to an EHR or an interface engine. Each
// prints one JSON line, {"addr": ..., "stats": ...}, once it listens.

// sinkReady is the line a sink prints on stdout when it is listening.
type sinkReady struct {
	Addr  string `json:"addr"`  // FHIR: the base URL; MLLP: host:port
	Stats string `json:"stats"` // URL of the stats endpoint
}

func sinkMain(kind string, args []string) int {
	fs := flag.NewFlagSet(kind, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	ackDelay := fs.Duration("ack-delay", time.Millisecond, "mllp-sink: delay before each ACK")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// The parent decides when a sink stops, so that on Ctrl-C the bridge can
	// still drain into live sinks. If the parent dies, stdin reaches EOF.
	signal.Ignore(os.Interrupt)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()

	rec := newRecorder()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", kind, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("GET /stats", statsHandler(rec))
	ready := sinkReady{}
	switch kind {
	case "fhir-sink":
		mux.Handle("/fhir/", &fhirSink{rec: rec})
		mux.Handle("/fhir", &fhirSink{rec: rec})
		ready = sinkReady{Addr: "http://" + ln.Addr().String() + "/fhir", Stats: "http://" + ln.Addr().String() + "/stats"}
		go func() { fmt.Fprintln(os.Stderr, kind+":", http.Serve(ln, mux)); os.Exit(1) }()
	case "mllp-sink":
		statsLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", kind, err)
			return 1
		}
		ready = sinkReady{Addr: ln.Addr().String(), Stats: "http://" + statsLn.Addr().String() + "/stats"}
		go func() { fmt.Fprintln(os.Stderr, kind+":", http.Serve(statsLn, mux)); os.Exit(1) }()
		go serveMLLP(ln, rec, *ackDelay)
	default:
		fmt.Fprintf(os.Stderr, "unknown sink %q\n", kind)
		return 2
	}
	b, _ := json.Marshal(ready)
	fmt.Println(string(b))
	select {}
}

// statsHandler answers GET /stats?from=<unix ns>&to=<unix ns>.
func statsHandler(rec *recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rec.stats(from, to))
	})
}

// fhirSink is a minimal, non-validating FHIR server: batch Bundles at the
// base URL, creates at /Observation, PUT Device/<id>. A known identifier is
// answered 200 (what a conditional create that matches returns), a new one
// 201.
type fhirSink struct {
	rec *recorder
	n   atomic.Int64 // numbers the Locations
}

type sinkObservation struct {
	ResourceType      string `json:"resourceType"`
	EffectiveDateTime string `json:"effectiveDateTime"`
	Identifier        []struct {
		Value string `json:"value"`
	} `json:"identifier"`
}

func (s *fhirSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/fhir+json")
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case r.Method == http.MethodPost && path == "/fhir":
		var bundle struct {
			Entry []struct {
				Resource sinkObservation `json:"resource"`
			} `json:"entry"`
		}
		if err := json.NewDecoder(r.Body).Decode(&bundle); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var out bytes.Buffer
		out.WriteString(`{"resourceType":"Bundle","type":"batch-response","entry":[`)
		for i, e := range bundle.Entry {
			if i > 0 {
				out.WriteByte(',')
			}
			status, loc := s.accept(e.Resource)
			fmt.Fprintf(&out, `{"response":{"status":"%d %s","location":%q}}`, status, http.StatusText(status), loc)
		}
		out.WriteString(`]}`)
		w.Write(out.Bytes())
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/Observation"):
		var o sinkObservation
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status, loc := s.accept(o)
		w.Header().Set("Location", loc)
		w.WriteHeader(status)
		w.Write([]byte(`{"resourceType":"Observation"}`))
	case r.Method == http.MethodPut:
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"resourceType":"Device"}`))
	default:
		w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[]}`))
	}
}

// accept records an Observation; other resources are acknowledged only.
func (s *fhirSink) accept(o sinkObservation) (status int, location string) {
	location = "Observation/" + strconv.FormatInt(s.n.Add(1), 10) + "/_history/1"
	if o.ResourceType != "Observation" {
		return http.StatusCreated, location
	}
	id := ""
	if len(o.Identifier) > 0 {
		id = o.Identifier[0].Value
	}
	var stamp int64
	if t, err := time.Parse(time.RFC3339Nano, o.EffectiveDateTime); err == nil {
		stamp = t.UnixNano()
	}
	if s.rec.record(id, stamp, time.Now().UnixNano()) {
		return http.StatusCreated, location
	}
	return http.StatusOK, location
}

// MLLP framing: <VT> message <FS><CR>.
const (
	mllpStart = 0x0B
	mllpEnd   = 0x1C
	mllpCR    = 0x0D
	maxFrame  = 1 << 20
)

func serveMLLP(ln net.Listener, rec *recorder, ackDelay time.Duration) {
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "mllp-sink:", err)
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			r := bufio.NewReaderSize(c, 64<<10)
			n := 0
			for {
				msg, err := readFrame(r)
				if err != nil {
					return
				}
				now := time.Now().UnixNano()
				ctrl, stamp := oruIDAndTime(msg)
				rec.record(ctrl, stamp, now)
				if ackDelay > 0 {
					time.Sleep(ackDelay)
				}
				n++
				if _, err := c.Write(frame(ackFor(msg, ctrl, n))); err != nil {
					return
				}
			}
		}()
	}
}

// readFrame returns the next MLLP frame's message, skipping bytes before a
// start block.
func readFrame(r *bufio.Reader) ([]byte, error) {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == mllpStart {
			break
		}
	}
	var msg []byte
	for {
		chunk, err := r.ReadSlice(mllpEnd)
		msg = append(msg, chunk...)
		if len(msg) > maxFrame {
			return nil, errors.New("mllp: frame too large")
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, err
		}
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != mllpCR {
			return nil, errors.New("mllp: end block without CR")
		}
		return msg[:len(msg)-1], nil
	}
}

func frame(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+3)
	out = append(out, mllpStart)
	out = append(out, msg...)
	return append(out, mllpEnd, mllpCR)
}

// oruIDAndTime returns MSH-10 and the reading's time of an ORU^R01: OBX-14
// of the first OBX that has one (the device row has none), else MSH-7; 0 if
// neither parses. The bridge writes both with at most four fractional
// digits, so MLLP latencies are truncated to 100 µs.
func oruIDAndTime(msg []byte) (controlID string, stamp int64) {
	segs := strings.FieldsFunc(string(msg), func(r rune) bool { return r == '\r' || r == '\n' })
	if len(segs) == 0 || len(segs[0]) < 8 || !strings.HasPrefix(segs[0], "MSH") {
		return "", 0
	}
	sep := segs[0][3:4]
	msh := strings.Split(segs[0], sep) // msh[n-1] is MSH-n (MSH-1 is the separator)
	field := func(f []string, i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	controlID = field(msh, 9)
	ts := field(msh, 6)
	for _, seg := range segs[1:] {
		if strings.HasPrefix(seg, "OBX"+sep) {
			if t := field(strings.Split(seg, sep), 14); t != "" {
				ts = t
				break
			}
		}
	}
	if t, err := parseDTM(ts); err == nil {
		stamp = t.UnixNano()
	}
	return controlID, stamp
}

// ackFor builds an original-mode ACK^R01 accepting msg (MSA|AA|<MSH-10>),
// with msg's delimiters and its sender as receiver.
func ackFor(msg []byte, controlID string, n int) []byte {
	seg, _, _ := bytes.Cut(msg, []byte{'\r'})
	sep := "|"
	enc := `^~\&`
	var f []string
	if len(seg) > 8 && bytes.HasPrefix(seg, []byte("MSH")) {
		sep = string(seg[3])
		f = strings.Split(string(seg), sep)
		enc = f[1]
	}
	get := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	msh := []string{"MSH", enc, "BENCHSINK", "", get(2), get(3), time.Now().UTC().Format("20060102150405"), "",
		"ACK^R01^ACK", "A" + strconv.Itoa(n), "P", "2.6"}
	return []byte(strings.Join(msh, sep) + "\r" + strings.Join([]string{"MSA", "AA", controlID}, sep) + "\r")
}
