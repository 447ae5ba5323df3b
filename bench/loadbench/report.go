package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is everything one run measured.
type result struct {
	opts       options
	args       []string
	started    time.Time
	machine    machineInfo
	bridgeDesc string

	produced, produceFailed int64 // acknowledged by Kafka, including the probe
	offered                 float64
	producerLag             time.Duration
	drainTimedOut           bool

	fhir, mllp    *sinkResult
	cpuPerReading time.Duration
	bridgeCores   float64
	harnessCores  float64
	peakRSSKiB    int64

	lanes       []lane
	profileNote string
	notes       []string
}

type sinkResult struct {
	name     string
	stats    sinkStats
	achieved float64 // first receipts per second within the window
	losses   int64   // produced minus unique at the sink after the drain
}

type machineInfo struct {
	CPU, Kernel, Go, Kafka, Postgres, Load string
	Cores                                  int
}

func machine(ctx context.Context, dsn string) machineInfo {
	m := machineInfo{CPU: "unknown CPU", Kernel: "?", Go: runtime.Version(), Kafka: "?", Postgres: "?",
		Cores: runtime.NumCPU(), Load: "?"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(b)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	// The broker .ci/testenv.sh runs is the version its pom pins.
	if b, err := os.ReadFile(".ci/kafka/pom.xml"); err == nil {
		if v := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindSubmatch(b); v != nil {
			m.Kafka = string(v[1])
		}
	}
	if db, err := sql.Open("postgres", dsn); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		db.QueryRowContext(ctx, "SHOW server_version").Scan(&m.Postgres)
		cancel()
		db.Close()
	}
	return m
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	for line := range bytes.Lines(cpuinfo) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
			return string(bytes.TrimSpace(v))
		}
	}
	return "unknown CPU"
}

