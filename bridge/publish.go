package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/httpapi"
	"github.com/segmentio/kafka-go"
)

// Publisher writes readings posted to the HTTP API to their route's source
// topic, keyed by device so a device's readings stay in order.
type Publisher struct {
	writers map[string]*kafka.Writer
}

// NewPublisher returns a publisher for the routes of cfg.
func NewPublisher(cfg Config) *Publisher {
	p := &Publisher{writers: map[string]*kafka.Writer{}}
	for _, rc := range cfg.Routes {
		p.writers[rc.Name] = &kafka.Writer{
			Addr:         kafka.TCP(cfg.Kafka.Brokers...),
			Topic:        rc.Topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, // 202 means the reading is durable in Kafka
			BatchTimeout: 5 * time.Millisecond,
		}
	}
	return p
}

// Publish writes records synchronously.
func (p *Publisher) Publish(ctx context.Context, route string, records []httpapi.Record) error {
	w, ok := p.writers[route]
	if !ok {
		return fmt.Errorf("publish: unknown route %q", route)
	}
	msgs := make([]kafka.Message, len(records))
	for i, r := range records {
		msgs[i] = kafka.Message{Key: r.Key, Value: r.Value}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish to %s: %w", w.Topic, err)
	}
	return nil
}

// Close closes the writers.
func (p *Publisher) Close() error {
	var errs []error
	for _, w := range p.writers {
		errs = append(errs, w.Close())
	}
	return errors.Join(errs...)
}
