package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/segmentio/kafka-go"
)

// Source is where a route reads messages: a kafka-go consumer-group Reader.
// CommitMessages must only be called for a message once it is fully handled;
// committing an offset commits every earlier offset of its partition.
type Source interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Sink delivers one FHIR resource with conditional create. Its errors say
// whether a retry may help through a Temporary() bool method (see fhir.Client).
type Sink interface {
	Create(ctx context.Context, resourceType string, body []byte, ifNoneExist string) (fhir.Result, error)
}

// AuditLog records audit events; Append is durable when it returns nil.
type AuditLog interface {
	Append(ctx context.Context, events ...audit.Event) error
}

// errStopped means processing was abandoned because the route is stopping;
// the message stays uncommitted and is redelivered after a restart.
var errStopped = errors.New("route stopping")

// route moves messages from one source to one sink, in order, one at a time:
// sequential processing keeps per-key order and makes "commit after done"
// exact, since a commit covers all earlier offsets of the partition.
type route struct {
	name      string
	src       Source
	sink      Sink        // FHIR destinations; used when dest is nil
	dest      destination // nil: FHIR through sink
	batch     batching
	closeDest func() error
	audit     AuditLog
	mapper    Mapper
	dlq       DeadLetterSink // nil: rejected messages are only audited
	dlqTopic  string
	codec     *fhir.Codec
	idSystem  string
	log       *slog.Logger
	stats     *counters
	backoff   backoff
	grace     time.Duration
	now       func() time.Time
}

// run processes messages until ctx ends. It returns nil on a requested stop.
func (r *route) run(ctx context.Context) error {
	for {
		msgs, err := r.fetchBatch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("route %s: fetch: %w", r.name, err)
		}
		r.stats.received.Add(int64(len(msgs)))
		started := time.Now()
		err = r.handleBatch(ctx, msgs)
		if err == nil {
			r.stats.handledMicros.Add(time.Since(started).Microseconds())
			r.stats.handledBatches.Add(1)
		}
		if err != nil {
			if errors.Is(err, errStopped) || ctx.Err() != nil {
				r.log.Info("stopped with messages in flight; they will be redelivered",
					"route", r.name, "topic", msgs[0].Topic, "partition", msgs[0].Partition, "offset", msgs[0].Offset, "messages", len(msgs))
				return nil
			}
			return fmt.Errorf("route %s: %w", r.name, err)
		}
	}
}

// graceContext is cancelled grace after parent ends: work in flight at a stop
// may finish, but not forever.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

// handle takes one message to a final state; see handleBatch.
func (r *route) handle(ctx context.Context, msg kafka.Message) error {
	return r.handleBatch(ctx, []kafka.Message{msg})
}

// msgState is the progress of one message through handleBatch.
type msgState struct {
	msg      kafka.Message
	base     audit.Event
	started  time.Time
	readings []mapped
	skipped  []audit.Event
	mapErr   error
	results  []delivery
}

// delivery is the outcome of one unit: err nil means delivered; otherwise it
// wraps errPermanent.
type delivery struct {
	res      sent
	attempts int
	err      error
}

