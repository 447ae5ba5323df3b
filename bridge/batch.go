package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	maxEntries  int // 1 or less: one create per reading
	maxBytes    int
	linger      time.Duration
	concurrency int // Bundles in flight at once; at least 1
}

func (b batching) parallel() int { return max(b.concurrency, 1) }

// batchSink returns the route's batch-capable sink when batching is on.
func (r *route) batchSink() (BatchSink, bool) {
	if r.batch.maxEntries <= 1 {
		return nil, false
	}
	sink := r.sink
	if fd, ok := r.dest.(*fhirDest); ok {
		sink = fd.sink
	} else if r.dest != nil {
		return nil, false
	}
	bs, ok := sink.(BatchSink)
	return bs, ok
}

// parallelDest reports whether the route delivers a batch's units
// concurrently by key (MLLP: one connection per patient shard).
func (r *route) parallelDest() bool {
	_, ok := r.dest.(*mllpDest)
	return ok && r.batch.maxEntries > 1
}

// deliverByKey delivers units concurrently, one goroutine per key (patient)
// at a time and at most batch.concurrency keys at once: a patient's units go
// in order, different patients in parallel.
func (r *route) deliverByKey(ctx, work context.Context, units []mapped) ([]delivery, error) {
	var keys []string
	groups := map[string][]int{}
	for i, u := range units {
		if _, ok := groups[u.key]; !ok {
			keys = append(keys, u.key)
		}
		groups[u.key] = append(groups[u.key], i)
	}
	out := make([]delivery, len(units))
	var (
		mu      sync.Mutex
		stopErr error
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, r.batch.parallel())
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, i := range groups[k] {
				res, attempts, err := r.deliver(ctx, work, units[i])
				if err == nil {
					err = r.retry(ctx, "delivery ledger", func() error { return r.destination().record(work, units[i]) })
					if err != nil {
						mu.Lock()
						stopErr = err
						mu.Unlock()
						return
					}
				} else if !errors.Is(err, errPermanent) {
					mu.Lock()
					stopErr = err
					mu.Unlock()
					return
				}
				out[i] = delivery{res: res, attempts: attempts, err: err}
			}
		})
	}
	wg.Wait()
	if stopErr != nil {
		return nil, stopErr
	}
	return out, nil
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
	if _, ok := r.batchSink(); !ok && !r.parallelDest() {
		return msgs, nil
	}
	size := len(first.Value)
	lctx, cancel := context.WithTimeout(ctx, r.batch.linger)
	defer cancel()
	// Enough for one Bundle per concurrent request.
	for len(msgs) < r.batch.maxEntries*r.batch.parallel() && size < r.batch.maxBytes*r.batch.parallel() {
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
		var (
			mu      sync.Mutex
			retry   []int
			lastErr error
			stopErr error
			wg      sync.WaitGroup
		)
		sem := make(chan struct{}, r.batch.parallel())
		for _, chunk := range r.chunks(units, pending) {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				again, err, stop := r.postChunk(ctx, work, bs, units, chunk, attempt, out)
				mu.Lock()
				defer mu.Unlock()
				retry = append(retry, again...)
				if err != nil {
					lastErr = err
				}
				if stop != nil {
					stopErr = stop
				}
			})
		}
		wg.Wait()
		if stopErr != nil {
			return nil, stopErr
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

// postChunk posts one Bundle and settles its entries in out (each goroutine
// writes only its own chunk's slots). It returns the entries to retry with
// the error that made them fail, or a stop error when the route is stopping.
func (r *route) postChunk(ctx, work context.Context, bs BatchSink, units []mapped, chunk []int, attempt int, out []delivery) (retry []int, lastErr, stop error) {
	entries := make([]fhir.BatchEntry, len(chunk))
	for j, i := range chunk {
		entries[j] = fhir.BatchEntry{ResourceType: "Observation", Body: units[i].body, IfNoneExist: units[i].key}
		out[i].attempts = attempt
	}
	results, err := bs.Batch(work, entries)
	if err != nil {
		if work.Err() != nil {
			return nil, nil, errStopped
		}
		if temporary(err) {
			return chunk, err, nil
		}
		// The server refuses the Bundle itself: deliver one by one.
		for _, i := range chunk {
			res, attempts, err := r.deliver(ctx, work, units[i])
			if err != nil && !errors.Is(err, errPermanent) {
				return nil, nil, err
			}
			out[i] = delivery{res: res, attempts: attempt + attempts, err: err}
		}
		return nil, nil, nil
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
	return retry, lastErr, nil
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
