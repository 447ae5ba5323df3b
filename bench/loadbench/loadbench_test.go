package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("empty: %d", got)
	}
	var v []int64
	for i := int64(1); i <= 100; i++ {
		v = append(v, i)
	}
	for _, c := range []struct {
		p    float64
		want int64
	}{{0, 1}, {0.5, 50}, {0.95, 95}, {0.99, 99}, {1, 100}} {
		if got := percentile(v, c.p); got != c.want {
			t.Errorf("p%v = %d, want %d", c.p*100, got, c.want)
		}
	}
	s := summarize([]int64{5, 1, 4, 2, 3})
	if s != (latencySummary{N: 5, P50: 3, P95: 5, P99: 5, Max: 5}) {
		t.Errorf("summarize = %+v", s)
	}
}

func TestRecorder(t *testing.T) {
	r := newRecorder()
	const ms = int64(time.Millisecond)
	if !r.record("a", 100*ms, 110*ms) || !r.record("b", 200*ms, 230*ms) || !r.record("c", 0, 240*ms) {
		t.Fatal("new identifiers not taken as new")
	}
	if r.record("a", 100*ms, 300*ms) {
		t.Error("a duplicate taken as new")
	}
	r.record("", 100*ms, 300*ms)
	r.record("d", 400*ms, 500*ms)

	all := r.stats(0, 0)
	if all.Unique != 4 || all.Duplicates != 1 || all.NoID != 1 || all.NoTime != 1 || all.Latency.N != 0 {
		t.Errorf("counts = %+v", all)
	}
	// Window [150ms, 450ms): received in it are b and c (at 230 and 240;
	// d arrives at 500); stamped in it are b (200) and d (400), with
	// latencies of 30 and 100 ms (c has no stamp).
	w := r.stats(150*ms, 450*ms)
	if w.InWindow != 2 {
		t.Errorf("in window = %d, want 2", w.InWindow)
	}
	if w.Latency.N != 2 || w.Latency.P50 != 30*ms || w.Latency.Max != 100*ms {
		t.Errorf("latency = %+v", w.Latency)
	}
}

func TestProcParsing(t *testing.T) {
	stat := []byte("4162 (fhir bridge) (x)) S 1 4162 4162 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 0 0\n")
	ticks, err := procCPU(stat)
	if err != nil || ticks != 325 {
		t.Errorf("procCPU = %d, %v; want 325", ticks, err)
	}
	if _, err := procCPU([]byte("1 (x) S 1 2")); err == nil {
		t.Error("short stat accepted")
	}
	status := []byte("Name:\tfhir-bridge\nVmPeak:\t  900000 kB\nVmHWM:\t   96256 kB\nVmRSS:\t   80000 kB\n")
	if kib, err := procStatusKiB(status, "VmHWM"); err != nil || kib != 96256 {
		t.Errorf("VmHWM = %d, %v", kib, err)
	}
	if _, err := procStatusKiB(status, "VmSwap"); err == nil {
		t.Error("missing key accepted")
	}
	if got := cpuModel([]byte("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n")); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
}

