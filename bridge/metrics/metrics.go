// Package metrics is the bridge's Prometheus instrumentation and its
// operations listener.
//
// Metrics implements bridge.Observer: the engine reports what it does and
// Metrics turns it into fhir_bridge_* series on a private registry (never
// the process-wide default, so tests and several instances in one process
// do not collide). Labels are bounded: route names, partitions, destination
// kinds, stages, outcomes, statuses and reason codes; never device or
// patient identifiers. docs/metrics.md lists every series with example
// alerts.
//
// Handler serves /metrics, /healthz and /readyz for Prometheus and
// orchestrators; Server runs it on the ops listener (default
// 127.0.0.1:9464).
package metrics

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fhir-bridge/fhir-bridge/bridge"
)

// Namespace prefixes every metric the bridge exports.
const Namespace = "fhir_bridge"

// Route states, as bridge.Observer.RouteState reports them.
const (
	StateFlowing  = "flowing"
	StateRetrying = "retrying"
	StateStopped  = "stopped"
)

// routeStates are exported as 0/1 series so that a dashboard sees every
// state of a route, not only the current one.
var routeStates = [...]string{StateFlowing, StateRetrying, StateStopped}

// Bucket layouts. Classic buckets: every Prometheus server understands
// them, and the ranges are known.
var (
	// stageBuckets span 0.5 ms (an in-memory map) to 10 s (a delivery at
	// the destination's timeout).
	stageBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// latencyBuckets reach a minute: a reading waits behind retries and
	// batching before its destination answers.
	latencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}
	// batchBuckets span one reading to a full default in-flight window
	// (2000 readings).
	batchBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}
)

// Metrics records what the engine does as Prometheus series and keeps
// per-route totals for Snapshot. It is safe for concurrent use; every
// Observer method is a few map lookups and atomic adds.
type Metrics struct {
	received         *prometheus.CounterVec   // route, partition
	stageSeconds     *prometheus.HistogramVec // route, stage
	stageReadings    *prometheus.HistogramVec // route, stage
	outcomes         *prometheus.CounterVec   // route, dest, outcome, status, reason
	latency          *prometheus.HistogramVec // route, dest
	deadLetters      *prometheus.CounterVec   // route, stage, reason
	retries          *prometheus.CounterVec   // route, what, reason
	inFlightReadings *prometheus.GaugeVec     // route, partition
	inFlightBytes    *prometheus.GaugeVec     // route, partition
	committedOffset  *prometheus.GaugeVec     // route, topic, partition
	committedLag     *prometheus.GaugeVec     // route, topic, partition
	assigned         *prometheus.GaugeVec     // route
	routeState       *prometheus.GaugeVec     // route, state
	retryReason      *prometheus.GaugeVec     // route, reason

	routes sync.Map // route name -> *routeTotals
}

var _ bridge.Observer = (*Metrics)(nil)

// routeTotals is what Snapshot reports for one route. Counters are atomics
// because they move on every reading; the rest changes on rebalances,
// commits and state changes, rarely enough for a mutex.
type routeTotals struct {
	received, delivered, refused, deadLettered, retries atomic.Int64

	mu       sync.Mutex
	state    string
	reason   string
	assigned map[partKey]struct{}
	lag      map[partKey]int64
}

type partKey struct {
	topic     string
	partition int
}

