package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// route moves readings from one source to one sink. Each assigned partition
// runs its own pipeline (a lane):
//
//	read -> map+encode -> deliver -> dead-letter+audit+ack
//
// with one goroutine per stage, so the mapping of batch n+1 overlaps the
// delivery of batch n and the audit of batch n-1. Delivery is in order per
// partition (and so per key); commits are in offset order (tracker). An
// in-flight budget per partition gives back-pressure, and a partition whose
// destination asks to retry holds only itself.
type route struct {
	name   string
	src    Source
	mapper Mapper
	enc    Encoder
	sink   Sink
	dlq    DeadLetters // nil: refused readings are only audited
	audit  AuditLog
	batch  Batching
	limits InFlightConfig
	retry  Retry
	grace  time.Duration
	obs    Observer
	tracer trace.Tracer
	// spanContext reads a producer's span context from headers; nil: none.
	spanContext func([]Header) trace.SpanContext
	log         *slog.Logger
	now         func() time.Time
	stats       *counters
}

// run consumes until ctx ends (nil) or a partition fails (the error).
func (r *route) run(ctx context.Context) error {
	r.obs.RouteState(r.name, "flowing", "")
	defer r.obs.RouteState(r.name, "stopped", "")
	err := r.src.Consume(ctx, r.claim)
	if err == nil || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return nil
	}
	return fmt.Errorf("route %s: %w", r.name, err)
}

// item is one record on its way through a lane: a payload of one reading or
// of several (a vendor's upload, a MedTech or template payload).
type item struct {
	rd   Reading
	base audit.Event
	// Set by the map+encode stage: the units, the measurements the
	// destination does not carry, the readings refused on their own, or
	// why the payload as a whole was refused.
	units   []Unit
	readers []int // payload index of each measurement given to the encoder
	skipped []audit.Event
	refused []refusedReading
	err     error
	stage   string // StageMap when err is set
	// Set by the deliver stage, one per unit.
	outcomes []Outcome
}

// refusedReading is a reading of a payload refused at mapping or encoding;
// the payload's other readings go on.
type refusedReading struct {
	index int // among the payload's readings
	ref   audit.Event
	stage string
	err   error
}

// batch is readings of one partition that move through the lane together.
type batch struct {
	items []*item
	bytes int
}

// lane is the pipeline of one claimed partition.
type lane struct {
	r       *route
	c       Claim
	lt      lifetime
	budget  *budget
	track   *tracker
	commits *committer
	// cut is the first offset of the first batch abandoned because of a
	// stop (math.MaxInt64 while none is): that batch and every later one
	// are not delivered, audited or committed; they are redelivered after
	// the restart or rebalance. Earlier batches still finish.
	cut      atomic.Int64
	retrying atomic.Bool
}

// claim runs a lane until ctx ends (the partition was revoked or the route
// stops), then lets work in flight finish within the grace and commits it.
func (r *route) claim(ctx context.Context, c Claim) error {
	lt, cancel := newLifetime(ctx, r.grace)
	defer cancel()
	l := &lane{r: r, c: c, lt: lt, budget: newBudget(r.limits.MaxReadings, r.limits.MaxBytes), track: newTracker()}
	l.cut.Store(math.MaxInt64)
	l.commits = newCommitter(l)
	go l.commits.run()
	r.obs.Assigned(r.name, c.Topic(), c.Partition(), true)
	defer r.obs.Assigned(r.name, c.Topic(), c.Partition(), false)

	read := make(chan *batch, 1)
	encoded := make(chan *batch, 1)
	delivered := make(chan *batch, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(read)
		readErr <- l.read(read)
	}()
	go func() {
		defer close(encoded)
		for b := range read {
			l.encode(b)
			encoded <- b
		}
	}()
	go func() {
		defer close(delivered)
		for b := range encoded {
			l.deliver(b)
			delivered <- b
		}
	}()
	for b := range delivered {
		l.finish(b)
	}
	l.commits.close()
	if l.cut.Load() != math.MaxInt64 {
		r.log.Info("stopped with readings in flight; they will be redelivered",
			"route", r.name, "topic", c.Topic(), "partition", c.Partition())
	}
	return <-readErr
}