// handleBatch takes messages to a final state (every reading delivered or
// rejected), records them durably and commits their offsets. It returns an
// error only if the messages must not be committed.
func (r *route) handleBatch(ctx context.Context, msgs []kafka.Message) error {
	work, cancel := graceContext(ctx, r.grace)
	defer cancel()

	states := make([]*msgState, len(msgs))
	var units []mapped
	for i, msg := range msgs {
		st := &msgState{msg: msg, started: r.now(), base: audit.Event{
			Actor:         audit.ActorSystem,
			Route:         r.name,
			Topic:         msg.Topic,
			Partition:     msg.Partition,
			Offset:        msg.Offset,
			CorrelationID: correlationID(msg),
		}}
		st.readings, st.skipped, st.mapErr = r.mapMessage(msg, st.base)
		units = append(units, st.readings...)
		states[i] = st
	}
	results, err := r.deliverAll(ctx, work, units)
	if err != nil {
		return err
	}
	var events []audit.Event
	for _, st := range states {
		st.results, results = results[:len(st.readings)], results[len(st.readings):]
		evs, err := r.finish(ctx, work, st)
		if err != nil {
			return err
		}
		events = append(events, evs...)
	}
	if err := r.record(ctx, work, events); err != nil {
		return err
	}
	if err := r.src.CommitMessages(work, msgs...); err != nil {
		// Not fatal: the readings are delivered and audited; a redelivery
		// after a rebalance is absorbed by conditional create.
		r.log.Warn("commit failed; messages may be redelivered", "route", r.name, "messages", len(msgs),
			"topic", msgs[0].Topic, "partition", msgs[0].Partition, "offset", msgs[0].Offset, "err", err)
	}
	return nil
}

// finish builds one message's audit events from its mapping and delivery
// results, writes its dead letter when something was rejected, and counts it.
func (r *route) finish(ctx, work context.Context, st *msgState) ([]audit.Event, error) {
	event := func(ref audit.Event, action, outcome string) audit.Event {
		e := ref
		e.Time, e.Action, e.Outcome = r.now(), action, outcome
		return e
	}
	events := []audit.Event{event(st.base, audit.ActionReceived, audit.OutcomeSuccess)}
	events[0].Time = st.started
	rejected := 0
	var status int
	var detail string
	dl := deadLetter{first: st.started, attempts: 1}
	if st.mapErr != nil {
		e := event(st.base, audit.ActionRejected, audit.OutcomeFailure)
		e.Detail = "map: " + st.mapErr.Error()
		events = append(events, e)
		rejected, detail = 1, e.Detail
		dl.stage, dl.reason, dl.err = "map", "invalid-payload", st.mapErr.Error()
	} else {
		// The references are known only after mapping; the received event
		// gets the first reading's, so a search by patient or device finds the
		// whole history.
		first := st.base
		if len(st.readings) > 0 {
			first = st.readings[0].ref
		} else if len(st.skipped) > 0 {
			first = st.skipped[0]
		}
		events[0].Device, events[0].Patient, events[0].Resource = first.Device, first.Patient, first.Resource
		for _, e := range st.skipped {
			events = append(events, event(e, audit.ActionSkipped, audit.OutcomeSuccess))
		}
	}
	for i, rd := range st.readings {
		events = append(events, event(rd.ref, audit.ActionMapped, audit.OutcomeSuccess))
		d := st.results[i]
		if d.attempts > 1 {
			e := event(rd.ref, audit.ActionRetried, audit.OutcomeFailure)
			e.Detail = strconv.Itoa(d.attempts-1) + " retryable failure(s) before the final answer"
			events = append(events, e)
		}
		if d.err != nil {
			e := event(rd.ref, audit.ActionRejected, audit.OutcomeFailure)
			e.Detail = "deliver: " + d.err.Error()
			e.Status = statusOf(d.err)
			events = append(events, e)
			rejected++
			status, detail = e.Status, e.Detail
			dl.stage, dl.err, dl.device, dl.attempts = "deliver", d.err.Error(), rd.ref.Device, max(dl.attempts, d.attempts)
			dl.reason = reasonOf(d.err)
			continue
		}
		e := event(rd.ref, audit.ActionDelivered, audit.OutcomeSuccess)
		e.Status, e.Location = d.res.status, d.res.location
		events = append(events, e)
	}
	if rejected > 0 && r.dlq != nil {
		dl.last = r.now()
		if dl.device == "" && len(st.readings) > 0 {
			dl.device = st.readings[0].ref.Device
		}
		if err := r.retry(ctx, "dead-letter write", func() error {
			return r.dlq.WriteMessages(work, dl.record(r.name, st.msg))
		}); err != nil {
			return nil, err
		}
		e := event(st.base, audit.ActionDeadLettered, audit.OutcomeFailure)
		e.Location, e.Detail = r.dlqTopic, dl.stage+": "+dl.reason
		events = append(events, e)
	}
	if rejected == 0 {
		r.stats.delivered.Add(1)
	} else {
		r.stats.deadLettered.Add(1)
		r.log.Warn("reading rejected", "route", r.name, "topic", st.msg.Topic, "partition", st.msg.Partition,
			"offset", st.msg.Offset, "readings", len(st.readings), "rejected", rejected, "status", status, "stage", stage(detail))
	}
	return events, nil
}