// New registers the bridge's collectors on reg, with the Go runtime and
// process collectors and fhir_bridge_build_info{version, goversion}.
// It panics if reg already holds any of them: registering twice is a
// wiring mistake, not a run-time condition.
func New(reg *prometheus.Registry, version string) *Metrics {
	route := []string{"route"}
	routePartition := []string{"route", "partition"}
	routeTopicPartition := []string{"route", "topic", "partition"}
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "readings_received_total",
			Help: "Readings handed out by a partition of the route's topic.",
		}, routePartition),
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "stage_duration_seconds",
			Help:    "Time one stage took for one batch of readings.",
			Buckets: stageBuckets,
		}, []string{"route", "stage"}),
		stageReadings: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "stage_batch_readings",
			Help:    "Readings in the batch one stage handled at once.",
			Buckets: batchBuckets,
		}, []string{"route", "stage"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "unit_outcomes_total",
			Help: "Units answered by the destination, by outcome; retry-later counts every failed attempt. " +
				"status is the HTTP status or HL7 ACK code (none when no answer came).",
		}, []string{"route", "dest", "outcome", "status", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "end_to_end_latency_seconds",
			Help:    "Time from a reading's record timestamp to its destination's final answer (delivered, already-present or refused).",
			Buckets: latencyBuckets,
		}, []string{"route", "dest"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "dead_letters_total",
			Help: "Readings rejected and written to the dead-letter topic, by the stage that rejected them.",
		}, []string{"route", "stage", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "retries_total",
			Help: "Retries after a temporary failure, by what was retried (deliver, audit, dead-letter, ledger, commit).",
		}, []string{"route", "what", "reason"}),
		inFlightReadings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "in_flight_readings",
			Help: "Readings a partition holds between read and commit.",
		}, routePartition),
		inFlightBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "in_flight_bytes",
			Help: "Payload bytes a partition holds between read and commit.",
		}, routePartition),
		committedOffset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "committed_offset",
			Help: "Next offset to read, as last committed, of an assigned partition.",
		}, routeTopicPartition),
		committedLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "committed_lag_readings",
			Help: "Readings in an assigned partition past the committed offset (end offset minus committed offset).",
		}, routeTopicPartition),
		assigned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "assigned_partitions",
			Help: "Partitions of the route's topic assigned to this instance.",
		}, route),
		routeState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "route_state",
			Help: "1 for the route's current state (flowing, retrying, stopped), 0 for the others.",
		}, []string{"route", "state"}),
		retryReason: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "route_retrying_reason",
			Help: "1 with the reason a retrying route waits for; absent while the route is not retrying.",
		}, []string{"route", "reason"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; the labels say which build runs.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(label(version), runtime.Version()).Set(1)

	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.received, m.stageSeconds, m.stageReadings, m.outcomes, m.latency,
		m.deadLetters, m.retries, m.inFlightReadings, m.inFlightBytes,
		m.committedOffset, m.committedLag, m.assigned, m.routeState, m.retryReason,
	)
	return m
}

// route returns the totals of a route, creating them on first use.
func (m *Metrics) route(name string) *routeTotals {
	if t, ok := m.routes.Load(name); ok {
		return t.(*routeTotals)
	}
	t, _ := m.routes.LoadOrStore(name, &routeTotals{
		assigned: map[partKey]struct{}{},
		lag:      map[partKey]int64{},
	})
	return t.(*routeTotals)
}

// Received counts n readings handed out by a partition.
func (m *Metrics) Received(route string, partition int, n int) {
	route = label(route)
	m.received.WithLabelValues(route, strconv.Itoa(partition)).Add(float64(n))
	m.route(route).received.Add(int64(n))
}

// Stage records how long one stage took for a batch of n readings.
func (m *Metrics) Stage(route, stage string, d time.Duration, n int) {
	route, stage = label(route), label(stage)
	m.stageSeconds.WithLabelValues(route, stage).Observe(max(d, 0).Seconds())
	if n > 0 {
		m.stageReadings.WithLabelValues(route, stage).Observe(float64(n))
	}
}

