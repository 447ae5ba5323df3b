package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	kgo "github.com/segmentio/kafka-go"
)

// Check is the readiness check of the Kafka side: the cluster answers a
// metadata request and every topic in topics exists. The error names the
// first missing topic (a *missingTopicError). ctx bounds it.
func Check(ctx context.Context, k bridge.KafkaConfig, getenv func(string) string, topics []string) error {
	s, err := newSettings(k, getenv)
	if err != nil {
		return err
	}
	t := s.transport(0, topics...)
	defer t.CloseIdleConnections()
	return topicsExist(ctx, s.client(t), topics)
}

// missingTopicError says a topic does not exist (yet).
type missingTopicError struct{ topic string }

func (e *missingTopicError) Error() string {
	return fmt.Sprintf("kafka: topic %s does not exist", e.topic)
}

// Unwrap makes errors.Is(err, kgo.UnknownTopicOrPartition) hold.
func (e *missingTopicError) Unwrap() error { return kgo.UnknownTopicOrPartition }

// topicsExist asks for the metadata of topics without letting the broker
// auto-create them.
func topicsExist(ctx context.Context, client *kgo.Client, topics []string) error {
	meta, err := client.Metadata(ctx, &kgo.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("kafka: metadata: %w", err)
	}
	found := map[string]error{}
	for _, t := range meta.Topics {
		found[t.Name] = t.Error
	}
	for _, name := range topics {
		err, ok := found[name]
		switch {
		case !ok || errors.Is(err, kgo.UnknownTopicOrPartition):
			return &missingTopicError{topic: name}
		case err != nil:
			return fmt.Errorf("kafka: topic %s: %w", name, err)
		}
	}
	return nil
}
