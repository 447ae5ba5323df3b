package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/auth/authtest"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit/audittest"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirsandbox"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/hl7/mllptest"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"github.com/segmentio/kafka-go"
)

// These tests drive run() against the real Kafka broker and PostgreSQL server
// that `make test` starts, and an in-process sandbox EHR.

func kafkaAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("BRIDGE_TEST_KAFKA")
	if addr == "" {
		t.Skip("BRIDGE_TEST_KAFKA not set; run `make test`, which starts PostgreSQL and Kafka")
	}
	return addr
}

func randomName(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func createTopic(t testing.TB, addr, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func produce(t testing.TB, addr, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{},
		BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: false}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func reading(device, patient string, at time.Time, value string) kafka.Message {
	body := fmt.Sprintf(`{"kind":"heart-rate","device":%q,"patient":%q,"time":%q,"value":%s,"unit":"/min"}`,
		device, patient, at.Format(time.RFC3339Nano), value)
	return kafka.Message{Key: []byte(device), Value: []byte(body)}
}

// committed returns the group's committed offsets summed over partitions:
// with offsets starting at 0 that is the number of messages committed.
func committed(t testing.TB, addr, group, topic string, partitions int) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	var sum int64
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch partition %d: %v", p.Partition, p.Error)
		}
		if p.CommittedOffset > 0 {
			sum += p.CommittedOffset
		}
	}
	return sum
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		<-tick.C
	}
}

type sandboxEHR struct {
	*fhirsandbox.Server
	URL string
}

func startEHR(t testing.TB) sandboxEHR {
	t.Helper()
	codec, err := fhir.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	s := fhirsandbox.New(codec)
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", s))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return sandboxEHR{Server: s, URL: srv.URL + "/fhir"}
}

func writeConfig(t testing.TB, broker, dsn, route, topic, ehrURL string) string {
	t.Helper()
	cfg := fmt.Sprintf(`kafka:
  brokers: [%q]
ops:
  listen: 127.0.0.1:0
audit:
  dsn: %q
shutdown_grace: 500ms
retry:
  initial: 10ms
  max: 200ms
routes:
  - name: %s
    topic: %s
    start_position: earliest
    destination:
      fhir:
        base_url: %s
        timeout: 5s
`, broker, dsn, route, topic, ehrURL)
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type syncBuffer = bridgetest.SyncBuffer

// opsAddr waits for the bridge's "ops listening" log line and returns its
// address.
func opsAddr(t testing.TB, logs *syncBuffer) string {
	t.Helper()
	var addr string
	waitFor(t, 30*time.Second, "the ops listener", func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `msg="ops listening"`) {
				if i := strings.Index(line, "addr="); i >= 0 {
					addr = strings.Fields(line[i+len("addr="):])[0]
					return true
				}
			}
		}
		return false
	})
	return addr
}

