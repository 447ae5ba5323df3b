package audit

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is an in-process audit store for the demo and tests. Its trail lives
// as long as the process. It chains events like Postgres does.
type Memory struct {
	mu     sync.Mutex
	events []Event
	heads  map[string]chainHead
	ledger memLedger
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{} }

// Append stores events, assigning ids in order and linking each into its
// chain. Events are kept as normalized (UTC time truncated to microseconds).
func (m *Memory) Append(ctx context.Context, events ...Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.heads == nil {
		m.heads = map[string]chainHead{}
	}
	for _, e := range events {
		// The caller's text is kept as is (Canonical sanitizes it the same
		// way each time); the time is kept as PostgreSQL would.
		ev := e
		ev.Time = e.Time.UTC().Truncate(time.Microsecond)
		c := ChainOf(ev)
		h, ok := m.heads[c]
		if !ok {
			h = chainHead{hash: genesis}
		}
		link(&h, &ev)
		m.heads[c] = h
		ev.ID = int64(len(m.events) + 1)
		m.events = append(m.events, ev)
	}
	return nil
}

// List returns events matching f, oldest first.
func (m *Memory) List(ctx context.Context, f Filter) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, e := range m.events {
		if f.match(e) {
			out = append(out, e)
			if len(out) == f.limit() {
				break
			}
		}
	}
	return out, nil
}

// Verify checks every chain; see Verifier.
func (m *Memory) Verify(ctx context.Context) (Report, error) {
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	m.mu.Lock()
	rows := slices.Clone(m.events)
	heads := make(map[string]chainHead, len(m.heads))
	for c, h := range m.heads {
		heads[c] = h
	}
	m.mu.Unlock()
	slices.SortStableFunc(rows, func(a, b Event) int {
		return cmp.Or(cmp.Compare(ChainOf(a), ChainOf(b)), cmp.Compare(a.Seq, b.Seq))
	})
	w := newChainWalker(heads)
	for _, e := range rows {
		w.row(e.ID, ChainOf(e), e)
	}
	return w.finish(), nil
}

// Close releases nothing; it exists to satisfy Store.
func (m *Memory) Close() error { return nil }
