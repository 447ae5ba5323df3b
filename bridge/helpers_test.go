package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	"go.opentelemetry.io/otel/trace/noop"
)

// The fakes satisfy the pipeline's interfaces.
var (
	_ Source      = (*fakeSource)(nil)
	_ Claim       = (*fakeClaim)(nil)
	_ FHIRCreator = (*bridgetest.Sink)(nil)
	_ AuditLog    = (*bridgetest.AuditLog)(nil)
	_ AuditLog    = (*audit.Memory)(nil)
	_ Ledger      = (*audit.Memory)(nil)
	_ DeadLetters = (*fakeDLQ)(nil)
)

const (
	testRoute = "ward-7"
	testTopic = "vitals.ward-7"
	// waitLimit bounds every wait for something the pipeline should do
	// promptly; reaching it means the test failed, not that it was slow.
	waitLimit = 10 * time.Second
)

var (
	// readingTime is when the test readings were taken.
	readingTime = time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	// clockTime is the route's fixed clock: every audit event carries it.
	clockTime = time.Date(2026, 11, 25, 10, 16, 30, 0, time.UTC)

	testCodec = sync.OnceValues(fhir.NewCodec)
)

func codec(t *testing.T) *fhir.Codec {
	t.Helper()
	c, err := testCodec()
	if err != nil {
		t.Fatalf("fhir.NewCodec: %v", err)
	}
	return c
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newRoute returns a route wired to the given fakes with a fixed clock, a
// millisecond backoff and a grace long enough never to expire in a test that
// does not mean it to.
func newRoute(t *testing.T, src Source, sink FHIRCreator, al AuditLog) *route {
	t.Helper()
	r := &route{
		name:   testRoute,
		src:    src,
		audit:  al,
		mapper: mappers.Native{},
		enc:    NewFHIREncoder(codec(t), DefaultIdentifierSystem, false),
		batch:  Batching{MaxReadings: 1, MaxBytes: 4 << 20},
		limits: InFlightConfig{MaxReadings: 100, MaxBytes: 1 << 20},
		retry:  Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		grace:  waitLimit,
		obs:    NopObserver{},
		tracer: noop.NewTracerProvider().Tracer(""),
		log:    discardLog(),
		stats:  &counters{},
		now:    func() time.Time { return clockTime },
	}
	if sink != nil {
		r.sink = NewFHIRSingleSink(sink, nil, nil, discardLog())
	}
	return r
}

// running is a route.run in its own goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// start runs r until the returned handle's cancel is called. The test's
// cleanup cancels and waits, so no route outlives its test.
func start(t *testing.T, r *route) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.err = r.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(waitLimit):
			t.Errorf("route still running %s after the test ended", waitLimit)
		}
	})
	return h
}

// wait waits for run to return and returns its error.
func (h *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-h.done:
		return h.err
	case <-time.After(waitLimit):
		t.Fatalf("route.run did not return within %s", waitLimit)
		return nil
	}
}

// stop cancels the run and requires it to return nil.
func (h *running) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := h.wait(t); err != nil {
		t.Fatalf("route.run after cancel = %v, want nil", err)
	}
}

// await waits for ch to be closed (or to deliver).
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
	}
}

// signal returns a channel and a function that closes it; the function may
// be called any number of times.
func signal() (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}

// reading returns a valid heart-rate reading of device for patient, taken
// minutes after readingTime.
func reading(device, patient string, minutes, bpm int) []byte {
	return bridgetest.HeartRate(device, patient, readingTime.Add(time.Duration(minutes)*time.Minute), bpm).JSON()
}

// msg returns a message on testTopic, partition 2.
func msg(offset int64, value []byte, headers ...Header) Reading {
	return testReading(testTopic, 2, offset, value, headers...)
}

// testReading returns a reading at topic/partition/offset carrying value.
func testReading(topic string, partition int, offset int64, value []byte, headers ...Header) Reading {
	return Reading{Pos: Position{Topic: topic, Partition: partition, Offset: offset}, Value: value, Headers: headers}
}

// key returns the reading's deterministic key, as the mappers compute it.
func key(t *testing.T, value []byte) string {
	t.Helper()
	m, err := mappers.ParseNative(value)
	if err != nil {
		t.Fatalf("test reading does not parse: %v", err)
	}
	return m.Key()
}

// baseEvent is the part of every audit event of m that is known on receipt.
func baseEvent(m Reading) audit.Event {
	return audit.Event{
		Time:          clockTime,
		Actor:         audit.ActorSystem,
		Route:         testRoute,
		Topic:         m.Pos.Topic,
		Partition:     m.Pos.Partition,
		Offset:        m.Pos.Offset,
		CorrelationID: readingPos(m),
		ReceivedAt:    clockTime, // the fake source leaves Received zero: the route's clock
	}
}

