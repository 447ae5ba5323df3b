package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/segmentio/kafka-go"
)

// BatchSink posts several resources in one batch Bundle (fhir.Client).
type BatchSink interface {
	Batch(ctx context.Context, entries []fhir.BatchEntry) ([]fhir.EntryResult, error)
}

// batching configures how a FHIR route groups readings into batch Bundles.
type batching struct {
	maxEntries int // 1 or less: one create per reading
	maxBytes   int
	linger     time.Duration
}

// batchSink returns the route's batch-capable sink when batching is on.
func (r *route) batchSink() (BatchSink, bool) {
	if r.batch.maxEntries <= 1 || r.dest != nil {
		return nil, false
	}
	bs, ok := r.sink.(BatchSink)
	return bs, ok
}

// fetchBatch returns the next message and, when batching, the ones that
// arrive within the linger time, up to the entry and byte limits. Messages
// are processed and committed together; the linger bounds the added latency.
func (r *route) fetchBatch(ctx context.Context) ([]kafka.Message, error) {
	first, err := r.src.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []kafka.Message{first}
	if _, ok := r.batchSink(); !ok {
		return msgs, nil
	}
	size := len(first.Value)
	lctx, cancel := context.WithTimeout(ctx, r.batch.linger)
	defer cancel()
	for len(msgs) < r.batch.maxEntries && size < r.batch.maxBytes {
		m, err := r.src.FetchMessage(lctx)
		if err != nil {
			break // linger over, or stopping: process what we have
		}
		msgs = append(msgs, m)
		size += len(m.Value)
	}
	return msgs, nil
}

// deliverBatch posts units in batch Bundles within the limits, retrying the
// entries (or whole requests) that failed temporarily, with backoff, until
// every entry is delivered or refused for good. A request the server refuses
// as a whole for good (it does not take batches) falls back to one create per
// unit, so nothing is dead-lettered for the Bundle's sake.
func (r *route) deliverBatch(ctx, work context.Context, bs BatchSink, units []mapped) ([]delivery, error) {
	out := make([]delivery, len(units))
	pending := make([]int, len(units))
	for i := range pending {
		pending[i] = i
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		var retry []int
		var lastErr error
		for _, chunk := range r.chunks(units, pending) {
			entries := make([]fhir.BatchEntry, len(chunk))
			for j, i := range chunk {
				entries[j] = fhir.BatchEntry{ResourceType: "Observation", Body: units[i].body, IfNoneExist: units[i].key}
				out[i].attempts = attempt
			}
			results, err := bs.Batch(work, entries)
			if err != nil {
				if work.Err() != nil {
					return nil, errStopped
				}
				if !temporary(err) {
					// The server refuses the Bundle itself: deliver one by one.
					for _, i := range chunk {
						res, attempts, err := r.deliver(ctx, work, units[i])
						if err != nil && !errors.Is(err, errPermanent) {
							return nil, err
						}
						out[i] = delivery{res: res, attempts: attempt + attempts, err: err}
					}
					continue
				}
				retry, lastErr = append(retry, chunk...), err
				continue
			}
			for j, i := range chunk {
				res := results[j]
				switch {
				case res.OK():
					out[i] = delivery{res: sent{status: res.Status, location: res.Location}, attempts: attempt}
				case res.Temporary():
					retry = append(retry, i)
					lastErr = &fhir.StatusError{Op: "batch entry", Status: res.Status, Outcome: res.Outcome}
				default:
					out[i] = delivery{attempts: attempt, err: fmt.Errorf("%w: %w", errPermanent,
						&fhir.StatusError{Op: "POST Observation (batch entry)", Status: res.Status, Outcome: res.Outcome})}
				}
			}
		}
		pending = retry
		if len(pending) == 0 {
			break
		}
		if ctx.Err() != nil {
			return nil, errStopped
		}
		r.stats.retries.Add(1)
		wait := r.backoff.wait(attempt, lastErr)
		r.log.Warn("batch delivery failed; retrying", "route", r.name, "entries", len(pending), "attempt", attempt,
			"wait", wait, "status", statusOf(lastErr))
		if !sleep(ctx, wait) {
			return nil, errStopped
		}
	}
	return out, nil
}

// chunks splits the pending units into requests within the entry and byte
// limits.
func (r *route) chunks(units []mapped, pending []int) [][]int {
	var out [][]int
	var cur []int
	size := 0
	for _, i := range pending {
		n := len(units[i].body) + len(units[i].key) + 100
		if len(cur) > 0 && (len(cur) >= r.batch.maxEntries || size+n > r.batch.maxBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
