package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// TestRouteDeliversValidReadings follows valid readings through map, deliver,
// audit and commit, checking what each stage saw and the order they ran in.
func TestRouteDeliversValidReadings(t *testing.T) {
	type readingCase struct {
		device, patient string
		value           []byte
		headers         []Header
		step            bridgetest.Step // the sink's answer
		wantResult      fhir.Result
		wantCorrelation string // "" means the topic/partition/offset fallback
	}
	readings := []readingCase{
		{
			device: "hrm-1", patient: "p-1", value: reading("hrm-1", "p-1", 0, 72),
			headers:    []Header{{Key: "correlation-id", Value: []byte("req-7f3a")}},
			wantResult: fhir.Result{Status: http.StatusCreated, Location: "Observation/1/_history/1"},
			// The header wins over the fallback.
			wantCorrelation: "req-7f3a",
		},
		{
			device: "hrm-2", patient: "p-2", value: reading("hrm-2", "p-2", 1, 64),
			// A redelivery the EHR already has: conditional create matched.
			step:       bridgetest.Step{Result: fhir.Result{Status: http.StatusOK, Location: "Observation/77/_history/3"}},
			wantResult: fhir.Result{Status: http.StatusOK, Location: "Observation/77/_history/3"},
		},
		{
			device: "hrm-1", patient: "p-1", value: reading("hrm-1", "p-1", 2, 180),
			wantResult: fhir.Result{Status: http.StatusCreated, Location: "Observation/3/_history/1"},
		},
	}

	order := &bridgetest.Log{}
	var msgs []Reading
	var steps []bridgetest.Step
	for i, rd := range readings {
		msgs = append(msgs, msg(int64(10+i), rd.value, rd.headers...))
		steps = append(steps, rd.step)
	}
	src := newFakeSource(msgs...)
	src.Log = order
	sink := bridgetest.NewSink(steps...)
	sink.Log = order
	al := &bridgetest.AuditLog{Log: order}
	r := newRoute(t, src, sink, al)

	h := start(t, r)
	await(t, src.Drained(), "every message to be handled")
	h.stop(t)

	calls := sink.Calls()
	if len(calls) != len(readings) {
		t.Fatalf("sink called %d times, want %d (once per reading)", len(calls), len(readings))
	}
	var wantOrder, wantCommits []string
	for i, rd := range readings {
		m := msgs[i]
		pos := readingPos(m)
		k := key(t, rd.value)

		// What the sink got: a conditional create of a valid Observation.
		c := calls[i]
		if c.ResourceType != "Observation" {
			t.Errorf("call %d: resourceType = %q, want Observation", i+1, c.ResourceType)
		}
		wantINE := "identifier=" + url.QueryEscape(DefaultIdentifierSystem+"|"+k)
		if c.IfNoneExist != wantINE {
			t.Errorf("call %d: If-None-Exist = %q, want %q", i+1, c.IfNoneExist, wantINE)
		}
		if strings.ContainsAny(strings.TrimPrefix(c.IfNoneExist, "identifier="), "|:/") {
			t.Errorf("call %d: If-None-Exist %q is not query-escaped", i+1, c.IfNoneExist)
		}
		checkObservation(t, c.Body, rd.device, rd.patient, k)

		// What the audit trail got.
		want := []audit.Event{}
		base := baseEvent(m)
		if rd.wantCorrelation != "" {
			base.CorrelationID = rd.wantCorrelation
		}
		mapped := withRefs(base, rd.device, rd.patient, k)
		delivered := ev(mapped, audit.ActionDelivered, audit.OutcomeSuccess)
		delivered.Status, delivered.Location = rd.wantResult.Status, rd.wantResult.Location
		delivered.Stage, delivered.DestKind, delivered.Attempts = StageDeliver, "fhir", 1
		if rd.wantResult.Status == http.StatusOK {
			delivered.Reason = "already-present"
		}
		want = append(want, delivered)
		diff(t, "audit events of "+pos, al.EventsAt(m.Pos.Topic, m.Pos.Partition, m.Pos.Offset), want)

		wantOrder = append(wantOrder,
			"fetch "+pos,
			"sink "+strconv.Itoa(i+1),
			"audit "+pos+" delivered",
			"commit "+pos)
		wantCommits = append(wantCommits, pos)
	}
	// One Append per message, and each commit strictly after its Append.
	if n := len(al.Attempts()); n != len(readings) {
		t.Errorf("audit Append called %d times, want %d (one batch per message)", n, len(readings))
	}
	checkOrder(t, order.Entries(), wantOrder)
	checkCommits(t, src, wantCommits...)
	diff(t, "stats", r.stats.snapshot(), Stats{Received: 3, Delivered: 3})
}

