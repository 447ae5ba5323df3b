// Package bridge is the fhir-bridge pipeline: routes that consume device
// readings from Kafka, map them to FHIR R4 Observations, deliver them to an
// EHR with conditional create, record every step in the audit trail, and only
// then commit the Kafka offset (at-least-once in, effectively-once out).
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/segmentio/kafka-go"
)

// Bridge runs every configured route.
type Bridge struct {
	routes []*route
	stats  *counters
	log    *slog.Logger
}

// Deps are what a Bridge is built from besides its configuration.
type Deps struct {
	// Sources returns the Source of a route (see NewKafkaSource). Required.
	Sources func(RouteConfig) Source
	// DeadLetters returns the dead-letter sink of a route (see
	// NewDeadLetterWriter). Nil: rejected messages are recorded in the audit
	// trail only.
	DeadLetters func(RouteConfig) DeadLetterSink
	Audit       AuditLog
	// Ledger records MLLP deliveries. Required for MLLP routes.
	Ledger audit.Ledger
	Codec  *fhir.Codec
	Log    *slog.Logger
}

// New builds the routes of cfg. The Bridge closes every source and
// dead-letter sink when Run returns.
func New(cfg Config, d Deps) (*Bridge, error) {
	log := d.Log
	b := &Bridge{stats: &counters{}, log: log}
	fail := func(rc RouteConfig, err error) (*Bridge, error) {
		b.closeAll()
		return nil, fmt.Errorf("route %s: %w", rc.Name, err)
	}
	for _, rc := range cfg.Routes {
		var sink Sink
		var dest destination
		var closer func() error
		switch {
		case rc.Destination.MLLP != nil:
			pool, err := newMLLPPool(rc.Destination.MLLP)
			if err != nil {
				return fail(rc, err)
			}
			if d.Ledger == nil {
				pool.Close(context.Background())
				return fail(rc, errors.New("an MLLP destination needs a delivery ledger"))
			}
			m := rc.Destination.MLLP
			dest = &mllpDest{route: rc.Name, sender: pool, ledger: d.Ledger, opts: mappers.ORUOptions{
				SendingApplication:   hd(m.SendingApplication),
				SendingFacility:      hd(m.SendingFacility),
				ReceivingApplication: hd(m.ReceivingApplication),
				ReceivingFacility:    hd(m.ReceivingFacility),
				PatientAuthority:     hd(m.PatientAuthority),
			}}
			closer = func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return pool.Close(ctx)
			}
		default:
			client, err := newFHIRClient(rc.Destination.FHIR, cfg.Getenv)
			if err != nil {
				return fail(rc, err)
			}
			sink = client
			if rc.Destination.FHIR.UpsertDevices {
				dest = &fhirDest{sink: client, codec: d.Codec, idSystem: cfg.IdentifierSystem, upsert: true, devices: &sync.Map{}}
			}
		}
		mapper, err := LoadMapper(rc.Templates, MapperOptions{DefaultPatientID: rc.DefaultPatient})
		if err != nil {
			if closer != nil {
				closer()
			}
			return fail(rc, err)
		}
		b.routes = append(b.routes, &route{
			mapper:    mapper,
			name:      rc.Name,
			src:       d.Sources(rc),
			sink:      sink,
			dest:      dest,
			closeDest: closer,
			audit:     d.Audit,
			codec:     d.Codec,
			idSystem:  cfg.IdentifierSystem,
			log:       log,
			stats:     b.stats,
			backoff:   backoff{initial: cfg.Retry.Initial, max: cfg.Retry.Max},
			grace:     cfg.ShutdownGrace,
			now:       time.Now,
		})
		if f := rc.Destination.FHIR; f != nil {
			b.routes[len(b.routes)-1].batch = batching{maxEntries: f.Batch.MaxEntries, maxBytes: f.Batch.MaxBytes, linger: f.Batch.Linger, concurrency: f.Batch.Concurrency}
		}
		if m := rc.Destination.MLLP; m != nil {
			// Readings arriving together are sent over all connections at
			// once, one patient per connection at a time.
			b.routes[len(b.routes)-1].batch = batching{maxEntries: 25 * m.Connections, maxBytes: 4 << 20, linger: 20 * time.Millisecond, concurrency: m.Connections}
		}
		if d.DeadLetters != nil {
			r := b.routes[len(b.routes)-1]
			r.dlq, r.dlqTopic = d.DeadLetters(rc), rc.DeadLetterTopic
		}
	}
	return b, nil
}

// Stats returns the pipeline counters.
func (b *Bridge) Stats() Stats { return b.stats.snapshot() }

// Handling returns the total time from fetch to commit of handled batches
// of messages and their number: their ratio is the mean latency the bridge
// adds.
func (b *Bridge) Handling() (seconds float64, batches int64) {
	return float64(b.stats.handledMicros.Load()) / 1e6, b.stats.handledBatches.Load()
}

// Lag returns, per route, how many messages its consumer is behind the end
// of its partitions, as kafka-go last saw it (0 for sources without stats).
func (b *Bridge) Lag() map[string]int64 {
	out := map[string]int64{}
	for _, r := range b.routes {
		if s, ok := r.src.(interface{ Stats() kafka.ReaderStats }); ok {
			out[r.name] = s.Stats().Lag
		}
	}
	return out
}

// Run processes every route until ctx ends or a route fails, then stops the
// others and closes the sources. A stop lets deliveries in flight finish
// within the configured grace; what is not finished is not committed.
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

// closeAll closes every route's source, dead-letter sink and destination.
func (b *Bridge) closeAll() {
	for _, r := range b.routes {
		if err := r.src.Close(); err != nil {
			b.log.Warn("closing source", "route", r.name, "err", err)
		}
		if r.dlq != nil {
			if err := r.dlq.Close(); err != nil {
				b.log.Warn("closing dead-letter writer", "route", r.name, "err", err)
			}
		}
		if r.closeDest != nil {
			if err := r.closeDest(); err != nil {
				b.log.Warn("closing destination", "route", r.name, "err", err)
			}
		}
	}
}

func hd(namespace string) hl7.HD { return hl7.HD{NamespaceID: namespace} }

// newMLLPPool builds the connection pool of an MLLP destination.
func newMLLPPool(m *MLLPDestination) (*hl7.Pool, error) {
	cfg := hl7.PoolConfig{Size: m.Connections, SenderConfig: hl7.SenderConfig{Addr: m.Address, AckTimeout: m.AckTimeout}}
	if m.TLS != nil {
		tc, err := hl7.TLSConfig(m.TLS.CAFile, m.TLS.CertFile, m.TLS.KeyFile, m.TLS.ServerName)
		if err != nil {
			return nil, fmt.Errorf("mllp tls: %w", err)
		}
		cfg.TLS = tc
	}
	return hl7.NewPool(cfg)
}