// read assembles batches until the lane stops. It returns nil on a stop and
// the error when the partition cannot be read.
func (l *lane) read(out chan<- *batch) error {
	for {
		b, err := l.next()
		if b != nil && len(b.items) > 0 {
			out <- b
		}
		if err != nil {
			if l.lt.stop.Err() != nil {
				return nil
			}
			return fmt.Errorf("topic %s partition %d: read: %w", l.c.Topic(), l.c.Partition(), err)
		}
	}
}

// next reads one batch: the first reading whenever it comes, then those
// that arrive within the linger, up to the batch limits, and no further
// than the in-flight budget allows. A batch with readings is returned even
// with an error.
func (l *lane) next() (*batch, error) {
	b := &batch{}
	var lctx context.Context = l.lt.stop
	for len(b.items) < l.r.batch.MaxReadings && b.bytes < l.r.batch.MaxBytes {
		if !l.budget.room() {
			if len(b.items) > 0 {
				return b, nil // let it go; the budget frees as batches finish
			}
			if err := l.budget.wait(l.lt.stop); err != nil {
				return b, err
			}
		}
		rd, err := l.c.Read(lctx)
		if err != nil {
			if len(b.items) > 0 && l.lt.stop.Err() == nil {
				return b, nil // linger over
			}
			return b, err
		}
		if len(b.items) == 0 {
			linger := max(l.r.batch.Linger, time.Millisecond)
			ctx, cancel := context.WithTimeout(l.lt.stop, linger)
			defer cancel()
			lctx = ctx
		}
		l.budget.take(len(rd.Value))
		l.track.track(rd.Pos.Offset)
		b.items = append(b.items, &item{rd: rd})
		b.bytes += len(rd.Value)
	}
	return b, nil
}

// encode maps and encodes every reading of b. A reading that fails is
// rejected on its own; the others go on.
// abandon cuts b and every later batch of the lane.
func (l *lane) abandon(b *batch) {
	first := b.items[0].rd.Pos.Offset
	for {
		cur := l.cut.Load()
		if first >= cur || l.cut.CompareAndSwap(cur, first) {
			return
		}
	}
}

// abandoned reports whether b was cut.
func (l *lane) abandoned(b *batch) bool { return b.items[0].rd.Pos.Offset >= l.cut.Load() }

func (l *lane) encode(b *batch) {
	if l.abandoned(b) {
		return
	}
	r := l.r
	r.stats.received.Add(int64(len(b.items)))
	r.obs.Received(r.name, l.c.Partition(), len(b.items))
	n, by := l.budget.usage()
	r.obs.InFlight(r.name, l.c.Partition(), n, by)
	_, span := l.span(StageMap, b)
	defer span.End()
	var mapTime, encTime time.Duration
	for _, it := range b.items {
		it.base = audit.Event{Actor: audit.ActorSystem, Route: r.name, Topic: it.rd.Pos.Topic,
			Partition: it.rd.Pos.Partition, Offset: it.rd.Pos.Offset, CorrelationID: correlationID(it.rd)}
		t0 := time.Now()
		results, err := r.mapper.MapEach(it.rd.Value)
		if err == nil && len(results) == 0 {
			err = errors.New("no reading in the payload matched the route's templates")
		}
		t1 := time.Now()
		mapTime += t1.Sub(t0)
		if err != nil {
			it.err, it.stage = err, StageMap
			continue
		}
		ms := make([]mappers.Measurement, 0, len(results))
		for _, res := range results {
			if res.Err != nil {
				it.refused = append(it.refused, refusedReading{index: res.Index, ref: it.base, stage: StageMap, err: res.Err})
				continue
			}
			ms = append(ms, res.Measurement)
			it.readers = append(it.readers, res.Index)
		}
		if len(ms) == 0 {
			continue
		}
		enc := r.enc.Encode(ms, it.base)
		encTime += time.Since(t1)
		it.units, it.skipped = enc.Units, enc.Skipped
		for _, rf := range enc.Refused {
			err := rf.Err
			if len(results) > 1 {
				err = fmt.Errorf("reading %d of %d: %w", it.readers[rf.Index]+1, len(results), err)
			}
			it.refused = append(it.refused, refusedReading{index: it.readers[rf.Index], ref: rf.Ref, stage: StageEncode, err: err})
		}
	}
	r.obs.Stage(r.name, StageMap, mapTime, len(b.items))
	r.obs.Stage(r.name, StageEncode, encTime, len(b.items))
}

