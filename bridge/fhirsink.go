package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// FHIREncoder encodes measurements as FHIR R4 Observations that pass the
// vital-signs checks, each with its deterministic identifier, and (when
// devices are upserted) the Device resource it references.
type FHIREncoder struct {
	codec    *fhir.Codec
	idSystem string
	devices  bool
	// bodies caches encoded Device resources by id: a device's resource is
	// the same for every reading, so it is encoded once.
	bodies sync.Map
}

// NewFHIREncoder returns an encoder writing identifiers in idSystem;
// withDevices attaches each reading's Device resource to its unit.
func NewFHIREncoder(codec *fhir.Codec, idSystem string, withDevices bool) *FHIREncoder {
	return &FHIREncoder{codec: codec, idSystem: idSystem, devices: withDevices}
}

var _ Encoder = (*FHIREncoder)(nil)

// Encode implements Encoder: one Observation per measurement; a
// measurement that fails the vital-signs checks or the encoding is refused
// alone.
func (e *FHIREncoder) Encode(ms []mappers.Measurement, base audit.Event) Encoded {
	var out Encoded
	out.Units = make([]Unit, 0, len(ms))
	for i, m := range ms {
		ref := refs(base, m)
		ref.Resource = e.idSystem + "|" + m.Key()
		u, err := e.encode(i, m, ref)
		if err != nil {
			out.Refused = append(out.Refused, Refusal{Index: i, Ref: ref, Err: err})
			continue
		}
		out.Units = append(out.Units, u)
	}
	return out
}

func (e *FHIREncoder) encode(i int, m mappers.Measurement, ref audit.Event) (Unit, error) {
	obs, err := mappers.Observation(m, e.idSystem)
	if err != nil {
		return Unit{}, err
	}
	// The revision travels with the resource as a tag, so a later
	// delivery of the same reading can tell a correction from a repeat.
	rev := m.Revision()
	if obs.Meta == nil {
		obs.Meta = &dtpb.Meta{}
	}
	obs.Meta.Tag = append(obs.Meta.Tag, fhir.Coding(RevisionSystem, rev, ""))
	if fhir.ClaimsVitalSigns(obs) {
		if issues := fhir.CheckVitalSigns(obs); len(issues) > 0 {
			return Unit{}, &fhir.ValidationError{Issues: issues}
		}
	}
	body, err := e.codec.Encode(obs)
	if err != nil {
		return Unit{}, err
	}
	u := Unit{Body: body, Key: ref.Patient, ID: ref.Resource, IfNoneExist: fhir.IfNoneExistIdentifier(e.idSystem, m.Key()),
		Ref: ref, Measurements: []int{i}, Revision: rev, Status: m.Status}
	if e.devices {
		dev, ok := e.bodies.Load(m.Device.ID)
		if !ok {
			b, err := e.codec.Encode(mappers.DeviceResource(m.Device))
			if err != nil {
				return Unit{}, err
			}
			dev, _ = e.bodies.LoadOrStore(m.Device.ID, b)
		}
		u.DeviceID, u.DeviceBody = m.Device.ID, dev.([]byte)
	}
	return u, nil
}

// RevisionSystem is the meta.tag system under which the bridge records a
// reading's revision (mappers.Measurement.Revision) on its Observation.
const RevisionSystem = "https://github.com/fhir-bridge/fhir-bridge/CodeSystem/revision"

// FHIRCreator posts one resource with conditional create (fhir.Client).
type FHIRCreator interface {
	Create(ctx context.Context, resourceType string, body []byte, ifNoneExist string) (fhir.Result, error)
}

// FHIRBatcher posts creates in one batch Bundle (fhir.Client).
type FHIRBatcher interface {
	Batch(ctx context.Context, entries []fhir.BatchEntry) ([]fhir.EntryResult, error)
}

// FHIRUpdater writes a resource with a client-assigned id (fhir.Client).
type FHIRUpdater interface {
	Update(ctx context.Context, resourceType, id string, body []byte) (fhir.Result, error)
}

// FHIRReviser finds a stored resource by identifier and updates it with
// If-Match on its version (fhir.Client).
type FHIRReviser interface {
	FindByIdentifier(ctx context.Context, resourceType, system, value string) (fhir.Stored, bool, error)
	UpdateVersion(ctx context.Context, resourceType, id string, body []byte, version string) (fhir.Result, error)
}

