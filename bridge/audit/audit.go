// Package audit records what the bridge did with every reading: an append-only
// trail of events (received, mapped, delivered, rejected, ...) with the source
// position, the device and patient references and the destination's answer.
// Postgres is the production store; Memory serves the demo and single-node
// trials. The pipeline commits a Kafka offset only after Append returned, so
// every committed reading has a durable trail.
package audit

import (
	"context"
	"time"
)

// Actions recorded by the pipeline: one row per reading (or unit: an
// Observation, an ORU^R01) and outcome, delivered, rejected, dead-lettered or
// skipped, carrying the receive time, the mapping result (references) and
// the destination's answer. Received, mapped and retried are actions of rows
// written before that (three rows per reading); readers still understand
// them.
const (
	ActionReceived  = "received"
	ActionMapped    = "mapped"
	ActionDelivered = "delivered"
	ActionRejected  = "rejected"
	// ActionDeadLettered: the reading was refused (Stage and Reason say
	// where and why) and its message written to the route's dead-letter
	// topic (Location names it).
	ActionDeadLettered = "dead-lettered"
	// ActionReplayed: a dead letter was re-injected into its source topic.
	ActionReplayed = "replayed"
	// ActionRetried: delivery failed temporarily before its final answer;
	// Detail says how often.
	ActionRetried = "retried"
	// ActionConfigLoaded: the bridge started with a configuration.
	ActionConfigLoaded = "config-loaded"
	// ActionCorrected: a new revision of a reading the destination held
	// (amended, corrected, or a changed value) replaced it: an update of
	// the same Observation, or an ORU^R01 with OBX-11 C. Detail names both
	// revisions.
	ActionCorrected = "corrected"
	// ActionRetracted: like ActionCorrected for a reading entered in
	// error (status entered-in-error; OBX-11 W).
	ActionRetracted = "retracted"
	// ActionSkipped: the reading has no form at the route's destination
	// (a reading about a Device on an HL7 route); Detail says why.
	ActionSkipped = "skipped"
)

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// ActorSystem is the actor of events the pipeline records on its own behalf.
const ActorSystem = "system"

// Event is one audit record. Detail explains a failure in terms of fields and
// rules; it never carries the payload.
type Event struct {
	ID            int64 // assigned by the store
	Time          time.Time
	Action        string
	Outcome       string
	Actor         string
	Route         string
	Topic         string
	Partition     int
	Offset        int64
	Device        string // e.g. "Device/hrm-0001"
	Patient       string // e.g. "Patient/p-42"
	Resource      string // e.g. the Observation identifier "system|value"
	Status        int    // destination HTTP status, 0 when none
	Location      string // destination Location header
	Detail        string
	CorrelationID string
	// Stage is the pipeline stage an outcome belongs to: map, encode,
	// deliver, dead-letter (empty for events outside the pipeline).
	Stage string
	// DestKind is the destination kind of a delivery outcome: fhir, mllp.
	DestKind string
	// Reason is a short code for failures: invalid-payload, http-422,
	// ack-AE, ...; "already-present" for a delivery the destination had.
	Reason string
	// ReceivedAt is when the bridge read the reading (outcome rows of the
	// pipeline); zero otherwise.
	ReceivedAt time.Time
	// Attempts is how many delivery attempts the outcome took (0: none was
	// made, e.g. a payload refused at mapping).
	Attempts int

	// Filled by the store (see chain.go): the position in the event's chain
	// ChainOf(e), from 1, and the chain hashes. Ignored by Append.
	Seq      int64
	PrevHash []byte
	Hash     []byte
}

// Filter selects events for List. Zero fields match everything.
type Filter struct {
	Route   string
	Action  string
	Patient string
	Device  string
	Outcome string
	// Since and Until bound the event time: Since <= Time < Until. Zero
	// means unbounded.
	Since, Until time.Time
	// Limit caps the result; 0 means 1000.
	Limit int
}

func (f Filter) match(e Event) bool {
	return (f.Route == "" || e.Route == f.Route) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.Patient == "" || e.Patient == f.Patient) &&
		(f.Device == "" || e.Device == f.Device) &&
		(f.Outcome == "" || e.Outcome == f.Outcome) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until))
}

func (f Filter) limit() int {
	if f.Limit <= 0 {
		return 1000
	}
	return f.Limit
}

// Store is what every audit store provides. Append is durable when it returns
// nil. List returns matching events oldest first.
type Store interface {
	Append(ctx context.Context, events ...Event) error
	List(ctx context.Context, f Filter) ([]Event, error)
	Close() error
}