// render returns the Markdown report.
func render(r *result) string {
	o := r.opts
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	routes := "FHIR batch (defaults)"
	if o.mllp {
		routes += fmt.Sprintf(" + MLLP (sink ACK delay %s)", o.ackDelay)
	}
	p("Command: `go run ./bench/loadbench %s` (under `.ci/testenv.sh`)  ", strings.Join(r.args, " "))
	p("Date: %s  ", r.started.UTC().Format("2006-01-02 15:04 MST"))
	p("Machine: %s, %d cores, Linux %s, %s, Kafka %s, PostgreSQL %s; load average before the run %s. "+
		"All-in-one: the bridge, Kafka, PostgreSQL, the sinks and the producer share these cores.  ",
		r.machine.CPU, r.machine.Cores, r.machine.Kernel, r.machine.Go, r.machine.Kafka, r.machine.Postgres, r.machine.Load)
	p("Bridge: %s  ", r.bridgeDesc)
	p("Load: %s readings/s open loop, %d partitions, %d devices, %s warm-up then %s measured; routes: %s", num(float64(o.rate)),
		o.partitions, o.devices, o.warmup, o.duration, routes)
	p("")
	p("| figure | measured | target | verdict |")
	p("|---|---|---|---|")
	p("| offered readings/s (window) | %s | %s | |", num(r.offered), num(float64(o.rate)))
	sinks := []*sinkResult{r.fhir}
	if r.mllp != nil {
		sinks = append(sinks, r.mllp)
	}
	for _, s := range sinks {
		p("| achieved readings/s at the %s sink | %s | | |", strings.ToUpper(s.name), num(s.achieved))
	}
	cpuTarget := 40 * time.Microsecond
	if o.mllp {
		cpuTarget = 55 * time.Microsecond
	}
	cpu, cpuVerdict := "not measured", "n/a"
	if r.cpuPerReading > 0 {
		cpu = fmt.Sprintf("%.1f µs (%.2f cores)", float64(r.cpuPerReading)/1e3, r.bridgeCores)
		cpuVerdict = verdict(r.cpuPerReading <= cpuTarget)
	}
	p("| bridge CPU per reading | %s | ≤ %d µs | %s |", cpu, cpuTarget/time.Microsecond, cpuVerdict)
	rss, rssVerdict := "not measured", "n/a"
	if r.peakRSSKiB > 0 {
		rss = fmt.Sprintf("%.1f MiB", float64(r.peakRSSKiB)/1024)
		rssVerdict = fmt.Sprintf("n/a at %s/s", num(float64(o.rate)))
		if o.rate >= 10000 {
			rssVerdict = verdict(r.peakRSSKiB <= 256*1024)
		}
	}
	p("| bridge peak RSS (VmHWM) | %s | ≤ 256 MiB at 10,000/s | %s |", rss, rssVerdict)
	at5k := math.Abs(float64(o.rate)-5000) <= 250
	for _, s := range sinks {
		l := s.stats.Latency
		lat, v := "not measured", "n/a"
		if l.N > 0 {
			lat = fmt.Sprintf("%s / %s / %s / %s ms", ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max))
			v = fmt.Sprintf("n/a at %s/s", num(float64(o.rate)))
			if at5k {
				v = verdict(l.P50 <= 50e6 && l.P99 <= 250e6)
			}
		}
		p("| %s latency p50 / p95 / p99 / max | %s | p50 ≤ 50 ms, p99 ≤ 250 ms at 5,000/s | %s |", strings.ToUpper(s.name), lat, v)
	}
	clean := r.produceFailed == 0
	for _, s := range sinks {
		extra := ""
		if s.stats.NoID > 0 {
			extra = fmt.Sprintf(", %d without identifier", s.stats.NoID)
		}
		p("| %s losses / duplicates | %s / %s of %s produced%s | 0 / 0 | %s |", strings.ToUpper(s.name),
			num(float64(s.losses)), num(float64(s.stats.Duplicates)), num(float64(r.produced)), extra,
			verdict(s.losses == 0 && s.stats.Duplicates == 0))
		clean = clean && s.losses == 0 && s.stats.Duplicates == 0
	}
	sustained := "n/a: needs `--rate 10000 --duration 2m`"
	if o.rate >= 10000 && o.duration >= 2*time.Minute {
		ok := clean
		for _, s := range sinks {
			ok = ok && s.achieved >= 0.99*10000
		}
		sustained = verdict(ok)
	}
	p("| sustained 10,000 readings/s for 2 min | achieved %s/s | ≥ 10,000/s (99%%) for 2 min, zero loss, zero duplicates | %s |", num(r.fhir.achieved), sustained)
	p("| harness CPU (producer + sinks) | %.2f cores | | |", r.harnessCores)
	p("| producer's worst lag behind schedule | %s ms | | |", ms(int64(r.producerLag)))
	if len(r.lanes) > 0 {
		p("")
		p("Ceiling lanes, same run, one after another once the bridge had stopped:")
		p("")
		p("| lane | measured | bridge's achieved rate as share of it |")
		p("|---|---|---|")
		for _, l := range r.lanes {
			m := fmt.Sprintf("%s %s (%s in %.1f s)", num(l.rate()), l.Unit, num(float64(l.Count)), l.Elapsed.Seconds())
			if l.Err != nil {
				m += "; error: " + oneLine(l.Err.Error())
			}
			if l.Note != "" {
				m += "; " + l.Note
			}
			share := ""
			if l.rate() > 0 {
				share = fmt.Sprintf("%.0f%%", 100*r.fhir.achieved/l.rate())
			}
			p("| %s | %s | %s |", l.Name, m, share)
		}
	}
	notes := slices.Clone(r.notes)
	if r.mllp != nil {
		notes = append(notes, "MLLP latency is read from OBX-14 (HL7 DTM, at most 4 fractional digits), so it is truncated to 100 µs.")
	}
	if r.fhir.stats.NoTime > 0 || (r.mllp != nil && r.mllp.stats.NoTime > 0) {
		notes = append(notes, "some readings had no readable time and are left out of the latencies")
	}
	if r.produceFailed > 0 {
		notes = append(notes, fmt.Sprintf("%d readings failed to produce and are not counted as produced", r.produceFailed))
	}
	if r.profileNote != "" {
		notes = append(notes, r.profileNote)
	}
	if len(notes) > 0 {
		p("")
		for _, n := range notes {
			p("- %s", oneLine(n))
		}
	}
	return b.String()
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// num formats n rounded, with thousands separators.
func num(n float64) string {
	s := strconv.FormatInt(int64(math.Round(n)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ms formats nanoseconds as milliseconds.
func ms(ns int64) string { return strconv.FormatFloat(float64(ns)/1e6, 'f', 1, 64) }

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
}

const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

// spliceMarkers replaces what lies between the markers of doc with block;
// a document without them gets them, with block, at its end. A marker
// counts only on a line of its own, so prose may quote it.
func spliceMarkers(doc, block string) (string, error) {
	block = "\n" + strings.TrimSpace(block) + "\n"
	i := markerLine(doc, beginMarker)
	j := markerLine(doc, endMarker)
	switch {
	case i < 0 && j < 0:
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + "\n" + beginMarker + block + endMarker + "\n", nil
	case i < 0 || j < i:
		return "", errors.New("bench markers out of order or unpaired")
	}
	return doc[:i+len(beginMarker)] + block + doc[j:], nil
}

// markerLine returns the index of the first line of doc that is exactly
// marker, or -1.
func markerLine(doc, marker string) int {
	for at := 0; ; {
		k := strings.Index(doc[at:], marker)
		if k < 0 {
			return -1
		}
		k += at
		end := k + len(marker)
		if (k == 0 || doc[k-1] == '\n') && (end == len(doc) || doc[end] == '\n' || doc[end] == '\r') {
			return k
		}
		at = end
	}
}

func writeBetweenMarkers(path, block string) error {
	doc, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := spliceMarkers(string(doc), block)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
