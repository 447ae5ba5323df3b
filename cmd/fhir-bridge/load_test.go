package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit/audittest"
	"github.com/segmentio/kafka-go"
)

// The load harness: one FHIR route against the real Kafka broker and
// PostgreSQL that `make test`'s environment starts, and an in-process EHR
// stand-in (loadSink) that answers creates and batch Bundles without
// validating, so the bridge, not the stand-in, is what is measured (the
// validating sandbox EHR is what the end-to-end tests use).
//
// By default the bridge runs in-process (run()). BRIDGE_LOAD_BINARY runs a
// built fhir-bridge binary instead, so two engines can be measured in the
// same run, alternating (bench/compare.sh does that); BRIDGE_LOAD_LEGACY=1
// writes a configuration without the keys older binaries do not know.
//
//	bash .ci/testenv.sh go test -run='^$' -bench='Route' -benchtime=1x ./cmd/fhir-bridge

// BenchmarkRouteThroughput preloads 20,000 readings on 4 partitions and
// measures the time from the bridge's start until every offset is committed
// (delivered, audited and acknowledged).
func BenchmarkRouteThroughput(b *testing.B) {
	broker := kafkaAddr(b)
	const n, partitions = 20000, 4
	for range b.N {
		dsn := audittest.DSN(b)
		topic, route := randomName("load"), randomName("hr")
		createTopic(b, broker, topic, partitions)
		ehr := startLoadSink(b)
		at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
		msgs := make([]kafka.Message, 0, n)
		for i := range n {
			msgs = append(msgs, reading(fmt.Sprintf("hrm-%04d", i%500), fmt.Sprintf("p-%04d", i%500), at.Add(time.Duration(i)*time.Second), fmt.Sprint(50+i%60)))
		}
		produce(b, broker, topic, msgs...)
		path := writeLoadConfig(b, broker, dsn, route, topic, ehr.url)
		start := time.Now()
		stop := startLoadBridge(b, path)
		waitFor(b, 10*time.Minute, "all committed", func() bool {
			return committed(b, broker, "fhir-bridge."+route, topic, partitions) == n
		})
		elapsed := time.Since(start)
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		if c := ehr.unique(); c != n {
			b.Fatalf("EHR holds %d of %d readings", c, n)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "readings/s")
	}
}

// BenchmarkRouteLatency offers 1,000 readings/s (open loop, for 20 s) to a
// running bridge and reports the latency percentiles from each reading's
// time (stamped when it is produced) to its arrival at the EHR.
func BenchmarkRouteLatency(b *testing.B) {
	broker := kafkaAddr(b)
	const rate, seconds, partitions = 1000, 20, 4
	for range b.N {
		dsn := audittest.DSN(b)
		topic, route := randomName("lat"), randomName("hr")
		createTopic(b, broker, topic, partitions)
		ehr := startLoadSink(b)
		path := writeLoadConfig(b, broker, dsn, route, topic, ehr.url)
		stop := startLoadBridge(b, path)
		// Wait until the bridge consumes: one reading through.
		produce(b, broker, topic, reading("hrm-warm", "p-warm", time.Now(), "60"))
		waitFor(b, 60*time.Second, "the first reading", func() bool { return ehr.unique() == 1 })
		ehr.reset()

		w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.Hash{},
			BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, Async: true}
		// Open loop: each tick sends what is due by then, whatever the
		// bridge does, so a slow bridge shows as latency, not as a lower
		// offered rate.
		const tick = 10 * time.Millisecond
		t0 := time.Now()
		sent := 0
		for time.Since(t0) < seconds*time.Second {
			due := int(time.Since(t0).Seconds()*rate) + 1
			var batch []kafka.Message
			for ; sent < due; sent++ {
				batch = append(batch, reading(fmt.Sprintf("hrm-%04d", sent%500), fmt.Sprintf("p-%04d", sent%500), time.Now(), fmt.Sprint(50+sent%60)))
			}
			if len(batch) > 0 {
				if err := w.WriteMessages(context.Background(), batch...); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(tick) // pacing the producer, not synchronising with the bridge
		}
		w.Close()
		waitFor(b, 2*time.Minute, "every reading at the EHR", func() bool { return ehr.unique() >= sent })
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		lat := ehr.latencies()
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(float64(sent)/seconds, "offered/s")
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(pct(1), "max-ms")
	}
}

