package audit

import (
	"context"
	"fmt"
	"sync"

	"github.com/lib/pq"
)

// Ledger remembers which messages a destination acknowledged, keyed by route
// and message id (MSH-10 for MLLP). Engines have no conditional create, so
// this is what keeps an at-least-once redelivery from reaching them twice.
// MarkDelivered is durable when it returns nil.
type Ledger interface {
	Delivered(ctx context.Context, route, id string) (bool, error)
	MarkDelivered(ctx context.Context, route, id string) error
	// DeliveredOf and MarkAllDelivered are the same for many ids in one
	// round trip (and, for marking, one durable commit).
	DeliveredOf(ctx context.Context, route string, ids []string) (map[string]bool, error)
	MarkAllDelivered(ctx context.Context, route string, ids []string) error
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

// DeliveredOf returns which of ids were acknowledged on route.
func (p *Postgres) DeliveredOf(ctx context.Context, route string, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	clean := make([]string, len(ids))
	for i, id := range ids {
		clean[i] = text(id)
	}
	rows, err := p.db.QueryContext(ctx, `SELECT message_id FROM delivery_ledger WHERE route = $1 AND message_id = ANY($2)`, text(route), pq.Array(clean))
	if err != nil {
		return nil, fmt.Errorf("delivery ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("delivery ledger: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delivery ledger: %w", err)
	}
	return out, nil
}

// MarkAllDelivered records ids as acknowledged on route in one statement:
// one durable commit for a whole batch instead of one per message.
func (p *Postgres) MarkAllDelivered(ctx context.Context, route string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	clean := make([]string, len(ids))
	for i, id := range ids {
		clean[i] = text(id)
	}
	_, err := p.db.ExecContext(ctx, `INSERT INTO delivery_ledger (route, message_id)
		SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, text(route), pq.Array(clean))
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

// DeliveredOf returns which of ids were acknowledged on route.
func (m *Memory) DeliveredOf(ctx context.Context, route string, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		ok, err := m.Delivered(ctx, route, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = true
		}
	}
	return out, nil
}

// MarkAllDelivered records ids as acknowledged on route.
func (m *Memory) MarkAllDelivered(ctx context.Context, route string, ids []string) error {
	for _, id := range ids {
		if err := m.MarkDelivered(ctx, route, id); err != nil {
			return err
		}
	}
	return nil
}
