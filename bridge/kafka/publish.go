package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/httpapi"
	kgo "github.com/segmentio/kafka-go"
)

// Publisher writes readings posted to the HTTP API to their route's source
// topic, keyed by device so a device's readings stay in order
// (httpapi.Publisher).
type Publisher struct {
	writers map[string]*kgo.Writer // by route name
	t       *kgo.Transport
}

var _ httpapi.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher for the routes of cfg, connecting as
// cfg.Kafka says. getenv reads the SASL password; nil uses cfg.Getenv.
func NewPublisher(cfg bridge.Config, getenv func(string) string) (*Publisher, error) {
	if getenv == nil {
		getenv = cfg.Getenv
	}
	s, err := newSettings(cfg.Kafka, getenv)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	p := &Publisher{writers: map[string]*kgo.Writer{}, t: s.transport(0)}
	for _, rc := range cfg.Routes {
		p.writers[rc.Name] = &kgo.Writer{
			Addr:         kgo.TCP(s.brokers...),
			Transport:    p.t,
			Topic:        rc.Topic,
			Balancer:     &kgo.Hash{},
			RequiredAcks: kgo.RequireAll, // 202 means the reading is durable in Kafka
			BatchTimeout: 5 * time.Millisecond,
		}
	}
	return p, nil
}

// Publish writes records to the source topic of route synchronously: it
// returns nil once all in-sync replicas have every record.
func (p *Publisher) Publish(ctx context.Context, route string, records []httpapi.Record) error {
	w, ok := p.writers[route]
	if !ok {
		return fmt.Errorf("publish: unknown route %q", route)
	}
	msgs := make([]kgo.Message, len(records))
	for i, r := range records {
		msgs[i] = kgo.Message{Key: r.Key, Value: r.Value}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish to %s (route %s): %w", w.Topic, route, err)
	}
	return nil
}

// Close flushes and closes the writers and their connections.
func (p *Publisher) Close() error {
	var errs []error
	for _, w := range p.writers {
		errs = append(errs, w.Close())
	}
	p.t.CloseIdleConnections()
	return errors.Join(errs...)
}
