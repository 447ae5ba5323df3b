package bridge

import (
	"context"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// DeadLetterSink receives rejected messages: a kafka-go Writer bound to the
// route's dead-letter topic. WriteMessages must be durable when it returns.
type DeadLetterSink interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Dead-letter record headers. The record keeps the original key, value and
// headers; these say why it is there, so an operator can fix the cause and
// replay it (fhir-bridge replay).
const (
	HeaderRoute           = "fhir-bridge-route"
	HeaderStage           = "fhir-bridge-stage"  // map or deliver
	HeaderReason          = "fhir-bridge-reason" // short code: invalid-payload, http-422, ...
	HeaderError           = "fhir-bridge-error"  // the error text, naming field and rule
	HeaderDevice          = "fhir-bridge-device" // Device/<id> when known
	HeaderSourceTopic     = "fhir-bridge-source-topic"
	HeaderSourcePartition = "fhir-bridge-source-partition"
	HeaderSourceOffset    = "fhir-bridge-source-offset"
	HeaderFirstAttempt    = "fhir-bridge-first-attempt" // RFC 3339
	HeaderLastAttempt     = "fhir-bridge-last-attempt"  // RFC 3339
	HeaderAttempts        = "fhir-bridge-attempts"
	HeaderReplayOf        = "fhir-bridge-replay-of" // on replayed records: dlq topic/partition/offset
)

// isBridgeHeader reports whether a header is one the bridge sets, which a
// replay must not carry back into the source topic.
func isBridgeHeader(k string) bool {
	return len(k) > len("fhir-bridge-") && k[:len("fhir-bridge-")] == "fhir-bridge-"
}

// deadLetter describes why a message was rejected.
type deadLetter struct {
	stage, reason, err, device string
	first, last                time.Time
	attempts                   int
}

// record builds the dead-letter record for msg.
func (d deadLetter) record(route string, msg kafka.Message) kafka.Message {
	h := make([]kafka.Header, 0, len(msg.Headers)+11)
	for _, x := range msg.Headers {
		if !isBridgeHeader(x.Key) {
			h = append(h, x)
		}
	}
	add := func(k, v string) { h = append(h, kafka.Header{Key: k, Value: []byte(v)}) }
	add(HeaderRoute, route)
	add(HeaderStage, d.stage)
	add(HeaderReason, d.reason)
	add(HeaderError, truncate(d.err, 2000))
	if d.device != "" {
		add(HeaderDevice, d.device)
	}
	add(HeaderSourceTopic, msg.Topic)
	add(HeaderSourcePartition, strconv.Itoa(msg.Partition))
	add(HeaderSourceOffset, strconv.FormatInt(msg.Offset, 10))
	add(HeaderFirstAttempt, d.first.UTC().Format(time.RFC3339Nano))
	add(HeaderLastAttempt, d.last.UTC().Format(time.RFC3339Nano))
	add(HeaderAttempts, strconv.Itoa(d.attempts))
	return kafka.Message{Key: msg.Key, Value: msg.Value, Headers: h}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// NewDeadLetterWriter returns a synchronous writer to a route's dead-letter
// topic: every write waits for all in-sync replicas, because the source
// offset is committed right after it.
func NewDeadLetterWriter(brokers []string, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond, // kafka-go's 1s default would stall the partition on every rejection
		AllowAutoTopicCreation: true,
	}
}
