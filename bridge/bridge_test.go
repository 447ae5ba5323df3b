package bridge

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirsandbox"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// bridgeFixture is a Bridge with two routes reading fake sources and
// delivering over HTTP to a sandbox EHR, which validates every Observation.
type bridgeFixture struct {
	b       *Bridge
	ehr     *fhirsandbox.Server
	audit   *audit.Memory
	sources map[string]*fakeSource
}

func newBridgeFixture(t *testing.T, sources map[string]*fakeSource) *bridgeFixture {
	t.Helper()
	f := &bridgeFixture{ehr: fhirsandbox.New(codec(t)), audit: audit.NewMemory(), sources: sources}
	srv := httptest.NewServer(f.ehr)
	t.Cleanup(srv.Close)
	client, err := fhir.NewClient(fhir.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var specs []RouteSpec
	for _, name := range []string{"a", "b"} {
		specs = append(specs, RouteSpec{Name: name, Source: sources[name], Mapper: mappers.Native{},
			Encoder: NewFHIREncoder(codec(t), DefaultIdentifierSystem, false), Sink: NewFHIRSingleSink(client, nil, client, discardLog())})
	}
	f.b, err = New(specs, Options{Audit: f.audit, Retry: Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		Grace: 2 * time.Second, Log: discardLog()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// run starts b.Run and returns a cancel and a channel with its result.
func (f *bridgeFixture) run(t *testing.T) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.b.Run(ctx) }()
	t.Cleanup(cancel)
	return cancel, done
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Bridge.Run did not return within %s", waitLimit)
		return nil
	}
}

func topicMessages(topic string, device string, n int) []Reading {
	var out []Reading
	for i := range n {
		out = append(out, testReading(topic, 0, int64(i), reading(device, "p-1", i, 60+i)))
	}
	return out
}

func TestBridgeRunsEveryRoute(t *testing.T) {
	srcA := newFakeSource(topicMessages("vitals.a", "hrm-a", 2)...)
	srcB := newFakeSource(topicMessages("vitals.b", "hrm-b", 3)...)
	f := newBridgeFixture(t, map[string]*fakeSource{"a": srcA, "b": srcB})

	cancel, done := f.run(t)
	await(t, srcA.Drained(), "route a to handle its messages")
	await(t, srcB.Drained(), "route b to handle its messages")
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}

	if st := f.ehr.Stats(); st.Created != 5 || st.Rejected != 0 {
		t.Errorf("EHR stats = %+v, want 5 created, none rejected", st)
	}
	for ident, n := range f.ehr.CreatesByIdentifier() {
		if n != 1 {
			t.Errorf("identifier %s created %d times", ident, n)
		}
	}
	checkCommits(t, srcA, "vitals.a/0/0", "vitals.a/0/1")
	checkCommits(t, srcB, "vitals.b/0/0", "vitals.b/0/1", "vitals.b/0/2")
	for name, src := range f.sources {
		if n := src.Closed(); n != 1 {
			t.Errorf("source %s closed %d times, want 1", name, n)
		}
		events, err := f.audit.List(context.Background(), audit.Filter{Route: name, Action: audit.ActionDelivered})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"a": 2, "b": 3}[name]; len(events) != want {
			t.Errorf("route %s: %d delivered events, want %d", name, len(events), want)
		}
		for _, e := range events {
			if !strings.HasPrefix(e.Topic, "vitals."+name) || e.Status != 201 || e.Location == "" {
				t.Errorf("route %s: delivered event %+v", name, e)
			}
		}
	}
	diff(t, "stats", f.b.Stats(), Stats{Received: 5, Delivered: 5})
}

func TestBridgeStopsWhenARouteFails(t *testing.T) {
	boom := errors.New("broker unreachable")
	srcB := newFakeSource(topicMessages("vitals.b", "hrm-b", 2)...)
	srcA := newFakeSource(topicMessages("vitals.a", "hrm-a", 1)...)
	srcA.Err = boom
	srcA.FailAfter = srcB.Drained() // fail once b has done its work, so both deliver
	f := newBridgeFixture(t, map[string]*fakeSource{"a": srcA, "b": srcB})

	_, done := f.run(t) // never cancelled: route a's failure must stop route b
	err := waitRun(t, done)
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want it to wrap %v", err, boom)
	}
	if !strings.Contains(err.Error(), "route a") || strings.Contains(err.Error(), "route b") {
		t.Errorf("Run = %q, want it to name route a only", err)
	}
	checkCommits(t, srcA, "vitals.a/0/0")
	checkCommits(t, srcB, "vitals.b/0/0", "vitals.b/0/1")
	for name, src := range f.sources {
		if n := src.Closed(); n != 1 {
			t.Errorf("source %s closed %d times, want 1", name, n)
		}
	}
	if st := f.ehr.Stats(); st.Created != 3 {
		t.Errorf("EHR created %d Observations, want 3", st.Created)
	}
	diff(t, "stats", f.b.Stats(), Stats{Received: 3, Delivered: 3})
}

func TestNewRejectsAnIncompleteRoute(t *testing.T) {
	_, err := New([]RouteSpec{{Name: "bad", Source: newFakeSource(), Mapper: mappers.Native{}}}, Options{Audit: audit.NewMemory()})
	if err == nil || !strings.Contains(err.Error(), `route "bad"`) {
		t.Errorf("New = %v, want an error naming route bad", err)
	}
}
