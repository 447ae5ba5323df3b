package metrics

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fhir-bridge/fhir-bridge/bridge"
)

// series is one gathered sample: its labels and value (the sample count for
// a histogram).
type series struct {
	Labels map[string]string
	Value  float64
	Sum    float64 // histograms only
}

// gather returns the series of one metric family, in the registry's order
// (sorted by label values); nil when the family has none.
func gather(t *testing.T, reg *prometheus.Registry, name string) []series {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var out []series
		for _, m := range mf.GetMetric() {
			s := series{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s.Value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.Value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.Value = float64(m.GetHistogram().GetSampleCount())
				s.Sum = m.GetHistogram().GetSampleSum()
			default:
				t.Fatalf("%s: unexpected type %v", name, mf.GetType())
			}
			out = append(out, s)
		}
		// The registry sorts by label values in declaration order; sort by
		// the label set instead so that wants read in one fixed order.
		slices.SortFunc(out, func(a, b series) int { return strings.Compare(key(a.Labels), key(b.Labels)) })
		return out
	}
	return nil
}

func key(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%s,", k, m[k])
	}
	return b.String()
}

func l(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func newTest(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(reg, "v1.2.3"), reg
}

func check(t *testing.T, reg *prometheus.Registry, name string, want []series) {
	t.Helper()
	if diff := cmp.Diff(want, gather(t, reg, name)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestNewRegistersBuildInfoAndRuntime(t *testing.T) {
	_, reg := newTest(t)
	bi := gather(t, reg, "fhir_bridge_build_info")
	if len(bi) != 1 || bi[0].Value != 1 || bi[0].Labels["version"] != "v1.2.3" || !strings.HasPrefix(bi[0].Labels["goversion"], "go") {
		t.Errorf("build_info = %+v", bi)
	}
	if g := gather(t, reg, "go_goroutines"); len(g) != 1 || g[0].Value < 1 {
		t.Errorf("go_goroutines = %+v", g)
	}
	if p := gather(t, reg, "process_start_time_seconds"); len(p) != 1 {
		t.Errorf("process_start_time_seconds = %+v", p)
	}
}

func TestReceivedAndStage(t *testing.T) {
	m, reg := newTest(t)
	m.Received("vitals", 0, 3)
	m.Received("vitals", 0, 2)
	m.Received("vitals", 7, 1)
	check(t, reg, "fhir_bridge_readings_received_total", []series{
		{Labels: l("partition", "0", "route", "vitals"), Value: 5},
		{Labels: l("partition", "7", "route", "vitals"), Value: 1},
	})

	m.Stage("vitals", bridge.StageDeliver, 250*time.Millisecond, 40)
	m.Stage("vitals", bridge.StageDeliver, 750*time.Millisecond, 60)
	m.Stage("vitals", bridge.StageCommit, -time.Second, 0) // clock step: counted as 0s, no batch size
	check(t, reg, "fhir_bridge_stage_duration_seconds", []series{
		{Labels: l("route", "vitals", "stage", "commit"), Value: 1, Sum: 0},
		{Labels: l("route", "vitals", "stage", "deliver"), Value: 2, Sum: 1},
	})
	check(t, reg, "fhir_bridge_stage_batch_readings", []series{
		{Labels: l("route", "vitals", "stage", "deliver"), Value: 2, Sum: 100},
	})
}

func TestOutcome(t *testing.T) {
	m, reg := newTest(t)
	m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.Delivered, Status: 201}, 2*time.Second)
	m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.AlreadyPresent, Status: 200}, 0) // timestamp unknown
	m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.RetryLater, Reason: "timeout", Err: errors.New("timeout")}, time.Second)
	m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.Refused, Status: 422, Reason: "http-422"}, 3*time.Second)
	m.Outcome("ward", "mllp", bridge.Outcome{Kind: bridge.Refused, Ack: "AE", Reason: "ack-AE"}, 500*time.Millisecond)
	m.Outcome("ward", "mllp", bridge.Outcome{Kind: bridge.Delivered, Ack: "AA"}, -time.Second) // clock skew: skipped
	check(t, reg, "fhir_bridge_unit_outcomes_total", []series{
		{Labels: l("dest", "fhir", "outcome", "already-present", "reason", "none", "route", "vitals", "status", "200"), Value: 1},
		{Labels: l("dest", "fhir", "outcome", "delivered", "reason", "none", "route", "vitals", "status", "201"), Value: 1},
		{Labels: l("dest", "fhir", "outcome", "refused", "reason", "http-422", "route", "vitals", "status", "422"), Value: 1},
		{Labels: l("dest", "fhir", "outcome", "retry-later", "reason", "timeout", "route", "vitals", "status", "none"), Value: 1},
		{Labels: l("dest", "mllp", "outcome", "delivered", "reason", "none", "route", "ward", "status", "AA"), Value: 1},
		{Labels: l("dest", "mllp", "outcome", "refused", "reason", "ack-AE", "route", "ward", "status", "AE"), Value: 1},
	})
	// Final answers with a known timestamp only: not retry-later, not 0, not negative.
	check(t, reg, "fhir_bridge_end_to_end_latency_seconds", []series{
		{Labels: l("dest", "fhir", "route", "vitals"), Value: 2, Sum: 5},
		{Labels: l("dest", "mllp", "route", "ward"), Value: 1, Sum: 0.5},
	})
}

