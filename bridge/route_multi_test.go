package bridge

import (
	"os"
	"strings"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
	"github.com/fhir-bridge/fhir-bridge/fhir"
)

// medtechRoute is a route whose mapper is MedTech's "basic" template pair;
// its sample payload yields six readings from one message.
func medtechRoute(t *testing.T, src Source, sink FHIRCreator, al AuditLog) *route {
	t.Helper()
	dir := "../mappers/medtech/testdata/compat/templates/basic/"
	m, err := LoadMapper([]string{dir + "fhirmapping.json", dir + "devicecontent.json"}, MapperOptions{DefaultPatientID: "synthetic-patient-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := newRoute(t, src, sink, al)
	r.mapper = m
	return r
}

func TestRouteDeliversEveryReadingOfAMessage(t *testing.T) {
	payload, err := os.ReadFile("../testdata/medtech/payloads/basic_all.json")
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource(msg(0, payload), msg(1, reading("hrm-1", "p-1", 1, 70)))
	sink := bridgetest.NewSink()
	al := &bridgetest.AuditLog{}
	r := medtechRoute(t, src, sink, al)
	h := start(t, r)
	await(t, src.Drained(), "both messages handled")
	h.stop(t)

	calls := sink.Calls()
	if len(calls) != 6 {
		t.Fatalf("sink got %d calls, want the 6 readings of the MedTech message", len(calls))
	}
	idents := map[string]bool{}
	for _, c := range calls {
		idents[c.IfNoneExist] = true
	}
	if len(idents) != len(calls) {
		t.Errorf("%d calls but %d distinct identifiers: readings of one message must not share an identifier", len(calls), len(idents))
	}
	// A native-format message matches none of the route's MedTech templates:
	// it is rejected with the reason, and both messages are committed in order.
	if acts := bridgetest.Actions(al.EventsAt(testTopic, 2, 1)); strings.Join(acts, ",") != "rejected" {
		t.Errorf("unmatched message audit %v, want rejected", acts)
	}
	checkCommits(t, src, readingPos(msg(0, nil)), readingPos(msg(1, nil)))
	acts := bridgetest.Actions(al.EventsAt(testTopic, 2, 0))
	if strings.Join(acts, ",") != strings.TrimSuffix(strings.Repeat("delivered,", 6), ",") {
		t.Errorf("audit for the MedTech message: %v, want one delivered row per reading (6)", acts)
	}
}

func TestRoutePartialRejectionOfAMessage(t *testing.T) {
	payload, err := os.ReadFile("../testdata/medtech/payloads/basic_all.json")
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource(msg(0, payload))
	// The second reading is refused for good; the others go through.
	sink := bridgetest.NewSink(bridgetest.Step{}, bridgetest.Step{Err: &fhir.StatusError{Op: "POST", Status: 422, Outcome: "error invalid: rule"}})
	al := &bridgetest.AuditLog{}
	r := medtechRoute(t, src, sink, al)
	h := start(t, r)
	await(t, src.Drained(), "message handled")
	h.stop(t)

	checkCommits(t, src, readingPos(msg(0, nil)))
	var delivered, rejected int
	for _, e := range al.EventsAt(testTopic, 2, 0) {
		switch e.Action {
		case audit.ActionDelivered:
			delivered++
		case audit.ActionRejected:
			rejected++
			if e.Status != 422 || e.Stage != StageDeliver || e.Resource == "" {
				t.Errorf("rejected event %+v, want status 422, a deliver detail and the reading's identifier", e)
			}
		}
	}
	if delivered != 5 || rejected != 1 {
		t.Errorf("delivered %d rejected %d, want 5 and 1", delivered, rejected)
	}
	if s := r.stats.snapshot(); s.DeadLettered != 1 || s.Delivered != 0 {
		t.Errorf("stats %+v: a message with a rejected reading counts as dead-lettered", s)
	}
}
