package hl7

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// DefaultPoolSize is the number of connections of a Pool unless configured.
const DefaultPoolSize = 4

// PoolConfig configures a Pool: the connection settings shared by every
// connection, and their number.
type PoolConfig struct {
	SenderConfig
	// Size is the number of connections. Default: DefaultPoolSize (4).
	Size int
}

// Validate reports the first problem with c, if any.
func (c PoolConfig) Validate() error {
	if c.Size < 0 {
		return errors.New("hl7: PoolConfig.Size: negative")
	}
	return c.SenderConfig.Validate()
}

// Pool delivers messages over several MLLP connections to one engine. Each
// message goes to the connection chosen by a stable hash (32-bit FNV-1a) of
// its key, the patient id: one patient's messages always use the same
// connection, which carries one message at a time, so they arrive in the
// order they are sent, while different patients' messages proceed in
// parallel on the other connections. Order holds for messages whose Sends
// do not overlap (a caller sends a patient's next message after the
// previous Send returned); concurrent Sends with one key are delivered in
// an unspecified order.
//
// Each connection is a Sender: it connects lazily, and after a failure it
// reconnects with its own exponential backoff, so a failed connection
// delays only the keys that hash to it. Like Sender, a Pool never resends a
// message. It is safe for concurrent use.
type Pool struct {
	senders []*Sender

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup

	sends, failed atomic.Uint64 // Sends that never reached a Sender
}

// NewPool returns a Pool for cfg. It does not connect: each connection is
// opened by the first Send that needs it.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.Size
	if n == 0 {
		n = DefaultPoolSize
	}
	p := &Pool{senders: make([]*Sender, n)}
	for i := range p.senders {
		s, err := NewSender(cfg.SenderConfig)
		if err != nil {
			return nil, err
		}
		p.senders[i] = s
	}
	return p, nil
}

// Shard returns the index, from 0 to the pool size minus one, of the
// connection that carries key's messages.
func (p *Pool) Shard(key string) int {
	h := uint32(2166136261) // FNV-1a offset basis
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619 // FNV prime
	}
	return int(h % uint32(len(p.senders)))
}

// Send sends msg, whose MSH-10 is controlID, on the connection of key and
// returns its acknowledgement, as Sender.Send does. After Close it returns
// a *SendError wrapping ErrClosed.
func (p *Pool) Send(ctx context.Context, key string, msg []byte, controlID string) (ACK, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.sends.Add(1)
		p.failed.Add(1)
		return ACK{}, &SendError{Op: "send", Addr: p.senders[0].cfg.Addr, ControlID: controlID, Err: ErrClosed}
	}
	p.inflight.Add(1)
	p.mu.Unlock()
	defer p.inflight.Done()
	return p.senders[p.Shard(key)].Send(ctx, msg, controlID)
}

// Stats returns the sum of the counters of all connections.
func (p *Pool) Stats() Stats {
	st := Stats{Sends: p.sends.Load(), Failed: p.failed.Load()}
	for _, s := range p.senders {
		st.add(s.Stats())
	}
	return st
}

// ShardStats returns the counters of connection i, as numbered by Shard.
func (p *Pool) ShardStats(i int) Stats { return p.senders[i].Stats() }

// Close stops new Sends, waits until the Sends in progress have returned or
// ctx is done, and closes every connection. If ctx ends first, the Sends
// still in progress are interrupted (they fail with ErrClosed; their
// messages may or may not have been processed), Close waits for them to
// return and then returns ctx.Err(). Close is idempotent.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		p.inflight.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	for _, s := range p.senders {
		s.Close()
	}
	<-done
	return err
}