// checkObservation decodes body with the validating FHIR unmarshaller and
// checks the Observation's identifier, subject and device.
func checkObservation(t *testing.T, body []byte, device, patient, key string) {
	t.Helper()
	msg, err := codec(t).Decode(body)
	if err != nil {
		t.Errorf("body is not valid FHIR R4 JSON: %v\n%s", err, body)
		return
	}
	cr, ok := msg.(*crpb.ContainedResource)
	if !ok || cr.GetObservation() == nil {
		t.Errorf("body is not an Observation: %s", body)
		return
	}
	obs := cr.GetObservation()
	if len(obs.GetIdentifier()) != 1 {
		t.Fatalf("Observation has %d identifiers, want 1: %s", len(obs.GetIdentifier()), body)
	}
	id := obs.GetIdentifier()[0]
	if got := id.GetSystem().GetValue() + "|" + id.GetValue().GetValue(); got != DefaultIdentifierSystem+"|"+key {
		t.Errorf("Observation identifier = %q, want %q", got, DefaultIdentifierSystem+"|"+key)
	}
	if got := obs.GetSubject().GetPatientId().GetValue(); got != patient {
		t.Errorf("Observation subject = Patient/%s, want Patient/%s", got, patient)
	}
	if got := obs.GetDevice().GetDeviceId().GetValue(); got != device {
		t.Errorf("Observation device = Device/%s, want Device/%s", got, device)
	}
}

