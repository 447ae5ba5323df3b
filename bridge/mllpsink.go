package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// ORUEncoder encodes a reading's patient measurements as ORU^R01 messages
// (IHE PCD-01), one per patient and device. Readings about a Device or a
// Location have no HL7 v2 result form and are skipped.
type ORUEncoder struct {
	opts mappers.ORUOptions
}

// NewORUEncoder returns an encoder with the given MSH and PID settings.
func NewORUEncoder(opts mappers.ORUOptions) *ORUEncoder { return &ORUEncoder{opts: opts} }

var _ Encoder = (*ORUEncoder)(nil)

// Encode implements Encoder. Measurements of one patient and device share
// a message; when a group cannot be encoded, each of its measurements is
// tried alone, so only the failing ones are refused.
func (e *ORUEncoder) Encode(ms []mappers.Measurement, base audit.Event) Encoded {
	var out Encoded
	var patients []int // indexes in ms
	for i, m := range ms {
		if m.Subject.Type != "Patient" {
			ev := refs(base, m)
			ev.Detail = "HL7 v2 results carry patient readings only; this " + m.Kind + " reading is about a " + m.Subject.Type
			out.Skipped = append(out.Skipped, ev)
			continue
		}
		patients = append(patients, i)
	}
	if len(patients) == 0 {
		return out
	}
	units, err := e.encode(ms, patients, base)
	if err == nil {
		out.Units = units
		return out
	}
	for _, i := range patients {
		u, err := e.encode(ms, []int{i}, base)
		if err != nil {
			out.Refused = append(out.Refused, Refusal{Index: i, Ref: refs(base, ms[i]), Err: err})
			continue
		}
		out.Units = append(out.Units, u...)
	}
	return out
}

