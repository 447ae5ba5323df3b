// Package bridgetest holds hand-written fakes for testing the bridge pipeline
// without an EHR or a database: a scripted Sink (an EHR's create endpoint)
// that records calls, a recording AuditLog that can be told to fail, a
// shared ordering Log, a fixed Clock and test readings.
//
// The fakes satisfy bridge.FHIRCreator and bridge.AuditLog structurally.
// The package deliberately does not import bridge, so the bridge package's
// own (internal) tests can use it without an import cycle; the interface
// assertions live in bridge's tests (with the fake Source, which needs
// bridge's types and so lives there).
//
// Every fake is safe for concurrent use: the route under test calls it from
// its goroutine while the test inspects it from another.
package bridgetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Log is an ordering log several fakes share, so a test can assert that one
// thing happened before another (for example that a message's audit events
// were appended before its offset was committed). A nil *Log records nothing.
type Log struct {
	mu      sync.Mutex
	entries []string
}

// Add appends an entry.
func (l *Log) Add(format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, fmt.Sprintf(format, args...))
}

// Entries returns a copy of the entries so far, oldest first.
func (l *Log) Entries() []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// Pos renders a message's source position as "topic/partition/offset", the
// form the fakes use in Log entries.
func Pos(topic string, partition int, offset int64) string {
	return topic + "/" + strconv.Itoa(partition) + "/" + strconv.FormatInt(offset, 10)
}

// Clock is a settable clock; Now is safe to pass as a route's clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Reading is one reading in the bridge's native JSON format
// (docs/native-format.md). Its zero fields are omitted from JSON, so a test
// can build a reading with a missing field.
type Reading struct {
	Kind    string `json:"kind,omitempty"`
	Device  string `json:"device,omitempty"`
	Patient string `json:"patient,omitempty"`
	Time    string `json:"time,omitempty"`
	Value   any    `json:"value,omitempty"`
	Unit    string `json:"unit,omitempty"`
}

// HeartRate returns a valid heart-rate reading.
func HeartRate(device, patient string, t time.Time, bpm int) Reading {
	return Reading{Kind: "heart-rate", Device: device, Patient: patient, Time: t.Format(time.RFC3339Nano), Value: bpm, Unit: "/min"}
}

// JSON encodes the reading.
func (r Reading) JSON() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // only plain values: cannot happen
	}
	return b
}

// SyncBuffer is a log destination that goroutines under test and the test
// itself can share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
