// Command loadbench is fhir-bridge's load benchmark harness. In one run on
// one machine it builds the bridge, starts a FHIR sink (and, with --mllp, an
// MLLP sink) as subprocesses, runs `fhir-bridge run` against the Kafka
// broker and PostgreSQL that .ci/testenv.sh starts, offers heart-rate
// readings open loop at a fixed rate, and reports the achieved rate, the
// bridge's CPU per reading and peak RSS, end-to-end latency percentiles per
// sink, losses and duplicates, next to same-run ceiling lanes (raw Kafka
// read, raw COPY into PostgreSQL, the FHIR sink fed by a pre-encoded loader)
// and the performance targets.
//
//	make bench BENCHFLAGS='--rate 10000 --duration 2m'
//	bash .ci/testenv.sh go run ./bench/loadbench --rate 1000 --duration 15s --warmup 5s --mllp
//
// It needs Linux (it reads /proc). docs/benchmarks.md describes the figures.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "fhir-sink" || os.Args[1] == "mllp-sink") {
		os.Exit(sinkMain(os.Args[1], os.Args[2:]))
	}
	os.Exit(benchMain(os.Args[1:]))
}

type options struct {
	rate                int
	duration, warmup    time.Duration
	drain, ceiling      time.Duration
	partitions, devices int
	mllp                bool
	ackDelay            time.Duration
	bridge, out         string
	profile             string
	kafka, dsn          string
	keep                bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: bash .ci/testenv.sh go run ./bench/loadbench [flags]   (or: make bench BENCHFLAGS='...')")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.rate, "rate", 5000, "offered readings per second (open loop)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "measured window")
	fs.DurationVar(&o.warmup, "warmup", 10*time.Second, "load before the measured window, excluded from the figures")
	fs.DurationVar(&o.drain, "drain", 2*time.Minute, "how long to wait, after the last reading is produced, for every reading to reach the sinks")
	fs.DurationVar(&o.ceiling, "ceiling", 10*time.Second, "length of the COPY and FHIR-loader ceiling lanes; 0 skips all ceiling lanes")
	fs.IntVar(&o.partitions, "partitions", 12, "partitions of the benchmark topic")
	fs.IntVar(&o.devices, "devices", 600, "simulated devices (message keys)")
	fs.BoolVar(&o.mllp, "mllp", false, "add a second route over the same topic to an MLLP sink")
	fs.DurationVar(&o.ackDelay, "ack-delay", time.Millisecond, "MLLP sink: delay before each ACK")
	fs.StringVar(&o.bridge, "bridge", "", "fhir-bridge binary to measure (default: build ./cmd/fhir-bridge)")
	fs.StringVar(&o.out, "out", "", "also write the results into this Markdown file between <!-- bench:begin --> and <!-- bench:end -->")
	fs.StringVar(&o.profile, "profile", "", "write a CPU profile of the bridge (up to 30 s of the window) to this file, if the bridge serves /debug/pprof")
	fs.StringVar(&o.kafka, "kafka", os.Getenv("BRIDGE_TEST_KAFKA"), "Kafka bootstrap host:port (default $BRIDGE_TEST_KAFKA)")
	fs.StringVar(&o.dsn, "dsn", os.Getenv("BRIDGE_TEST_POSTGRES_DSN"), "PostgreSQL DSN for the audit trail (default $BRIDGE_TEST_POSTGRES_DSN)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configuration, bridge log)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.kafka == "" || o.dsn == "":
		return o, errors.New("no Kafka or PostgreSQL: run under bash .ci/testenv.sh (make bench), or pass --kafka and --dsn")
	case o.rate <= 0 || o.duration <= 0 || o.warmup < 0 || o.partitions <= 0:
		return o, errors.New("--rate, --duration and --partitions must be positive, --warmup not negative")
	case o.devices < 500:
		return o, errors.New("--devices must be at least 500")
	}
	return o, nil
}

func benchMain(args []string) int {
	o, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := &harness{o: o}
	res, err := h.run(ctx)
	h.cleanup()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "loadbench: interrupted")
			return 130
		}
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		return 1
	}
	report := render(res)
	fmt.Print(report)
	if o.out != "" {
		if err := writeBetweenMarkers(o.out, report); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "loadbench: results written to", o.out)
	}
	return 0
}

