package bridge

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// errStopped means work was abandoned because the route (or the partition's
// claim) is stopping; what it covered stays uncommitted and is redelivered.
var errStopped = errors.New("route stopping")

// lifetime bounds a partition's work: stop ends when a stop (shutdown or
// rebalance) is requested, and then no new attempt starts and no wait goes
// on; work ends a grace period later and cuts short what is still in flight.
type lifetime struct {
	stop context.Context
	work context.Context
}

// newLifetime derives a lifetime from parent with the given grace.
func newLifetime(parent context.Context, grace time.Duration) (lifetime, context.CancelFunc) {
	work, cancel := graceContext(parent, grace)
	return lifetime{stop: parent, work: work}, cancel
}

// graceContext is cancelled grace after parent ends: work in flight at a stop
// may finish, but not forever.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

// Retry is the one retry policy of the engine, used for deliveries, the
// audit append, dead-letter writes and the MLLP ledger. Between attempts it
// waits with exponential backoff from Initial, capped at Max, with full
// jitter (so instances retrying after one outage do not return in
// lockstep); a destination's Retry-After wins when it is longer.
type Retry struct {
	Initial, Max time.Duration
}

// permanentError marks a failure that no retry can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying.
func permanent(err error) error { return permanentError{err} }

// isPermanent reports whether err was marked with permanent.
func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Do runs op until it succeeds, fails permanently, or the lifetime stops.
// The one definition of the three cases:
//   - stopped: the work context ended (our own stop cut the attempt short,
//     which says nothing about the attempt), or a stop was requested before
//     the next attempt: Do returns errStopped;
//   - permanent: op's error is marked with permanent: Do returns it;
//   - wait: anything else; Do calls onRetry (when set) and waits.
//
// attempts is how many times op ran.
func (r Retry) Do(lt lifetime, op func(ctx context.Context) error, onRetry func(attempt int, wait time.Duration, err error)) (attempts int, err error) {
	for attempt := 1; ; attempt++ {
		err := op(lt.work)
		switch {
		case err == nil:
			return attempt, nil
		case lt.work.Err() != nil:
			return attempt, errStopped
		case isPermanent(err):
			return attempt, err
		case lt.stop.Err() != nil:
			return attempt, errStopped
		}
		wait := r.wait(attempt, err)
		if onRetry != nil {
			onRetry(attempt, wait, err)
		}
		if !sleep(lt.stop, wait) {
			return attempt, errStopped
		}
	}
}

// wait is the pause after the attempt-th failure: full jitter over
// (0, min(Initial*2^(attempt-1), Max)], or the error's own Wait() when it
// asks for longer (capped at Max).
func (r Retry) wait(attempt int, err error) time.Duration {
	d := r.Initial
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	d = max(min(d, r.Max), 1)
	w := 1 + rand.N(d)
	var ra interface{ Wait() time.Duration }
	if errors.As(err, &ra) && ra.Wait() > w {
		w = min(ra.Wait(), r.Max)
	}
	return w
}

// temporary reports whether err says retrying may succeed. Leaf packages
// (fhir, hl7, auth) classify their own failures with Temporary() bool;
// anything that does not say so is permanent.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
