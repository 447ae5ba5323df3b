package bridgetest

import (
	"context"
	"io"
	"slices"
	"sync"

	"github.com/segmentio/kafka-go"
)

// Source is a slice-backed stand-in for a kafka-go consumer-group Reader. It
// hands out its messages in order, records every commit, and once it has no
// more messages either blocks until the context ends (like a quiet topic) or,
// when Err is set, fails with Err (like a broken broker connection).
//
// Set the exported fields before the first call.
type Source struct {
	// Log, when set, gets "fetch <pos>" and "commit <pos>" entries.
	Log *Log
	// Err, when set, is what FetchMessage returns once every message was
	// handed out, instead of blocking.
	Err error
	// FailAfter, when set together with Err, delays that failure until
	// FailAfter is closed (or the context ends).
	FailAfter <-chan struct{}
	// CommitErr is returned by every CommitMessages call (after recording it).
	CommitErr error

	mu        sync.Mutex
	msgs      []kafka.Message
	next      int
	attempts  []kafka.Message // every message passed to CommitMessages
	commits   []kafka.Message // those whose CommitMessages returned nil
	closed    int
	drained   chan struct{}
	drainOnce sync.Once
}

// NewSource returns a source that will hand out msgs in order.
func NewSource(msgs ...kafka.Message) *Source {
	return &Source{msgs: slices.Clone(msgs), drained: make(chan struct{})}
}

// FetchMessage returns the next message. A route handles messages one at a
// time, so a fetch after the last message means the last one was handled:
// that is when Drained is closed.
func (s *Source) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if err := ctx.Err(); err != nil {
		return kafka.Message{}, err
	}
	s.mu.Lock()
	if s.closed > 0 {
		s.mu.Unlock()
		return kafka.Message{}, io.EOF // what kafka-go's Reader returns once closed
	}
	if s.next < len(s.msgs) {
		m := s.msgs[s.next]
		s.next++
		s.mu.Unlock()
		s.Log.Add("fetch %s", MsgPos(m))
		return m, nil
	}
	s.mu.Unlock()
	s.drainOnce.Do(func() { close(s.drained) })
	if s.Err != nil {
		if s.FailAfter != nil {
			select {
			case <-s.FailAfter:
			case <-ctx.Done():
				return kafka.Message{}, ctx.Err()
			}
		}
		return kafka.Message{}, s.Err
	}
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

// CommitMessages records the commit of msgs. Like kafka-go's Reader it
// refuses a commit whose context has ended. Every call is recorded (see
// CommitAttempts); only those that succeed count as commits (see Commits).
// Log entries are "commit <pos>", or "commit <pos> failed: <err>".
func (s *Source) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	err := ctx.Err()
	if err == nil {
		err = s.CommitErr
	}
	s.mu.Lock()
	s.attempts = append(s.attempts, msgs...)
	if err == nil {
		s.commits = append(s.commits, msgs...)
	}
	s.mu.Unlock()
	for _, m := range msgs {
		if err != nil {
			s.Log.Add("commit %s failed: %v", MsgPos(m), err)
		} else {
			s.Log.Add("commit %s", MsgPos(m))
		}
	}
	return err
}

// Close records that the source was closed.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed++
	return nil
}

// Drained is closed when FetchMessage was called with no message left.
func (s *Source) Drained() <-chan struct{} { return s.drained }

// Commits returns the messages committed successfully, in call order.
func (s *Source) Commits() []kafka.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commits)
}

// CommitAttempts returns every message passed to CommitMessages, in call
// order, whether the commit succeeded or not. Assert "not committed" on this.
func (s *Source) CommitAttempts() []kafka.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attempts)
}

// CommittedPositions returns the positions ("topic/partition/offset") of
// Commits.
func (s *Source) CommittedPositions() []string { return positions(s.Commits()) }

// AttemptedPositions returns the positions of CommitAttempts.
func (s *Source) AttemptedPositions() []string { return positions(s.CommitAttempts()) }

func positions(msgs []kafka.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, MsgPos(m))
	}
	return out
}

// Fetched returns how many messages were handed out.
func (s *Source) Fetched() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Closed returns how many times Close was called.
func (s *Source) Closed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