// harness holds what one run started; cleanup undoes it in reverse order,
// on every exit path.
type harness struct {
	o        options
	dir      string
	cleanups []func()
	logPath  string
}

func (h *harness) onCleanup(f func()) { h.cleanups = append(h.cleanups, f) }

func (h *harness) cleanup() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadbench: "+format+"\n", args...)
}

func (h *harness) run(ctx context.Context) (*result, error) {
	o := h.o
	res := &result{opts: o, args: os.Args[1:], started: time.Now()}
	var err error
	if h.dir, err = os.MkdirTemp("", "loadbench-"); err != nil {
		return nil, err
	}
	h.onCleanup(func() {
		if o.keep {
			logf("work directory kept: %s", h.dir)
			return
		}
		os.RemoveAll(h.dir)
	})

	bin := o.bridge
	if bin == "" {
		if bin, err = buildBridge(ctx, h.dir); err != nil {
			return nil, err
		}
		res.bridgeDesc = "built from the working tree at " + gitDescribe()
	} else {
		res.bridgeDesc = bin
	}
	res.machine = machine(ctx, o.dsn)

	fhirSink, err := startSink(ctx, "fhir-sink")
	if err != nil {
		return nil, err
	}
	h.onCleanup(fhirSink.stop)
	sinks := []*sinkProc{fhirSink}
	var mllpSink *sinkProc
	if o.mllp {
		if mllpSink, err = startSink(ctx, "mllp-sink", "--ack-delay", o.ackDelay.String()); err != nil {
			return nil, err
		}
		h.onCleanup(mllpSink.stop)
		sinks = append(sinks, mllpSink)
	}

	run := strconv.FormatInt(time.Now().Unix(), 36)
	topic := "bench.vitals." + run
	if err := createTopic(ctx, o.kafka, topic, o.partitions); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(h.dir, "bridge.yaml")
	if err := os.WriteFile(cfgPath, []byte(bridgeConfig(o, run, topic, fhirSink, mllpSink)), 0o600); err != nil {
		return nil, err
	}
	bridge, err := h.startBridge(bin, cfgPath)
	if err != nil {
		return nil, err
	}

	// Until the bridge is stopped on purpose, ctx is also cancelled when it
	// dies, so that no phase waits for a dead bridge; the lanes after the
	// stop use base.
	base := ctx
	ctx, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	go func() {
		select {
		case <-bridge.done:
			cancel(fmt.Errorf("the bridge exited (%v); last lines of its log:\n%s", bridge.err, tail(h.logPath, 30)))
		case <-ctx.Done():
		}
	}()
	fail := func(err error) (*result, error) {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			return nil, c
		}
		return nil, err
	}

	// One probe reading through every route first: the group joins and the
	// first connections are then outside the warm-up, let alone the window.
	prod := newProducer(o.kafka, topic, o.devices)
	h.onCleanup(func() { prod.close() })
	logf("bridge pid %d started; waiting for a probe reading to reach every sink", bridge.pid())
	probe := prod.reading(0, time.Now().Truncate(time.Microsecond))
	probe.Key = []byte("bench-probe")
	probe.Value = bytes.Replace(probe.Value, []byte("bench-hrm-00000"), []byte("bench-probe"), 1)
	if err := prod.w.WriteMessages(ctx, probe); err != nil {
		return fail(err)
	}
	if err := waitSinks(ctx, sinks, 1, 2*time.Minute); err != nil {
		return fail(fmt.Errorf("probe reading: %w", err))
	}

	start := time.Now()
	winFrom := start.Add(o.warmup)
	winTo := winFrom.Add(o.duration)
	prod.winFrom.Store(winFrom.UnixNano())
	prod.winTo.Store(winTo.UnixNano())
	logf("offering %d readings/s: %s warm-up, then %s measured", o.rate, o.warmup, o.duration)
	sampled := make(chan window, 1)
	go func() { sampled <- h.sample(ctx, winFrom, winTo, bridge, sinks) }()
	var profDone chan string
	if o.profile != "" {
		profDone = make(chan string, 1)
		go func() { profDone <- h.profile(ctx, winFrom, min(30*time.Second, o.duration)) }()
	}
	sent, lag, err := prod.run(ctx, start, o.rate, o.warmup+o.duration)
	if err != nil {
		return fail(err)
	}
	if err := prod.close(); err != nil {
		res.notes = append(res.notes, "produce errors: "+err.Error())
	}
	res.produced, res.produceFailed, res.producerLag = prod.ok.Load(), prod.failed.Load(), lag
	res.offered = float64(prod.okIn.Load()) / o.duration.Seconds()
	logf("produced %d of %d readings (+1 probe); draining (up to %s)", res.produced-1, sent, o.drain)
	win := <-sampled
	if win.err != nil {
		return fail(win.err)
	}

	if err := waitSinks(ctx, sinks, res.produced, o.drain); err != nil {
		if ctx.Err() != nil {
			return fail(err)
		}
		res.drainTimedOut = true
		res.notes = append(res.notes, err.Error())
	}
	// Peak RSS before the stop: the process is gone after it.
	res.peakRSSKiB, _ = statusKiB(bridge.pid(), "VmHWM")
	if profDone != nil {
		res.profileNote = <-profDone
	}
	cancel(nil)
	if err := bridge.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		res.notes = append(res.notes, fmt.Sprintf("bridge stop: %v", err))
	}

	for _, s := range sinks {
		st, err := s.stats(base, winFrom, winTo)
		if err != nil {
			return nil, err
		}
		sr := &sinkResult{name: strings.TrimSuffix(s.name, "-sink"), stats: st,
			achieved: float64(st.InWindow) / o.duration.Seconds(), losses: res.produced - st.Unique}
		if s == fhirSink {
			res.fhir = sr
		} else {
			res.mllp = sr
		}
		s.stop()
	}
	if res.fhir.stats.InWindow > 0 {
		res.cpuPerReading = time.Duration(win.bridgeTicks) * clockTick / time.Duration(res.fhir.stats.InWindow)
	}
	res.bridgeCores = (time.Duration(win.bridgeTicks) * clockTick).Seconds() / o.duration.Seconds()
	res.harnessCores = (time.Duration(win.harnessTicks) * clockTick).Seconds() / o.duration.Seconds()

	if o.ceiling > 0 {
		logf("ceiling lanes")
		res.lanes = append(res.lanes, kafkaLane(base, o.kafka, topic, res.produced, 2*time.Minute))
		res.lanes = append(res.lanes, copyLane(base, o.dsn, o.ceiling))
		loaderSink, err := startSink(base, "fhir-sink")
		if err != nil {
			return nil, err
		}
		h.onCleanup(loaderSink.stop)
		res.lanes = append(res.lanes, loaderLane(base, loaderSink, o.ceiling))
		loaderSink.stop()
		if base.Err() != nil {
			return nil, base.Err()
		}
	}
	return res, nil
}

