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
)

// fakeDLQ records dead letters; it fails the first failures writes.
type fakeDLQ struct {
	mu       sync.Mutex
	failures int
	attempts int
	written  []deadLettered
	tried    chan struct{} // optional; gets a value per attempt
}

type deadLettered struct {
	r  Reading
	dl DeadLetter
}

func (d *fakeDLQ) Write(ctx context.Context, r Reading, dl DeadLetter) (string, error) {
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
		return "", errors.New("broker unavailable")
	}
	d.written = append(d.written, deadLettered{r, dl})
	return "vitals.dead-letter", nil
}

func (d *fakeDLQ) Close() error { return nil }

func (d *fakeDLQ) records() []deadLettered {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deadLettered(nil), d.written...)
}

func TestDeadLetters(t *testing.T) {
	bad := []byte(`{"kind":"heart-rate","device":"hrm-1","patient":"p-1","time":"2026-11-25T10:00:00Z","value":900}`)
	refused := reading("hrm-2", "p-2", 1, 70)
	good := reading("hrm-3", "p-3", 2, 71)
	src := newFakeSource(
		msg(0, bad, Header{Key: "correlation-id", Value: []byte("c-1")}),
		msg(1, refused),
		msg(2, good),
	)
	sink := bridgetest.NewSink(bridgetest.Step{Err: &fhir.StatusError{Op: "POST", Status: 422, Outcome: "error invariant: rule broken"}})
	al := &bridgetest.AuditLog{}
	dlq := &fakeDLQ{failures: 2} // the first two writes fail: the partition waits, nothing is skipped
	r := newRoute(t, src, sink, al)
	r.dlq = dlq
	h := start(t, r)
	await(t, src.Drained(), "all messages handled")
	h.stop(t)

	recs := dlq.records()
	if len(recs) != 2 {
		t.Fatalf("%d dead letters, want 2 (bad payload, refused reading)", len(recs))
	}
	d0, d1 := recs[0].dl, recs[1].dl
	if string(recs[0].r.Value) != string(bad) || d0.Stage != "map" || d0.Reason != "invalid-payload" ||
		!strings.Contains(d0.Err, `field "value"`) || recs[0].r.Pos.Offset != 0 || d0.Route != testRoute || d0.Attempts != 1 {
		t.Errorf("bad payload dead letter: value %q %+v", recs[0].r.Value, d0)
	}
	if d1.Stage != "deliver" || d1.Reason != "http-422" || !strings.Contains(d1.Err, "rule broken") || d1.Device != "Device/hrm-2" {
		t.Errorf("refused reading dead letter %+v", d1)
	}
	if dlq.attempts != 4 {
		t.Errorf("%d dead-letter write attempts, want 2 failures then 2 writes", dlq.attempts)
	}
	checkCommits(t, src, readingPos(msg(0, nil)), readingPos(msg(1, nil)), readingPos(msg(2, nil)))
	for off, want := range map[int64]string{0: "dead-lettered", 1: "dead-lettered", 2: "delivered"} {
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

func TestDeadLetterWriteNeverSucceedsBlocksCommit(t *testing.T) {
	src := newFakeSource(msg(0, []byte("not json")))
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
		t.Fatalf("committed %v although the dead letter was never written", readingPos(c[0]))
	}
}