func writeLoadConfig(t testing.TB, broker, dsn, route, topic, ehrURL string) string {
	t.Helper()
	extra := "ops: {listen: \"127.0.0.1:0\"}\n"
	start := "    start_position: earliest\n"
	if os.Getenv("BRIDGE_LOAD_LEGACY") != "" {
		extra, start = "", ""
	}
	cfg := fmt.Sprintf(`kafka:
  brokers: [%q]
audit:
  dsn: %q
%sshutdown_grace: 2s
routes:
  - name: %s
    topic: %s
%s    destination:
      fhir:
        base_url: %s
        timeout: 10s
`, broker, dsn, extra, route, topic, start, ehrURL)
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startLoadBridge runs the bridge in-process, or BRIDGE_LOAD_BINARY. With
// BRIDGE_LOAD_METRICS set (in-process only), stop first prints the
// bridge's per-stage and end-to-end timings from its ops listener.
func startLoadBridge(t testing.TB, path string) (stop func() error) {
	t.Helper()
	bin := os.Getenv("BRIDGE_LOAD_BINARY")
	if bin == "" {
		logs := &syncBuffer{}
		stopBridge := startBridge(t, path, logs)
		if os.Getenv("BRIDGE_LOAD_METRICS") == "" {
			return stopBridge
		}
		ops := opsAddr(t, logs)
		return func() error {
			resp, err := http.Get("http://" + ops + "/metrics")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				for _, line := range strings.Split(string(b), "\n") {
					if strings.Contains(line, "_seconds_sum") || strings.Contains(line, "_seconds_count") {
						fmt.Fprintln(os.Stderr, line)
					}
				}
			}
			return stopBridge()
		}
	}
	cmd := exec.Command(bin, "run", "--config", path, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			err = cmd.Wait()
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// loadSink is a fast EHR stand-in: it answers conditional creates and batch
// Bundles (201, or 200 for an identifier it holds), and records each
// reading's latency from its effectiveDateTime to its arrival.
type loadSink struct {
	url string
	mu  sync.Mutex
	ids map[string]bool
	lat []time.Duration
}

func startLoadSink(t testing.TB) *loadSink {
	t.Helper()
	s := &loadSink{ids: map[string]bool{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/fhir"
	return s
}

type loadObservation struct {
	ResourceType      string `json:"resourceType"`
	EffectiveDateTime string `json:"effectiveDateTime"`
	Identifier        []struct {
		Value string `json:"value"`
	} `json:"identifier"`
}

func (s *loadSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/fhir+json")
	switch {
	case r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, "/fhir") || strings.HasSuffix(r.URL.Path, "/fhir/")):
		var bundle struct {
			Entry []struct {
				Resource loadObservation `json:"resource"`
			} `json:"entry"`
		}
		if err := json.NewDecoder(r.Body).Decode(&bundle); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type resp struct {
			Status   string `json:"status"`
			Location string `json:"location"`
		}
		type entry struct {
			Response resp `json:"response"`
		}
		out := struct {
			ResourceType string  `json:"resourceType"`
			Type         string  `json:"type"`
			Entry        []entry `json:"entry"`
		}{ResourceType: "Bundle", Type: "batch-response"}
		for _, e := range bundle.Entry {
			status := s.record(e.Resource)
			out.Entry = append(out.Entry, entry{Response: resp{Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), Location: "Observation/1/_history/1"}})
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost:
		var o loadObservation
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Location", "Observation/1/_history/1")
		w.WriteHeader(s.record(o))
		w.Write([]byte(`{"resourceType":"Observation"}`))
	default:
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"resourceType":"Device"}`))
	}
}

func (s *loadSink) record(o loadObservation) int {
	now := time.Now()
	key := ""
	if len(o.Identifier) > 0 {
		key = o.Identifier[0].Value
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[key] {
		return http.StatusOK
	}
	s.ids[key] = true
	if t, err := time.Parse(time.RFC3339Nano, o.EffectiveDateTime); err == nil {
		s.lat = append(s.lat, now.Sub(t))
	}
	return http.StatusCreated
}

func (s *loadSink) unique() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

func (s *loadSink) latencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lat)
}

func (s *loadSink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids, s.lat = map[string]bool{}, nil
}