func TestDeadLetteredAndRetry(t *testing.T) {
	m, reg := newTest(t)
	m.DeadLettered("vitals", bridge.StageMap, "invalid-payload")
	m.DeadLettered("vitals", bridge.StageMap, "invalid-payload")
	m.DeadLettered("vitals", bridge.StageDeliver, "http-422")
	check(t, reg, "fhir_bridge_dead_letters_total", []series{
		{Labels: l("reason", "http-422", "route", "vitals", "stage", "deliver"), Value: 1},
		{Labels: l("reason", "invalid-payload", "route", "vitals", "stage", "map"), Value: 2},
	})
	m.Retry("vitals", "deliver", "http-503")
	m.Retry("vitals", "audit", "")
	check(t, reg, "fhir_bridge_retries_total", []series{
		{Labels: l("reason", "http-503", "route", "vitals", "what", "deliver"), Value: 1},
		{Labels: l("reason", "none", "route", "vitals", "what", "audit"), Value: 1},
	})
}

func TestPartitionLifecycle(t *testing.T) {
	m, reg := newTest(t)
	m.Assigned("vitals", "vitals.raw", 0, true)
	m.Assigned("vitals", "vitals.raw", 1, true)
	m.Assigned("vitals", "vitals.raw", 1, true) // repeated: still two partitions
	check(t, reg, "fhir_bridge_assigned_partitions", []series{{Labels: l("route", "vitals"), Value: 2}})

	m.InFlight("vitals", 0, 10, 4096)
	m.InFlight("vitals", 1, 1, 100)
	m.Committed("vitals", "vitals.raw", 0, 100, 130)
	m.Committed("vitals", "vitals.raw", 1, 50, -1) // end unknown: offset only
	m.Committed("vitals", "vitals.raw", 1, 60, 55) // stale end offset: lag 0, not negative
	check(t, reg, "fhir_bridge_in_flight_readings", []series{
		{Labels: l("partition", "0", "route", "vitals"), Value: 10},
		{Labels: l("partition", "1", "route", "vitals"), Value: 1},
	})
	check(t, reg, "fhir_bridge_in_flight_bytes", []series{
		{Labels: l("partition", "0", "route", "vitals"), Value: 4096},
		{Labels: l("partition", "1", "route", "vitals"), Value: 100},
	})
	check(t, reg, "fhir_bridge_committed_offset", []series{
		{Labels: l("partition", "0", "route", "vitals", "topic", "vitals.raw"), Value: 100},
		{Labels: l("partition", "1", "route", "vitals", "topic", "vitals.raw"), Value: 60},
	})
	check(t, reg, "fhir_bridge_committed_lag_readings", []series{
		{Labels: l("partition", "0", "route", "vitals", "topic", "vitals.raw"), Value: 30},
		{Labels: l("partition", "1", "route", "vitals", "topic", "vitals.raw"), Value: 0},
	})
	if r, _ := m.Snapshot().Route("vitals"); r.CommittedLag != 30 || r.Partitions != 2 {
		t.Errorf("snapshot lag %d partitions %d, want 30, 2", r.CommittedLag, r.Partitions)
	}

	// Revoking partition 0 deletes its series and nothing else.
	m.Assigned("vitals", "vitals.raw", 0, false)
	check(t, reg, "fhir_bridge_assigned_partitions", []series{{Labels: l("route", "vitals"), Value: 1}})
	check(t, reg, "fhir_bridge_committed_offset", []series{
		{Labels: l("partition", "1", "route", "vitals", "topic", "vitals.raw"), Value: 60},
	})
	check(t, reg, "fhir_bridge_committed_lag_readings", []series{
		{Labels: l("partition", "1", "route", "vitals", "topic", "vitals.raw"), Value: 0},
	})
	check(t, reg, "fhir_bridge_in_flight_readings", []series{
		{Labels: l("partition", "1", "route", "vitals"), Value: 1},
	})
	check(t, reg, "fhir_bridge_in_flight_bytes", []series{
		{Labels: l("partition", "1", "route", "vitals"), Value: 100},
	})
	if r, _ := m.Snapshot().Route("vitals"); r.CommittedLag != 0 || r.Partitions != 1 {
		t.Errorf("after revoke: snapshot lag %d partitions %d, want 0, 1", r.CommittedLag, r.Partitions)
	}

	m.Assigned("vitals", "vitals.raw", 1, false)
	for _, name := range []string{"fhir_bridge_committed_offset", "fhir_bridge_committed_lag_readings", "fhir_bridge_in_flight_readings", "fhir_bridge_in_flight_bytes"} {
		check(t, reg, name, nil)
	}
	check(t, reg, "fhir_bridge_assigned_partitions", []series{{Labels: l("route", "vitals"), Value: 0}})
}