func TestParseDTM(t *testing.T) {
	for in, want := range map[string]time.Time{
		"20200805222655.455+0000":  time.Date(2020, 8, 5, 22, 26, 55, 455e6, time.UTC),
		"20261125101500.1234+0100": time.Date(2026, 11, 25, 9, 15, 0, 123400e3, time.UTC),
		"20261125101500-0230":      time.Date(2026, 11, 25, 12, 45, 0, 0, time.UTC),
		"20261125101500":           time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC),
	} {
		got, err := parseDTM(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseDTM(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "2026", "2026112510150x", "20261125101500.+0000", "20261125101500+01"} {
		if _, err := parseDTM(bad); err == nil {
			t.Errorf("parseDTM(%q) accepted", bad)
		}
	}
}

const sampleORU = "MSH|^~\\&|FHIRBRIDGE|FAC|||20200805222655.455+0000||ORU^R01^ORU_R01|FBFA1E71A8186F00A774A6|P|2.6\r" +
	"PID|||p1^^^FHIR^PI\r" +
	"OBX|1||528457^MDC_DEV_SPEC_PROFILE_GENERIC^MDC|1|||||||X\r" +
	"OBX|2|NM|149546^MDC_PULS_RATE_NON_INV^MDC|1.0.0.1|88|/min|60-100|N|||F|||20200805222655.4561+0000\r"

func TestMLLP(t *testing.T) {
	id, stamp := oruIDAndTime([]byte(sampleORU))
	if id != "FBFA1E71A8186F00A774A6" {
		t.Errorf("MSH-10 = %q", id)
	}
	// OBX-14 (with its fourth digit) wins over MSH-7.
	if want := time.Date(2020, 8, 5, 22, 26, 55, 456100e3, time.UTC).UnixNano(); stamp != want {
		t.Errorf("stamp = %v, want %v", time.Unix(0, stamp).UTC(), time.Unix(0, want).UTC())
	}
	noOBX := strings.Split(sampleORU, "\rOBX")[0]
	if _, stamp := oruIDAndTime([]byte(noOBX)); stamp != time.Date(2020, 8, 5, 22, 26, 55, 455e6, time.UTC).UnixNano() {
		t.Errorf("MSH-7 fallback = %v", time.Unix(0, stamp).UTC())
	}

	// Two frames with noise before the first; a frame larger than the reader's buffer.
	big := sampleORU + strings.Repeat("NTE|x\r", 20000)
	stream := append([]byte("junk"), frame([]byte(sampleORU))...)
	stream = append(stream, frame([]byte(big))...)
	r := bufio.NewReaderSize(bytes.NewReader(stream), 64<<10)
	for _, want := range []string{sampleORU, big} {
		got, err := readFrame(r)
		if err != nil || string(got) != want {
			t.Fatalf("readFrame = %d bytes, %v; want %d bytes", len(got), err, len(want))
		}
	}
	if _, err := readFrame(r); err == nil {
		t.Error("readFrame at EOF: no error")
	}

	ack := string(ackFor([]byte(sampleORU), id, 7))
	segs := strings.Split(strings.TrimSuffix(ack, "\r"), "\r")
	if len(segs) != 2 || segs[1] != "MSA|AA|FBFA1E71A8186F00A774A6" {
		t.Errorf("ACK = %q", ack)
	}
	msh := strings.Split(segs[0], "|")
	if msh[1] != `^~\&` || msh[4] != "FHIRBRIDGE" || msh[5] != "FAC" || msh[8] != "ACK^R01^ACK" || msh[9] != "A7" || msh[11] != "2.6" {
		t.Errorf("ACK MSH = %q", segs[0])
	}
}

func TestFHIRSink(t *testing.T) {
	s := &fhirSink{rec: newRecorder()}
	srv := httptest.NewServer(s)
	defer srv.Close()

	body, slots := loaderBundle(3)
	stamp(body, slots, 0x1f)
	if !json.Valid(body) {
		t.Fatalf("loader Bundle is not JSON: %s", body)
	}
	post := func(path string, body []byte) *http.Response {
		resp, err := http.Post(srv.URL+path, "application/fhir+json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	statuses := func(resp *http.Response) []string {
		defer resp.Body.Close()
		var b struct {
			Type  string
			Entry []struct{ Response struct{ Status string } }
		}
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || b.Type != "batch-response" {
			t.Fatalf("batch response: %v, type %q", err, b.Type)
		}
		var out []string
		for _, e := range b.Entry {
			out = append(out, e.Response.Status)
		}
		return out
	}
	if got := statuses(post("/fhir", body)); strings.Join(got, ",") != "201 Created,201 Created,201 Created" {
		t.Errorf("first Bundle: %v", got)
	}
	// The same Bundle again: every entry is a duplicate (conditional create matched).
	if got := statuses(post("/fhir/", body)); strings.Join(got, ",") != "200 OK,200 OK,200 OK" {
		t.Errorf("repeated Bundle: %v", got)
	}
	obs := strings.Replace(loaderObservation, "@@@@@@@@@@@@@@@@", "00000000000000ff", 1)
	if resp := post("/fhir/Observation", []byte(obs)); resp.StatusCode != http.StatusCreated {
		t.Errorf("create: %s", resp.Status)
	}
	st := s.rec.stats(0, 0)
	if st.Unique != 4 || st.Duplicates != 3 || st.NoTime != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSpliceMarkers(t *testing.T) {
	doc := "# Benchmarks\n\nintro\n\n" + beginMarker + "\nnot yet run\n" + endMarker + "\n\nafter\n"
	got, err := spliceMarkers(doc, "| a | b |\n")
	want := "# Benchmarks\n\nintro\n\n" + beginMarker + "\n| a | b |\n" + endMarker + "\n\nafter\n"
	if err != nil || got != want {
		t.Errorf("splice = %q, %v", got, err)
	}
	again, _ := spliceMarkers(got, "| a | b |\n")
	if again != got {
		t.Error("splicing the same block twice changed the document")
	}
	if got, _ := spliceMarkers("text", "x"); got != "text\n\n"+beginMarker+"\nx\n"+endMarker+"\n" {
		t.Errorf("no markers: %q", got)
	}
	// Markers quoted in prose are not markers.
	quoted := "write between `" + beginMarker + "` and `" + endMarker + "`.\n" + beginMarker + "\nold\n" + endMarker + "\n"
	if got, _ := spliceMarkers(quoted, "new"); got != strings.Replace(quoted, "\nold\n", "\nnew\n", 1) {
		t.Errorf("quoted markers: %q", got)
	}
	if _, err := spliceMarkers(endMarker+"\n"+beginMarker+"\n", "x"); err == nil {
		t.Error("markers out of order accepted")
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.6: "1,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}

// docs/benchmarks.md quotes the markers in its prose; only the real ones,
// around the results, may be replaced.
func TestDocsMarkers(t *testing.T) {
	doc, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Skip(err)
	}
	got, err := spliceMarkers(string(doc), "RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "\n"+beginMarker+"\nRESULTS\n"+endMarker+"\n") || len(got) > len(doc) {
		t.Errorf("results not spliced at the end of docs/benchmarks.md:\n%s", got[max(0, len(got)-300):])
	}
}