// FHIRSingleSink posts each Observation on its own with conditional create,
// in order.
type FHIRSingleSink struct {
	client  FHIRCreator
	devices *deviceUpserter
	revise  *reviser
}

// NewFHIRSingleSink returns a sink posting through client. When upsert is
// not nil, units' Device resources are written through it first. When
// revise is not nil, a unit the server already holds in another revision
// updates the stored Observation (docs/adr/0004-reading-revisions.md).
func NewFHIRSingleSink(client FHIRCreator, upsert FHIRUpdater, revise FHIRReviser, log *slog.Logger) *FHIRSingleSink {
	return &FHIRSingleSink{client: client, devices: newDeviceUpserter(upsert, log), revise: newReviser(revise)}
}

var _ Sink = (*FHIRSingleSink)(nil)

// Kind implements Sink.
func (s *FHIRSingleSink) Kind() string { return "fhir" }

// Close implements Sink.
func (s *FHIRSingleSink) Close(context.Context) error { return nil }

// Deliver implements Sink.
func (s *FHIRSingleSink) Deliver(ctx context.Context, units []Unit) []Outcome {
	out := make([]Outcome, len(units))
	blocked := s.devices.upsert(ctx, units, out)
	for i, u := range units {
		if blocked[i] {
			continue
		}
		if ctx.Err() != nil {
			out[i] = stoppedOutcome(ctx)
			continue
		}
		res, err := s.client.Create(ctx, "Observation", u.Body, u.IfNoneExist)
		out[i] = s.revise.check(ctx, u, fhirOutcome(res, err))
	}
	return out
}

// FHIRBatchSink posts Observations in batch Bundles within the entry and
// byte limits, several at once. A Bundle the server refuses as a whole for
// good (it does not take batches) falls back to single creates, so nothing
// is dead-lettered for the Bundle's sake.
type FHIRBatchSink struct {
	client      FHIRBatcher
	single      FHIRCreator
	devices     *deviceUpserter
	revise      *reviser
	maxEntries  int
	maxBytes    int
	concurrency int
}

// BatchLimits bound the Bundles of a FHIRBatchSink.
type BatchLimits struct {
	MaxEntries  int // entries per Bundle; at least 1
	MaxBytes    int // bytes per Bundle, roughly
	Concurrency int // Bundles in flight at once; at least 1
}

// FHIRClient is what a batch sink needs of a FHIR client (fhir.Client).
type FHIRClient interface {
	FHIRCreator
	FHIRBatcher
}

// NewFHIRBatchSink returns a sink posting Bundles through client; upsert
// and revise as for NewFHIRSingleSink.
func NewFHIRBatchSink(client FHIRClient, upsert FHIRUpdater, revise FHIRReviser, limits BatchLimits, log *slog.Logger) *FHIRBatchSink {
	return &FHIRBatchSink{client: client, single: client, devices: newDeviceUpserter(upsert, log), revise: newReviser(revise),
		maxEntries: max(limits.MaxEntries, 1), maxBytes: max(limits.MaxBytes, 1), concurrency: max(limits.Concurrency, 1)}
}

var _ Sink = (*FHIRBatchSink)(nil)

// Kind implements Sink.
func (s *FHIRBatchSink) Kind() string { return "fhir" }

// Close implements Sink.
func (s *FHIRBatchSink) Close(context.Context) error { return nil }

// Deliver implements Sink. Entries of one Bundle have no order at the
// server (batch semantics); FHIR Observations do not need one.
func (s *FHIRBatchSink) Deliver(ctx context.Context, units []Unit) []Outcome {
	out := make([]Outcome, len(units))
	blocked := s.devices.upsert(ctx, units, out)
	var pending []int
	for i := range units {
		if !blocked[i] {
			pending = append(pending, i)
		}
	}
	if len(pending) == 1 {
		// A Bundle of one costs the server more than a create.
		i := pending[0]
		res, err := s.single.Create(ctx, "Observation", units[i].Body, units[i].IfNoneExist)
		out[i] = s.revise.check(ctx, units[i], fhirOutcome(res, err))
		return out
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.concurrency)
	for _, chunk := range s.chunks(units, pending) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.post(ctx, units, chunk, out) // each goroutine writes only its chunk's slots
		})
	}
	wg.Wait()
	// Entries the server already held may be earlier revisions: each is
	// looked at on its own (rare: redeliveries and corrections).
	for _, i := range pending {
		out[i] = s.revise.check(ctx, units[i], out[i])
	}
	return out
}

