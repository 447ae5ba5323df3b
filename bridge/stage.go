package bridge

import (
	"context"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// The stage contracts of the engine. A route is
//
//	read -> map -> encode -> deliver -> dead-letter -> audit -> ack
//
// and each arrow crosses one of the interfaces below. They are declared here,
// where the engine consumes them; the implementations (bridge/kafka, the
// sinks in this package, the audit stores) satisfy them structurally.

// Position is where a reading sits in its source.
type Position struct {
	Topic     string
	Partition int
	Offset    int64
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Reading is one source record as the engine sees it: the payload with its
// key, headers and position, when the producer wrote it and when the bridge
// received it. The engine acknowledges a reading by committing its partition
// past it once it is delivered or dead-lettered and audited.
type Reading struct {
	Value   []byte
	Key     []byte
	Headers []Header
	Pos     Position
	// Time is the record's timestamp (the producer's create time, or the
	// broker's append time); zero when unknown. End-to-end latency is
	// measured from it.
	Time time.Time
	// Received is when the source handed the reading out.
	Received time.Time
}

// Source is a route's membership of its consumer group.
//
// Consume runs until ctx ends or the source fails for good. For each
// partition assigned to this instance it calls claim in a goroutine of its
// own; claim returns soon after its context ends (the partition was revoked
// or the source is stopping), after committing what it finished. A claim
// returning an error stops Consume, which returns that error. Consume
// returns only after every claim has returned and the instance has left the
// group, on every exit path.
type Source interface {
	Consume(ctx context.Context, claim func(ctx context.Context, c Claim) error) error
}

// Claim is one partition assigned to this instance, read in offset order.
// A Claim is used by one goroutine at a time.
type Claim interface {
	Topic() string
	Partition() int
	// Read blocks for the next reading. It returns ctx's error when ctx
	// ends; any other error means the partition cannot be read.
	Read(ctx context.Context) (Reading, error)
	// Commit records that every reading before offset next is handled.
	// Committing is cumulative: it covers every earlier offset.
	Commit(ctx context.Context, next int64) error
	// HighWater is the partition's end offset as last seen (-1: unknown);
	// committed lag is HighWater minus the committed offset.
	HighWater() int64
}

// Mapper turns one payload (one source record) into its readings, each
// mapped on its own: a reading that fails carries its error (naming its
// index and the field at fault) and the others go on. The error return is
// for the payload as a whole: not JSON, not readable by the template. A
// mapper is pure and safe for concurrent use.
type Mapper interface {
	MapEach(payload []byte) ([]mappers.Result, error)
}

// Encoder turns a record's measurements into delivery units for one
// destination kind, each measurement on its own: Refused lists the
// measurements it cannot encode (by index in ms, with the error naming the
// element and rule), Skipped those the destination cannot carry (as audit
// references whose Detail says why). Encoders are safe for concurrent use.
type Encoder interface {
	Encode(ms []mappers.Measurement, base audit.Event) Encoded
}

// Encoded is what an Encoder made of a record's measurements.
type Encoded struct {
	Units   []Unit
	Skipped []audit.Event
	Refused []Refusal
}

// Refusal is a measurement an encoder refused.
type Refusal struct {
	Index int         // in the measurements given to Encode
	Ref   audit.Event // its audit references
	Err   error
}

// Unit is one thing a sink delivers: an Observation (with the Device it
// references, when the route upserts devices), or an ORU^R01 message.
type Unit struct {
	Body []byte
	// Key orders delivery: units with the same key are delivered in order
	// (the patient). For FHIR it is also the If-None-Exist search.
	Key string
	// ID is the unit's identity at the destination: the Observation
	// identifier "system|value", or MSH-10.
	ID string
	// IfNoneExist is the conditional-create search (FHIR), empty otherwise.
	IfNoneExist string
	// DeviceID and DeviceBody, when set, are a Device resource to write
	// before this unit (FHIR routes with upsert_devices).
	DeviceID   string
	DeviceBody []byte
	// Ref is the unit's audit reference: the reading's base event with
	// Device, Patient and Resource set.
	Ref audit.Event
	// Measurements are the indexes (in the measurements given to Encode)
	// of the measurements this unit carries.
	Measurements []int
	// Revision is the digest of what the reading says (status, values):
	// a destination holding the unit's ID with another revision gets the
	// new one as an update (FHIR). See docs/adr/0004-reading-revisions.md.
	Revision string
	// Status is the reading's FHIR status ("" means final).
	Status string
}

// OutcomeKind is what became of one unit at its destination.
type OutcomeKind int

// Outcome kinds. A sink reports exactly one per unit and attempt.
const (
	// RetryLater: a temporary failure (timeout, connection, 429, 5xx,
	// token endpoint down). The engine retries the unit after a backoff;
	// the partition waits.
	RetryLater OutcomeKind = iota
	// Delivered: the destination accepted the unit now.
	Delivered
	// AlreadyPresent: the destination had it already (conditional create
	// matched, or the MLLP ledger knew the message).
	AlreadyPresent
	// Refused: a permanent refusal (4xx, OperationOutcome error, ACK AE/AR).
	// The reading is dead-lettered.
	Refused
	// Revised: the destination held an earlier revision of the unit and
	// now holds this one (a correction or retraction, as an update of the
	// same resource). PreviousRevision says which it replaced.
	Revised
)

func (k OutcomeKind) String() string {
	switch k {
	case Delivered:
		return "delivered"
	case AlreadyPresent:
		return "already-present"
	case Refused:
		return "refused"
	case Revised:
		return "revised"
	default:
		return "retry-later"
	}
}

// Outcome is a sink's answer for one unit.
type Outcome struct {
	Kind OutcomeKind
	// Status is the HTTP status, 0 for MLLP or when no answer came.
	Status int
	// Location is the resource's Location (FHIR).
	Location string
	// Ack is the HL7 acknowledgment code (MSA-1), empty for FHIR.
	Ack string
	// Reason is a short code for refusals and retries: http-422, ack-AE,
	// timeout, connection, token, ...
	Reason string
	// Err is the failure behind RetryLater and Refused. Its text names
	// hosts, statuses and rules, never reading values.
	Err error
	// Wait is the destination's Retry-After, for RetryLater.
	Wait time.Duration
	// Attempts is how many attempts the unit took; the engine fills it.
	Attempts int
	// PreviousRevision is the revision a Revised outcome replaced ("" when
	// the stored resource carried none).
	PreviousRevision string
}

// Sink delivers units to one destination.
//
// Deliver makes one attempt at each unit (a sink may fall back internally,
// e.g. from a batch Bundle to single creates) and returns one Outcome per
// unit, in the order of units. Where the destination has an order (MLLP),
// units with the same Key reach it in order, and a unit to retry holds the
// later units of its key; FHIR Observations are independent resources and
// the entries of a batch Bundle have no order. ctx bounds the attempt: when it ends, units not yet
// answered are RetryLater. The error return is for a broken sink, never for
// a unit's own failure. Deliver is called by one goroutine per partition at a
// time and must be safe for concurrent use across partitions.
type Sink interface {
	Deliver(ctx context.Context, units []Unit) []Outcome
	// Kind names the destination kind for audit and metrics: "fhir", "mllp".
	Kind() string
	// Close releases connections; ctx bounds it.
	Close(ctx context.Context) error
}

// DeadLetter says why a reading was rejected.
type DeadLetter struct {
	Route string
	// Stage is where it was rejected: StageMap, StageEncode, StageDeliver.
	Stage string
	// Reason is a short code: invalid-payload, http-422, ack-AE, ...
	Reason string
	// Err is the error text, naming field and rule.
	Err    string
	Device string // Device/<id> when known
	First  time.Time
	Last   time.Time
	// Attempts is how many delivery attempts were made.
	Attempts int
	// Readings are the indexes (among the payload's readings) of the
	// readings that were refused; empty when the payload as a whole was.
	// The others of the payload were delivered: a replay of the record
	// finds them already present.
	Readings []int
}

// DeadLetters stores rejected readings with the reason, ready for replay.
// Write is durable when it returns nil and says where the record went (the
// dead-letter topic), for the audit trail. Safe for concurrent use.
type DeadLetters interface {
	Write(ctx context.Context, r Reading, d DeadLetter) (where string, err error)
	Close() error
}

// AuditLog records audit events; Append is durable when it returns nil.
type AuditLog interface {
	Append(ctx context.Context, events ...audit.Event) error
}

// Stages, as audit events and metrics name them.
const (
	StageRead       = "read"
	StageMap        = "map"
	StageEncode     = "encode"
	StageDeliver    = "deliver"
	StageDeadLetter = "dead-letter"
	StageAudit      = "audit"
	StageCommit     = "commit"
)

// Observer sees what the engine does, for metrics. Every method is called
// from pipeline goroutines and must be cheap and safe for concurrent use.
// Labels are bounded: route names, destination kinds, stages, reason codes,
// statuses; never device or patient identifiers.
type Observer interface {
	// Received counts readings handed out by a partition.
	Received(route string, partition int, n int)
	// Stage records how long one stage took for a batch of n readings.
	Stage(route, stage string, d time.Duration, n int)
	// Outcome counts a unit's final outcome at its destination (or a
	// retry-later attempt), with its status (HTTP status or ACK code) and
	// its end-to-end latency from the record's timestamp to the
	// destination's answer (0 when the timestamp is unknown).
	Outcome(route, destKind string, o Outcome, latency time.Duration)
	// DeadLettered counts a reading rejected at stage for reason.
	DeadLettered(route, stage, reason string)
	// Retry counts a retry of what ("deliver", "audit", "dead-letter",
	// "ledger", "commit") for a reason category.
	Retry(route, what, reason string)
	// InFlight reports a partition's readings and bytes between read and
	// commit.
	InFlight(route string, partition int, readings, bytes int)
	// Committed reports a partition's committed offset and its end.
	Committed(route, topic string, partition int, next, highWater int64)
	// Assigned reports that a partition was assigned (true) or revoked.
	Assigned(route, topic string, partition int, assigned bool)
	// RouteState reports a route's state: "flowing", "retrying" (with the
	// reason) or "stopped".
	RouteState(route, state, reason string)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) Received(string, int, int)                      {}
func (NopObserver) Stage(string, string, time.Duration, int)       {}
func (NopObserver) Outcome(string, string, Outcome, time.Duration) {}
func (NopObserver) DeadLettered(string, string, string)            {}
func (NopObserver) Retry(string, string, string)                   {}
func (NopObserver) InFlight(string, int, int, int)                 {}
func (NopObserver) Committed(string, string, int, int64, int64)    {}
func (NopObserver) Assigned(string, string, int, bool)             {}
func (NopObserver) RouteState(string, string, string)              {}

var _ Observer = NopObserver{}
