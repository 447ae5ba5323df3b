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

func TestBackoffWait(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: 2 * time.Second}
	// Full jitter over the upper half: attempt n waits in [d/2, d] with
	// d = min(initial * 2^(n-1), max).
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 800 * time.Millisecond, 1600 * time.Millisecond},
		{6, time.Second, 2 * time.Second}, // capped
		{7, time.Second, 2 * time.Second},
		{60, time.Second, 2 * time.Second}, // no overflow however long the outage
		{1000, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("attempt ", tt.attempt), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				w := b.wait(tt.attempt, nil)
				if w < tt.min || w > tt.max {
					t.Fatalf("wait(%d) = %s, want within [%s, %s]", tt.attempt, w, tt.min, tt.max)
				}
				seen[w] = true
			}
			if len(seen) < 2 {
				t.Errorf("wait(%d) gave %d distinct values in 200 draws; want jitter", tt.attempt, len(seen))
			}
		})
	}
}

func TestBackoffWaitNeverZeroNorAboveMax(t *testing.T) {
	for _, b := range []backoff{
		{initial: time.Millisecond, max: 5 * time.Millisecond},
		{initial: 200 * time.Millisecond, max: 30 * time.Second},
		{initial: 3 * time.Millisecond, max: 3 * time.Millisecond},
		{initial: 2 * time.Nanosecond, max: time.Microsecond},
	} {
		for attempt := 1; attempt <= 70; attempt++ {
			for range 50 {
				if w := b.wait(attempt, nil); w <= 0 || w > b.max {
					t.Fatalf("%+v wait(%d) = %s, want in (0, %s]", b, attempt, w, b.max)
				}
			}
		}
	}
}

// retryAfter is a non-fhir error asking for a wait, as another sink's would.
type retryAfter time.Duration

func (r retryAfter) Error() string       { return "slow down" }
func (r retryAfter) Wait() time.Duration { return time.Duration(r) }

func TestBackoffWaitHonoursRetryAfter(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: 10 * time.Second}
	status := func(code int, ra time.Duration) error {
		return &fhir.StatusError{Op: "POST Observation", Status: code, RetryAfter: ra}
	}
	tests := []struct {
		name    string
		attempt int
		err     error
		want    time.Duration // exact; 0 means "the normal schedule"
	}{
		{"429 Retry-After 3s", 1, status(429, 3*time.Second), 3 * time.Second},
		{"503 Retry-After 1s on a late attempt", 9, status(503, time.Second), time.Second},
		{"capped at max", 1, status(429, time.Hour), 10 * time.Second},
		{"wrapped", 1, fmt.Errorf("deliver: %w", status(429, 2*time.Second)), 2 * time.Second},
		{"another sink's error", 1, retryAfter(4 * time.Second), 4 * time.Second},
		{"no Retry-After", 1, status(503, 0), 0},
		{"plain error", 1, errors.New("x"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := b.wait(tt.attempt, tt.err)
			if tt.want != 0 {
				if got != tt.want {
					t.Errorf("wait = %s, want %s", got, tt.want)
				}
				return
			}
			if got < b.initial/2 || got > b.initial {
				t.Errorf("wait = %s, want the schedule's [%s, %s]", got, b.initial/2, b.initial)
			}
		})
	}
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