// Outcome counts a unit's answer at its destination and, for a final
// answer, observes its end-to-end latency when the record timestamp was
// known (latency > 0). Retry-later attempts are not final: their latency
// would count the same reading several times.
func (m *Metrics) Outcome(route, destKind string, o bridge.Outcome, latency time.Duration) {
	route, destKind = label(route), label(destKind)
	status := o.Ack
	if o.Status != 0 {
		status = strconv.Itoa(o.Status)
	}
	m.outcomes.WithLabelValues(route, destKind, o.Kind.String(), orNone(status), orNone(o.Reason)).Inc()
	t := m.route(route)
	switch o.Kind {
	case bridge.Delivered, bridge.AlreadyPresent:
		t.delivered.Add(1)
	case bridge.Refused:
		t.refused.Add(1)
	default:
		return
	}
	if latency > 0 {
		m.latency.WithLabelValues(route, destKind).Observe(latency.Seconds())
	}
}

// DeadLettered counts a reading rejected at stage for reason.
func (m *Metrics) DeadLettered(route, stage, reason string) {
	route = label(route)
	m.deadLetters.WithLabelValues(route, label(stage), orNone(reason)).Inc()
	m.route(route).deadLettered.Add(1)
}

// Retry counts a retry of what for a reason category.
func (m *Metrics) Retry(route, what, reason string) {
	route = label(route)
	m.retries.WithLabelValues(route, label(what), orNone(reason)).Inc()
	m.route(route).retries.Add(1)
}

// InFlight sets a partition's readings and bytes between read and commit.
func (m *Metrics) InFlight(route string, partition int, readings, bytes int) {
	route = label(route)
	p := strconv.Itoa(partition)
	m.inFlightReadings.WithLabelValues(route, p).Set(float64(readings))
	m.inFlightBytes.WithLabelValues(route, p).Set(float64(bytes))
}

// Committed sets a partition's committed offset and, when its end offset is
// known (highWater >= 0), its committed lag. The engine reports a revoked
// partition after its last commit: a Committed after Assigned(false) would
// set the series again, and they would linger until the next revocation.
func (m *Metrics) Committed(route, topic string, partition int, next, highWater int64) {
	route, topic = label(route), label(topic)
	p := strconv.Itoa(partition)
	m.committedOffset.WithLabelValues(route, topic, p).Set(float64(next))
	if highWater < 0 {
		return
	}
	// The end offset is as last seen by the fetcher and may trail a commit
	// made since; a negative lag would only confuse alerts.
	lag := max(highWater-next, 0)
	m.committedLag.WithLabelValues(route, topic, p).Set(float64(lag))
	t := m.route(route)
	t.mu.Lock()
	t.lag[partKey{topic, partition}] = lag
	t.mu.Unlock()
}

// Assigned records that a partition was assigned to this instance or
// revoked from it. On revocation the partition's gauges are deleted: the
// instance that takes it over reports them now, and a stale lag here would
// keep an alert firing.
func (m *Metrics) Assigned(route, topic string, partition int, assigned bool) {
	route, topic = label(route), label(topic)
	k := partKey{topic, partition}
	t := m.route(route)
	t.mu.Lock()
	if assigned {
		t.assigned[k] = struct{}{}
	} else {
		delete(t.assigned, k)
		delete(t.lag, k)
	}
	n := len(t.assigned)
	t.mu.Unlock()
	m.assigned.WithLabelValues(route).Set(float64(n))
	if assigned {
		return
	}
	p := strconv.Itoa(partition)
	m.committedOffset.DeleteLabelValues(route, topic, p)
	m.committedLag.DeleteLabelValues(route, topic, p)
	m.inFlightReadings.DeleteLabelValues(route, p)
	m.inFlightBytes.DeleteLabelValues(route, p)
}

