package bridge

import (
	"context"
	"fmt"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// destination turns a message's readings into delivery units and sends them.
type destination interface {
	// prepare encodes readings; an error rejects the whole message. skipped
	// lists readings the destination cannot carry, as audit references with
	// Detail saying why.
	prepare(ms []mappers.Measurement, base audit.Event) (units []mapped, skipped []audit.Event, err error)
	// send delivers one unit once. Errors say whether a retry may help
	// through Temporary() bool.
	send(ctx context.Context, m mapped) (sent, error)
	// record makes a successful send durable where the destination needs it
	// (the MLLP ledger); it runs before the offset is committed.
	record(ctx context.Context, m mapped) error
}

// sent is a destination's answer to a successful send.
type sent struct {
	status   int    // HTTP status, 0 for MLLP
	location string // Location header, or the ACK code
}

// fhirDest posts Observations with conditional create.
type fhirDest struct {
	sink     Sink
	codec    *fhir.Codec
	idSystem string
	// upsert, when set, makes the route write each new device's Device
	// resource (PUT Device/<id>) before the first Observation that
	// references it; devices remembers which are done.
	upsert  bool
	devices *sync.Map
}

func (d *fhirDest) prepare(ms []mappers.Measurement, base audit.Event) ([]mapped, []audit.Event, error) {
	out := make([]mapped, 0, len(ms))
	for i, m := range ms {
		ref := refs(base, m)
		ref.Resource = d.idSystem + "|" + m.Key()
		obs, err := mappers.Observation(m, d.idSystem)
		if err != nil {
			return nil, nil, readingErr(i, len(ms), err)
		}
		if fhir.ClaimsVitalSigns(obs) {
			if issues := fhir.CheckVitalSigns(obs); len(issues) > 0 {
				return nil, nil, readingErr(i, len(ms), &fhir.ValidationError{Issues: issues})
			}
		}
		body, err := d.codec.Encode(obs)
		if err != nil {
			return nil, nil, readingErr(i, len(ms), err)
		}
		u := mapped{body: body, key: fhir.IfNoneExistIdentifier(d.idSystem, m.Key()), id: ref.Resource, ref: ref}
		if d.upsert {
			if _, done := d.devices.Load(m.Device.ID); !done {
				dev, err := d.codec.Encode(mappers.DeviceResource(m.Device))
				if err != nil {
					return nil, nil, readingErr(i, len(ms), err)
				}
				u.deviceID, u.deviceBody = m.Device.ID, dev
			}
		}
		out = append(out, u)
	}
	return out, nil, nil
}

// DeviceSink writes a resource with a client-assigned id (fhir.Client.Update).
type DeviceSink interface {
	Update(ctx context.Context, resourceType, id string, body []byte) (fhir.Result, error)
}

func (d *fhirDest) send(ctx context.Context, m mapped) (sent, error) {
	res, err := d.sink.Create(ctx, "Observation", m.body, m.key)
	if err != nil {
		return sent{}, err
	}
	return sent{status: res.Status, location: res.Location}, nil
}

func (d *fhirDest) record(context.Context, mapped) error { return nil }

// MLLPSender sends one HL7 message and waits for its acknowledgement
// (hl7.Pool). Messages with the same key keep their order.
type MLLPSender interface {
	Send(ctx context.Context, key string, msg []byte, controlID string) (hl7.ACK, error)
}

// mllpDest sends ORU^R01 messages to an interface engine. Engines cannot
// deduplicate, so a ledger of acknowledged MSH-10s keeps redeliveries from
// being sent again.
type mllpDest struct {
	route  string
	sender MLLPSender
	ledger audit.Ledger
	opts   mappers.ORUOptions
}

func (d *mllpDest) prepare(ms []mappers.Measurement, base audit.Event) ([]mapped, []audit.Event, error) {
	var patients []mappers.Measurement
	var skipped []audit.Event
	for _, m := range ms {
		if m.Subject.Type != "Patient" {
			e := refs(base, m)
			e.Detail = "HL7 v2 results carry patient readings only; this " + m.Kind + " reading is about a " + m.Subject.Type
			skipped = append(skipped, e)
			continue
		}
		patients = append(patients, m)
	}
	if len(patients) == 0 {
		return nil, skipped, nil
	}
	msgs, err := mappers.ORU(patients, d.opts)
	if err != nil {
		return nil, nil, err
	}
	// mappers.ORU makes one message per patient and device, in order of
	// first appearance; firsts holds the first reading of each group.
	var firsts []mappers.Measurement
	seen := map[string]bool{}
	for _, m := range patients {
		if k := m.Subject.Reference() + "\x00" + m.Device.ID; !seen[k] {
			seen[k] = true
			firsts = append(firsts, m)
		}
	}
	if len(firsts) != len(msgs) {
		return nil, nil, fmt.Errorf("encode ORU^R01: %d messages for %d patient/device groups", len(msgs), len(firsts))
	}
	out := make([]mapped, 0, len(msgs))
	for i, msg := range msgs {
		body, err := msg.Append(nil)
		if err != nil {
			return nil, nil, fmt.Errorf("encode ORU^R01: %w", err)
		}
		ref := refs(base, firsts[i])
		ref.Resource = "MSH-10|" + msg.ControlID
		// The shard key is the patient: one patient's messages share a
		// connection and keep their order.
		out = append(out, mapped{body: body, key: ref.Patient, id: msg.ControlID, ref: ref})
	}
	return out, skipped, nil
}

func (d *mllpDest) send(ctx context.Context, m mapped) (sent, error) {
	done, err := d.ledger.Delivered(ctx, d.route, m.id)
	if err != nil {
		return sent{}, temporaryError{err}
	}
	if done {
		return sent{location: "ledger: acknowledged before"}, nil
	}
	ack, err := d.sender.Send(ctx, m.key, m.body, m.id)
	if err != nil {
		return sent{}, err
	}
	return sent{location: "MSA-1 " + ack.Code}, nil
}

func (d *mllpDest) record(ctx context.Context, m mapped) error {
	return d.ledger.MarkDelivered(ctx, d.route, m.id)
}

// temporaryError marks an infrastructure failure (the ledger's database) as
// worth retrying.
type temporaryError struct{ err error }

func (e temporaryError) Error() string   { return e.err.Error() }
func (e temporaryError) Unwrap() error   { return e.err }
func (e temporaryError) Temporary() bool { return true }

// refs fills the audit references of a reading.
func refs(base audit.Event, m mappers.Measurement) audit.Event {
	e := base
	e.Device = "Device/" + m.Device.ID
	if m.Subject.Type == "Patient" {
		e.Patient = m.Subject.Reference()
	}
	return e
}