// TestRouteRejectsBadPayloads dead-letters what cannot be mapped, records why
// in terms of the field, commits it, and goes on with the next reading.
func TestRouteRejectsBadPayloads(t *testing.T) {
	const patient = "p-secret-42" // must not leak into the audit detail
	good := reading("hrm-9", "p-9", 0, 70)
	tests := []struct {
		name       string
		value      []byte
		wantDetail string // Detail is "map: " + something containing this
	}{
		{"malformed JSON", []byte(`{"kind": heart-rate, "patient": "` + patient + `"}`), "malformed JSON at byte"},
		{"truncated JSON", []byte(`{"kind":"heart-rate","patient":"` + patient), "empty or truncated JSON"},
		{"empty payload", nil, "empty or truncated JSON"},
		{"unknown kind", bridgetest.Reading{Kind: "blood-sugar", Device: "hrm-1", Patient: patient, Time: "2026-11-25T10:15:00Z", Value: 5, Unit: "mmol/L"}.JSON(), `field "kind": unknown kind "blood-sugar"`},
		{"missing kind", bridgetest.Reading{Device: "hrm-1", Patient: patient, Time: "2026-11-25T10:15:00Z", Value: 72}.JSON(), `field "kind": missing`},
		{"value out of range", bridgetest.HeartRate("hrm-1", patient, readingTime, 500).JSON(), `field "value": 500 /min outside the plausible range`},
		{"negative value", bridgetest.HeartRate("hrm-1", patient, readingTime, -1).JSON(), `field "value"`},
		{"missing device", bridgetest.Reading{Kind: "heart-rate", Patient: patient, Time: "2026-11-25T10:15:00Z", Value: 72}.JSON(), `field "device": missing`},
		{"missing patient", bridgetest.Reading{Kind: "heart-rate", Device: "hrm-1", Time: "2026-11-25T10:15:00Z", Value: 72}.JSON(), `field "patient": missing`},
		{"missing time", bridgetest.Reading{Kind: "heart-rate", Device: "hrm-1", Patient: patient, Value: 72}.JSON(), `field "time": missing`},
		{"missing value", bridgetest.Reading{Kind: "heart-rate", Device: "hrm-1", Patient: patient, Time: "2026-11-25T10:15:00Z"}.JSON(), `field "value": missing`},
		{"value not a number", []byte(`{"kind":"heart-rate","device":"hrm-1","patient":"` + patient + `","time":"2026-11-25T10:15:00Z","value":true}`), `field "value"`},
		{"device not a FHIR id", bridgetest.Reading{Kind: "heart-rate", Device: "hrm 1/x", Patient: patient, Time: "2026-11-25T10:15:00Z", Value: 72}.JSON(), `field "device"`},
		{"unknown field", []byte(`{"kind":"heart-rate","devce":"hrm-1","patient":"` + patient + `","time":"2026-11-25T10:15:00Z","value":72}`), `field "devce": unknown field`},
		{"unit not accepted", bridgetest.Reading{Kind: "heart-rate", Device: "hrm-1", Patient: patient, Time: "2026-11-25T10:15:00Z", Value: 72, Unit: "Hz"}.JSON(), `field "unit"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			order := &bridgetest.Log{}
			bad, next := msg(40, tt.value), msg(41, good)
			src := newFakeSource(bad, next)
			src.Log = order
			sink := bridgetest.NewSink()
			al := &bridgetest.AuditLog{Log: order}
			r := newRoute(t, src, sink, al)

			h := start(t, r)
			await(t, src.Drained(), "both messages to be handled")
			h.stop(t)

			// The bad reading never reached the sink; the good one did.
			calls := sink.Calls()
			if len(calls) != 1 {
				t.Fatalf("sink called %d times, want 1 (only for the valid reading)", len(calls))
			}
			if want := "identifier=" + url.QueryEscape(DefaultIdentifierSystem+"|"+key(t, good)); calls[0].IfNoneExist != want {
				t.Errorf("sink got If-None-Exist %q, want the valid reading's %q", calls[0].IfNoneExist, want)
			}

			events := al.EventsAt(bad.Pos.Topic, bad.Pos.Partition, bad.Pos.Offset)
			if len(events) != 1 {
				t.Fatalf("audit events of the bad reading: %s\nwant [rejected]", show(events))
			}
			rejected := events[0]
			if (rejected.Stage != StageMap && rejected.Stage != StageEncode) || !strings.Contains(rejected.Detail, tt.wantDetail) {
				t.Errorf("rejected at stage %q with Detail %q, want map or encode and ...%s...", rejected.Stage, rejected.Detail, tt.wantDetail)
			}
			if strings.Contains(rejected.Detail, patient) {
				t.Errorf("rejected Detail %q quotes the payload's patient id", rejected.Detail)
			}
			rejected.Detail = ""
			// Parsing failed, so device, patient and resource are unknown.
			base := baseEvent(bad)
			wantRejected := ev(base, audit.ActionRejected, audit.OutcomeFailure)
			wantRejected.Stage, wantRejected.Reason = rejected.Stage, "invalid-payload"
			diff(t, "rejected event", rejected, wantRejected)
			diff(t, "audit actions of the next reading", bridgetest.Actions(al.EventsAt(next.Pos.Topic, next.Pos.Partition, next.Pos.Offset)),
				[]string{audit.ActionDelivered})

			checkOrder(t, order.Entries(), []string{
				"fetch " + readingPos(bad),
				"audit " + readingPos(bad) + " rejected",
				"commit " + readingPos(bad),
				"fetch " + readingPos(next),
				"audit " + readingPos(next) + " delivered",
				"commit " + readingPos(next),
			})
			diff(t, "stats", r.stats.snapshot(), Stats{Received: 2, Delivered: 1, DeadLettered: 1})
		})
	}
}

// TestRouteRetriesTemporaryFailures makes the partition wait and retry the
// same request until the sink accepts it.
func TestRouteRetriesTemporaryFailures(t *testing.T) {
	s503 := &fhir.StatusError{Op: "POST Observation", Status: http.StatusServiceUnavailable}
	// Retry-After far beyond the backoff's max: the wait is capped, so the test stays fast.
	s429 := &fhir.StatusError{Op: "POST Observation", Status: http.StatusTooManyRequests, RetryAfter: time.Hour}
	transport := &fhir.TransportError{Op: "POST Observation", Err: io.ErrUnexpectedEOF}
	tests := []struct {
		name     string
		failures []error
	}{
		{"503", []error{s503}},
		{"429 with Retry-After", []error{s429}},
		{"transport error", []error{transport}},
		{"408", []error{&fhir.StatusError{Op: "POST Observation", Status: http.StatusRequestTimeout}}},
		{"wrapped 500", []error{&wrapErr{&fhir.StatusError{Op: "POST Observation", Status: 500}}}},
		{"503 then 429 then transport", []error{s503, s429, transport}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value := reading("hrm-1", "p-1", 0, 72)
			m := msg(7, value)
			var steps []bridgetest.Step
			for _, err := range tt.failures {
				steps = append(steps, bridgetest.Step{Err: err})
			}
			steps = append(steps, bridgetest.Step{Result: fhir.Result{Status: http.StatusCreated, Location: "Observation/abc/_history/1"}})
			order := &bridgetest.Log{}
			src := newFakeSource(m)
			src.Log = order
			sink := bridgetest.NewSink(steps...)
			al := &bridgetest.AuditLog{Log: order}
			r := newRoute(t, src, sink, al)

			h := start(t, r)
			await(t, src.Drained(), "the message to be handled")
			h.stop(t)

			calls := sink.Calls()
			if len(calls) != len(steps) {
				t.Fatalf("sink called %d times, want %d", len(calls), len(steps))
			}
			for i, c := range calls[1:] {
				if !bytes.Equal(c.Body, calls[0].Body) || c.IfNoneExist != calls[0].IfNoneExist || c.ResourceType != calls[0].ResourceType {
					t.Errorf("attempt %d differs from attempt 1: a retry must repeat the same conditional create", i+2)
				}
			}
			events := al.EventsAt(m.Pos.Topic, m.Pos.Partition, m.Pos.Offset)
			diff(t, "audit actions", bridgetest.Actions(events), []string{audit.ActionDelivered})
			if last := events[len(events)-1]; last.Status != http.StatusCreated || last.Location != "Observation/abc/_history/1" || last.Attempts != len(steps) {
				t.Errorf("delivered event has status %d location %q attempts %d, want the final answer's 201 Observation/abc/_history/1 after %d attempts",
					last.Status, last.Location, last.Attempts, len(steps))
			}
			checkOrder(t, order.Entries(), []string{
				"fetch " + readingPos(m),
				"audit " + readingPos(m) + " delivered",
				"commit " + readingPos(m),
			})
			diff(t, "stats", r.stats.snapshot(), Stats{Received: 1, Delivered: 1, Retries: int64(len(tt.failures))})
		})
	}
}

// wrapErr hides an error behind another type, as a sink's own wrapping would.
type wrapErr struct{ err error }

func (e *wrapErr) Error() string { return "sink: " + e.err.Error() }
func (e *wrapErr) Unwrap() error { return e.err }

// TestRouteRejectsPermanentFailures dead-letters what the destination refuses
// for good, without retrying, and goes on with the next reading.
func TestRouteRejectsPermanentFailures(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantDetail string
	}{
		{
			name:       "422 with OperationOutcome",
			err:        &fhir.StatusError{Op: "POST https://ehr.example.org/fhir/Observation", Status: 422, Outcome: "error business-rule at Observation.subject: patient is not active"},
			wantStatus: 422,
			wantDetail: "HTTP 422: error business-rule at Observation.subject: patient is not active",
		},
		{"400", &fhir.StatusError{Op: "POST Observation", Status: 400}, 400, "HTTP 400"},
		{"404", &fhir.StatusError{Op: "POST Observation", Status: 404}, 404, "HTTP 404"},
		{"412 on conditional create", &fhir.StatusError{Op: "POST Observation", Status: 412, Outcome: "error duplicate: multiple matches"}, 412, "multiple matches"},
		{"wrapped 409", &wrapErr{&fhir.StatusError{Op: "POST Observation", Status: 409}}, 409, "HTTP 409"},
		{"unclassified error", errors.New("sink exploded"), 0, "sink exploded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value, nextValue := reading("hrm-1", "p-1", 0, 72), reading("hrm-1", "p-1", 1, 73)
			m, next := msg(3, value), msg(4, nextValue)
			order := &bridgetest.Log{}
			src := newFakeSource(m, next)
			src.Log = order
			sink := bridgetest.NewSink(bridgetest.Step{Err: tt.err})
			al := &bridgetest.AuditLog{Log: order}
			r := newRoute(t, src, sink, al)

			h := start(t, r)
			await(t, src.Drained(), "both messages to be handled")
			h.stop(t)

			if n := len(sink.Calls()); n != 2 {
				t.Errorf("sink called %d times, want 2: a permanent failure is not retried", n)
			}
			events := al.EventsAt(m.Pos.Topic, m.Pos.Partition, m.Pos.Offset)
			if len(events) != 1 {
				t.Fatalf("audit events: %s\nwant [rejected]", show(events))
			}
			rejected := events[0]
			if rejected.Stage != StageDeliver || !strings.Contains(rejected.Detail, tt.wantDetail) {
				t.Errorf("rejected at stage %q with Detail %q, want deliver and ...%s...", rejected.Stage, rejected.Detail, tt.wantDetail)
			}
			rejected.Detail = ""
			k := key(t, value)
			mapped := withRefs(baseEvent(m), "hrm-1", "p-1", k)
			wantRejected := ev(mapped, audit.ActionRejected, audit.OutcomeFailure)
			wantRejected.Status, wantRejected.Stage, wantRejected.DestKind = tt.wantStatus, StageDeliver, "fhir"
			wantRejected.Reason = rejected.Reason // checked per case by the dead-letter tests
			wantRejected.Attempts = 1
			diff(t, "rejected event", rejected, wantRejected)
			diff(t, "audit actions of the next reading", bridgetest.Actions(al.EventsAt(next.Pos.Topic, next.Pos.Partition, next.Pos.Offset)),
				[]string{audit.ActionDelivered})
			checkOrder(t, order.Entries(), []string{
				"fetch " + readingPos(m),
				"audit " + readingPos(m) + " rejected",
				"commit " + readingPos(m),
				"fetch " + readingPos(next),
				"audit " + readingPos(next) + " delivered",
				"commit " + readingPos(next),
			})
			diff(t, "stats", r.stats.snapshot(), Stats{Received: 2, Delivered: 1, DeadLettered: 1})
		})
	}
}

// TestRouteStopDuringRetry abandons a reading the destination keeps refusing
// with a retryable error: it is neither committed nor given a final state, so
// it is redelivered after the restart.
func TestRouteStopDuringRetry(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"503", &fhir.StatusError{Op: "POST Observation", Status: http.StatusServiceUnavailable}},
		{"429 with Retry-After", &fhir.StatusError{Op: "POST Observation", Status: http.StatusTooManyRequests, RetryAfter: time.Hour}},
		{"transport error", &fhir.TransportError{Op: "POST Observation", Err: errors.New("connection refused")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := msg(5, reading("hrm-1", "p-1", 0, 72))
			src := newFakeSource(m, msg(6, reading("hrm-1", "p-1", 1, 72)))
			sink := bridgetest.NewSink()
			sink.Default = &bridgetest.Step{Err: tt.err}
			retrying, retried := signal()
			sink.OnCall = func(n int, _ bridgetest.Call) {
				if n == 3 {
					retried()
				}
			}
			al := &bridgetest.AuditLog{}
			r := newRoute(t, src, sink, al)

			h := start(t, r)
			await(t, retrying, "the third attempt")
			h.stop(t)

			if got := src.AttemptedPositions(); len(got) != 0 {
				t.Errorf("committed %v; an unfinished reading must stay uncommitted", got)
			}
			if got := al.Attempts(); len(got) != 0 {
				t.Errorf("audit got %v; an abandoned reading has no final state to record", got)
			}
			for i, c := range sink.Calls() {
				if !bytes.Equal(c.Body, sink.Calls()[0].Body) {
					t.Errorf("call %d delivered another reading: the partition must wait, not skip", i+1)
				}
			}
			st := r.stats.snapshot()
			if st.Delivered != 0 || st.DeadLettered != 0 || st.Retries < 2 {
				t.Errorf("stats = %+v, want no delivery or dead letter and at least 2 retries", st)
			}
		})
	}
}

// TestRouteAuditUnavailable holds the commit until the audit trail is durable.
func TestRouteAuditUnavailable(t *testing.T) {
	for _, failures := range []int{1, 3} {
		t.Run(fmt.Sprintf("recovers after %d failures", failures), func(t *testing.T) {
			m := msg(9, reading("hrm-1", "p-1", 0, 72))
			order := &bridgetest.Log{}
			src := newFakeSource(m)
			src.Log = order
			sink := bridgetest.NewSink()
			sink.Log = order
			al := &bridgetest.AuditLog{Log: order, FailFirst: failures}
			r := newRoute(t, src, sink, al)

			h := start(t, r)
			await(t, src.Drained(), "the message to be handled")
			h.stop(t)

			pos := readingPos(m)
			want := []string{"fetch " + pos, "sink 1"}
			for range failures {
				want = append(want, "audit "+pos+" delivered failed")
			}
			want = append(want, "audit "+pos+" delivered", "commit "+pos)
			// Also: the delivery is not repeated while the audit store is down.
			checkOrder(t, order.Entries(), want)
			attempts := al.Attempts()
			for i := 1; i < len(attempts); i++ {
				diff(t, fmt.Sprintf("events of audit attempt %d", i+1), attempts[i], attempts[0])
			}
			diff(t, "stats", r.stats.snapshot(), Stats{Received: 1, Delivered: 1})
		})
	}

	t.Run("stop while failing", func(t *testing.T) {
		m := msg(9, reading("hrm-1", "p-1", 0, 72))
		src := newFakeSource(m)
		sink := bridgetest.NewSink()
		failing, failed := signal()
		al := &bridgetest.AuditLog{FailAlways: true, OnAppend: func(n int, _ error) {
			if n == 3 {
				failed()
			}
		}}
		r := newRoute(t, src, sink, al)

		h := start(t, r)
		await(t, failing, "the third failed audit append")
		h.stop(t)

		if got := src.AttemptedPositions(); len(got) != 0 {
			t.Errorf("committed %v without a durable audit trail", got)
		}
		if n := len(sink.Calls()); n != 1 {
			t.Errorf("sink called %d times, want 1", n)
		}
		if got := al.Events(); len(got) != 0 {
			t.Errorf("audit store holds %v, want nothing", got)
		}
	})
}

// TestRouteGrace lets a delivery in flight at a stop finish within the grace,
// and abandons it, uncommitted, once the grace is over.
func TestRouteGrace(t *testing.T) {
	t.Run("in-flight delivery finishes", func(t *testing.T) {
		m := msg(20, reading("hrm-1", "p-1", 0, 72))
		release := make(chan struct{})
		src := newFakeSource(m, msg(21, reading("hrm-1", "p-1", 1, 72)))
		sink := bridgetest.NewSink(bridgetest.Step{Block: release, Result: fhir.Result{Status: http.StatusCreated, Location: "Observation/9/_history/1"}})
		inFlight, entered := signal()
		sink.OnCall = func(int, bridgetest.Call) { entered() }
		al := &bridgetest.AuditLog{}
		r := newRoute(t, src, sink, al) // grace: waitLimit

		h := start(t, r)
		await(t, inFlight, "the delivery to start")
		h.cancel()
		close(release)
		if err := h.wait(t); err != nil {
			t.Fatalf("run = %v, want nil", err)
		}

		checkCommits(t, src, readingPos(m))
		diff(t, "audit actions", bridgetest.Actions(al.Events()), []string{audit.ActionDelivered})
		if n := len(sink.Calls()); n != 1 {
			t.Errorf("sink called %d times, want 1: nothing new is delivered after a stop", n)
		}
		if st := r.stats.snapshot(); st.Delivered != 1 || st.DeadLettered != 0 {
			t.Errorf("stats %+v, want 1 delivered", st)
		}
	})

	t.Run("delivery outlasting the grace is abandoned", func(t *testing.T) {
		m := msg(20, reading("hrm-1", "p-1", 0, 72))
		src := newFakeSource(m)
		// Block is never closed: the call returns only when its context ends.
		sink := bridgetest.NewSink(bridgetest.Step{Block: make(chan struct{})})
		inFlight, entered := signal()
		sink.OnCall = func(int, bridgetest.Call) { entered() }
		al := &bridgetest.AuditLog{}
		r := newRoute(t, src, sink, al)
		r.grace = 50 * time.Millisecond

		h := start(t, r)
		await(t, inFlight, "the delivery to start")
		h.stop(t) // returns once the grace has cut the call short

		if got := src.AttemptedPositions(); len(got) != 0 {
			t.Errorf("committed %v; a delivery cut short by the grace must stay uncommitted", got)
		}
		if got := al.Attempts(); len(got) != 0 {
			t.Errorf("audit got %v; the reading has no final state", got)
		}
		if n := len(sink.Calls()); n != 1 {
			t.Errorf("sink called %d times, want 1 (no retry after the stop)", n)
		}
		diff(t, "stats", r.stats.snapshot(), Stats{Received: 1})
	})
}

// TestRouteCommitFailureIsNotFatal: a failed commit leaves a delivered,
// audited reading to be redelivered (absorbed by conditional create); the
// route goes on.
func TestRouteCommitFailureIsNotFatal(t *testing.T) {
	m1, m2 := msg(1, reading("hrm-1", "p-1", 0, 72)), msg(2, reading("hrm-1", "p-1", 1, 72))
	src := newFakeSource(m1, m2)
	src.CommitErr = errors.New("rebalance in progress")
	sink := bridgetest.NewSink()
	al := &bridgetest.AuditLog{}
	r := newRoute(t, src, sink, al)

	h := start(t, r)
	await(t, src.Drained(), "both messages to be handled")
	h.stop(t)

	checkCovered(t, "commit attempts", src.AttemptedPositions(), []string{readingPos(m1), readingPos(m2)})
	diff(t, "successful commits", len(src.Commits()), 0)
	diff(t, "stats", r.stats.snapshot(), Stats{Received: 2, Delivered: 2})
}

// TestRouteFetchError ends the route with an error naming it when the source
// fails for a reason other than the stop.
func TestRouteFetchError(t *testing.T) {
	boom := errors.New("broker connection lost")
	src := newFakeSource(msg(1, reading("hrm-1", "p-1", 0, 72)))
	src.Err = boom
	al := &bridgetest.AuditLog{}
	r := newRoute(t, src, bridgetest.NewSink(), al)

	h := start(t, r)
	err := h.wait(t)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "route "+testRoute) {
		t.Errorf("run = %v, want an error wrapping %q and naming route %s", err, boom, testRoute)
	}
	checkCommits(t, src, bridgetest.Pos(testTopic, 2, 1))
}

// TestHandleReceivedEventCarriesReferences: every event of a mapped reading,
// the "received" one included, carries its device, patient and resource
// references and its receive time, so filtering the trail by patient or
// device finds the whole story in one row.
func TestOutcomeRowCarriesReferences(t *testing.T) {
	value := reading("hrm-1", "p-1", 0, 72)
	m := msg(1, value)
	al := &bridgetest.AuditLog{}
	src := newFakeSource(m)
	r := newRoute(t, src, bridgetest.NewSink(), al)
	h := start(t, r)
	await(t, src.Drained(), "the message to be handled")
	h.stop(t)
	events := al.Events()
	if len(events) == 0 {
		t.Fatal("no audit events")
	}
	want := ev(withRefs(baseEvent(m), "hrm-1", "p-1", key(t, value)), audit.ActionDelivered, audit.OutcomeSuccess)
	want.Status, want.Location = http.StatusCreated, "Observation/1/_history/1"
	want.Stage, want.DestKind, want.Attempts = StageDeliver, "fhir", 1
	diff(t, "audit rows", events, []audit.Event{want})
}

// TestCorrelationID prefers the producer's correlation-id header and falls
// back to the source position.
func TestCorrelationID(t *testing.T) {
	h := func(k, v string) Header { return Header{Key: k, Value: []byte(v)} }
	long := strings.Repeat("x", 129)
	tests := []struct {
		name    string
		headers []Header
		want    string
	}{
		{"header", []Header{h("correlation-id", "req-1")}, "req-1"},
		{"header among others", []Header{h("content-type", "application/json"), h("correlation-id", "req-2")}, "req-2"},
		{"no headers", nil, "vitals/3/1234"},
		{"other header only", []Header{h("x-correlation-id", "req-3")}, "vitals/3/1234"},
		{"empty header", []Header{h("correlation-id", "")}, "vitals/3/1234"},
		{"128 bytes is kept", []Header{h("correlation-id", long[:128])}, long[:128]},
		{"overlong header ignored", []Header{h("correlation-id", long)}, "vitals/3/1234"},
		{"overlong then valid", []Header{h("correlation-id", long), h("correlation-id", "req-4")}, "req-4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Reading{Pos: Position{Topic: "vitals", Partition: 3, Offset: 1234}, Headers: tt.headers}
			if got := correlationID(m); got != tt.want {
				t.Errorf("correlationID = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCorrelationIDIgnoresUnstorableHeaders: the correlation id comes from
// the producer and goes into the audit trail. A value PostgreSQL's text type
// cannot hold (a NUL byte, invalid UTF-8) would make every Append of the
// message fail, and record retries forever: one bad header would stop the
// partition. Such a header must be ignored like an overlong one.
func TestCorrelationIDIgnoresUnstorableHeaders(t *testing.T) {
	for name, value := range map[string]string{
		"NUL byte":       "req\x00id",
		"invalid UTF-8":  "req-\xff\xfe",
		"truncated rune": "req-\xe2\x82",
	} {
		t.Run(name, func(t *testing.T) {
			m := Reading{Pos: Position{Topic: "vitals", Partition: 3, Offset: 1234}, Headers: []Header{{Key: "correlation-id", Value: []byte(value)}}}
			if got := correlationID(m); got != "vitals/3/1234" {
				t.Errorf("correlationID = %q, want the fallback vitals/3/1234", got)
			}
		})
	}
}

type syncBuffer = bridgetest.SyncBuffer

// TestRouteKeepsPHIOutOfLogs runs rejections and retries, whose log lines
// could be tempted to quote the reading, and checks the logs never carry a
// patient or device id.
func TestRouteKeepsPHIOutOfLogs(t *testing.T) {
	const patient, device = "p-secret-42", "hrm-secret-7"
	unknownKind := bridgetest.Reading{Kind: "blood-" + patient, Device: device, Patient: patient, Time: "2026-11-25T10:15:00Z", Value: 5}.JSON()
	outOfRange := bridgetest.HeartRate(device, patient, readingTime, 999).JSON()
	src := newFakeSource(
		msg(1, unknownKind),
		msg(2, outOfRange),
		msg(3, reading(device, patient, 0, 72)), // retried, then refused with an outcome quoting the patient
	)
	sink := bridgetest.NewSink(
		bridgetest.Step{Err: &fhir.StatusError{Op: "POST Observation", Status: 503, Outcome: "error transient: Patient/" + patient + " locked"}},
		bridgetest.Step{Err: &fhir.StatusError{Op: "POST Observation", Status: 422, Outcome: "error invariant: Patient/" + patient + " deceased"}},
	)
	var logs syncBuffer
	al := &bridgetest.AuditLog{FailFirst: 1, Err: errors.New("audit insert failed")}
	r := newRoute(t, src, sink, al)
	r.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	h := start(t, r)
	await(t, src.Drained(), "every message to be handled")
	h.stop(t)

	out := logs.String()
	for _, want := range []string{"reading rejected", "stage=map", "stage=deliver", "delivery failed; retrying", "status=503", "audit write failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q; the test no longer exercises the lines it checks:\n%s", want, out)
		}
	}
	for _, phi := range []string{patient, device, "999"} {
		if strings.Contains(out, phi) {
			t.Errorf("logs contain %q:\n%s", phi, out)
		}
	}
	diff(t, "stats", r.stats.snapshot(), Stats{Received: 3, DeadLettered: 3, Retries: 1})
}
