package bridge

import "sync"

// tracker turns acknowledgements that may arrive in any order into commits
// in offset order: the committable position is the offset after the longest
// run of acknowledged readings from the start, because committing an offset
// in Kafka covers every earlier one. Safe for concurrent use.
type tracker struct {
	mu    sync.Mutex
	next  int64 // first offset not yet acknowledged, -1 before the first track
	acked map[int64]bool
	order []int64 // tracked offsets not yet committable, in read order
}

func newTracker() *tracker { return &tracker{next: -1, acked: map[int64]bool{}} }

// track registers a reading as in flight. Offsets must be tracked in
// increasing order (the order a partition is read in); gaps (compacted or
// transactional offsets) are allowed.
func (t *tracker) track(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.order = append(t.order, offset)
	if t.next < 0 {
		t.next = offset
	}
}

// ack marks offset done and returns the offset to commit (the first not
// done) and whether it advanced.
func (t *tracker) ack(offset int64) (next int64, advanced bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.acked[offset] = true
	n := 0
	for n < len(t.order) && t.acked[t.order[n]] {
		delete(t.acked, t.order[n])
		t.next = t.order[n] + 1
		n++
	}
	t.order = t.order[n:]
	return t.next, n > 0
}
