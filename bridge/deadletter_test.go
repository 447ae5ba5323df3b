package bridge

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/segmentio/kafka-go"
)

// fakeDLQ records dead letters; it fails the first failures writes.
type fakeDLQ struct {
	mu       sync.Mutex
	failures int
	attempts int
	written  []kafka.Message
	tried    chan struct{} // optional; gets a value per attempt
}

func (d *fakeDLQ) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts++
	if d.tried != nil {
		select {
		case d.tried <- struct{}{}:
		default:
		}
	}
	if d.attempts <= d.failures {
		return errors.New("broker unavailable")
	}
	d.written = append(d.written, msgs...)
	return nil
}

func (d *fakeDLQ) Close() error { return nil }

func (d *fakeDLQ) records() []kafka.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]kafka.Message(nil), d.written...)
}

func headers(m kafka.Message) map[string]string {
	out := map[string]string{}
	for _, h := range m.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

func TestDeadLetters(t *testing.T) {
	bad := []byte(`{"kind":"heart-rate","device":"hrm-1","patient":"p-1","time":"2026-11-25T10:00:00Z","value":900}`)
	refused := reading("hrm-2", "p-2", 1, 70)
	good := reading("hrm-3", "p-3", 2, 71)
	src := bridgetest.NewSource(
		msg(0, bad, kafka.Header{Key: "correlation-id", Value: []byte("c-1")}, kafka.Header{Key: HeaderReason, Value: []byte("spoofed")}),
		msg(1, refused),
		msg(2, good),
	)
	sink := bridgetest.NewSink(bridgetest.Step{Err: &fhir.StatusError{Op: "POST", Status: 422, Outcome: "error invariant: rule broken"}})
	al := &bridgetest.AuditLog{}
	dlq := &fakeDLQ{failures: 2} // the first two writes fail: the partition waits, nothing is skipped
	r := newRoute(t, src, sink, al)
	r.dlq, r.dlqTopic = dlq, "vitals.dead-letter"
	h := start(t, r)
	await(t, src.Drained(), "all messages handled")
	h.stop(t)

	recs := dlq.records()
	if len(recs) != 2 {
		t.Fatalf("%d dead letters, want 2 (bad payload, refused reading)", len(recs))
	}
	h0, h1 := headers(recs[0]), headers(recs[1])
	if string(recs[0].Value) != string(bad) || h0[HeaderStage] != "map" || h0[HeaderReason] != "invalid-payload" ||
		!strings.Contains(h0[HeaderError], `field "value"`) || h0["correlation-id"] != "c-1" ||
		h0[HeaderSourceOffset] != "0" || h0[HeaderRoute] != testRoute || h0[HeaderAttempts] != "1" {
		t.Errorf("bad payload dead letter: value %q headers %v", recs[0].Value, h0)
	}
	if strings.Count(strings.Join(keys(recs[0]), ","), HeaderReason) != 1 {
		t.Errorf("a producer's own %s header must not survive next to the bridge's", HeaderReason)
	}
	if h1[HeaderStage] != "deliver" || h1[HeaderReason] != "http-422" || !strings.Contains(h1[HeaderError], "rule broken") || h1[HeaderDevice] != "Device/hrm-2" {
		t.Errorf("refused reading dead letter headers %v", h1)
	}
	if dlq.attempts != 4 {
		t.Errorf("%d dead-letter write attempts, want 2 failures then 2 writes", dlq.attempts)
	}
	checkCommits(t, src, bridgetest.MsgPos(msg(0, nil)), bridgetest.MsgPos(msg(1, nil)), bridgetest.MsgPos(msg(2, nil)))
	for off, want := range map[int64]string{0: "received,rejected,dead-lettered", 1: "received,mapped,rejected,dead-lettered", 2: "received,mapped,delivered"} {
		if got := strings.Join(bridgetest.Actions(al.EventsAt(testTopic, 2, off)), ","); got != want {
			t.Errorf("offset %d audit %s, want %s", off, got, want)
		}
	}
	for _, e := range al.Events() {
		if e.Action == audit.ActionDeadLettered && e.Location != "vitals.dead-letter" {
			t.Errorf("dead-lettered event location %q", e.Location)
		}
	}
}

func keys(m kafka.Message) []string {
	var out []string
	for _, h := range m.Headers {
		out = append(out, h.Key)
	}
	return out
}

func TestDeadLetterWriteNeverSucceedsBlocksCommit(t *testing.T) {
	src := bridgetest.NewSource(msg(0, []byte("not json")))
	dlq := &fakeDLQ{failures: 1 << 30, tried: make(chan struct{}, 8)}
	r := newRoute(t, src, bridgetest.NewSink(), &bridgetest.AuditLog{})
	r.dlq = dlq
	h := start(t, r)
	// Let the route retry a few times, then stop it.
	for range 3 {
		select {
		case <-dlq.tried:
		case <-time.After(waitLimit):
			t.Fatal("the route stopped retrying the dead-letter write")
		}
	}
	h.stop(t)
	if c := src.Commits(); len(c) != 0 {
		t.Fatalf("committed %v although the dead letter was never written", bridgetest.MsgPos(c[0]))
	}
}
