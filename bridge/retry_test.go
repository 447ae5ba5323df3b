package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir"
)

func TestRetryWait(t *testing.T) {
	b := Retry{Initial: 100 * time.Millisecond, Max: 2 * time.Second}
	// Full jitter: attempt n waits in (0, d] with d = min(initial * 2^(n-1), max).
	tests := []struct {
		attempt int
		max     time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, 1600 * time.Millisecond},
		{6, 2 * time.Second},  // capped
		{60, 2 * time.Second}, // no overflow however long the outage
		{1000, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("attempt ", tt.attempt), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			low := tt.max
			for range 400 {
				w := b.wait(tt.attempt, nil)
				if w <= 0 || w > tt.max {
					t.Fatalf("wait(%d) = %s, want within (0, %s]", tt.attempt, w, tt.max)
				}
				seen[w] = true
				low = min(low, w)
			}
			if len(seen) < 2 {
				t.Errorf("wait(%d) gave %d distinct values in 400 draws; want jitter", tt.attempt, len(seen))
			}
			if low > tt.max/2 {
				t.Errorf("wait(%d) never below half the cap in 400 draws (lowest %s): want full jitter", tt.attempt, low)
			}
		})
	}
}

func TestRetryWaitNeverZeroNorAboveMax(t *testing.T) {
	for _, b := range []Retry{
		{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		{Initial: 200 * time.Millisecond, Max: 30 * time.Second},
		{Initial: 3 * time.Millisecond, Max: 3 * time.Millisecond},
		{Initial: 2 * time.Nanosecond, Max: time.Microsecond},
	} {
		for attempt := 1; attempt <= 70; attempt++ {
			for range 50 {
				if w := b.wait(attempt, nil); w <= 0 || w > b.Max {
					t.Fatalf("%+v wait(%d) = %s, want in (0, %s]", b, attempt, w, b.Max)
				}
			}
		}
	}
}

// retryAfter is a non-fhir error asking for a wait, as another sink's would.
type retryAfter time.Duration

func (r retryAfter) Error() string       { return "slow down" }
func (r retryAfter) Wait() time.Duration { return time.Duration(r) }

func TestRetryWaitHonoursRetryAfter(t *testing.T) {
	b := Retry{Initial: 100 * time.Millisecond, Max: 10 * time.Second}
	status := func(code int, ra time.Duration) error {
		return &fhir.StatusError{Op: "POST Observation", Status: code, RetryAfter: ra}
	}
	tests := []struct {
		name     string
		attempt  int
		err      error
		min, max time.Duration
	}{
		{"429 Retry-After 3s", 1, status(429, 3*time.Second), 3 * time.Second, 3 * time.Second},
		{"503 Retry-After 1s on a late attempt: at least 1s", 9, status(503, time.Second), time.Second, 10 * time.Second},
		{"capped at max", 1, status(429, time.Hour), 10 * time.Second, 10 * time.Second},
		{"wrapped", 1, fmt.Errorf("deliver: %w", status(429, 2*time.Second)), 2 * time.Second, 2 * time.Second},
		{"another sink's error", 1, retryAfter(4 * time.Second), 4 * time.Second, 4 * time.Second},
		{"retry-later outcome", 1, &retryLater{o: Outcome{Wait: 5 * time.Second}}, 5 * time.Second, 5 * time.Second},
		{"no Retry-After", 1, status(503, 0), 1, 100 * time.Millisecond},
		{"plain error", 1, errors.New("x"), 1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 {
				if got := b.wait(tt.attempt, tt.err); got < tt.min || got > tt.max {
					t.Fatalf("wait = %s, want within [%s, %s]", got, tt.min, tt.max)
				}
			}
		})
	}
}

// TestRetryDo pins the one definition of stopped, permanent and wait.
func TestRetryDo(t *testing.T) {
	r := Retry{Initial: time.Millisecond, Max: 2 * time.Millisecond}
	live := lifetime{stop: context.Background(), work: context.Background()}
	boom := errors.New("boom")

	t.Run("retries until success", func(t *testing.T) {
		var retries []int
		n, err := r.Do(live, func(context.Context) error {
			if len(retries) < 3 {
				return boom
			}
			return nil
		}, func(attempt int, wait time.Duration, err error) {
			if !errors.Is(err, boom) || wait <= 0 {
				t.Errorf("onRetry(%d, %s, %v)", attempt, wait, err)
			}
			retries = append(retries, attempt)
		})
		if err != nil || n != 4 || fmt.Sprint(retries) != "[1 2 3]" {
			t.Errorf("Do = %d, %v; retries %v; want 4 attempts, nil, [1 2 3]", n, err, retries)
		}
	})
	t.Run("permanent ends at once", func(t *testing.T) {
		n, err := r.Do(live, func(context.Context) error { return permanent(boom) }, nil)
		if n != 1 || !errors.Is(err, boom) || !isPermanent(err) {
			t.Errorf("Do = %d, %v; want 1 attempt and the permanent error", n, err)
		}
	})
	t.Run("a stop ends the waiting", func(t *testing.T) {
		stop, cancel := context.WithCancel(context.Background())
		lt := lifetime{stop: stop, work: context.Background()}
		n, err := r.Do(lt, func(context.Context) error { cancel(); return boom }, nil)
		if n != 1 || !errors.Is(err, errStopped) {
			t.Errorf("Do = %d, %v; want 1 attempt and errStopped", n, err)
		}
	})
	t.Run("an attempt cut by the end of work is stopped, not failed", func(t *testing.T) {
		work, cancel := context.WithCancel(context.Background())
		lt := lifetime{stop: context.Background(), work: work}
		_, err := r.Do(lt, func(ctx context.Context) error { cancel(); return permanent(ctx.Err()) }, nil)
		if !errors.Is(err, errStopped) {
			t.Errorf("Do = %v, want errStopped", err)
		}
	})
}