func buildBridge(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if err != nil || root == "." || root == "" {
		return "", fmt.Errorf("cannot find the module root (go env GOMOD): %v", err)
	}
	bin := filepath.Join(dir, "fhir-bridge")
	logf("building %s", bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fhir-bridge")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fhir-bridge: %w", err)
	}
	return bin, nil
}

func createTopic(ctx context.Context, broker, topic string, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(broker)}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// bridgeConfig is the bridge's YAML: a FHIR route with the batch defaults
// and, with --mllp, an MLLP route over the same topic (its own consumer
// group), both reading from the start of the fresh topic.
func bridgeConfig(o options, run, topic string, fhirSink, mllpSink *sinkProc) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%q]\naudit:\n  dsn: %q\nops:\n  listen: \"127.0.0.1:0\"\nroutes:\n", o.kafka, o.dsn)
	fmt.Fprintf(&b, "  - name: bench-fhir-%s\n    topic: %s\n    start_position: earliest\n    destination:\n      fhir:\n        base_url: %s\n",
		run, topic, fhirSink.Addr)
	if mllpSink != nil {
		fmt.Fprintf(&b, "  - name: bench-mllp-%s\n    topic: %s\n    start_position: earliest\n    destination:\n      mllp:\n        address: %s\n",
			run, topic, mllpSink.Addr)
	}
	return b.String()
}

