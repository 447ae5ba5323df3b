package bridge

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirsandbox"
)

// TestRouteBatches delivers through the sandbox EHR in batch Bundles: entries
// are grouped within the limits, a refused entry is dead-lettered alone, an
// entry that fails temporarily is retried alone, and every message is
// committed once its entries are settled.
func TestRouteBatches(t *testing.T) {
	ehr := fhirsandbox.New(codec(t))
	var flaky atomic.Int32
	ehr.Reject = func(body []byte) (int, string) {
		switch {
		case bytes.Contains(body, []byte("hrm-refused")):
			return http.StatusUnprocessableEntity, "device unknown"
		case bytes.Contains(body, []byte("hrm-flaky")) && flaky.Add(1) == 1:
			return http.StatusServiceUnavailable, "busy"
		}
		return 0, ""
	}
	srv := httptest.NewServer(ehr)
	t.Cleanup(srv.Close)
	client, err := fhir.NewClient(fhir.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}

	var msgs []Reading
	for i := range 22 {
		msgs = append(msgs, msg(int64(i), reading(fmt.Sprintf("hrm-%d", i), "p-1", i, 60+i)))
	}
	msgs = append(msgs,
		msg(22, reading("hrm-refused", "p-2", 30, 70)),
		msg(23, []byte(`{"kind":"heart-rate"`)),
		msg(24, reading("hrm-flaky", "p-3", 31, 71)),
	)
	src := newFakeSource(msgs...)
	dlq := &fakeDLQ{}
	al := &bridgetest.AuditLog{}
	r := newRoute(t, src, client, al)
	r.sink = NewFHIRBatchSink(client, nil, client, BatchLimits{MaxEntries: 10, MaxBytes: 1 << 20, Concurrency: 2}, discardLog())
	r.batch = Batching{MaxReadings: 20, MaxBytes: 1 << 20, Linger: 200 * time.Millisecond}
	r.dlq = dlq
	h := start(t, r)
	awaitCommit(t, src, msgs[24])
	h.stop(t)

	st := ehr.Stats()
	if st.Created != 23 || st.Batches < 3 {
		t.Errorf("EHR stats %+v: want 23 created in at least 3 batches of at most 10", st)
	}
	for id, n := range ehr.CreatesByIdentifier() {
		if n != 1 {
			t.Errorf("%s created %d times", id, n)
		}
	}
	if got := len(src.Commits()); got == 0 || src.CommittedPositions()[len(src.CommittedPositions())-1] != readingPos(msgs[24]) {
		t.Errorf("commits %v: the last message must be committed", src.CommittedPositions())
	}
	var reasons []string
	for _, rec := range dlq.records() {
		reasons = append(reasons, rec.dl.Reason)
	}
	if strings.Join(reasons, ",") != "http-422,invalid-payload" {
		t.Errorf("dead letters %v, want the refused reading and the malformed payload", reasons)
	}
	if flaky.Load() < 2 {
		t.Error("the entry that failed with 503 was not retried")
	}
	if s := r.stats.snapshot(); s.Received != 25 || s.Delivered != 23 || s.DeadLettered != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestRouteUpsertsDevices: with upsert_devices, each device's Device
// resource is written once, before its first Observation.
func TestRouteUpsertsDevices(t *testing.T) {
	ehr := fhirsandbox.New(codec(t))
	srv := httptest.NewServer(ehr)
	t.Cleanup(srv.Close)
	client, _ := fhir.NewClient(fhir.ClientConfig{BaseURL: srv.URL})
	var msgs []Reading
	for i := range 6 {
		msgs = append(msgs, msg(int64(i), reading(fmt.Sprintf("hrm-%d", i%2), "p-1", i, 60+i)))
	}
	src := newFakeSource(msgs...)
	r := newRoute(t, src, client, &bridgetest.AuditLog{})
	r.enc = NewFHIREncoder(codec(t), DefaultIdentifierSystem, true)
	r.sink = NewFHIRBatchSink(client, client, client, BatchLimits{MaxEntries: 2, MaxBytes: 1 << 20, Concurrency: 1}, discardLog())
	r.batch = Batching{MaxReadings: 2, MaxBytes: 1 << 20, Linger: 50 * time.Millisecond}
	h := start(t, r)
	awaitCommit(t, src, msgs[5])
	h.stop(t)
	st := ehr.Stats()
	if st.Updates != 2 || st.Created != 6 || st.Batches == 0 {
		t.Errorf("EHR stats %+v: want 2 device upserts, 6 Observations in batches", st)
	}
	if got := len(ehr.Resources("Device")); got != 2 {
		t.Errorf("%d Device resources, want 2", got)
	}
}
