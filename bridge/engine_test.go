package bridge

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
	"github.com/fhir-bridge/fhir-bridge/fhir"
)

// TestTrackerCommitsInOrder: acknowledgements arrive in any order; the
// commit position only moves past offsets whose every predecessor is done.
func TestTrackerCommitsInOrder(t *testing.T) {
	tr := newTracker()
	for _, o := range []int64{10, 11, 12, 14, 15} { // 13 was compacted away
		tr.track(o)
	}
	steps := []struct {
		ack      int64
		next     int64
		advanced bool
	}{
		{12, 10, false}, // 10 and 11 still in flight
		{15, 10, false},
		{10, 11, true},
		{11, 13, true}, // 10..12 done: commit up to 13
		{14, 16, true}, // the gap 13 is skipped; 15 was done already
	}
	for _, s := range steps {
		next, adv := tr.ack(s.ack)
		if adv != s.advanced || (adv && next != s.next) {
			t.Errorf("ack(%d) = %d, %v; want %d, %v", s.ack, next, adv, s.next, s.advanced)
		}
	}
}

// recordingObserver keeps what the tests look at.
type recordingObserver struct {
	NopObserver
	mu          sync.Mutex
	maxInFlight int
	states      []string
}

func (o *recordingObserver) InFlight(_ string, _ int, readings, _ int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.maxInFlight = max(o.maxInFlight, readings)
}

func (o *recordingObserver) RouteState(_, state, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.states = append(o.states, state+":"+reason)
}

// TestRouteBackPressure: while the destination is slow, a partition reads
// no further than its in-flight budget; once it answers, everything flows.
func TestRouteBackPressure(t *testing.T) {
	const limit, n = 4, 40
	var msgs []Reading
	for i := range n {
		msgs = append(msgs, msg(int64(i), reading("hrm-1", "p-1", i, 60+i%50)))
	}
	src := newFakeSource(msgs...)
	release := make(chan struct{})
	sink := bridgetest.NewSink(bridgetest.Step{Block: release})
	blocked, entered := signal()
	sink.OnCall = func(int, bridgetest.Call) { entered() }
	obs := &recordingObserver{}
	r := newRoute(t, src, sink, &bridgetest.AuditLog{})
	r.limits = InFlightConfig{MaxReadings: limit, MaxBytes: 1 << 20}
	r.obs = obs

	h := start(t, r)
	await(t, blocked, "the first delivery")
	waitUntil(t, "the reader to fill the budget", func() bool { return src.Fetched() >= limit })
	if got := src.Fetched(); got > limit {
		t.Errorf("read %d readings while the destination was stuck, want at most %d", got, limit)
	}
	close(release)
	awaitCommit(t, src, msgs[n-1])
	h.stop(t)
	if obs.maxInFlight > limit {
		t.Errorf("in flight reached %d, want at most %d", obs.maxInFlight, limit)
	}
	if c := len(sink.Calls()); c != n {
		t.Errorf("%d deliveries, want %d", c, n)
	}
}

// failingSink answers 503 for Observations of one device until released,
// and 201 for everything else.
type failingSink struct {
	mu       sync.Mutex
	device   []byte
	released bool
	failures int
}

func (s *failingSink) Create(_ context.Context, resourceType string, body []byte, _ string) (fhir.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.released && bytes.Contains(body, s.device) {
		s.failures++
		return fhir.Result{}, &fhir.StatusError{Op: "POST " + resourceType, Status: http.StatusServiceUnavailable}
	}
	return fhir.Result{Status: http.StatusCreated, Location: resourceType + "/1/_history/1"}, nil
}

func (s *failingSink) failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures
}

func (s *failingSink) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = true
}

// TestRetryingPartitionHoldsOnlyItself: a reading the destination keeps
// refusing for now holds its own partition; the other partitions of the
// route go on and are committed meanwhile.
func TestRetryingPartitionHoldsOnlyItself(t *testing.T) {
	var stuck, flowing []Reading
	for i := range 5 {
		stuck = append(stuck, testReading(testTopic, 0, int64(i), reading("hrm-stuck", "p-1", i, 70)))
		flowing = append(flowing, testReading(testTopic, 1, int64(i), reading("hrm-ok", "p-2", i, 71)))
	}
	src := newFakeSource(append(stuck, flowing...)...)
	sink := &failingSink{device: []byte("hrm-stuck")}
	obs := &recordingObserver{}
	r := newRoute(t, src, sink, &bridgetest.AuditLog{})
	r.obs = obs

	h := start(t, r)
	awaitCommit(t, src, flowing[4])
	for _, c := range src.CommittedPositions() {
		if strings.HasPrefix(c, testTopic+"/0/") {
			t.Errorf("committed %s while its first reading was still being retried", c)
		}
	}
	waitUntil(t, "a few retries", func() bool { return sink.failed() >= 3 })
	sink.release()
	awaitCommit(t, src, stuck[4])
	h.stop(t)
	obs.mu.Lock()
	states := fmt.Sprint(obs.states)
	obs.mu.Unlock()
	if !strings.Contains(states, "retrying:http-503") || !strings.Contains(states, "flowing:") {
		t.Errorf("route states %s, want retrying with its reason, then flowing", states)
	}
}