// deliverAll delivers units, in a batch when the destination supports it,
// and records each success where the destination keeps a ledger (before the
// commit, so a redelivery is recognised). It fails only when the route stops.
func (r *route) deliverAll(ctx, work context.Context, units []mapped) ([]delivery, error) {
	if err := r.upsertDevices(ctx, work, units); err != nil {
		return nil, err
	}
	if bs, ok := r.batchSink(); ok && len(units) > 1 {
		return r.deliverBatch(ctx, work, bs, units)
	}
	if r.parallelDest() && len(units) > 1 {
		return r.deliverByKey(ctx, work, units)
	}
	out := make([]delivery, len(units))
	for i, u := range units {
		res, attempts, err := r.deliver(ctx, work, u)
		if err != nil && !errors.Is(err, errPermanent) {
			return nil, err
		}
		out[i] = delivery{res: res, attempts: attempts, err: err}
		if err == nil {
			if err := r.retry(ctx, "delivery ledger", func() error { return r.destination().record(work, u) }); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// mapped is one unit ready to deliver (an Observation, an ORU^R01), with
// its audit references.
type mapped struct {
	body []byte
	// key is the FHIR If-None-Exist search, or the MLLP shard key (patient).
	key string
	// id is the unit's identity at the destination: the Observation
	// identifier, or MSH-10.
	id  string
	ref audit.Event // base event with Device, Patient and Resource set
	// deviceID and deviceBody, when set, are a Device resource to write
	// before this unit (FHIR routes with upsert_devices).
	deviceID   string
	deviceBody []byte
}

// mapMessage maps a payload and prepares its readings for the route's
// destination. Errors name the field at fault; a message whose payload cannot
// be mapped in full is rejected whole. skipped are audit events for readings
// the destination does not carry (e.g. a fridge reading on an HL7 route).
func (r *route) mapMessage(msg kafka.Message, base audit.Event) (out []mapped, skipped []audit.Event, err error) {
	ms, err := r.mapper.Map(msg.Value)
	if err != nil {
		return nil, nil, err
	}
	if len(ms) == 0 {
		return nil, nil, errors.New("no reading in the payload matched the route's templates")
	}
	return r.destination().prepare(ms, base)
}

func (r *route) destination() destination {
	if r.dest != nil {
		return r.dest
	}
	return &fhirDest{sink: r.sink, codec: r.codec, idSystem: r.idSystem}
}

func readingErr(i, n int, err error) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("reading %d of %d: %w", i+1, n, err)
}

var errPermanent = errors.New("permanent failure")

// deliver posts until the sink accepts, refuses for good (errPermanent), or
// the route stops (errStopped), and says how many attempts it took. Between
// attempts the partition waits: later readings of the same device must not
// overtake this one.
func (r *route) deliver(ctx, work context.Context, m mapped) (sent, int, error) {
	dest := r.destination()
	for attempt := 1; ; attempt++ {
		res, err := dest.send(work, m)
		if err == nil {
			return res, attempt, nil
		}
		if work.Err() != nil {
			// Our own stop cut the request short; that says nothing about the reading.
			return sent{}, attempt, errStopped
		}
		if !temporary(err) {
			return sent{}, attempt, fmt.Errorf("%w: %w", errPermanent, err)
		}
		if ctx.Err() != nil {
			return sent{}, attempt, errStopped
		}
		r.stats.retries.Add(1)
		wait := r.backoff.wait(attempt, err)
		attrs := []any{"route", r.name, "topic", m.ref.Topic, "partition", m.ref.Partition,
			"offset", m.ref.Offset, "attempt", attempt, "wait", wait, "status", statusOf(err)}
		var te *fhir.TransportError
		if errors.As(err, &te) {
			// Connection and token errors name hosts and OAuth codes, never
			// readings; they are what an operator needs to act on.
			attrs = append(attrs, "err", te.Error())
		}
		r.log.Warn("delivery failed; retrying", attrs...)
		if !sleep(ctx, wait) {
			return sent{}, attempt, errStopped
		}
	}
}

// record appends events, retrying while the audit store is unreachable: an
// offset is never committed without its audit trail.
func (r *route) record(ctx, work context.Context, events []audit.Event) error {
	return r.retry(ctx, "audit write", func() error { return r.audit.Append(work, events...) })
}

// retry runs op until it succeeds or the route stops, backing off between
// attempts. It is for the bridge's own infrastructure (audit store,
// dead-letter topic): their failures are never the reading's fault, so the
// partition waits rather than skipping anything.
func (r *route) retry(ctx context.Context, what string, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errStopped
		}
		wait := r.backoff.wait(attempt, nil)
		r.log.Warn(what+" failed; retrying", "route", r.name, "attempt", attempt, "wait", wait, "err", err)
		if !sleep(ctx, wait) {
			return errStopped
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reasonOf is the dead-letter reason code of a permanent delivery failure.
func reasonOf(err error) string {
	var se *fhir.StatusError
	if errors.As(err, &se) {
		return "http-" + strconv.Itoa(se.Status)
	}
	var ae *hl7.AckError
	if errors.As(err, &ae) {
		return "ack-" + ae.ACK.Code
	}
	return "permanent"
}

func statusOf(err error) int {
	var se *fhir.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// stage is the prefix of an audit detail ("map", "deliver"): logs get the
// stage, never the detail, which may quote values.
func stage(detail string) string {
	for i := 0; i < len(detail); i++ {
		if detail[i] == ':' {
			return detail[:i]
		}
	}
	return detail
}

// correlationID takes the producer's correlation-id header when it is short
// printable text; anything else (binary, control bytes) falls back to the
// source position, so a hostile header cannot poison the audit trail.
func correlationID(msg kafka.Message) string {
	for _, h := range msg.Headers {
		if h.Key == "correlation-id" && len(h.Value) > 0 && len(h.Value) <= 128 && printable(h.Value) {
			return string(h.Value)
		}
	}
	return msg.Topic + "/" + strconv.Itoa(msg.Partition) + "/" + strconv.FormatInt(msg.Offset, 10)
}

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// upsertDevices writes the Device resources new devices need before their
// Observations, so an EHR that enforces references accepts them. Temporary
// failures are retried while the partition waits; a permanent refusal is
// logged once per device and the Observations go on (if the EHR needs the
// Device, their own refusal dead-letters them with its reason).
func (r *route) upsertDevices(ctx, work context.Context, units []mapped) error {
	d, ok := r.destination().(*fhirDest)
	if !ok || !d.upsert {
		return nil
	}
	ds, ok := d.sink.(DeviceSink)
	if !ok {
		return nil
	}
	for _, u := range units {
		if u.deviceID == "" {
			continue
		}
		if _, done := d.devices.Load(u.deviceID); done {
			continue
		}
		for attempt := 1; ; attempt++ {
			_, err := ds.Update(work, "Device", u.deviceID, u.deviceBody)
			if err == nil {
				break
			}
			if work.Err() != nil || ctx.Err() != nil {
				return errStopped
			}
			if !temporary(err) {
				r.log.Warn("device upsert refused; Observations are sent without it", "route", r.name, "status", statusOf(err))
				break
			}
			if !sleep(ctx, r.backoff.wait(attempt, err)) {
				return errStopped
			}
		}
		d.devices.Store(u.deviceID, true)
	}
	return nil
}
