// Package bridge is the fhir-bridge engine: routes that read device readings
// from a Source, map them to measurements, encode them for their
// destination, deliver them through a Sink, dead-letter what is refused,
// record every outcome in the audit trail, and only then commit the
// source offset (at-least-once in, effectively-once out).
//
// The stage contracts are in stage.go; a route's pipeline in route.go. The
// engine knows no concrete source or destination: cmd/fhir-bridge wires
// Kafka (bridge/kafka), the FHIR and MLLP sinks of this package, the audit
// store and the metrics.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Bridge runs routes.
type Bridge struct {
	routes []*route
	stats  *counters
	log    *slog.Logger
}

// RouteSpec is one wired route: where it reads, how it maps and encodes,
// where it delivers.
type RouteSpec struct {
	// Name identifies the route in logs, metrics and the audit trail.
	Name   string
	Source Source
	Mapper Mapper
	// Encoder and Sink go together: the encoder makes the sink's units.
	Encoder Encoder
	Sink    Sink
	// DeadLetters receives refused readings. Nil: they are recorded in the
	// audit trail only.
	DeadLetters DeadLetters
	// Batch groups readings of a partition into the batches that move
	// through the pipeline together.
	Batch Batching
	// InFlight bounds a partition's readings between read and commit.
	InFlight InFlightConfig
}

// Batching configures how a partition's readings are grouped.
type Batching struct {
	// MaxReadings per batch. Default: 1.
	MaxReadings int
	// MaxBytes of payload per batch. Default: 4 MiB.
	MaxBytes int
	// Linger is how long to wait for more readings after the first when
	// none are waiting. Default: 0 (take what is there).
	Linger time.Duration
}

// Options are what every route shares.
type Options struct {
	// Audit is the audit trail. Required.
	Audit AuditLog
	// Retry paces every retry. Default: 200ms to 30s.
	Retry Retry
	// Grace is how long work in flight may finish after a stop.
	// Default: 10s.
	Grace time.Duration
	// Observer sees what the engine does (metrics). Default: none.
	Observer Observer
	// Tracer makes one span per stage and batch. Default: none.
	Tracer trace.Tracer
	// SpanContext reads a producer's span context from a reading's headers
	// (W3C traceparent, see bridge/tracing.Extract), so each stage span
	// links to the traces of the readings it carries. Default: none.
	SpanContext func(headers []Header) trace.SpanContext
	Log         *slog.Logger
	// Now is the clock of audit events. Default: time.Now.
	Now func() time.Time
}

// New builds a Bridge of specs. The Bridge closes every sink and
// dead-letter writer when Run returns.
func New(specs []RouteSpec, o Options) (*Bridge, error) {
	if o.Audit == nil {
		return nil, errors.New("bridge: an audit log is required")
	}
	if o.Retry.Initial <= 0 {
		o.Retry.Initial = 200 * time.Millisecond
	}
	if o.Retry.Max < o.Retry.Initial {
		o.Retry.Max = max(30*time.Second, o.Retry.Initial)
	}
	if o.Grace == 0 {
		o.Grace = 10 * time.Second
	}
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	b := &Bridge{stats: &counters{}, log: o.Log}
	for _, s := range specs {
		if s.Name == "" || s.Source == nil || s.Mapper == nil || s.Encoder == nil || s.Sink == nil {
			return nil, fmt.Errorf("route %q: name, source, mapper, encoder and sink are required", s.Name)
		}
		bt := s.Batch
		bt.MaxReadings = max(bt.MaxReadings, 1)
		if bt.MaxBytes <= 0 {
			bt.MaxBytes = 4 << 20
		}
		lim := s.InFlight
		if lim.MaxReadings <= 0 {
			lim.MaxReadings = 2000
		}
		if lim.MaxBytes <= 0 {
			lim.MaxBytes = 16 << 20
		}
		// A batch must fit in the in-flight budget, and two of them, so
		// one can be read while the other is delivered.
		bt.MaxReadings = min(bt.MaxReadings, max(lim.MaxReadings/2, 1))
		b.routes = append(b.routes, &route{
			name: s.Name, src: s.Source, mapper: s.Mapper, enc: s.Encoder, sink: s.Sink, dlq: s.DeadLetters,
			audit: o.Audit, batch: bt, limits: lim, retry: o.Retry, grace: o.Grace,
			obs: o.Observer, tracer: o.Tracer, spanContext: o.SpanContext, log: o.Log, now: o.Now, stats: b.stats,
		})
	}
	return b, nil
}

// Stats returns the pipeline counters.
func (b *Bridge) Stats() Stats { return b.stats.snapshot() }

// Run processes every route until ctx ends or a route fails, then stops the
// others. A stop lets work in flight finish within the grace; what is not
// finished is not committed and is redelivered. Run closes the sinks and
// dead-letter writers before it returns.
func (b *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(b.routes))
	for i, r := range b.routes {
		wg.Go(func() {
			if err := r.run(ctx); err != nil {
				errs[i] = err
				cancel() // one broken route stops the process; the supervisor restarts it
			}
		})
	}
	wg.Wait()
	b.closeAll()
	return errors.Join(errs...)
}

func (b *Bridge) closeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, r := range b.routes {
		if err := r.sink.Close(ctx); err != nil {
			b.log.Warn("closing destination", "route", r.name, "err", err)
		}
		if r.dlq != nil {
			if err := r.dlq.Close(); err != nil {
				b.log.Warn("closing dead-letter writer", "route", r.name, "err", err)
			}
		}
	}
}

// Stats counts readings through the pipeline since start.
type Stats struct {
	Received     int64 // readings read from the source
	Delivered    int64 // readings whose units were all accepted (created or already there)
	DeadLettered int64 // readings rejected: dead-lettered and audited with the reason
	Retries      int64 // retries of deliveries
}

type counters struct {
	received, delivered, deadLettered, retries atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{Received: c.received.Load(), Delivered: c.delivered.Load(),
		DeadLettered: c.deadLettered.Load(), Retries: c.retries.Load()}
}
