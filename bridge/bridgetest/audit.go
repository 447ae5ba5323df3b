package bridgetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
)

// ErrAuditDown is what a failing AuditLog returns unless Err is set.
var ErrAuditDown = errors.New("bridgetest: audit store unavailable")

// AuditLog is a recording audit store that can be told to fail.
//
// Set the exported fields before the first call.
type AuditLog struct {
	// FailFirst makes the first FailFirst Append calls fail.
	FailFirst int
	// FailAlways makes every Append call fail.
	FailAlways bool
	// Err is the error a failing Append returns; nil means ErrAuditDown.
	Err error
	// OnAppend, when set, runs after every Append call with the call's number
	// (from 1) and the error it returns.
	OnAppend func(n int, err error)
	// Log, when set, gets an "audit <pos> <action>,<action>..." entry for a
	// successful Append (pos is that of the first event) and the same with a
	// " failed" suffix for a failed one.
	Log *Log

	mu       sync.Mutex
	attempts [][]audit.Event
	events   []audit.Event
}

// Append records events, or fails as configured. Like a real store it fails
// when ctx has ended.
func (a *AuditLog) Append(ctx context.Context, events ...audit.Event) error {
	a.mu.Lock()
	a.attempts = append(a.attempts, slices.Clone(events))
	n := len(a.attempts)
	err := ctx.Err()
	if err == nil && (a.FailAlways || n <= a.FailFirst) {
		err = a.Err
		if err == nil {
			err = ErrAuditDown
		}
	}
	if err == nil {
		a.events = append(a.events, events...)
	}
	a.mu.Unlock()

	entry := "audit " + describe(events)
	if err != nil {
		entry += " failed"
	}
	a.Log.Add("%s", entry)
	if a.OnAppend != nil {
		a.OnAppend(n, err)
	}
	return err
}

func describe(events []audit.Event) string {
	if len(events) == 0 {
		return "(none)"
	}
	actions := make([]string, len(events))
	for i, e := range events {
		actions[i] = e.Action
	}
	return Pos(events[0].Topic, events[0].Partition, events[0].Offset) + " " + strings.Join(actions, ",")
}

// Events returns the events of every successful Append, in order.
func (a *AuditLog) Events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

// Attempts returns the events passed to every Append call, failed or not.
func (a *AuditLog) Attempts() [][]audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.attempts)
}

// EventsAt returns the recorded events of the message at topic/partition/offset.
func (a *AuditLog) EventsAt(topic string, partition int, offset int64) []audit.Event {
	var out []audit.Event
	for _, e := range a.Events() {
		if e.Topic == topic && e.Partition == partition && e.Offset == offset {
			out = append(out, e)
		}
	}
	return out
}

// Actions returns the Action of each event.
func Actions(events []audit.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Action
	}
	return out
}
