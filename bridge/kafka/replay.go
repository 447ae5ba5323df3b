package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	kgo "github.com/segmentio/kafka-go"
)

// ReplayFilter selects dead letters to replay. Zero fields match everything.
type ReplayFilter struct {
	Since, Until time.Time // on the last delivery attempt
	Device       string    // "Device/<id>" or the bare id
	Reason       string    // e.g. invalid-payload, http-422
}

// Replayed is one dead letter a replay matched.
type Replayed struct {
	Partition   int
	Offset      int64
	Reason      string
	Stage       string
	Device      string
	LastAttempt time.Time
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	Scanned  int
	Matched  []Replayed
	Replayed int // 0 for a dry run
}

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// Kafka locates the cluster; Getenv reads its SASL password.
	Kafka  bridge.KafkaConfig
	Getenv func(string) string
	Route  bridge.RouteConfig
	Filter ReplayFilter
	DryRun bool
	// Audit records one "replayed" event per record re-injected. Required
	// unless DryRun.
	Audit bridge.AuditLog
	// Actor is who asked for the replay, for the audit trail.
	Actor string
	// Now stamps the audit events. Default: time.Now.
	Now func() time.Time
}

// Replay reads the route's dead-letter topic from its start to the end it
// has when the replay begins, and re-injects the records that match the
// filter into the route's source topic with their original key, value and
// headers (plus fhir-bridge-replay-of). The route then maps and delivers
// them again; conditional create makes a replay of an already delivered
// reading harmless. Each re-injected record is audited.
func Replay(ctx context.Context, o ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	if o.Now == nil {
		o.Now = time.Now
	}
	if !o.DryRun && o.Audit == nil {
		return res, errors.New("replay: an audit log is required")
	}
	s, err := newSettings(o.Kafka, o.Getenv)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	topic := o.Route.DeadLetterTopic
	t := s.transport(0)
	defer t.CloseIdleConnections()
	client := s.client(t)
	meta, err := client.Metadata(ctx, &kgo.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return res, fmt.Errorf("replay: metadata of %s: %w", topic, err)
	}
	var parts []kgo.OffsetRequest
	for _, t := range meta.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return res, fmt.Errorf("replay: dead-letter topic %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, kgo.FirstOffsetOf(p.ID), kgo.LastOffsetOf(p.ID))
		}
	}
	if len(parts) == 0 {
		return res, fmt.Errorf("replay: dead-letter topic %s not found", topic)
	}
	offs, err := client.ListOffsets(ctx, &kgo.ListOffsetsRequest{Topics: map[string][]kgo.OffsetRequest{topic: parts}})
	if err != nil {
		return res, fmt.Errorf("replay: offsets of %s: %w", topic, err)
	}
	w := &kgo.Writer{Addr: kgo.TCP(s.brokers...), Transport: t, Topic: o.Route.Topic, Balancer: &kgo.Hash{},
		RequiredAcks: kgo.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	ps := offs.Topics[topic]
	// ListOffsets answers in no particular order; scan partitions in order.
	slices.SortFunc(ps, func(a, b kgo.PartitionOffsets) int { return cmp.Compare(a.Partition, b.Partition) })
	for _, p := range ps {
		if p.Error != nil {
			return res, fmt.Errorf("replay: %s partition %d: %w", topic, p.Partition, p.Error)
		}
		if p.LastOffset <= p.FirstOffset {
			continue
		}
		if err := replayPartition(ctx, o, s, w, p, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

func replayPartition(ctx context.Context, o ReplayOptions, s settings, w *kgo.Writer, p kgo.PartitionOffsets, res *ReplayResult) error {
	topic := o.Route.DeadLetterTopic
	r := kgo.NewReader(kgo.ReaderConfig{Brokers: s.brokers, Dialer: s.dialer(), Topic: topic, Partition: p.Partition,
		MinBytes: readerMinBytes, MaxBytes: readerMaxBytes, MaxWait: readerMaxWait})
	defer r.Close()
	if err := r.SetOffset(p.FirstOffset); err != nil {
		return fmt.Errorf("replay: %s partition %d: %w", topic, p.Partition, err)
	}
	for {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("replay: read %s partition %d: %w", topic, p.Partition, err)
		}
		res.Scanned++
		rec := describeDeadLetter(msg)
		if o.Filter.matches(rec) {
			res.Matched = append(res.Matched, rec)
			if !o.DryRun {
				if err := reinject(ctx, o, w, msg, rec); err != nil {
					return err
				}
				res.Replayed++
			}
		}
		if msg.Offset >= p.LastOffset-1 {
			return nil
		}
	}
}

func reinject(ctx context.Context, o ReplayOptions, w *kgo.Writer, msg kgo.Message, rec Replayed) error {
	h := make([]kgo.Header, 0, len(msg.Headers)+1)
	for _, x := range msg.Headers {
		if !isBridgeHeader(x.Key) {
			h = append(h, x)
		}
	}
	ref := msg.Topic + "/" + strconv.Itoa(msg.Partition) + "/" + strconv.FormatInt(msg.Offset, 10)
	h = append(h, kgo.Header{Key: HeaderReplayOf, Value: []byte(ref)})
	if err := w.WriteMessages(ctx, kgo.Message{Key: msg.Key, Value: msg.Value, Headers: h}); err != nil {
		return fmt.Errorf("replay: write %s to %s: %w", ref, o.Route.Topic, err)
	}
	e := audit.Event{
		Time: o.Now(), Action: audit.ActionReplayed, Outcome: audit.OutcomeSuccess, Actor: o.Actor,
		Route: o.Route.Name, Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset,
		Device: rec.Device, Location: o.Route.Topic, Detail: rec.Stage + ": " + rec.Reason, CorrelationID: ref,
	}
	if err := o.Audit.Append(ctx, e); err != nil {
		return fmt.Errorf("replay: audit %s: %w", ref, err)
	}
	return nil
}

// describeDeadLetter reads the bridge's headers of a dead-letter record.
func describeDeadLetter(msg kgo.Message) Replayed {
	rec := Replayed{Partition: msg.Partition, Offset: msg.Offset}
	for _, h := range msg.Headers {
		switch h.Key {
		case HeaderReason:
			rec.Reason = string(h.Value)
		case HeaderStage:
			rec.Stage = string(h.Value)
		case HeaderDevice:
			rec.Device = string(h.Value)
		case HeaderLastAttempt:
			rec.LastAttempt, _ = time.Parse(time.RFC3339Nano, string(h.Value))
		}
	}
	return rec
}

func (f ReplayFilter) matches(r Replayed) bool {
	if !f.Since.IsZero() && r.LastAttempt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && r.LastAttempt.After(f.Until) {
		return false
	}
	if f.Reason != "" && r.Reason != f.Reason {
		return false
	}
	if f.Device != "" && r.Device != f.Device && r.Device != "Device/"+f.Device {
		return false
	}
	return true
}
