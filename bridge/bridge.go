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

	"github.com/fhir-bridge/fhir-bridge/fhir"
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
	Codec       *fhir.Codec
	Log         *slog.Logger
}

// New builds the routes of cfg. The Bridge closes every source and
// dead-letter sink when Run returns.
func New(cfg Config, d Deps) (*Bridge, error) {
	log := d.Log
	b := &Bridge{stats: &counters{}, log: log}
	for _, rc := range cfg.Routes {
		client, err := fhir.NewClient(fhir.ClientConfig{BaseURL: rc.Destination.FHIR.BaseURL, Timeout: rc.Destination.FHIR.Timeout})
		if err != nil {
			for _, r := range b.routes {
				r.src.Close()
			}
			return nil, fmt.Errorf("route %s: %w", rc.Name, err)
		}
		mapper, err := LoadMapper(rc.Templates, MapperOptions{DefaultPatientID: rc.DefaultPatient})
		if err != nil {
			for _, r := range b.routes {
				r.src.Close()
			}
			return nil, fmt.Errorf("route %s: %w", rc.Name, err)
		}
		b.routes = append(b.routes, &route{
			mapper:   mapper,
			name:     rc.Name,
			src:      d.Sources(rc),
			sink:     client,
			audit:    d.Audit,
			codec:    d.Codec,
			idSystem: cfg.IdentifierSystem,
			log:      log,
			stats:    b.stats,
			backoff:  backoff{initial: cfg.Retry.Initial, max: cfg.Retry.Max},
			grace:    cfg.ShutdownGrace,
			now:      time.Now,
		})
		if d.DeadLetters != nil {
			r := b.routes[len(b.routes)-1]
			r.dlq, r.dlqTopic = d.DeadLetters(rc), rc.DeadLetterTopic
		}
	}
	return b, nil
}

// Stats returns the pipeline counters.
func (b *Bridge) Stats() Stats { return b.stats.snapshot() }

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
	for _, r := range b.routes {
		if err := r.src.Close(); err != nil {
			b.log.Warn("closing source", "route", r.name, "err", err)
		}
		if r.dlq != nil {
			if err := r.dlq.Close(); err != nil {
				b.log.Warn("closing dead-letter writer", "route", r.name, "err", err)
			}
		}
	}
	return errors.Join(errs...)
}