// startBridge runs `fhir-bridge run --config path` until the returned stop
// function is called; stop waits for run to return and returns its error.
func startBridge(t testing.TB, path string, logs *syncBuffer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"fhir-bridge", "run", "--config", path}, func(string) string { return "" }, logs, logs)
	}()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("bridge did not stop within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func auditEvents(t testing.TB, dsn, route string) []audit.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := audit.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	evs, err := store.List(ctx, audit.Filter{Route: route, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestEndToEnd(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, route := randomName("e2e"), randomName("hr")
	createTopic(t, broker, topic, 3)
	ehr := startEHR(t)

	at := time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	var msgs []kafka.Message
	for i := range 5 {
		msgs = append(msgs, reading(fmt.Sprintf("hrm-%d", i), fmt.Sprintf("secret-patient-%d", i), at.Add(time.Duration(i)*time.Minute), fmt.Sprint(60+i)))
	}
	bad := reading("hrm-bad", "secret-patient-bad", at, "900")
	msgs = append(msgs, bad)
	produce(t, broker, topic, msgs...)

	logs := &syncBuffer{}
	stop := startBridge(t, writeConfig(t, broker, dsn, route, topic, ehr.URL), logs)
	group := "fhir-bridge." + route
	waitFor(t, 60*time.Second, "all 6 offsets committed", func() bool { return committed(t, broker, group, topic, 3) == 6 })
	if err := stop(); err != nil {
		t.Fatalf("run returned %v\nlogs:\n%s", err, logs)
	}

	// The EHR received exactly the 5 valid Observations, each valid R4.
	if got := ehr.Stats(); got.Created != 5 || got.Rejected != 0 {
		t.Fatalf("EHR stats = %+v, want 5 created, 0 rejected", got)
	}
	codec, _ := fhir.NewCodec()
	seen := map[string]bool{}
	for _, body := range ehr.Resources("Observation") {
		msg, err := codec.Decode(body)
		if err != nil {
			t.Fatalf("Observation does not pass the validating unmarshaller: %v\n%s", err, body)
		}
		obs := msg.(*crpb.ContainedResource).GetObservation()
		if issues := fhir.CheckVitalSigns(obs); len(issues) > 0 {
			t.Errorf("vital-signs issues: %v", issues)
		}
		if c := obs.GetCode().GetCoding()[0]; c.GetCode().GetValue() != "8867-4" || c.GetSystem().GetValue() != fhir.SystemLOINC {
			t.Errorf("code = %v, want LOINC 8867-4", c)
		}
		if q := obs.GetValue().GetQuantity(); q.GetCode().GetValue() != "/min" {
			t.Errorf("unit = %q, want /min", q.GetCode().GetValue())
		}
		seen[obs.GetSubject().GetPatientId().GetValue()] = true
	}
	for i := range 5 {
		if !seen[fmt.Sprintf("secret-patient-%d", i)] {
			t.Errorf("no Observation for secret-patient-%d", i)
		}
	}

	// The audit trail holds one row per reading: delivered for each valid
	// reading, with the EHR's answer, the receive time and the attempts,
	// and dead-lettered with the reason for the bad one.
	byOffset := map[string][]string{}
	var rejected []audit.Event
	for _, e := range auditEvents(t, dsn, route) {
		key := fmt.Sprintf("%d/%d", e.Partition, e.Offset)
		byOffset[key] = append(byOffset[key], e.Action)
		if e.Action == audit.ActionDeadLettered {
			rejected = append(rejected, e)
		}
		if e.Action == audit.ActionDelivered && (e.Status != http.StatusCreated || e.Location == "" ||
			e.ReceivedAt.IsZero() || e.ReceivedAt.After(e.Time) || e.Attempts != 1 || e.DestKind != "fhir") {
			t.Errorf("delivered row without its answer, receive time or attempts: %+v", e)
		}
	}
	if len(byOffset) != 6 {
		t.Fatalf("audit covers %d messages, want 6: %v", len(byOffset), byOffset)
	}
	if len(rejected) != 1 || !strings.Contains(rejected[0].Detail, `field "value"`) || rejected[0].Patient != "" ||
		rejected[0].Stage != "map" || rejected[0].Reason != "invalid-payload" || !strings.HasSuffix(rejected[0].Location, ".dead-letter") {
		t.Fatalf("dead-lettered rows = %+v, want one naming field \"value\" and the dead-letter topic", rejected)
	}
	for k, actions := range byOffset {
		s := strings.Join(actions, ",")
		if s != "delivered" && s != "dead-lettered" {
			t.Errorf("message %s audit actions = %s", k, s)
		}
	}

	// PHI stays out of logs.
	if l := logs.String(); strings.Contains(l, "secret-patient") {
		t.Errorf("logs contain a patient id:\n%s", l)
	}
}

// TestRestartMidStream stops the bridge while the EHR has stored a reading but
// not yet answered (the worst moment), restarts it, and checks that every
// reading arrives and none is created twice.
func TestRestartMidStream(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, route := randomName("restart"), randomName("hr")
	const n, partitions, holdAt = 60, 2, 20
	createTopic(t, broker, topic, partitions)
	ehr := startEHR(t)

	var creates atomic.Int64
	held := make(chan struct{})
	ehr.BeforeRespond = func(r *http.Request, _ string) {
		if creates.Add(1) == holdAt {
			close(held)
			<-r.Context().Done() // never answer: the bridge gives up when its grace ends
		}
	}

	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for i := range n {
		msgs = append(msgs, reading(fmt.Sprintf("hrm-%d", i%6), fmt.Sprintf("p-%d", i%6), at.Add(time.Duration(i)*time.Second), fmt.Sprint(55+i%40)))
	}
	produce(t, broker, topic, msgs...)

	path := writeConfig(t, broker, dsn, route, topic, ehr.URL)
	logs := &syncBuffer{}
	stop := startBridge(t, path, logs)
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatalf("the bridge never reached reading %d\nlogs:\n%s", holdAt, logs)
	}
	if err := stop(); err != nil {
		t.Fatalf("first run returned %v", err)
	}
	group := "fhir-bridge." + route
	if c := committed(t, broker, group, topic, partitions); c >= n {
		t.Fatalf("first run committed %d offsets; the held reading must not be committed", c)
	}
	mid := ehr.Stats().Created
	if mid < holdAt {
		t.Fatalf("EHR created %d before the stop, want at least %d", mid, holdAt)
	}

	stop2 := startBridge(t, path, logs)
	waitFor(t, 60*time.Second, "all offsets committed after restart", func() bool { return committed(t, broker, group, topic, partitions) == n })
	if err := stop2(); err != nil {
		t.Fatalf("second run returned %v", err)
	}

	byIdent := ehr.CreatesByIdentifier()
	if len(byIdent) != n {
		t.Fatalf("EHR holds %d distinct readings, want %d (lost readings)", len(byIdent), n)
	}
	for id, c := range byIdent {
		if c != 1 {
			t.Errorf("identifier %s created %d times", id, c)
		}
	}
	st := ehr.Stats()
	if st.Created != n {
		t.Errorf("EHR created %d Observations, want %d", st.Created, n)
	}
	if st.Matched < 1 {
		t.Errorf("no conditional-create match: the held reading was not redelivered (stats %+v)", st)
	}

	delivered := map[string]int{}
	for _, e := range auditEvents(t, dsn, route) {
		if e.Action == audit.ActionDelivered {
			delivered[e.Resource]++
		}
	}
	if len(delivered) != n {
		t.Errorf("audit has delivered events for %d readings, want %d", len(delivered), n)
	}
}