// retryLater is the error of a delivery attempt that left units to retry:
// the Retry helper waits (honouring the destination's Retry-After through
// Wait) and tries them again.
type retryLater struct {
	o     Outcome
	units int
}

func (e *retryLater) Error() string {
	return fmt.Sprintf("%d unit(s) to retry (%s)", e.units, e.o.Reason)
}
func (e *retryLater) Unwrap() error       { return e.o.Err }
func (e *retryLater) Wait() time.Duration { return e.o.Wait }

// deliver hands b's units to the sink until each has a final outcome.
// Units the destination asks to retry are retried, alone, after a backoff
// while the partition waits: later readings of the same device must not
// overtake them. A stop abandons the batch.
func (l *lane) deliver(b *batch) {
	if l.abandoned(b) || l.lt.stop.Err() != nil {
		// A stop finishes deliveries under way, not queued ones: they are
		// redelivered, and the partition is released sooner.
		l.abandon(b)
		return
	}
	r := l.r
	var units []Unit
	var owner []*item
	var slot []int // owner[i].outcomes[slot[i]] is unit i's outcome
	for _, it := range b.items {
		if it.err == nil {
			it.outcomes = make([]Outcome, len(it.units))
			units = append(units, it.units...)
			for k := range it.units {
				owner, slot = append(owner, it), append(slot, k)
			}
		}
	}
	if len(units) == 0 {
		return
	}
	_, span := l.span(StageDeliver, b)
	defer span.End()
	started := time.Now()
	outs := make([]Outcome, len(units))
	attempts := make([]int, len(units))
	pending := make([]int, len(units))
	for i := range pending {
		pending[i] = i
	}
	_, err := r.retry.Do(l.lt, func(ctx context.Context) error {
		batchUnits := make([]Unit, len(pending))
		for j, i := range pending {
			batchUnits[j] = units[i]
		}
		got := r.sink.Deliver(ctx, batchUnits)
		if err := ctx.Err(); err != nil {
			// Our own stop cut the attempt short: that says nothing about
			// the units.
			return err
		}
		now := time.Now()
		var again []int
		var worst Outcome
		for j, i := range pending {
			o := got[j]
			attempts[i]++
			o.Attempts = attempts[i]
			outs[i] = o
			r.obs.Outcome(r.name, r.sink.Kind(), o, latency(now, owner[i].rd.Time))
			if o.Kind == RetryLater {
				again = append(again, i)
				if o.Wait >= worst.Wait {
					worst = o
				}
			}
		}
		pending = again
		if len(pending) == 0 {
			return nil
		}
		return &retryLater{o: worst, units: len(pending)}
	}, func(attempt int, wait time.Duration, err error) {
		r.stats.retries.Add(1)
		var rl *retryLater
		reason := "unknown"
		status := 0
		if errors.As(err, &rl) {
			reason, status = rl.o.Reason, rl.o.Status
		}
		r.obs.Retry(r.name, StageDeliver, reason)
		if !l.retrying.Swap(true) {
			r.obs.RouteState(r.name, "retrying", reason)
		}
		first := b.items[0].rd.Pos
		r.log.Warn("delivery failed; retrying", "route", r.name, "dest", r.sink.Kind(), "topic", first.Topic,
			"partition", first.Partition, "offset", first.Offset, "units", len(pending), "attempt", attempt,
			"wait", wait, "status", status, "reason", reason, "err", safeErr(err))
	})
	if l.retrying.Swap(false) {
		r.obs.RouteState(r.name, "flowing", "")
	}
	if err != nil {
		l.abandon(b)
		return
	}
	for i, o := range outs {
		owner[i].outcomes[slot[i]] = o
	}
	r.obs.Stage(r.name, StageDeliver, time.Since(started), len(b.items))
}

func latency(now, produced time.Time) time.Duration {
	if produced.IsZero() {
		return 0
	}
	return now.Sub(produced)
}

