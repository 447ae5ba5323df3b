package audit

import (
	"context"
	"sync"
)

// Memory is an in-process audit store for the demo and tests. Its trail lives
// as long as the process.
type Memory struct {
	mu     sync.Mutex
	events []Event
	ledger memLedger
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{} }

// Append stores events, assigning ids in order.
func (m *Memory) Append(ctx context.Context, events ...Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		e.ID = int64(len(m.events) + 1)
		m.events = append(m.events, e)
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

// Close releases nothing; it exists to satisfy Store.
func (m *Memory) Close() error { return nil }