// TestRunRejectsBadConfig checks that configuration errors name their field
// before anything is started.
func TestRunRejectsBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("kafka:\n  brokers: [\"nohost\"]\nroutes:\n  - name: hr\n    destination:\n      fhir:\n        base_url: http://ehr.example.org/fhir\n"), 0o600)
	var out bytes.Buffer
	err := run(context.Background(), []string{"fhir-bridge", "run", "--config", path}, func(string) string { return "" }, &out, &out)
	if err == nil {
		t.Fatal("run accepted a bad config")
	}
	for _, field := range []string{"kafka.brokers[0]", "audit.dsn", "routes[0].topic", "routes[0].destination.fhir.base_url"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
	if code := exitCode(err, &out); code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, cmd := range []string{"run", "demo", "map", "validate", "replay", "version"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"fhir-bridge", cmd, "--help"}, func(string) string { return "" }, &out, &out)
		if err != nil {
			t.Errorf("%s --help: %v", cmd, err)
		}
		if !strings.Contains(out.String(), "Usage: fhir-bridge "+cmd) {
			t.Errorf("%s --help printed %q", cmd, out.String())
		}
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"fhir-bridge", "frobnicate"}, func(string) string { return "" }, &out, &out)
	if code := exitCode(err, &out); code != 2 {
		t.Errorf("unknown command: exit code %d, want 2", code)
	}
	err = run(context.Background(), []string{"fhir-bridge", "demo", "--rate", "-1"}, func(string) string { return "" }, &out, &out)
	if code := exitCode(err, &out); code != 2 || !strings.Contains(err.Error(), "--rate") {
		t.Errorf("demo --rate -1: exit %d, err %v", code, err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"fhir-bridge", "version"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "fhir-bridge ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("version printed %q", out.String())
	}
}