// encode makes the ORU^R01 messages of the measurements ms[idx...].
func (e *ORUEncoder) encode(ms []mappers.Measurement, idx []int, base audit.Event) ([]Unit, error) {
	patients := make([]mappers.Measurement, len(idx))
	for j, i := range idx {
		patients[j] = ms[i]
	}
	msgs, err := mappers.ORU(patients, e.opts)
	if err != nil {
		return nil, err
	}
	// mappers.ORU makes one message per patient and device, in order of
	// first appearance; firsts holds the first reading of each group and
	// members the indexes (in ms) of every reading of the group.
	var firsts []mappers.Measurement
	var members [][]int
	group := map[string]int{}
	for j, m := range patients {
		k := m.Subject.Reference() + "\x00" + m.Device.ID
		g, ok := group[k]
		if !ok {
			g = len(firsts)
			group[k] = g
			firsts = append(firsts, m)
			members = append(members, nil)
		}
		members[g] = append(members[g], idx[j])
	}
	if len(firsts) != len(msgs) {
		return nil, fmt.Errorf("encode ORU^R01: %d messages for %d patient/device groups", len(msgs), len(firsts))
	}
	out := make([]Unit, 0, len(msgs))
	for i, msg := range msgs {
		body, err := msg.Append(nil)
		if err != nil {
			return nil, fmt.Errorf("encode ORU^R01: %w", err)
		}
		ref := refs(base, firsts[i])
		ref.Resource = "MSH-10|" + msg.ControlID
		// The key is the patient: one patient's messages share a
		// connection and keep their order.
		u := Unit{Body: body, Key: ref.Patient, ID: msg.ControlID, Ref: ref, Measurements: members[i]}
		for _, j := range members[i] {
			if ms[j].Revises() {
				// The message corrects or retracts (OBX-11 C or W).
				u.Status, u.Revision = ms[j].Status, ms[j].Revision()
				break
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// MLLPSender sends one HL7 message and waits for its acknowledgement
// (hl7.Pool). Messages with the same key keep their order.
type MLLPSender interface {
	Send(ctx context.Context, key string, msg []byte, controlID string) (hl7.ACK, error)
}

// Ledger records which MLLP messages were acknowledged (audit.Postgres,
// audit.MemoryLedger).
type Ledger interface {
	DeliveredOf(ctx context.Context, route string, messageIDs []string) (map[string]bool, error)
	MarkAllDelivered(ctx context.Context, route string, messageIDs []string) error
}

// MLLPSink sends ORU^R01 messages to an interface engine, one patient's
// messages in order on one connection, different patients in parallel.
// Engines cannot deduplicate, so a ledger of acknowledged MSH-10s keeps a
// redelivered reading from being sent twice: a message is looked up before
// it is sent and recorded once acknowledged, before its offset is committed.
type MLLPSink struct {
	route    string
	sender   MLLPSender
	ledger   Ledger
	parallel int
	retry    Retry
	closer   func(ctx context.Context) error
}

// MLLPSinkConfig configures an MLLPSink.
type MLLPSinkConfig struct {
	Route  string
	Sender MLLPSender
	Ledger Ledger
	// Parallel is how many patients are sent at once: the number of
	// connections.
	Parallel int
	// Retry paces retries of the ledger write after an acknowledgement.
	Retry Retry
	// Close, when set, is called by Close (the pool's Close).
	Close func(ctx context.Context) error
}

// NewMLLPSink returns an MLLP sink.
func NewMLLPSink(c MLLPSinkConfig) (*MLLPSink, error) {
	if c.Ledger == nil {
		return nil, errors.New("an MLLP destination needs a delivery ledger")
	}
	return &MLLPSink{route: c.Route, sender: c.Sender, ledger: c.Ledger, parallel: max(c.Parallel, 1), retry: c.Retry, closer: c.Close}, nil
}

var _ Sink = (*MLLPSink)(nil)

// Kind implements Sink.
func (s *MLLPSink) Kind() string { return "mllp" }

// Close implements Sink.
func (s *MLLPSink) Close(ctx context.Context) error {
	if s.closer == nil {
		return nil
	}
	return s.closer(ctx)
}

// Deliver implements Sink. The ledger is asked once for the whole call
// (messages acknowledged before are not sent again) and written once for
// every message acknowledged now (one durable commit per call, not per
// message). Once a patient's message is not delivered (retry later), that
// patient's later messages wait too: they must not overtake it.
func (s *MLLPSink) Deliver(ctx context.Context, units []Unit) []Outcome {
	out := make([]Outcome, len(units))
	ids := make([]string, len(units))
	for i, u := range units {
		ids[i] = u.ID
	}
	done, err := s.ledger.DeliveredOf(ctx, s.route, ids)
	if err != nil {
		for i := range out {
			out[i] = Outcome{Kind: RetryLater, Reason: "ledger", Err: err}
		}
		return out
	}
	var keys []string
	groups := map[string][]int{}
	for i, u := range units {
		if done[u.ID] {
			out[i] = Outcome{Kind: AlreadyPresent, Reason: "ledger"}
			continue
		}
		if _, ok := groups[u.Key]; !ok {
			keys = append(keys, u.Key)
		}
		groups[u.Key] = append(groups[u.Key], i)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.parallel)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var held *Outcome
			sent := map[string]bool{} // ids acknowledged in this call: a repeat in the same batch is not resent
			for _, i := range groups[k] {
				if held != nil {
					out[i] = *held
					continue
				}
				if sent[units[i].ID] {
					out[i] = Outcome{Kind: AlreadyPresent, Reason: "ledger"}
					continue
				}
				out[i] = s.send(ctx, units[i])
				if out[i].Kind == Delivered {
					sent[units[i].ID] = true
				}
				if out[i].Kind == RetryLater {
					o := out[i]
					o.Err = fmt.Errorf("held behind an earlier message of the same patient: %w", o.Err)
					held = &o
				}
			}
		})
	}
	wg.Wait()
	// Acknowledged: record them before the offset can be committed, so a
	// redelivery is recognised. The ledger is our own infrastructure, so
	// its failures are retried until the route stops.
	var acked []string
	for i, o := range out {
		if o.Kind == Delivered {
			acked = append(acked, units[i].ID)
		}
	}
	if len(acked) == 0 {
		return out
	}
	lt := lifetime{stop: ctx, work: ctx}
	if _, err := s.retry.Do(lt, func(ctx context.Context) error {
		return s.ledger.MarkAllDelivered(ctx, s.route, acked)
	}, nil); err != nil {
		// Not recorded: the readings stay uncommitted and are redelivered;
		// the engine may then get them again (at-least-once).
		for i, o := range out {
			if o.Kind == Delivered {
				out[i] = Outcome{Kind: RetryLater, Reason: "ledger", Err: fmt.Errorf("recording the acknowledgement: %w", err)}
			}
		}
	}
	return out
}

// send sends one message and classifies the answer.
func (s *MLLPSink) send(ctx context.Context, u Unit) Outcome {
	ack, err := s.sender.Send(ctx, u.Key, u.Body, u.ID)
	if err != nil {
		o := Outcome{Kind: Refused, Err: err, Reason: "permanent"}
		var ae *hl7.AckError
		if errors.As(err, &ae) {
			o.Ack, o.Reason = ae.ACK.Code, "ack-"+ae.ACK.Code
		} else if ctx.Err() != nil {
			o.Reason = "stopping"
		} else {
			o.Reason = "transport"
		}
		if temporary(err) || ctx.Err() != nil {
			o.Kind = RetryLater
		}
		return o
	}
	return Outcome{Kind: Delivered, Ack: ack.Code}
}
