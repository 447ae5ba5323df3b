package bridge

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
)

// fakeSource is a slice-backed Source: every partition among its readings
// is claimed at once, each hands out its readings in order, commits are
// recorded, and once a partition has no more readings it either blocks until
// the claim ends (a quiet topic) or, when Err is set, fails with Err (a
// broken broker connection).
//
// Set the exported fields before Consume.
type fakeSource struct {
	// Log, when set, gets "fetch <pos>" and "commit <pos>" entries (pos is
	// the last reading a commit covers).
	Log *bridgetest.Log
	// Err, when set, is what Read returns once every reading of a
	// partition was handed out, instead of blocking.
	Err error
	// FailAfter, when set together with Err, delays that failure until
	// FailAfter is closed (or the claim ends).
	FailAfter <-chan struct{}
	// CommitErr is returned by every Commit (after recording it).
	CommitErr error

	mu        sync.Mutex
	parts     map[int][]Reading
	fetched   int
	attempts  []Reading // the last reading each Commit covered
	commits   []Reading // those whose Commit returned nil
	consumes  int       // Consume calls that returned
	drained   chan struct{}
	drainOnce sync.Once
	total     int
	covered   map[string]bool // positions some commit attempt covered
}

func newFakeSource(rs ...Reading) *fakeSource {
	s := &fakeSource{parts: map[int][]Reading{}, drained: make(chan struct{}), covered: map[string]bool{}, total: len(rs)}
	for _, r := range rs {
		s.parts[r.Pos.Partition] = append(s.parts[r.Pos.Partition], r)
	}
	if len(rs) == 0 {
		close(s.drained)
	}
	return s
}

// Consume claims every partition at once and returns when all claims have
// returned, with the first claim error.
func (s *fakeSource) Consume(ctx context.Context, claim func(context.Context, Claim) error) error {
	defer func() {
		s.mu.Lock()
		s.consumes++
		s.mu.Unlock()
	}()
	ids := make([]int, 0, len(s.parts))
	for p := range s.parts {
		ids = append(ids, p)
	}
	sort.Ints(ids)
	if len(ids) == 0 {
		ids = []int{0}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, p := range ids {
		wg.Go(func() {
			topic := testTopic
			if rs := s.parts[p]; len(rs) > 0 {
				topic = rs[0].Pos.Topic
			}
			if err := claim(ctx, &fakeClaim{s: s, partition: p, topic: topic}); err != nil {
				errs[i] = err
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

type fakeClaim struct {
	s         *fakeSource
	topic     string
	partition int
	next      int
}

func (c *fakeClaim) Topic() string    { return c.topic }
func (c *fakeClaim) Partition() int   { return c.partition }
func (c *fakeClaim) HighWater() int64 { return -1 }

func (c *fakeClaim) Read(ctx context.Context) (Reading, error) {
	if err := ctx.Err(); err != nil {
		return Reading{}, err
	}
	s := c.s
	s.mu.Lock()
	rs := s.parts[c.partition]
	if c.next < len(rs) {
		r := rs[c.next]
		c.next++
		s.fetched++
		s.mu.Unlock()
		s.Log.Add("fetch %s", readingPos(r))
		return r, nil
	}
	s.mu.Unlock()
	if s.Err != nil {
		if s.FailAfter != nil {
			select {
			case <-s.FailAfter:
			case <-ctx.Done():
				return Reading{}, ctx.Err()
			}
		}
		return Reading{}, s.Err
	}
	<-ctx.Done()
	return Reading{}, ctx.Err()
}

// Commit records the commit of every reading before next. Like Kafka it
// refuses a commit whose context has ended.
func (c *fakeClaim) Commit(ctx context.Context, next int64) error {
	err := ctx.Err()
	if err == nil {
		err = c.s.CommitErr
	}
	s := c.s
	s.mu.Lock()
	var last Reading
	found := false
	for _, r := range s.parts[c.partition] {
		if r.Pos.Offset < next {
			last, found = r, true
			s.covered[readingPos(r)] = true
		}
	}
	if found {
		s.attempts = append(s.attempts, last)
		if err == nil {
			s.commits = append(s.commits, last)
		}
	}
	if len(s.covered) == s.total {
		s.drainOnce.Do(func() { close(s.drained) })
	}
	s.mu.Unlock()
	if found {
		if err != nil {
			s.Log.Add("commit %s failed: %v", readingPos(last), err)
		} else {
			s.Log.Add("commit %s", readingPos(last))
		}
	}
	return err
}

// Drained is closed once a commit (successful or not) covered every
// reading: everything was handled.
func (s *fakeSource) Drained() <-chan struct{} { return s.drained }

// Commits returns the last reading of each successful commit, in order.
func (s *fakeSource) Commits() []Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commits)
}

// CommittedPositions returns the positions of Commits.
func (s *fakeSource) CommittedPositions() []string { return positions(s.Commits()) }

// AttemptedPositions returns the last position of every commit attempt,
// successful or not. Assert "not committed" on this.
func (s *fakeSource) AttemptedPositions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return positions(s.attempts)
}

func positions(rs []Reading) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, readingPos(r))
	}
	return out
}

// Fetched returns how many readings were handed out.
func (s *fakeSource) Fetched() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetched
}

// Closed returns how many times Consume returned (and so left the group).
func (s *fakeSource) Closed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumes
}

func readingPos(r Reading) string {
	return bridgetest.Pos(r.Pos.Topic, r.Pos.Partition, r.Pos.Offset)
}