// withRefs adds the device, patient and resource references of a mapped reading.
func withRefs(e audit.Event, device, patient, k string) audit.Event {
	e.Device, e.Patient, e.Resource = "Device/"+device, "Patient/"+patient, DefaultIdentifierSystem+"|"+k
	return e
}

func ev(e audit.Event, action, outcome string) audit.Event {
	e.Action, e.Outcome = action, outcome
	return e
}

// checkCommits requires that src's commits (attempted and successful)
// cover exactly the positions want: in increasing order, only positions of
// want, and ending with its last. Commits are coalesced (one commit covers
// every earlier offset), so a position may have no commit of its own.
func checkCommits(t *testing.T, src *fakeSource, want ...string) {
	t.Helper()
	checkCovered(t, "commit attempts", src.AttemptedPositions(), want)
	checkCovered(t, "successful commits", src.CommittedPositions(), want)
}

// checkCovered checks that got is a subsequence of want that ends with
// want's last element (both empty is fine).
func checkCovered(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(want) == 0 || len(got) == 0 {
		if len(want) != len(got) {
			t.Errorf("%s:\n got: %s\nwant: %s", what, show(got), show(want))
		}
		return
	}
	i := 0
	for _, g := range got {
		for i < len(want) && want[i] != g {
			i++
		}
		if i == len(want) {
			t.Errorf("%s out of order or unexpected:\n got: %s\nwant (a subsequence ending with the last of): %s", what, show(got), show(want))
			return
		}
	}
	if got[len(got)-1] != want[len(want)-1] {
		t.Errorf("%s end at %s, want %s", what, got[len(got)-1], want[len(want)-1])
	}
}

// diff reports got != want with both values in full.
func diff[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got: %s\nwant: %s", what, show(got), show(want))
	}
}

func show(v any) string {
	switch v := v.(type) {
	case []audit.Event:
		var b strings.Builder
		for _, e := range v {
			fmt.Fprintf(&b, "\n  %+v", e)
		}
		return b.String()
	case []string:
		return "\n  " + strings.Join(v, "\n  ")
	}
	return fmt.Sprintf("%+v", v)
}

// awaitCommit waits until last is the newest committed message of src.
// With batching the source drains before its last batch is handled, so
// Drained is too early a signal.
func awaitCommit(t *testing.T, src *fakeSource, last Reading) {
	t.Helper()
	want := readingPos(last)
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for pos := src.CommittedPositions(); len(pos) == 0 || pos[len(pos)-1] != want; pos = src.CommittedPositions() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not committed; commits %v", want, pos)
		}
		<-tick.C
	}
}

// checkOrder checks the ordering log of a pipelined route against want,
// which lists each reading's entries as a group starting with its "fetch".
// Readings overlap in a pipeline and commits are coalesced, so the check
// is: the same entries, except that commits may cover several readings at
// once; each reading's group in order (fetch, then delivery, audit,
// commit); and the entries of one kind (every "sink", every "audit", every
// "commit") in the order of want.
func checkOrder(t *testing.T, got, want []string) {
	t.Helper()
	kind := func(e string) string { return strings.SplitN(e, " ", 2)[0] }
	of := func(es []string, k string, keep bool) []string {
		var out []string
		for _, e := range es {
			if (kind(e) == k) == keep {
				out = append(out, e)
			}
		}
		return out
	}
	rest, wantRest := of(got, "commit", false), of(want, "commit", false)
	sortedGot, sortedWant := slices.Clone(rest), slices.Clone(wantRest)
	slices.Sort(sortedGot)
	slices.Sort(sortedWant)
	if !slices.Equal(sortedGot, sortedWant) {
		t.Errorf("order log entries:\n got: %s\nwant: %s", show(got), show(want))
		return
	}
	checkCovered(t, "commit entries", of(got, "commit", true), of(want, "commit", true))
	index := map[string]int{}
	for i, e := range got {
		index[e] = i
	}
	var group []string
	checkGroup := func() {
		prev := ""
		for _, e := range group {
			if _, ok := index[e]; !ok {
				continue // a commit covered by a later one
			}
			if prev != "" && index[prev] > index[e] {
				t.Errorf("%q came before %q:%s", e, prev, show(got))
			}
			prev = e
		}
	}
	for _, e := range want {
		if strings.HasPrefix(e, "fetch ") {
			checkGroup()
			group = nil
		}
		group = append(group, e)
	}
	checkGroup()
	for _, k := range []string{"sink", "audit"} {
		diff(t, "order of "+k+" entries", of(got, k, true), of(want, k, true))
	}
}

// waitUntil polls cond until it holds, failing the test after waitLimit.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		}
		<-tick.C
	}
}