// post sends one Bundle and settles its entries in out.
func (s *FHIRBatchSink) post(ctx context.Context, units []Unit, chunk []int, out []Outcome) {
	entries := make([]fhir.BatchEntry, len(chunk))
	for j, i := range chunk {
		entries[j] = fhir.BatchEntry{ResourceType: "Observation", Body: units[i].Body, IfNoneExist: units[i].IfNoneExist}
	}
	results, err := s.client.Batch(ctx, entries)
	if err != nil {
		o := fhirOutcome(fhir.Result{}, err)
		if o.Kind == Refused {
			// The server refuses the Bundle itself: deliver one by one.
			for _, i := range chunk {
				if ctx.Err() != nil {
					out[i] = stoppedOutcome(ctx)
					continue
				}
				res, err := s.single.Create(ctx, "Observation", units[i].Body, units[i].IfNoneExist)
				out[i] = fhirOutcome(res, err)
			}
			return
		}
		for _, i := range chunk {
			out[i] = o
		}
		return
	}
	for j, i := range chunk {
		res := results[j]
		switch {
		case res.OK():
			out[i] = fhirOutcome(fhir.Result{Status: res.Status, Location: res.Location}, nil)
		default:
			out[i] = fhirOutcome(fhir.Result{}, &fhir.StatusError{Op: "POST Observation (batch entry)", Status: res.Status, Outcome: res.Outcome})
		}
	}
}