// finish dead-letters b's rejected readings, appends the audit trail, and
// then acknowledges the readings and commits the partition as far as every
// earlier reading is done too.
func (l *lane) finish(b *batch) {
	defer l.release(b)
	if l.abandoned(b) {
		return
	}
	r := l.r
	_, span := l.span(StageAudit, b)
	defer span.End()
	var events []audit.Event
	for _, it := range b.items {
		evs, err := l.settle(it)
		if err != nil {
			l.abandon(b)
			return
		}
		events = append(events, evs...)
	}
	started := time.Now()
	if _, err := r.retry.Do(l.lt, func(ctx context.Context) error { return r.audit.Append(ctx, events...) },
		l.infraRetry("audit", "audit write")); err != nil {
		l.abandon(b)
		return
	}
	r.obs.Stage(r.name, StageAudit, time.Since(started), len(b.items))
	var next int64
	advanced := false
	for _, it := range b.items {
		if n, ok := l.track.ack(it.rd.Pos.Offset); ok {
			next, advanced = n, true
		}
	}
	if advanced {
		l.commits.ready(next)
	}
}

// committer commits a lane's offsets off the pipeline's path: a commit is a
// round trip to the group coordinator (tens of milliseconds under load), so
// the finisher only records how far the partition is done and the
// committer commits the newest such offset, once per round trip. Only
// offsets whose readings are delivered and audited are ever handed to it.
type committer struct {
	l    *lane
	mu   sync.Mutex
	want int64 // newest offset ready to commit
	done int64 // newest offset committed
	kick chan struct{}
	stop chan struct{}
	quit chan struct{}
}

func newCommitter(l *lane) *committer {
	return &committer{l: l, kick: make(chan struct{}, 1), stop: make(chan struct{}), quit: make(chan struct{})}
}

