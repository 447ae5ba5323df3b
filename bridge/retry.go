package bridge

import (
	"errors"
	"math/rand/v2"
	"time"
)

// backoff computes waits between attempts: exponential from Initial, capped
// at Max, with full jitter so bridge instances retrying after one EHR outage
// do not return in lockstep.
type backoff struct {
	initial, max time.Duration
}

func (b backoff) wait(attempt int, err error) time.Duration {
	// A server's Retry-After wins over our own schedule.
	var w interface{ Wait() time.Duration }
	if errors.As(err, &w) && w.Wait() > 0 {
		return min(w.Wait(), b.max)
	}
	d := b.initial
	for i := 1; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	// Half fixed, half random: never above the cap.
	return d/2 + rand.N(d/2+1)
}

// temporary reports whether err says retrying may succeed. Sinks classify
// their own failures; anything that does not say so is permanent.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
