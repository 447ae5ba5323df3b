package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/httpapi"
	kgo "github.com/segmentio/kafka-go"
)

func TestPublish(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic := uniqueName("publish")
	createTopic(t, broker, topic, 1)
	cfg := bridge.Config{Kafka: testKafka(broker), Routes: []bridge.RouteConfig{testRoute("ingest", topic, "g", "")}}
	p, err := NewPublisher(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	recs := []httpapi.Record{{Key: []byte("hrm-1"), Value: []byte("a")}, {Key: []byte("hrm-1"), Value: []byte("b")}}
	if err := p.Publish(ctx, "ingest", recs); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "nope", recs); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown route: %v", err)
	}
	rd := kgo.NewReader(kgo.ReaderConfig{Brokers: []string{broker}, Topic: topic, MaxWait: readerMaxWait})
	defer rd.Close()
	for _, want := range recs {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != string(want.Key) || string(m.Value) != string(want.Value) {
			t.Errorf("read %q=%q, want %q=%q", m.Key, m.Value, want.Key, want.Value)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic, absent := uniqueName("check"), uniqueName("absent")
	createTopic(t, broker, topic, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	k := testKafka(broker)
	if err := Check(ctx, k, nil, []string{topic}); err != nil {
		t.Errorf("existing topic: %v", err)
	}
	err := Check(ctx, k, nil, []string{topic, absent})
	if err == nil || !strings.Contains(err.Error(), absent) || !errors.Is(err, kgo.UnknownTopicOrPartition) {
		t.Errorf("missing topic: %v", err)
	}
	// Check must not create what it looks for.
	if err := Check(ctx, k, nil, []string{absent}); err == nil {
		t.Error("the missing topic exists after a check")
	}

	short, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if err := Check(short, bridge.KafkaConfig{Brokers: []string{"127.0.0.1:1"}}, nil, []string{topic}); err == nil {
		t.Error("unreachable broker: no error")
	}
}