// ready hands over next (the first offset not done).
func (c *committer) ready(next int64) {
	c.mu.Lock()
	c.want = max(c.want, next)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run commits until close, then commits what is left once more.
func (c *committer) run() {
	defer close(c.quit)
	for {
		select {
		case <-c.kick:
			c.commit()
		case <-c.stop:
			c.commit()
			return
		}
	}
}

// close stops run after a last commit and waits for it.
func (c *committer) close() {
	close(c.stop)
	<-c.quit
}

func (c *committer) commit() {
	l, r := c.l, c.l.r
	c.mu.Lock()
	next, done := c.want, c.done
	c.mu.Unlock()
	if next <= done {
		return
	}
	started := time.Now()
	if err := l.c.Commit(l.lt.work, next); err != nil {
		// Not fatal: the readings are delivered and audited; the next
		// commit covers them, and a redelivery after a rebalance is
		// absorbed by conditional create or the ledger.
		r.obs.Retry(r.name, StageCommit, "commit")
		r.log.Warn("commit failed; readings may be redelivered", "route", r.name, "topic", l.c.Topic(),
			"partition", l.c.Partition(), "offset", next, "err", err)
		return
	}
	c.mu.Lock()
	c.done = max(c.done, next)
	c.mu.Unlock()
	r.obs.Stage(r.name, StageCommit, time.Since(started), 1)
	r.obs.Committed(r.name, l.c.Topic(), l.c.Partition(), next, l.c.HighWater())
}

func (l *lane) release(b *batch) {
	l.budget.give(len(b.items), b.bytes)
	n, by := l.budget.usage()
	l.r.obs.InFlight(l.r.name, l.c.Partition(), n, by)
}

// infraRetry logs and counts a retry of the bridge's own infrastructure
// (audit store, dead-letter topic): never the reading's fault, so the
// partition waits rather than skipping anything.
func (l *lane) infraRetry(what, desc string) func(int, time.Duration, error) {
	return func(attempt int, wait time.Duration, err error) {
		l.r.obs.Retry(l.r.name, what, "unavailable")
		l.r.log.Warn(desc+" failed; retrying", "route", l.r.name, "partition", l.c.Partition(),
			"attempt", attempt, "wait", wait, "reason", "unavailable", "err", err)
	}
}

// settle builds a reading's audit rows, one per outcome: each unit
// delivered or refused, each measurement skipped, or the whole reading
// refused at mapping. A row carries the receive time, the mapping result
// (device, patient and resource references) and the destination's answer
// (status, location or ACK, attempts). When something was refused, the
// reading's message goes to the dead-letter topic and the refusal rows
// become dead-lettered rows naming it.
func (l *lane) settle(it *item) ([]audit.Event, error) {
	r := l.r
	kind := r.sink.Kind()
	received := it.rd.Received
	if received.IsZero() {
		received = r.now()
	}
	row := func(ref audit.Event, action, outcome string) audit.Event {
		e := ref
		e.Time, e.Action, e.Outcome, e.ReceivedAt = r.now(), action, outcome, received
		return e
	}
	var events []audit.Event
	var refused []int // indexes of refusal rows in events
	var dl *DeadLetter
	var refusal error // the first destination refusal, for the log
	reject := func(e audit.Event, stage, msg string) {
		refused = append(refused, len(events))
		events = append(events, e)
		if dl == nil {
			dl = &DeadLetter{Route: r.name, Stage: stage, Reason: e.Reason, Err: msg, Device: e.Device,
				First: received, Attempts: max(e.Attempts, 1)}
		}
		dl.Attempts = max(dl.Attempts, e.Attempts)
	}
	if it.err != nil {
		e := row(it.base, audit.ActionRejected, audit.OutcomeFailure)
		e.Detail, e.Stage, e.Reason = it.err.Error(), it.stage, "invalid-payload"
		reject(e, it.stage, it.err.Error())
	}
	var readings []int // payload indexes of refused readings
	for _, rf := range it.refused {
		e := row(rf.ref, audit.ActionRejected, audit.OutcomeFailure)
		e.Detail, e.Stage, e.Reason = rf.err.Error(), rf.stage, "invalid-payload"
		reject(e, rf.stage, rf.err.Error())
		readings = append(readings, rf.index)
	}
	for _, sk := range it.skipped {
		e := row(sk, audit.ActionSkipped, audit.OutcomeSuccess)
		e.DestKind = kind
		events = append(events, e)
	}
	for i, u := range it.units {
		o := it.outcomes[i]
		if o.Kind == Refused {
			e := row(u.Ref, audit.ActionRejected, audit.OutcomeFailure)
			e.Detail, e.Status, e.Stage, e.DestKind, e.Reason, e.Attempts = o.Err.Error(), o.Status, StageDeliver, kind, o.Reason, o.Attempts
			reject(e, StageDeliver, o.Err.Error())
			for _, m := range u.Measurements {
				readings = append(readings, it.readers[m])
			}
			if refusal == nil {
				refusal = o.Err
			}
			continue
		}
		e := row(u.Ref, audit.ActionDelivered, audit.OutcomeSuccess)
		e.Status, e.Location, e.Stage, e.DestKind, e.Attempts = o.Status, o.Location, StageDeliver, kind, o.Attempts
		switch {
		case o.Kind == AlreadyPresent:
			e.Reason = "already-present"
		case o.Kind == Revised || mappers.RevisesStatus(u.Status):
			e.Action = audit.ActionCorrected
			if u.Status == "entered-in-error" {
				e.Action = audit.ActionRetracted
			}
			prev := o.PreviousRevision
			if prev == "" {
				prev = "unknown"
			}
			e.Detail = "revision " + prev + " -> " + u.Revision
		}
		if o.Ack != "" {
			e.Location = "MSA-1 " + o.Ack // the engine's answer, for people; DestKind says it is MLLP
		}
		events = append(events, e)
	}
	if dl == nil {
		r.stats.delivered.Add(1)
		return events, nil
	}
	if it.err == nil {
		slices.Sort(readings)
		dl.Readings = slices.Compact(readings)
	}
	r.stats.deadLettered.Add(1)
	r.obs.DeadLettered(r.name, dl.Stage, dl.Reason)
	attrs := []any{"route", r.name, "topic", it.rd.Pos.Topic, "partition", it.rd.Pos.Partition,
		"offset", it.rd.Pos.Offset, "units", len(it.units), "refused_readings", len(dl.Readings), "stage", dl.Stage, "reason", dl.Reason}
	if refusal != nil {
		// Mapping errors quote the payload's values; a refusal is logged
		// only as far as safeErr keeps it free of them.
		attrs = append(attrs, "err", safeErr(refusal))
	}
	r.log.Warn("reading rejected", attrs...)
	if r.dlq == nil {
		return events, nil
	}
	dl.Last = r.now()
	var where string
	started := time.Now()
	if _, err := r.retry.Do(l.lt, func(ctx context.Context) error {
		w, err := r.dlq.Write(ctx, it.rd, *dl)
		where = w
		return err
	}, l.infraRetry("dead-letter", "dead-letter write")); err != nil {
		return nil, err
	}
	r.obs.Stage(r.name, StageDeadLetter, time.Since(started), 1)
	for _, i := range refused {
		events[i].Action, events[i].Location = audit.ActionDeadLettered, where
	}
	return events, nil
}

// span starts a span for one stage of a batch, linked to the producer's
// trace when the first reading carries one.
func (l *lane) span(stage string, b *batch) (context.Context, trace.Span) {
	first := b.items[0].rd.Pos
	var links []trace.Link
	if l.r.spanContext != nil {
		for _, it := range b.items {
			if sc := l.r.spanContext(it.rd.Headers); sc.IsValid() && len(links) < maxLinks {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	return l.r.tracer.Start(l.lt.work, stage, trace.WithLinks(links...), trace.WithAttributes(
		attribute.String("fhir_bridge.route", l.r.name),
		attribute.String("messaging.destination.name", first.Topic),
		attribute.Int("messaging.destination.partition.id", first.Partition),
		attribute.Int64("messaging.kafka.offset", first.Offset),
		attribute.Int("messaging.batch.message_count", len(b.items)),
	))
}

// maxLinks bounds the producer traces a stage span links to.
const maxLinks = 64

// safeErr renders a retry's error for the log: the error chain of transport,
// token and infrastructure failures (hosts, OAuth codes, never readings),
// and only the status of a destination's answer, whose body may quote the
// reading.
func safeErr(err error) string {
	var se *fhir.StatusError
	var ae *hl7.AckError
	var te *fhir.TransportError
	var tok *auth.TokenError
	var send *hl7.SendError
	switch {
	case errors.As(err, &tok), errors.As(err, &te), errors.As(err, &send):
		return err.Error()
	case errors.As(err, &se):
		return se.Op + ": HTTP " + strconv.Itoa(se.Status)
	case errors.As(err, &ae):
		return "ACK " + ae.ACK.Code + " " + ae.ACK.ErrorCode
	case err == nil:
		return ""
	}
	var rl *retryLater
	if errors.As(err, &rl) && rl.o.Err == nil {
		return rl.Error()
	}
	// An error of a kind not known to be free of reading values.
	return fmt.Sprintf("%T", err)
}

// correlationID takes the producer's correlation-id header when it is short
// printable text; anything else (binary, control bytes) falls back to the
// source position, so a hostile header cannot poison the audit trail.
func correlationID(r Reading) string {
	for _, h := range r.Headers {
		if h.Key == "correlation-id" && len(h.Value) > 0 && len(h.Value) <= 128 && printable(h.Value) {
			return string(h.Value)
		}
	}
	return r.Pos.Topic + "/" + strconv.Itoa(r.Pos.Partition) + "/" + strconv.FormatInt(r.Pos.Offset, 10)
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

// budget bounds a partition's readings and payload bytes between read and
// commit. Only the lane's reader takes; the finisher gives back.
type budget struct {
	mu                 sync.Mutex
	readings, bytes    int
	maxReadings, maxBy int
	freed              chan struct{} // closed and replaced on every give
}

func newBudget(maxReadings, maxBytes int) *budget {
	return &budget{maxReadings: max(maxReadings, 1), maxBy: max(maxBytes, 1), freed: make(chan struct{})}
}

// room reports whether one more reading may be read.
func (b *budget) room() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readings < b.maxReadings && b.bytes < b.maxBy
}

// wait blocks until there is room or ctx ends.
func (b *budget) wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		ok := b.readings < b.maxReadings && b.bytes < b.maxBy
		ch := b.freed
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) take(n int) {
	b.mu.Lock()
	b.readings++
	b.bytes += n
	b.mu.Unlock()
}

func (b *budget) give(readings, n int) {
	b.mu.Lock()
	b.readings -= readings
	b.bytes -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

func (b *budget) usage() (readings, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readings, b.bytes
}