// RouteState sets a route's state: 1 on its series, 0 on the other states'.
// While the route is retrying, fhir_bridge_route_retrying_reason carries the
// reason; the previous reason's series is removed on every change.
func (m *Metrics) RouteState(route, state, reason string) {
	route, state, reason = label(route), label(state), label(reason)
	t := m.route(route)
	t.mu.Lock()
	prev := t.state
	t.state, t.reason = state, reason
	// Setting the gauges under the lock keeps them in step with t.state
	// when two goroutines report a change at once.
	for _, s := range routeStates {
		m.routeState.WithLabelValues(route, s).Set(boolFloat(s == state))
	}
	if !slices.Contains(routeStates[:], state) {
		m.routeState.WithLabelValues(route, state).Set(1)
	}
	if prev != state && !slices.Contains(routeStates[:], prev) && prev != "" {
		m.routeState.DeleteLabelValues(route, prev)
	}
	m.retryReason.DeletePartialMatch(prometheus.Labels{"route": route})
	if state == StateRetrying {
		m.retryReason.WithLabelValues(route, orNone(reason)).Set(1)
	}
	t.mu.Unlock()
}

// Snapshot is the bridge's totals since start, per route, for the web
// console and the demo.
type Snapshot struct {
	// Routes are sorted by name.
	Routes []RouteSnapshot `json:"routes"`
}

// Route returns the snapshot of the named route.
func (s Snapshot) Route(name string) (RouteSnapshot, bool) {
	i := slices.IndexFunc(s.Routes, func(r RouteSnapshot) bool { return r.Route == name })
	if i < 0 {
		return RouteSnapshot{}, false
	}
	return s.Routes[i], true
}

// RouteSnapshot is one route's totals since start.
type RouteSnapshot struct {
	Route string `json:"route"`
	// Received counts readings read from the topic.
	Received int64 `json:"received"`
	// Delivered counts units the destination accepted or already had.
	Delivered int64 `json:"delivered"`
	// Refused counts units the destination refused for good.
	Refused int64 `json:"refused"`
	// DeadLettered counts readings written to the dead-letter topic.
	DeadLettered int64 `json:"deadLettered"`
	// Retries counts retries of any step.
	Retries int64 `json:"retries"`
	// State is flowing, retrying or stopped; empty until the engine first
	// reports it.
	State string `json:"state"`
	// Reason is what the engine gave with State: why a retrying route
	// waits, or why it stopped.
	Reason string `json:"reason,omitempty"`
	// Partitions is how many partitions this instance holds.
	Partitions int `json:"partitions"`
	// CommittedLag sums the committed lag of the held partitions whose end
	// offset is known.
	CommittedLag int64 `json:"committedLag"`
}

// Snapshot returns every route's totals. The counters are read one by one,
// not atomically together: fine for a console, not for accounting.
func (m *Metrics) Snapshot() Snapshot {
	var s Snapshot
	m.routes.Range(func(k, v any) bool {
		t := v.(*routeTotals)
		r := RouteSnapshot{
			Route:        k.(string),
			Received:     t.received.Load(),
			Delivered:    t.delivered.Load(),
			Refused:      t.refused.Load(),
			DeadLettered: t.deadLettered.Load(),
			Retries:      t.retries.Load(),
		}
		t.mu.Lock()
		r.State, r.Reason, r.Partitions = t.state, t.reason, len(t.assigned)
		for _, l := range t.lag {
			r.CommittedLag += l
		}
		t.mu.Unlock()
		s.Routes = append(s.Routes, r)
		return true
	})
	slices.SortFunc(s.Routes, func(a, b RouteSnapshot) int { return strings.Compare(a.Route, b.Route) })
	return s
}

// maxLabel bounds a label value. The engine passes short codes; the bound
// only stops a misuse (an error text as a reason) from bloating every
// scrape. Kafka topic names, the longest legitimate value, fit.
const maxLabel = 256

// label makes s a safe label value: client_golang panics on invalid UTF-8,
// and a panic in an observer would stop a pipeline goroutine.
func label(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > maxLabel {
		s = s[:maxLabel]
		for !utf8.ValidString(s) { // cut inside a rune: drop its head
			s = s[:len(s)-1]
		}
	}
	return s
}

// orNone is label(s), with "none" for an empty value so that dashboards
// can select it explicitly.
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return label(s)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