func (h *harness) startBridge(bin, cfgPath string) (*proc, error) {
	h.logPath = filepath.Join(h.dir, "bridge.log")
	logFile, err := os.Create(h.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The file's audit.dsn must win over an FHIR_BRIDGE_AUDIT_DSN the caller
	// may have set for something else.
	cmd.Env = append(os.Environ(), "FHIR_BRIDGE_AUDIT_DSN="+h.o.dsn)
	p, err := startProc("fhir-bridge", cmd, syscall.SIGTERM)
	logFile.Close()
	if err != nil {
		return nil, err
	}
	h.onCleanup(func() {
		if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil && !p.exited() {
			logf("bridge: %v", err)
		}
	})
	return p, nil
}

// waitSinks polls until every sink holds at least n unique readings.
func waitSinks(ctx context.Context, sinks []*sinkProc, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var behind []string
		for _, s := range sinks {
			st, err := s.stats(ctx, time.Time{}, time.Time{})
			if err != nil {
				return err
			}
			if st.Unique < n {
				behind = append(behind, fmt.Sprintf("%s holds %d of %d", s.name, st.Unique, n))
			}
		}
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s: %s", timeout, strings.Join(behind, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// window is the CPU time spent within the measured window.
type window struct {
	bridgeTicks, harnessTicks uint64
	err                       error
}

// sample reads the CPU counters of the bridge, of loadbench itself and of
// the sinks at the window's start and end.
func (h *harness) sample(ctx context.Context, from, to time.Time, bridge *proc, sinks []*sinkProc) window {
	read := func() (b, rig uint64, err error) {
		if b, err = cpuTicks(bridge.pid()); err != nil {
			return 0, 0, fmt.Errorf("bridge CPU: %w", err)
		}
		pids := []int{os.Getpid()}
		for _, s := range sinks {
			pids = append(pids, s.pid())
		}
		for _, pid := range pids {
			t, err := cpuTicks(pid)
			if err != nil {
				return 0, 0, err
			}
			rig += t
		}
		return b, rig, nil
	}
	sleepUntil := func(t time.Time) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(t)):
			return nil
		}
	}
	if err := sleepUntil(from); err != nil {
		return window{err: err}
	}
	b0, r0, err := read()
	if err != nil {
		return window{err: err}
	}
	if err := sleepUntil(to); err != nil {
		return window{err: err}
	}
	b1, r1, err := read()
	return window{bridgeTicks: b1 - b0, harnessTicks: r1 - r0, err: err}
}

// profile fetches a CPU profile from the bridge's ops listener at the start
// of the window; it says why when there is none.
func (h *harness) profile(ctx context.Context, at time.Time, d time.Duration) string {
	select {
	case <-ctx.Done():
		return "profile: not taken"
	case <-time.After(time.Until(at)):
	}
	addr := opsAddr(h.logPath)
	if addr == "" {
		return "profile: skipped, no \"ops listening\" line in the bridge log"
	}
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds()))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "profile: " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("profile: skipped, the bridge's ops listener has no /debug/pprof (%s)", resp.Status)
	}
	f, err := os.Create(h.o.profile)
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return "profile: " + err.Error()
	}
	return fmt.Sprintf("profile: %s of bridge CPU written to %s", d, h.o.profile)
}

// opsAddr finds the ops listener's address in the bridge's log
// (`msg="ops listening" addr=127.0.0.1:port`).
func opsAddr(logPath string) string {
	b, _ := os.ReadFile(logPath)
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, `msg="ops listening"`) {
			if _, a, ok := strings.Cut(line, "addr="); ok {
				return strings.Fields(a)[0]
			}
		}
	}
	return ""
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func gitDescribe() string {
	out, err := exec.Command("git", "--no-optional-locks", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "an unknown revision"
	}
	return strings.TrimSpace(string(out))
}
