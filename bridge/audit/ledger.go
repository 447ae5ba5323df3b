package audit

import (
	"context"
	"fmt"
	"sync"
)

// Ledger remembers which messages a destination acknowledged, keyed by route
// and message id (MSH-10 for MLLP). Engines have no conditional create, so
// this is what keeps an at-least-once redelivery from reaching them twice.
// MarkDelivered is durable when it returns nil.
type Ledger interface {
	Delivered(ctx context.Context, route, id string) (bool, error)
	MarkDelivered(ctx context.Context, route, id string) error
}

var (
	_ Ledger = (*Postgres)(nil)
	_ Ledger = (*Memory)(nil)
)

// Delivered reports whether id was acknowledged on route.
func (p *Postgres) Delivered(ctx context.Context, route, id string) (bool, error) {
	var n int
	err := p.db.QueryRowContext(ctx, `SELECT count(*) FROM delivery_ledger WHERE route = $1 AND message_id = $2`, text(route), text(id)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("delivery ledger: %w", err)
	}
	return n > 0, nil
}

// MarkDelivered records id as acknowledged on route; marking twice is fine.
func (p *Postgres) MarkDelivered(ctx context.Context, route, id string) error {
	_, err := p.db.ExecContext(ctx, `INSERT INTO delivery_ledger (route, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, text(route), text(id))
	if err != nil {
		return fmt.Errorf("delivery ledger: %w", err)
	}
	return nil
}

type ledgerKey struct{ route, id string }

// memLedger is the in-memory ledger of a Memory store.
type memLedger struct {
	mu   sync.Mutex
	seen map[ledgerKey]bool
}

// Delivered reports whether id was acknowledged on route.
func (m *Memory) Delivered(ctx context.Context, route, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.ledger.mu.Lock()
	defer m.ledger.mu.Unlock()
	return m.ledger.seen[ledgerKey{route, id}], nil
}

// MarkDelivered records id as acknowledged on route.
func (m *Memory) MarkDelivered(ctx context.Context, route, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.ledger.mu.Lock()
	defer m.ledger.mu.Unlock()
	if m.ledger.seen == nil {
		m.ledger.seen = map[ledgerKey]bool{}
	}
	m.ledger.seen[ledgerKey{route, id}] = true
	return nil
}
