package bridgetest

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/fhir"
)

// Call is one Sink.Create call.
type Call struct {
	ResourceType string
	Body         []byte
	IfNoneExist  string
}

// Step scripts the answer to one Sink.Create call.
type Step struct {
	// Result is returned when Err is nil; a zero Result means 201 Created with
	// Location "Observation/<call number>/_history/1".
	Result fhir.Result
	// Err, when set, is returned instead of a result.
	Err error
	// Block, when set, holds the call until Block is closed. Like fhir.Client,
	// the call gives up when its context ends, returning a *fhir.TransportError
	// that wraps the context's error. A Block that is never closed makes a
	// sink that only returns when abandoned.
	Block <-chan struct{}
}

// Sink is a scripted stand-in for an EHR: each call takes the next Step,
// then Default once the script is used up, and every call is recorded.
//
// Set the exported fields before the first call.
type Sink struct {
	// Default answers calls once the script is used up; nil means 201 Created.
	Default *Step
	// OnCall, when set, runs at the start of every call with the call's number
	// (from 1) and its arguments, before the call blocks or answers.
	OnCall func(n int, c Call)
	// Log, when set, gets a "sink <n>" entry for every call.
	Log *Log

	mu    sync.Mutex
	steps []Step
	calls []Call
}

// NewSink returns a sink answering its calls with steps, in order.
func NewSink(steps ...Step) *Sink { return &Sink{steps: slices.Clone(steps)} }

// Create records the call and answers with the next step.
func (s *Sink) Create(ctx context.Context, resourceType string, body []byte, ifNoneExist string) (fhir.Result, error) {
	c := Call{ResourceType: resourceType, Body: slices.Clone(body), IfNoneExist: ifNoneExist}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	n := len(s.calls)
	var st Step
	switch {
	case len(s.steps) > 0:
		st, s.steps = s.steps[0], s.steps[1:]
	case s.Default != nil:
		st = *s.Default
	}
	s.mu.Unlock()

	s.Log.Add("sink %d", n)
	if s.OnCall != nil {
		s.OnCall(n, c)
	}
	if st.Block != nil {
		select {
		case <-st.Block:
		case <-ctx.Done():
			return fhir.Result{}, &fhir.TransportError{Op: "POST " + resourceType, Err: ctx.Err()}
		}
	}
	if st.Err != nil {
		return fhir.Result{}, st.Err
	}
	if st.Result == (fhir.Result{}) {
		return fhir.Result{Status: http.StatusCreated, Location: resourceType + "/" + strconv.Itoa(n) + "/_history/1"}, nil
	}
	return st.Result, nil
}

// Calls returns every call so far, in order.
func (s *Sink) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}