func TestRouteState(t *testing.T) {
	m, reg := newTest(t)
	states := func(flowing, retrying, stopped float64) []series {
		return []series{
			{Labels: l("route", "vitals", "state", "flowing"), Value: flowing},
			{Labels: l("route", "vitals", "state", "retrying"), Value: retrying},
			{Labels: l("route", "vitals", "state", "stopped"), Value: stopped},
		}
	}
	m.RouteState("vitals", StateFlowing, "")
	check(t, reg, "fhir_bridge_route_state", states(1, 0, 0))
	check(t, reg, "fhir_bridge_route_retrying_reason", nil)

	m.RouteState("vitals", StateRetrying, "http-503")
	check(t, reg, "fhir_bridge_route_state", states(0, 1, 0))
	check(t, reg, "fhir_bridge_route_retrying_reason", []series{{Labels: l("reason", "http-503", "route", "vitals"), Value: 1}})

	m.RouteState("vitals", StateRetrying, "token")
	check(t, reg, "fhir_bridge_route_retrying_reason", []series{{Labels: l("reason", "token", "route", "vitals"), Value: 1}})
	if r, _ := m.Snapshot().Route("vitals"); r.State != StateRetrying || r.Reason != "token" {
		t.Errorf("snapshot state %q reason %q", r.State, r.Reason)
	}

	m.RouteState("vitals", StateStopped, "")
	check(t, reg, "fhir_bridge_route_state", states(0, 0, 1))
	check(t, reg, "fhir_bridge_route_retrying_reason", nil)
}

func TestSnapshot(t *testing.T) {
	m, _ := newTest(t)
	if got := m.Snapshot(); len(got.Routes) != 0 {
		t.Fatalf("empty snapshot = %+v", got)
	}
	m.Received("ward", 0, 4)
	m.Received("vitals", 0, 10)
	m.Received("vitals", 1, 5)
	m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.Delivered, Status: 201}, time.Second)
	m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.AlreadyPresent, Status: 200}, time.Second)
	m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.RetryLater, Reason: "timeout"}, 0)
	m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.Refused, Status: 400}, time.Second)
	m.DeadLettered("vitals", bridge.StageDeliver, "http-400")
	m.Retry("vitals", "deliver", "timeout")
	m.RouteState("vitals", StateFlowing, "")
	m.Assigned("vitals", "vitals.raw", 0, true)
	m.Committed("vitals", "vitals.raw", 0, 10, 12)

	want := Snapshot{Routes: []RouteSnapshot{
		{Route: "vitals", Received: 15, Delivered: 2, Refused: 1, DeadLettered: 1, Retries: 1, State: "flowing", Partitions: 1, CommittedLag: 2},
		{Route: "ward", Received: 4},
	}}
	if diff := cmp.Diff(want, m.Snapshot()); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if _, ok := m.Snapshot().Route("nope"); ok {
		t.Error("Route(nope) found")
	}
}

func TestLabelValuesAreSafe(t *testing.T) {
	m, reg := newTest(t)
	// Invalid UTF-8 would make client_golang panic inside a pipeline goroutine.
	m.DeadLettered("vitals", "map", "bad\xffreason")
	m.Retry("vitals", "deliver", strings.Repeat("€", 100))
	got := gather(t, reg, "fhir_bridge_dead_letters_total")
	if len(got) != 1 || got[0].Labels["reason"] != "bad\uFFFDreason" {
		t.Errorf("dead letters = %+v", got)
	}
	r := gather(t, reg, "fhir_bridge_retries_total")[0].Labels["reason"]
	if len(r) > maxLabel || !strings.HasPrefix(r, "€€") || strings.ContainsRune(r, '\uFFFD') {
		t.Errorf("long reason: %d bytes %q", len(r), r)
	}
}

// TestConcurrent runs every method from several goroutines; with -race it
// checks that the Observer is safe for concurrent use.
func TestConcurrent(t *testing.T) {
	m, reg := newTest(t)
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			m.Assigned("vitals", "t", p, true)
			for i := range 100 {
				m.Received("vitals", p, 1)
				m.Stage("vitals", bridge.StageMap, time.Millisecond, 1)
				m.Outcome("vitals", "fhir", bridge.Outcome{Kind: bridge.Delivered, Status: 201}, time.Second)
				m.InFlight("vitals", p, i, i*10)
				m.Committed("vitals", "t", p, int64(i), 100)
				m.RouteState("vitals", routeStates[i%3], "x")
				_ = m.Snapshot()
			}
			m.Assigned("vitals", "t", p, false)
		})
	}
	wg.Wait()
	r, _ := m.Snapshot().Route("vitals")
	if r.Received != 800 || r.Delivered != 800 || r.Partitions != 0 || r.CommittedLag != 0 {
		t.Errorf("snapshot = %+v", r)
	}
	check(t, reg, "fhir_bridge_committed_lag_readings", nil)
	ones := 0
	for _, s := range gather(t, reg, "fhir_bridge_route_state") {
		ones += int(s.Value)
	}
	if ones != 1 {
		t.Errorf("route_state: %d states at 1, want exactly 1", ones)
	}
}