func TestTemporary(t *testing.T) {
	status := func(code int) error { return &fhir.StatusError{Op: "POST Observation", Status: code} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"400", status(http.StatusBadRequest), false},
		{"401", status(http.StatusUnauthorized), false},
		{"404", status(http.StatusNotFound), false},
		{"408", status(http.StatusRequestTimeout), true},
		{"409", status(http.StatusConflict), false},
		{"412", status(http.StatusPreconditionFailed), false},
		{"422", status(http.StatusUnprocessableEntity), false},
		{"429", status(http.StatusTooManyRequests), true},
		{"500", status(http.StatusInternalServerError), true},
		{"502", status(http.StatusBadGateway), true},
		{"503", status(http.StatusServiceUnavailable), true},
		{"504", status(http.StatusGatewayTimeout), true},
		{"wrapped 503", fmt.Errorf("sink: %w", status(503)), true},
		{"wrapped 400", fmt.Errorf("sink: %w", status(400)), false},
		{"transport error", &fhir.TransportError{Op: "POST Observation", Err: io.ErrUnexpectedEOF}, true},
		{"transport timeout", &fhir.TransportError{Op: "POST Observation", Err: context.DeadlineExceeded}, true},
		{"transport cancelled by caller", &fhir.TransportError{Op: "POST Observation", Err: context.Canceled}, false},
		{"plain error", errors.New("boom"), false},
		// context.DeadlineExceeded says Temporary() itself: a timeout is retryable.
		{"bare deadline exceeded", context.DeadlineExceeded, true},
		{"bare cancellation", context.Canceled, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := temporary(tt.err); got != tt.want {
				t.Errorf("temporary(%v) = %t, want %t", tt.err, got, tt.want)
			}
		})
	}
}

func TestGraceContext(t *testing.T) {
	type key struct{}

	t.Run("alive while the parent is", func(t *testing.T) {
		parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
		defer cancelParent()
		const grace = 10 * time.Millisecond
		ctx, cancel := graceContext(parent, grace)
		defer cancel()
		if got := ctx.Value(key{}); got != "v" {
			t.Errorf("Value = %v, want the parent's values", got)
		}
		// Watch for several graces: nothing may end it while the parent lives.
		select {
		case <-ctx.Done():
			t.Fatalf("cancelled with the parent alive: %v", ctx.Err())
		case <-time.After(5 * grace):
		}
	})

	t.Run("ends a grace after the parent", func(t *testing.T) {
		parent, cancelParent := context.WithCancel(context.Background())
		const grace = 50 * time.Millisecond
		ctx, cancel := graceContext(parent, grace)
		defer cancel()
		stopped := time.Now()
		cancelParent()
		if err := ctx.Err(); err != nil {
			t.Fatalf("cancelled with the parent: %v, want a grace of %s", err, grace)
		}
		select {
		case <-ctx.Done():
		case <-time.After(waitLimit):
			t.Fatalf("not cancelled %s after the parent", waitLimit)
		}
		if d := time.Since(stopped); d < grace {
			t.Errorf("cancelled %s after the parent, want at least the grace %s", d, grace)
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err = %v, want context.Canceled", ctx.Err())
		}
	})

	t.Run("cancel releases with the parent alive", func(t *testing.T) {
		parent, cancelParent := context.WithCancel(context.Background())
		defer cancelParent()
		ctx, cancel := graceContext(parent, time.Hour)
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(waitLimit):
			t.Fatal("cancel did not end the context")
		}
		cancel() // idempotent
	})

	t.Run("cancel releases during the grace", func(t *testing.T) {
		parent, cancelParent := context.WithCancel(context.Background())
		ctx, cancel := graceContext(parent, time.Hour)
		cancelParent()
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(waitLimit):
			t.Fatal("cancel did not end the context during the grace")
		}
	})
}
