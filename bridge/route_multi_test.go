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

// TestRouteDeliversTheGoodReadingsOfAPayload: an RPM hub's upload with four
// readings that fail their checks (out of range, a bad device id, an
// unreadable time, an unknown unit) and one good one: the good one reaches
// the EHR, each bad one gets its own audit row naming its index and rule,
// and the record is dead-lettered once, listing the refused readings.
func TestRouteDeliversTheGoodReadingsOfAPayload(t *testing.T) {
	payload, err := os.ReadFile("../testdata/templates/payloads/acme-rpm/refused.json")
	if err != nil {
		t.Fatal(err)
	}
	m := msg(0, payload)
	src := newFakeSource(m)
	sink := bridgetest.NewSink()
	al := &bridgetest.AuditLog{}
	dlq := &fakeDLQ{}
	r := newRoute(t, src, sink, al)
	r.mapper, err = LoadMapper([]string{"../testdata/templates/acme-rpm.yaml"}, MapperOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.dlq = dlq
	h := start(t, r)
	await(t, src.Drained(), "the upload handled")
	h.stop(t)

	if n := len(sink.Calls()); n != 1 {
		t.Fatalf("%d creates, want 1: the upload's good reading", n)
	}
	if !strings.Contains(string(sink.Calls()[0].Body), "acme-bp-0001") {
		t.Errorf("first create is not the upload's good pulse reading: %s", sink.Calls()[0].Body)
	}
	rows := al.EventsAt(testTopic, 2, 0)
	var delivered, refused int
	for _, e := range rows {
		switch e.Action {
		case audit.ActionDelivered:
			delivered++
		case audit.ActionDeadLettered:
			refused++
			if e.Stage != StageMap || e.Reason != "invalid-payload" || !strings.HasPrefix(e.Detail, "reading ") || e.Location != "vitals.dead-letter" {
				t.Errorf("refused reading row %+v: want stage map, its index in the detail, the dead-letter topic", e)
			}
		}
	}
	if delivered != 1 || refused != 4 || len(rows) != 5 {
		t.Errorf("audit rows of the upload: %s; want 1 delivered and 4 dead-lettered", show(rows))
	}
	recs := dlq.records()
	if len(recs) != 1 || len(recs[0].dl.Readings) != 4 {
		t.Fatalf("dead letters %+v, want the upload once, naming its 4 refused readings", recs)
	}
	checkCommits(t, src, readingPos(m))
	if st := r.stats.snapshot(); st.DeadLettered != 1 {
		t.Errorf("stats %+v: the upload counts as dead-lettered", st)
	}
}