// chunks splits the pending units into Bundles within the limits.
func (s *FHIRBatchSink) chunks(units []Unit, pending []int) [][]int {
	var out [][]int
	var cur []int
	size := 0
	for _, i := range pending {
		n := len(units[i].Body) + len(units[i].IfNoneExist) + 100
		if len(cur) > 0 && (len(cur) >= s.maxEntries || size+n > s.maxBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// reviser turns a unit the server already holds into an update when the
// stored resource is another revision of the reading: a correction or a
// retraction reaches the EHR as a new version of the same Observation,
// never as a second resource and never dropped.
type reviser struct {
	client FHIRReviser // nil: off
}

func newReviser(c FHIRReviser) *reviser { return &reviser{client: c} }

// maxRevisionRaces bounds the re-read and retry after 412: another writer
// updating the same Observation at the same moment.
const maxRevisionRaces = 3

// check returns o unless it says the server already held the unit; then
// it compares revisions and updates the stored Observation when they
// differ (with If-Match on its version).
func (r *reviser) check(ctx context.Context, u Unit, o Outcome) Outcome {
	if r == nil || r.client == nil || o.Kind != AlreadyPresent || u.Revision == "" {
		return o
	}
	system, value, ok := strings.Cut(u.ID, "|")
	if !ok {
		return o
	}
	for range maxRevisionRaces {
		st, found, err := r.client.FindByIdentifier(ctx, "Observation", system, value)
		if err != nil {
			return fhirOutcome(fhir.Result{}, err)
		}
		if !found {
			// The conditional create matched, the search does not see it
			// yet (a lagging search index): try again later.
			return Outcome{Kind: RetryLater, Reason: "search", Err: errors.New("conditional create matched an Observation the search does not find")}
		}
		stored := revisionTag(st.Body)
		if stored == u.Revision || (stored == "" && u.Status == "") {
			// The same revision, or a resource from before revisions were
			// recorded that nothing says has changed.
			return o
		}
		body, err := withID(u.Body, st.ID)
		if err != nil {
			return Outcome{Kind: Refused, Reason: "encode", Err: err}
		}
		res, err := r.client.UpdateVersion(ctx, "Observation", st.ID, body, st.Version)
		var se *fhir.StatusError
		if errors.As(err, &se) && se.Status == http.StatusPreconditionFailed {
			continue // someone else updated it meanwhile: read it again
		}
		if err != nil {
			return fhirOutcome(fhir.Result{}, err)
		}
		return Outcome{Kind: Revised, Status: res.Status, Location: res.Location, PreviousRevision: stored}
	}
	return Outcome{Kind: RetryLater, Reason: "conflict", Err: fmt.Errorf("Observation updated concurrently %d times", maxRevisionRaces)}
}

// revisionTag returns the revision a stored Observation carries in
// meta.tag ("" when none).
func revisionTag(body []byte) string {
	var res struct {
		Meta struct {
			Tag []struct {
				System string `json:"system"`
				Code   string `json:"code"`
			} `json:"tag"`
		} `json:"meta"`
	}
	if json.Unmarshal(body, &res) != nil {
		return ""
	}
	for _, t := range res.Meta.Tag {
		if t.System == RevisionSystem {
			return t.Code
		}
	}
	return ""
}

// withID returns an encoded resource with its logical id set, as an update
// needs it.
func withID(body []byte, id string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("setting the id of the update: %w", err)
	}
	m["id"], _ = json.Marshal(id)
	return json.Marshal(m)
}

// deviceUpserter writes the Device resources new devices need before their
// Observations, so an EHR that enforces references accepts them.
type deviceUpserter struct {
	client FHIRUpdater // nil: off
	log    *slog.Logger
	done   sync.Map // device id -> true once written (or refused for good)
}

func newDeviceUpserter(client FHIRUpdater, log *slog.Logger) *deviceUpserter {
	return &deviceUpserter{client: client, log: log}
}

// upsert writes the Devices of units not written yet. A temporary failure
// makes that device's units RetryLater (settled in out, reported in
// blocked): their Observations must not overtake the Device. A permanent
// refusal is logged once and the Observations go on (if the EHR needs the
// Device, their own refusal dead-letters them with its reason).
func (d *deviceUpserter) upsert(ctx context.Context, units []Unit, out []Outcome) (blocked []bool) {
	blocked = make([]bool, len(units))
	if d == nil || d.client == nil {
		return blocked
	}
	failed := map[string]Outcome{}
	for i, u := range units {
		if u.DeviceID == "" {
			continue
		}
		if o, ok := failed[u.DeviceID]; ok {
			out[i], blocked[i] = o, true
			continue
		}
		if _, ok := d.done.Load(u.DeviceID); ok {
			continue
		}
		_, err := d.client.Update(ctx, "Device", u.DeviceID, u.DeviceBody)
		if err != nil {
			o := fhirOutcome(fhir.Result{}, err)
			if o.Kind == RetryLater {
				o.Err = fmt.Errorf("device upsert: %w", o.Err)
				failed[u.DeviceID] = o
				out[i], blocked[i] = o, true
				continue
			}
			d.log.Warn("device upsert refused; Observations are sent without it", "status", o.Status, "reason", o.Reason)
		}
		d.done.Store(u.DeviceID, true)
	}
	return blocked
}

// fhirOutcome classifies a FHIR client's answer.
func fhirOutcome(res fhir.Result, err error) Outcome {
	if err == nil {
		o := Outcome{Kind: Delivered, Status: res.Status, Location: res.Location}
		if res.Status == http.StatusOK {
			o.Kind = AlreadyPresent // conditional create matched
		}
		return o
	}
	o := Outcome{Kind: Refused, Err: err, Reason: "permanent"}
	var se *fhir.StatusError
	var te *fhir.TransportError
	var tok *auth.TokenError
	switch {
	case errors.As(err, &tok):
		o.Reason = "token"
	case errors.As(err, &se):
		o.Status, o.Reason, o.Wait = se.Status, "http-"+strconv.Itoa(se.Status), se.RetryAfter
	case errors.As(err, &te):
		o.Reason = "transport"
		if errors.Is(err, context.DeadlineExceeded) {
			o.Reason = "timeout"
		}
	}
	if temporary(err) || tok != nil {
		// Token errors never dead-letter readings: the EHR did not see
		// them, and the partition waits until the credentials work.
		o.Kind = RetryLater
	}
	return o
}

// stoppedOutcome is the outcome of a unit not attempted because ctx ended.
func stoppedOutcome(ctx context.Context) Outcome {
	return Outcome{Kind: RetryLater, Reason: "stopping", Err: ctx.Err()}
}

// refs fills the audit references of a reading.
func refs(base audit.Event, m mappers.Measurement) audit.Event {
	e := base
	e.Device = "Device/" + m.Device.ID
	if m.Subject.Type == "Patient" {
		e.Patient = m.Subject.Reference()
	}
	return e
}
