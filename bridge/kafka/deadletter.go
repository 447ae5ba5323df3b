package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	kgo "github.com/segmentio/kafka-go"
)

// Dead-letter record headers. The record keeps the original key, value and
// headers; these say why it is there, so an operator can fix the cause and
// replay it (fhir-bridge replay).
const (
	HeaderRoute           = "fhir-bridge-route"
	HeaderStage           = "fhir-bridge-stage"  // map, encode or deliver
	HeaderReason          = "fhir-bridge-reason" // short code: invalid-payload, http-422, ...
	HeaderError           = "fhir-bridge-error"  // the error text, naming field and rule; at most MaxErrorHeader bytes
	HeaderDevice          = "fhir-bridge-device" // Device/<id> when known
	HeaderSourceTopic     = "fhir-bridge-source-topic"
	HeaderSourcePartition = "fhir-bridge-source-partition"
	HeaderSourceOffset    = "fhir-bridge-source-offset"
	HeaderFirstAttempt    = "fhir-bridge-first-attempt" // RFC 3339 (nanoseconds), UTC
	HeaderLastAttempt     = "fhir-bridge-last-attempt"  // RFC 3339 (nanoseconds), UTC
	HeaderAttempts        = "fhir-bridge-attempts"
	// HeaderReadings lists the refused readings of a payload of several
	// ("0,3": indexes in the order the route's template finds them); absent
	// when the payload as a whole was refused. The payload's other readings
	// were delivered, and a replay finds them already present.
	HeaderReadings = "fhir-bridge-readings"
	HeaderReplayOf = "fhir-bridge-replay-of" // on replayed records: dead-letter topic/partition/offset
)

// MaxErrorHeader bounds the error text of a dead-letter record in bytes;
// longer text is cut (at a character boundary) and ends in "...".
const MaxErrorHeader = 2000

// bridgeHeaderPrefix starts every header the bridge sets. A producer's own
// headers with this prefix are dropped from dead-letter and replayed
// records, so they cannot pass for the bridge's.
const bridgeHeaderPrefix = "fhir-bridge-"

func isBridgeHeader(k string) bool { return strings.HasPrefix(k, bridgeHeaderPrefix) }

// DeadLetterWriter writes a route's rejected readings to its dead-letter
// topic (bridge.DeadLetters).
type DeadLetterWriter struct {
	route, topic string
	w            *kgo.Writer
	t            *kgo.Transport
}

var _ bridge.DeadLetters = (*DeadLetterWriter)(nil)

// NewDeadLetterWriter returns the dead-letter writer of route rc, writing
// to rc.DeadLetterTopic (created by the broker on first use if it allows
// auto-creation). Writes are synchronous and wait for all in-sync replicas,
// because the engine commits the source offset right after. getenv reads
// the SASL password.
func NewDeadLetterWriter(k bridge.KafkaConfig, rc bridge.RouteConfig, getenv func(string) string) (*DeadLetterWriter, error) {
	if rc.DeadLetterTopic == "" {
		return nil, fmt.Errorf("kafka: route %s: no dead-letter topic", rc.Name)
	}
	s, err := newSettings(k, getenv)
	if err != nil {
		return nil, fmt.Errorf("kafka: route %s: %w", rc.Name, err)
	}
	t := s.transport(0)
	return &DeadLetterWriter{
		route: rc.Name,
		topic: rc.DeadLetterTopic,
		t:     t,
		w: &kgo.Writer{
			Addr:                   kgo.TCP(s.brokers...),
			Transport:              t,
			Topic:                  rc.DeadLetterTopic,
			Balancer:               &kgo.Hash{}, // a device's rejections stay in order
			RequiredAcks:           kgo.RequireAll,
			BatchTimeout:           5 * time.Millisecond, // kafka-go's 1 s default would stall the partition on every rejection
			AllowAutoTopicCreation: true,
		},
	}, nil
}

// Write stores r with the reasons of d and returns the dead-letter topic.
// It is durable when it returns nil. Safe for concurrent use.
func (d *DeadLetterWriter) Write(ctx context.Context, r bridge.Reading, dl bridge.DeadLetter) (string, error) {
	if err := writeNew(ctx, d.w, deadLetterRecord(r, dl)); err != nil {
		return "", fmt.Errorf("kafka: route %s: dead-letter %s/%d/%d to %s: %w",
			d.route, r.Pos.Topic, r.Pos.Partition, r.Pos.Offset, d.topic, err)
	}
	return d.topic, nil
}

// Close flushes and closes the writer and its connections.
func (d *DeadLetterWriter) Close() error {
	err := d.w.Close()
	d.t.CloseIdleConnections()
	return err
}

// writeNew writes msgs with w, waiting for a topic the broker is still
// creating: kafka-go's Writer fails at once while the metadata of a new
// (auto-created) topic shows no partitions yet. Those errors come before
// anything is sent, so trying again cannot duplicate a record.
func writeNew(ctx context.Context, w *kgo.Writer, msgs ...kgo.Message) error {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil || attempt == 8 || !(errors.Is(err, kgo.UnknownTopicOrPartition) || errors.Is(err, kgo.LeaderNotAvailable)) {
			return err
		}
		if !sleep(ctx, wait) {
			return err
		}
		wait = min(2*wait, time.Second)
	}
}

// deadLetterRecord is the dead-letter record of r: its key, value and
// headers (without any fhir-bridge-* ones) followed by the bridge's.
func deadLetterRecord(r bridge.Reading, d bridge.DeadLetter) kgo.Message {
	h := make([]kgo.Header, 0, len(r.Headers)+11)
	for _, x := range r.Headers {
		if !isBridgeHeader(x.Key) {
			h = append(h, kgo.Header{Key: x.Key, Value: x.Value})
		}
	}
	add := func(k, v string) { h = append(h, kgo.Header{Key: k, Value: []byte(v)}) }
	add(HeaderRoute, d.Route)
	add(HeaderStage, d.Stage)
	add(HeaderReason, d.Reason)
	add(HeaderError, truncate(d.Err, MaxErrorHeader))
	if d.Device != "" {
		add(HeaderDevice, d.Device)
	}
	add(HeaderSourceTopic, r.Pos.Topic)
	add(HeaderSourcePartition, strconv.Itoa(r.Pos.Partition))
	add(HeaderSourceOffset, strconv.FormatInt(r.Pos.Offset, 10))
	add(HeaderFirstAttempt, d.First.UTC().Format(time.RFC3339Nano))
	add(HeaderLastAttempt, d.Last.UTC().Format(time.RFC3339Nano))
	add(HeaderAttempts, strconv.Itoa(d.Attempts))
	if len(d.Readings) > 0 {
		idx := make([]string, len(d.Readings))
		for i, n := range d.Readings {
			idx[i] = strconv.Itoa(n)
		}
		add(HeaderReadings, strings.Join(idx, ","))
	}
	return kgo.Message{Key: r.Key, Value: r.Value, Headers: h}
}

// truncate cuts s to at most n bytes plus "...", at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