// TestDemo runs the embedded demo briefly; it needs no external service.
func TestDemo(t *testing.T) {
	var out syncBuffer
	args := []string{"fhir-bridge", "demo", "--duration", "3s", "--kafka-addr", "127.0.0.1:0", "--progress", "1s", "--rate", "40", "--devices", "4"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	var received, delivered, dead int64
	if _, err := fmt.Sscanf(last, "received=%d delivered=%d dead_lettered=%d", &received, &delivered, &dead); err != nil {
		t.Fatalf("last line %q: %v", last, err)
	}
	if delivered == 0 || delivered != received || dead != 0 {
		t.Fatalf("last line %q: want delivered == received > 0 and dead_lettered = 0", last)
	}
	if want := fmt.Sprintf("received=%d delivered=%d dead_lettered=%d", received, delivered, dead); last != want {
		t.Fatalf("last line %q is not exactly %q", last, want)
	}
	var progress int
	for _, l := range lines {
		if strings.HasPrefix(l, "demo: t=") {
			progress++
		}
	}
	if progress == 0 {
		t.Errorf("no progress lines in:\n%s", out.String())
	}
}

// TestDeadLetterAndReplay: a reading the EHR refuses (422) and a malformed one
// land in the route's dead-letter topic with their reasons while the stream
// goes on; after the EHR is fixed, replaying the refused one delivers it once.
func TestDeadLetterAndReplay(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, route := randomName("dlq"), randomName("hr")
	createTopic(t, broker, topic, 2)
	createTopic(t, broker, topic+".dead-letter", 1)
	ehr := startEHR(t)
	var refuse atomic.Bool
	refuse.Store(true)
	ehr.Reject = func(body []byte) (int, string) {
		if refuse.Load() && bytes.Contains(body, []byte("hrm-refused")) {
			return http.StatusUnprocessableEntity, "device not registered"
		}
		return 0, ""
	}
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	produce(t, broker, topic,
		reading("hrm-ok-1", "p-1", at, "70"),
		reading("hrm-refused", "p-2", at, "71"),
		reading("hrm-bad", "p-3", at, "900"),
		reading("hrm-ok-2", "p-4", at, "72"),
	)
	path := writeConfig(t, broker, dsn, route, topic, ehr.URL)
	group := "fhir-bridge." + route
	logs := &syncBuffer{}
	stop := startBridge(t, path, logs)
	waitFor(t, 60*time.Second, "4 offsets committed", func() bool { return committed(t, broker, group, topic, 2) == 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := ehr.Stats(); st.Created != 2 {
		t.Fatalf("EHR created %d, want the 2 good readings (stats %+v)", st.Created, st)
	}

	replay := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"fhir-bridge", "replay", "--config", path, "--route", route}, args...),
			func(k string) string {
				if k == "FHIR_BRIDGE_ACTOR" {
					return "test-operator"
				}
				return ""
			}, &out, &out)
		if err != nil {
			t.Fatalf("replay %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	out := replay("--dry-run")
	if !strings.Contains(out, "scanned=2 matched=2 replayed=0") || !strings.Contains(out, "reason=http-422") || !strings.Contains(out, "reason=invalid-payload") {
		t.Fatalf("dry run:\n%s", out)
	}

	refuse.Store(false) // the EHR registered the device
	out = replay("--reason", "http-422", "--device", "hrm-refused")
	if !strings.Contains(out, "scanned=2 matched=1 replayed=1") {
		t.Fatalf("replay:\n%s", out)
	}
	stop2 := startBridge(t, path, logs)
	waitFor(t, 60*time.Second, "the replayed record committed", func() bool { return committed(t, broker, group, topic, 2) == 5 })
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	byIdent := ehr.CreatesByIdentifier()
	if len(byIdent) != 3 {
		t.Fatalf("EHR holds %d readings, want 3 (2 good + the replayed one)", len(byIdent))
	}
	for id, n := range byIdent {
		if n != 1 {
			t.Errorf("%s created %d times", id, n)
		}
	}
	var replayed, deadLettered int
	for _, e := range auditEvents(t, dsn, route) {
		switch e.Action {
		case audit.ActionReplayed:
			replayed++
			if e.Actor != "cli:test-operator" || e.Device != "Device/hrm-refused" {
				t.Errorf("replayed event %+v", e)
			}
		case audit.ActionDeadLettered:
			deadLettered++
		}
	}
	if replayed != 1 || deadLettered != 2 {
		t.Errorf("audit: %d replayed, %d dead-lettered; want 1 and 2", replayed, deadLettered)
	}
}

// TestTwoRoutesOutageAndRestart runs two routes from one configuration file
// over the same topic: one to a FHIR server, one to an HL7 engine over MLLP.
// Both destinations are down for 30 s (503 from the FHIR server, AR from the
// engine) and the bridge is restarted during the outage; afterwards every
// reading has been accepted exactly once at each destination.
func TestTwoRoutesOutageAndRestart(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic := randomName("two")
	fhirRoute, mllpRoute := randomName("ehr"), randomName("engine")
	const n, partitions = 40, 3
	createTopic(t, broker, topic, partitions)
	ehr := startEHR(t)

	var outage atomic.Bool
	outage.Store(true)
	var fhirRefused, mllpRefused atomic.Int64
	ehr.Reject = func([]byte) (int, string) {
		if outage.Load() {
			fhirRefused.Add(1)
			return http.StatusServiceUnavailable, "maintenance"
		}
		return 0, ""
	}
	var mu sync.Mutex
	accepted := map[string]int{}
	engine, err := mllptest.NewServer(mllptest.Config{Behave: func(_ []byte, id string) mllptest.Action {
		if outage.Load() {
			mllpRefused.Add(1)
			return mllptest.Action{Code: hl7.CodeAR, Text: "engine paused", ErrorCode: "207"}
		}
		mu.Lock()
		accepted[id]++
		mu.Unlock()
		return mllptest.Action{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Close)

	at := time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for i := range n {
		msgs = append(msgs, reading(fmt.Sprintf("hrm-%02d", i), fmt.Sprintf("p-%02d", i%7), at.Add(time.Duration(i)*time.Second), fmt.Sprint(60+i)))
	}
	produce(t, broker, topic, msgs...)

	cfg := fmt.Sprintf(`kafka:
  brokers: [%q]
ops:
  listen: 127.0.0.1:0
audit:
  dsn: %q
shutdown_grace: 500ms
retry: {initial: 10ms, max: 100ms}
routes:
  - name: %s
    topic: %s
    start_position: earliest
    destination:
      fhir: {base_url: %s}
  - name: %s
    topic: %s
    start_position: earliest
    destination:
      mllp: {address: %q, connections: 2, ack_timeout: 2s}
`, broker, dsn, fhirRoute, topic, ehr.URL, mllpRoute, topic, engine.Addr())
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	const outageFor = 30 * time.Second
	outageEnds := time.Now().Add(outageFor)
	logs := &syncBuffer{}
	stop := startBridge(t, path, logs)
	waitFor(t, 60*time.Second, "both destinations refusing", func() bool { return fhirRefused.Load() >= 3 && mllpRefused.Load() >= 3 })
	if err := stop(); err != nil { // a restart in the middle of the outage
		t.Fatal(err)
	}
	stop = startBridge(t, path, logs)
	waitFor(t, 90*time.Second, "retries after the restart, to the end of the outage", func() bool {
		return fhirRefused.Load() >= 6 && mllpRefused.Load() >= 6 && time.Now().After(outageEnds)
	})
	outage.Store(false)
	for _, route := range []string{fhirRoute, mllpRoute} {
		waitFor(t, 60*time.Second, "all offsets of "+route+" committed", func() bool {
			return committed(t, broker, "fhir-bridge."+route, topic, partitions) == n
		})
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	byIdent := ehr.CreatesByIdentifier()
	if len(byIdent) != n {
		t.Errorf("FHIR server holds %d readings, want %d", len(byIdent), n)
	}
	for id, c := range byIdent {
		if c != 1 {
			t.Errorf("FHIR: %s created %d times", id, c)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(accepted) != n {
		t.Errorf("engine accepted %d messages, want %d (one ORU^R01 per reading)", len(accepted), n)
	}
	for id, c := range accepted {
		if c != 1 {
			t.Errorf("MLLP: %s accepted %d times", id, c)
		}
	}
	var deadLettered int
	for _, route := range []string{fhirRoute, mllpRoute} {
		for _, e := range auditEvents(t, dsn, route) {
			if e.Action == audit.ActionDeadLettered || e.Action == audit.ActionRejected {
				deadLettered++
			}
		}
	}
	if deadLettered != 0 {
		t.Errorf("%d readings rejected during a temporary outage; they must wait, not be dead-lettered", deadLettered)
	}
}

// TestSMARTBackendServices delivers through a FHIR server that requires
// SMART Backend Services tokens: the bridge discovers the token endpoint,
// signs a client assertion with its key, and reuses the token.
func TestSMARTBackendServices(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, route := randomName("smart"), randomName("hr")
	createTopic(t, broker, topic, 1)

	signer, keyPEM, err := auth.GenerateKey(auth.ES384)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := auth.JWKS(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := fhir.NewCodec()
	ehr := fhirsandbox.New(codec)
	var as *authtest.Server
	as = authtest.NewServer(authtest.Config{
		Clients: []authtest.Client{{ID: "fhir-bridge-test", JWKS: jwks, Scopes: []string{"system/Observation.c"}}},
		FHIR:    http.StripPrefix("/fhir", lazyHandler(func() http.Handler { return as.RequireToken(ehr, "system/Observation.c") })),
	})
	t.Cleanup(as.Close)
	keyFile := filepath.Join(t.TempDir(), "smart-key.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	produce(t, broker, topic, reading("hrm-1", "p-1", at, "70"), reading("hrm-2", "p-2", at, "71"), reading("hrm-3", "p-3", at, "72"))

	cfg := fmt.Sprintf(`kafka: {brokers: [%q]}
ops: {listen: "127.0.0.1:0"}
audit: {dsn: %q}
retry: {initial: 10ms, max: 100ms}
routes:
  - name: %s
    topic: %s
    start_position: earliest
    destination:
      fhir:
        base_url: %s
        auth:
          smart_backend:
            client_id: fhir-bridge-test
            private_key_file: %s
`, broker, dsn, route, topic, as.FHIRBase(), keyFile)
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	logs := &syncBuffer{}
	stop := startBridge(t, path, logs)
	waitFor(t, 60*time.Second, "3 offsets committed", func() bool { return committed(t, broker, "fhir-bridge."+route, topic, 1) == 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := ehr.Stats(); st.Created != 3 {
		t.Fatalf("EHR created %d, want 3; logs:\n%s", st.Created, logs)
	}
	st := as.Stats()
	// The three readings may travel in one batch Bundle or several requests;
	// either way one token serves them all.
	if st.Issued != 1 || st.Authorized < 1 || st.Unauthorized != 0 {
		t.Errorf("token server stats %+v: want one token reused for every authorized request", st)
	}
	if strings.Contains(logs.String(), "BEGIN") || strings.Contains(logs.String(), "eyJ") {
		t.Error("logs contain key material or a JWT")
	}
}

// lazyHandler defers building a handler until the first request, for
// handlers that need the server they are mounted on.
func lazyHandler(build func() http.Handler) http.Handler {
	var once sync.Once
	var h http.Handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { h = build() })
		h.ServeHTTP(w, r)
	})
}

// TestIngestAPI: an RPM vendor posts readings through the HTTP API with an
// OIDC token; they reach the EHR, and the call and the readings' whole
// history are in the audit trail.
func TestIngestAPI(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, route := randomName("api"), randomName("hr")
	createTopic(t, broker, topic, 2)
	ehr := startEHR(t)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}
	idpSrv := httptest.NewServer(idp)
	t.Cleanup(idpSrv.Close)
	idp.SetIssuer(idpSrv.URL)
	now := time.Now()
	claims := fmt.Sprintf(`{"iss":%q,"aud":"fhir-bridge-api","sub":"vendor-acme","exp":%d,"iat":%d,"scope":"ingest","devices":["hrm-api-1"]}`,
		idpSrv.URL, now.Add(time.Hour).Unix(), now.Unix())
	token := oidctest.SignIDToken(key, "k1", "RS256", claims)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`kafka: {brokers: [%q]}
ops: {listen: "127.0.0.1:0"}
audit: {dsn: %q}
api:
  listen: %q
  oidc: {issuer: %q, audience: fhir-bridge-api}
routes:
  - name: %s
    topic: %s
    start_position: earliest
    destination:
      fhir: {base_url: %s}
`, broker, dsn, apiAddr, idpSrv.URL, route, topic, ehr.URL)
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	logs := &syncBuffer{}
	stop := startBridge(t, path, logs)

	post := func(tok, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+apiAddr+"/v1/ingest/"+route, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		var resp *http.Response
		waitFor(t, 30*time.Second, "the API to answer", func() bool {
			var err error
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				req.Body = io.NopCloser(strings.NewReader(body))
			}
			return err == nil
		})
		return resp
	}
	reading := fmt.Sprintf(`{"kind":"heart-rate","device":"hrm-api-1","patient":"secret-api-patient","time":%q,"value":74}`,
		now.Add(-time.Hour).UTC().Format(time.RFC3339))
	if resp := post("", reading); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	if resp := post(token, strings.Replace(reading, "hrm-api-1", "hrm-other", 1)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another vendor's device: %d", resp.StatusCode)
	}
	resp := post(token, reading)
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("ingest: %d %s", resp.StatusCode, b)
	}
	waitFor(t, 60*time.Second, "the reading at the EHR", func() bool { return ehr.Stats().Created == 1 })

	// The reading's whole history, as JSON and as FHIR AuditEvents.
	auditor := oidctest.SignIDToken(key, "k1", "RS256", fmt.Sprintf(`{"iss":%q,"aud":"fhir-bridge-api","sub":"auditor","exp":%d,"iat":%d,"scope":"audit.read"}`,
		idpSrv.URL, now.Add(time.Hour).Unix(), now.Unix()))
	get := func(path string) (int, []byte) {
		req, _ := http.NewRequest("GET", "http://"+apiAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+auditor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	waitFor(t, 30*time.Second, "the delivered event in the audit trail", func() bool {
		code, b := get("/v1/audit?patient=Patient/secret-api-patient&action=delivered")
		return code == 200 && strings.Contains(string(b), `"Action":"delivered"`)
	})
	// Metrics and readiness are on the operations listener, without a token.
	ops := opsAddr(t, logs)
	opsGet := func(path string) (int, string) {
		resp, err := http.Get("http://" + ops + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, 10*time.Second, "the committed lag in the metrics", func() bool {
		_, m := opsGet("/metrics")
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, "fhir_bridge_committed_lag_readings{") && strings.Contains(line, `route="`+route+`"`) {
				return true
			}
		}
		return false
	})
	if code, m := opsGet("/metrics"); code != 200 ||
		!strings.Contains(m, `fhir_bridge_unit_outcomes_total{dest="fhir",outcome="delivered",reason="none",route="`+route+`",status="201"} 1`) ||
		!strings.Contains(m, `fhir_bridge_end_to_end_latency_seconds_count{dest="fhir",route="`+route+`"} 1`) ||
		!strings.Contains(m, "fhir_bridge_build_info") {
		t.Errorf("metrics %d:\n%s", code, m)
	}
	if code, r := opsGet("/readyz"); code != 200 || !strings.Contains(r, `"postgres":"ok"`) || !strings.Contains(r, `"destination:`+route+`":"ok"`) {
		t.Errorf("readyz %d %s", code, r)
	}
	if code, _ := get("/metrics"); code != 404 {
		t.Errorf("API /metrics %d, want 404: metrics are on the ops listener", code)
	}
	code, body := get("/v1/audit/AuditEvent?patient=Patient/secret-api-patient")
	if code != 200 {
		t.Fatalf("AuditEvent export: %d %s", code, body)
	}
	codec, _ := fhir.NewCodec()
	msg, err := codec.Decode(body)
	if err != nil {
		t.Fatalf("AuditEvent Bundle fails the validating unmarshaller: %v", err)
	}
	entries := msg.(*crpb.ContainedResource).GetBundle().GetEntry()
	if len(entries) != 1 {
		t.Fatalf("AuditEvent Bundle has %d entries, want the reading's one outcome row", len(entries))
	}
	if ae := entries[0].GetResource().GetAuditEvent(); ae.GetType().GetCode().GetValue() != "rest" || ae.GetPeriod().GetStart() == nil {
		t.Errorf("AuditEvent of the delivery: type %s, period %v; want a REST create with the receive time as period.start",
			ae.GetType().GetCode().GetValue(), ae.GetPeriod())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The trail verifies; an edited row is caught.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"fhir-bridge", "audit", "verify", "--config", path}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("audit verify on an untouched trail: %v\n%s", err, out.String())
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_event SET detail = 'edited by hand' WHERE action = 'delivered'`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(context.Background(), []string{"fhir-bridge", "audit", "verify", "--config", path}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(out.String(), "hash mismatch") {
		t.Errorf("audit verify after tampering: err %v, output:\n%s", err, out.String())
	}
	var api, delivered int
	for _, e := range auditEvents(t, dsn, "api") {
		if e.Action == "api-access" && e.Actor == "oidc:vendor-acme" {
			api++
		}
	}
	for _, e := range auditEvents(t, dsn, route) {
		if e.Action == audit.ActionDelivered && e.Patient == "Patient/secret-api-patient" {
			delivered++
		}
	}
	if api != 2 || delivered != 1 {
		t.Errorf("audit: %d API calls by the vendor (want 2: refused and accepted), %d deliveries (want 1)", api, delivered)
	}
	if strings.Contains(logs.String(), "secret-api-patient") || strings.Contains(logs.String(), token) {
		t.Error("logs contain a patient id or the token")
	}
}

// TestAPIFailureStopsTheBridge: the pipeline, the ops listener and the API
// run as one group. When the API fails after start (here: its TLS
// certificate file is not a certificate, which ServeTLS finds only when it
// starts serving), the whole process stops with that error: the pipeline
// drains and leaves its consumer group rather than running on without the
// API.
func TestAPIFailureStopsTheBridge(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, route := randomName("apifail"), randomName("hr")
	createTopic(t, broker, topic, 1)
	ehr := startEHR(t)
	idp := &oidctest.Server{}
	idpSrv := httptest.NewServer(idp)
	t.Cleanup(idpSrv.Close)
	idp.SetIssuer(idpSrv.URL)
	dir := t.TempDir()
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, []byte("not a certificate"), 0o600)
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	cfg := fmt.Sprintf(`kafka: {brokers: [%q]}
ops: {listen: "127.0.0.1:0"}
audit: {dsn: %q}
api:
  listen: 127.0.0.1:0
  tls_cert_file: %q
  tls_key_file: %q
  oidc: {issuer: %q, audience: fhir-bridge-api}
routes:
  - name: %s
    topic: %s
    start_position: earliest
    destination:
      fhir: {base_url: %s}
`, broker, dsn, cert, keyFile, idpSrv.URL, route, topic, ehr.URL)
	path := filepath.Join(dir, "bridge.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"fhir-bridge", "run", "--config", path}, func(string) string { return "" }, logs, logs)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "api") {
			t.Fatalf("run = %v, want the API's error", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the bridge ran on without its API")
	}
	if !strings.Contains(logs.String(), "bridge stopped") {
		t.Errorf("no orderly stop in the logs:\n%s", logs.String())
	}
}

// TestSIGHUPReloads runs the built binary: SIGHUP drains the bridge and
// starts it again in the same process (same PID), which reads the
// configuration anew; readings go on being delivered; SIGTERM then stops it
// with status 0.
func TestSIGHUPReloads(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, route := randomName("hup"), randomName("hr")
	createTopic(t, broker, topic, 1)
	ehr := startEHR(t)
	bin := filepath.Join(t.TempDir(), "fhir-bridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := writeConfig(t, broker, dsn, route, topic, ehr.URL)
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	produce(t, broker, topic, reading("hrm-hup", "p-hup", at, "61"))
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, 60*time.Second, "the first reading", func() bool { return ehr.Stats().Created == 1 })

	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 60*time.Second, "the restart", func() bool {
		return strings.Contains(logs.String(), "reloading") && strings.Count(logs.String(), "bridge started") == 2
	})
	produce(t, broker, topic, reading("hrm-hup", "p-hup", at.Add(time.Minute), "62"))
	waitFor(t, 60*time.Second, "the reading after the reload", func() bool { return ehr.Stats().Created == 2 })
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if n := strings.Count(logs.String(), "bridge stopped"); n != 2 {
		t.Errorf("%d orderly stops, want 2 (the reload's drain and the final stop):\n%s", n, logs.String())
	}
}

// TestPartialPayload: an RPM hub uploads 50 pulse readings in one document,
// one of them implausible. Through real Kafka and PostgreSQL, the 49 reach
// the EHR; the bad one is refused alone, with its index, and the upload is
// dead-lettered once naming it.
func TestPartialPayload(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, route := randomName("upload"), randomName("acme")
	createTopic(t, broker, topic, 1)
	createTopic(t, broker, topic+".dead-letter", 1)
	ehr := startEHR(t)
	var readings []string
	at := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	for i := range 50 {
		value := 60 + i%30
		if i == 23 {
			value = 450 // no heart beats this fast
		}
		readings = append(readings, fmt.Sprintf(`{"type":"pulse","deviceId":"acme-bp-0001","ts":%q,"value":%d}`,
			at.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), value))
	}
	payload := `{"hub":{"serial":"HUB-1","cuffModel":"Acme BP-200"},"patient":{"id":"synthetic-upload-patient"},"readings":[` +
		strings.Join(readings, ",") + `]}`
	produce(t, broker, topic, kafka.Message{Key: []byte("HUB-1"), Value: []byte(payload)})
	tpl, err := filepath.Abs("../../testdata/templates/acme-rpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`kafka: {brokers: [%q]}
ops: {listen: "127.0.0.1:0"}
audit: {dsn: %q}
routes:
  - name: %s
    topic: %s
    start_position: earliest
    templates: [%q]
    destination:
      fhir: {base_url: %s}
`, broker, dsn, route, topic, tpl, ehr.URL)
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	stop := startBridge(t, path, &syncBuffer{})
	waitFor(t, 60*time.Second, "the upload committed", func() bool { return committed(t, broker, "fhir-bridge."+route, topic, 1) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := ehr.Stats().Created; got != 49 {
		t.Errorf("EHR created %d Observations, want 49", got)
	}
	var delivered int
	var refused []audit.Event
	for _, e := range auditEvents(t, dsn, route) {
		switch e.Action {
		case audit.ActionDelivered:
			delivered++
		case audit.ActionDeadLettered:
			refused = append(refused, e)
		}
	}
	if delivered != 49 || len(refused) != 1 || !strings.Contains(refused[0].Detail, "reading 23") ||
		!strings.Contains(refused[0].Detail, `"value"`) || refused[0].Location != topic+".dead-letter" {
		t.Errorf("audit: %d delivered, refused %+v; want 49 and one naming reading 23 and its value", delivered, refused)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic + ".dead-letter", Partition: 0, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dl, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("reading the dead letter: %v", err)
	}
	var names string
	for _, h := range dl.Headers {
		if h.Key == "fhir-bridge-readings" {
			names = string(h.Value)
		}
	}
	if names != "23" || string(dl.Value) != payload {
		t.Errorf("dead letter names readings %q, want 23, and must carry the upload as it came", names)
	}
}

// TestCorrectionsEndToEnd: a reading, its correction and its retraction,
// each sent twice, through real Kafka and PostgreSQL to a FHIR route and an
// MLLP route over the same topic. The EHR holds one Observation at version
// 3 (created, corrected, retracted); the engine receives three ORU^R01, with
// OBX-11 F, C and W; the repeats change nothing.
func TestCorrectionsEndToEnd(t *testing.T) {
	broker := kafkaAddr(t)
	dsn := audittest.DSN(t)
	topic, fhirRoute, mllpRoute := randomName("fix"), randomName("ehr"), randomName("engine")
	createTopic(t, broker, topic, 1)
	ehr := startEHR(t)
	engine, err := mllptest.NewServer(mllptest.Config{KeepBodies: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Close)
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC).Format(time.RFC3339)
	rd := func(status string, value int) kafka.Message {
		st := ""
		if status != "" {
			st = fmt.Sprintf(`"status":%q,`, status)
		}
		return kafka.Message{Key: []byte("hrm-fix"), Value: []byte(fmt.Sprintf(
			`{%s"kind":"heart-rate","device":"hrm-fix","patient":"p-fix","time":%q,"value":%d,"unit":"/min"}`, st, at, value))}
	}
	produce(t, broker, topic, rd("", 72), rd("", 72), rd("corrected", 74), rd("corrected", 74),
		rd("entered-in-error", 74), rd("entered-in-error", 74))
	cfg := fmt.Sprintf(`kafka: {brokers: [%q]}
ops: {listen: "127.0.0.1:0"}
audit: {dsn: %q}
routes:
  - name: %s
    topic: %s
    start_position: earliest
    destination:
      fhir: {base_url: %s}
  - name: %s
    topic: %s
    start_position: earliest
    destination:
      mllp: {address: %q, connections: 1}
`, broker, dsn, fhirRoute, topic, ehr.URL, mllpRoute, topic, engine.Addr())
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	stop := startBridge(t, path, &syncBuffer{})
	waitFor(t, 60*time.Second, "both routes committed", func() bool {
		return committed(t, broker, "fhir-bridge."+fhirRoute, topic, 1) == 6 && committed(t, broker, "fhir-bridge."+mllpRoute, topic, 1) == 6
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(ehr.Resources("Observation")); n != 1 || ehr.Version("Observation/1") != 3 {
		t.Errorf("EHR: %d Observations, Observation/1 at version %d; want 1 at version 3", n, ehr.Version("Observation/1"))
	}
	var statuses []string
	for _, m := range engine.Messages() {
		for _, seg := range strings.Split(string(m.Body), "\r") {
			if f := strings.Split(seg, "|"); f[0] == "OBX" && len(f) > 11 && strings.Contains(f[3], "8867-4") {
				statuses = append(statuses, f[11])
			}
		}
	}
	if got := strings.Join(statuses, ","); got != "F,C,W" {
		t.Errorf("engine got heart-rate OBX-11 %s, want F,C,W (once each)", got)
	}
	for route, want := range map[string]string{
		fhirRoute: "delivered,delivered,corrected,delivered,retracted,delivered",
		mllpRoute: "delivered,delivered,corrected,delivered,retracted,delivered",
	} {
		var got []string
		for _, e := range auditEvents(t, dsn, route) {
			got = append(got, e.Action)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("route %s audit %s, want %s", route, strings.Join(got, ","), want)
		}
	}
}
