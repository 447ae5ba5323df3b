package fhir_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirsandbox"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

const batchIDSystem = "https://example.org/sid/obs-key"

func batchCodec(tb testing.TB) *fhir.Codec {
	tb.Helper()
	c, err := fhir.NewCodec()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// batchObservation encodes a conformant heart-rate Observation with the
// identifier batchIDSystem|key, after mut (may be nil).
func batchObservation(tb testing.TB, codec *fhir.Codec, key string, mut func(*observationpb.Observation)) []byte {
	tb.Helper()
	o := &observationpb.Observation{
		Identifier: []*dtpb.Identifier{fhir.Identifier(batchIDSystem, key)},
		Status:     &observationpb.Observation_StatusCode{Value: codespb.ObservationStatusCode_FINAL},
		Category:   []*dtpb.CodeableConcept{fhir.Concept(fhir.Coding(fhir.SystemObservationCategory, "vital-signs", ""))},
		Code:       fhir.Concept(fhir.Coding(fhir.SystemLOINC, "8867-4", "Heart rate")),
		Subject:    fhir.PatientRef("p-1"),
		Effective: &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{
			DateTime: fhir.DateTime(time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)),
		}},
		Value:  &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: fhir.Quantity("72", "/min")}},
		Device: fhir.DeviceRef("hrm-1"),
	}
	if mut != nil {
		mut(o)
	}
	b, err := codec.Encode(o)
	if err != nil {
		tb.Fatalf("encode Observation: %v", err)
	}
	return b
}

func entry(tb testing.TB, codec *fhir.Codec, key string, mut func(*observationpb.Observation)) fhir.BatchEntry {
	return fhir.BatchEntry{
		ResourceType: "Observation",
		Body:         batchObservation(tb, codec, key, mut),
		IfNoneExist:  fhir.IfNoneExistIdentifier(batchIDSystem, key),
	}
}

func batchClient(tb testing.TB, base string) *fhir.Client {
	tb.Helper()
	c, err := fhir.NewClient(fhir.ClientConfig{BaseURL: base + "/", UserAgent: "batch-test"})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestBatchAgainstSandbox(t *testing.T) {
	codec := batchCodec(t)
	sb := fhirsandbox.New(codec)
	srv := httptest.NewServer(sb)
	defer srv.Close()
	c := batchClient(t, srv.URL)
	ctx := context.Background()

	if _, err := c.Create(ctx, "Observation", batchObservation(t, codec, "old", nil), fhir.IfNoneExistIdentifier(batchIDSystem, "old")); err != nil {
		t.Fatalf("setup create: %v", err)
	}
	invalid := entry(t, codec, "bad", func(o *observationpb.Observation) { o.Subject = nil })
	got, err := c.Batch(ctx, []fhir.BatchEntry{entry(t, codec, "new", nil), entry(t, codec, "old", nil), invalid})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("%d results, want 3", len(got))
	}
	if got[0].Status != 201 || !got[0].OK() || got[0].Location != "Observation/2/_history/1" {
		t.Errorf("new entry: %+v, want 201 at Observation/2", got[0])
	}
	if got[1].Status != 200 || !got[1].OK() || got[1].Location != "Observation/1/_history/1" {
		t.Errorf("duplicate entry: %+v, want 200 at Observation/1", got[1])
	}
	if got[2].Status != 400 || got[2].OK() || got[2].Temporary() || !strings.Contains(got[2].Outcome, "error invalid at ") {
		t.Errorf("invalid entry: %+v, want permanent 400 with an outcome", got[2])
	}
	if got[0].Outcome != "" || got[1].Outcome != "" {
		t.Errorf("outcome on successes: %q, %q", got[0].Outcome, got[1].Outcome)
	}
	want := fhirsandbox.Stats{Posts: 4, Created: 2, Matched: 1, Rejected: 1, Batches: 1}
	if s := sb.Stats(); s != want {
		t.Errorf("Stats %+v, want %+v", s, want)
	}
	// The stored resource is the entry's body byte for byte.
	stored := sb.Resources("Observation")
	if len(stored) != 2 || !bytes.Equal(stored[1], batchObservation(t, codec, "new", nil)) {
		t.Errorf("stored resources differ from the batch entry")
	}
}

func TestBatchEntryRejectedTemporarily(t *testing.T) {
	codec := batchCodec(t)
	sb := fhirsandbox.New(codec)
	sb.Reject = func(body []byte) (int, string) {
		if bytes.Contains(body, []byte(`"busy"`)) {
			return http.StatusServiceUnavailable, "try later"
		}
		return 0, ""
	}
	srv := httptest.NewServer(sb)
	defer srv.Close()
	got, err := batchClient(t, srv.URL).Batch(context.Background(),
		[]fhir.BatchEntry{entry(t, codec, "a", nil), entry(t, codec, "busy", nil), entry(t, codec, "c", nil)})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	for i, r := range got {
		if i == 1 {
			if r.Status != 503 || !r.Temporary() || r.OK() || !strings.Contains(r.Outcome, "business-rule: try later") {
				t.Errorf("entry 1: %+v, want temporary 503 with outcome", r)
			}
		} else if r.Status != 201 || r.Temporary() {
			t.Errorf("entry %d: %+v, want 201", i, r)
		}
	}
}

func TestBatchRequestShape(t *testing.T) {
	type wire struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
			Request  map[string]string
		} `json:"entry"`
	}
	seen := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- r
		bodies <- b
		w.Header().Set("Content-Type", fhir.ContentType)
		_, _ = io.WriteString(w, `{"resourceType":"Bundle","type":"batch-response","entry":[
			{"response":{"status":"201 Created","location":"Observation/7/_history/1"}},
			{"response":{"status":"200"}}]}`)
	}))
	defer srv.Close()
	res1 := []byte(`{"resourceType":"Observation",  "status":"final", "note":[{"text":"a<b & \u00e9"}]}`)
	res2 := []byte("{\"resourceType\":\"Observation\"}\n")
	cond := "identifier=https%3A%2F%2Fx.example%2Fsid%7Cv&_tag=a<b"
	got, err := batchClient(t, srv.URL).Batch(context.Background(), []fhir.BatchEntry{
		{ResourceType: "Observation", Body: res1, IfNoneExist: cond},
		{ResourceType: "Observation", Body: res2},
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if got[0] != (fhir.EntryResult{Status: 201, Location: "Observation/7/_history/1"}) || got[1] != (fhir.EntryResult{Status: 200}) {
		t.Errorf("results %+v", got)
	}
	r, body := <-seen, <-bodies
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("%s %s, want POST /", r.Method, r.URL.Path)
	}
	for h, want := range map[string]string{
		"Content-Type": fhir.ContentType, "Accept": "application/fhir+json",
		"Prefer": "return=minimal", "User-Agent": "batch-test", "If-None-Exist": "",
	} {
		if v := r.Header.Get(h); v != want {
			t.Errorf("header %s = %q, want %q", h, v, want)
		}
	}
	var b wire
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, body)
	}
	if b.ResourceType != "Bundle" || b.Type != "batch" || len(b.Entry) != 2 {
		t.Fatalf("Bundle %q type %q with %d entries", b.ResourceType, b.Type, len(b.Entry))
	}
	if !bytes.Equal(b.Entry[0].Resource, res1) || !bytes.Equal(b.Entry[1].Resource, bytes.TrimSpace(res2)) {
		t.Errorf("resources not embedded verbatim:\n%s", body)
	}
	wantReq := []map[string]string{
		{"method": "POST", "url": "Observation", "ifNoneExist": cond},
		{"method": "POST", "url": "Observation"},
	}
	for i, e := range b.Entry {
		if len(e.Request) != len(wantReq[i]) {
			t.Errorf("entry %d request %v, want %v", i, e.Request, wantReq[i])
		}
		for k, v := range wantReq[i] {
			if e.Request[k] != v {
				t.Errorf("entry %d request.%s = %q, want %q", i, k, e.Request[k], v)
			}
		}
	}
}

func TestBatchRefusesBadEntriesWithoutSending(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("request sent")
	}))
	defer srv.Close()
	c := batchClient(t, srv.URL)
	for _, e := range []fhir.BatchEntry{
		{ResourceType: "Observation", Body: []byte(`{"resourceType":`)},
		{ResourceType: "", Body: []byte(`{}`)},
		{ResourceType: "Observation/1", Body: []byte(`{}`)},
	} {
		if _, err := c.Batch(context.Background(), []fhir.BatchEntry{e}); err == nil {
			t.Errorf("entry %+v: no error", e)
		}
	}
	if got, err := c.Batch(context.Background(), nil); got != nil || err != nil {
		t.Errorf("empty batch: %v, %v", got, err)
	}
}

func TestBatchWholeRequestStatusError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Content-Type", fhir.ContentType)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient","diagnostics":"down"}]}`)
	}))
	defer srv.Close()
	codec := batchCodec(t)
	_, err := batchClient(t, srv.URL).Batch(context.Background(), []fhir.BatchEntry{entry(t, codec, "a", nil)})
	var se *fhir.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want *StatusError", err, err)
	}
	if se.Status != 503 || !se.Temporary() || se.Wait() != 7*time.Second || se.Outcome != "error transient: down" {
		t.Errorf("StatusError %+v", se)
	}
}

func TestBatchTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	_, err := batchClient(t, base).Batch(context.Background(), []fhir.BatchEntry{{ResourceType: "Observation", Body: []byte(`{}`)}})
	var te *fhir.TransportError
	if !errors.As(err, &te) || !te.Temporary() {
		t.Fatalf("error %v (%T), want temporary *TransportError", err, err)
	}
}

func TestBatchMalformedResponse(t *testing.T) {
	tests := map[string]string{
		"not JSON":        `<html>oops</html>`,
		"empty":           ``,
		"not a Bundle":    `{"resourceType":"OperationOutcome","issue":[]}`,
		"wrong type":      `{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created"}},{"response":{"status":"201 Created"}}]}`,
		"too few entries": `{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"201 Created"}}]}`,
		"too many":        `{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"201"}},{"response":{"status":"201"}},{"response":{"status":"201"}}]}`,
		"no response":     `{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"201"}},{}]}`,
		"bad status":      `{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"201"}},{"response":{"status":"Created"}}]}`,
		"status too big":  `{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"201"}},{"response":{"status":"999 Huh"}}]}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, body)
			}))
			defer srv.Close()
			e := fhir.BatchEntry{ResourceType: "Observation", Body: []byte(`{}`)}
			got, err := batchClient(t, srv.URL).Batch(context.Background(), []fhir.BatchEntry{e, e})
			var be *fhir.BatchError
			if !errors.As(err, &be) || be.Temporary() || got != nil {
				t.Fatalf("Batch = %v, %v (%T); want nil, permanent *BatchError", got, err, err)
			}
		})
	}
}

func BenchmarkBatch50(b *testing.B) {
	codec := batchCodec(b)
	srv := httptest.NewServer(fhirsandbox.New(codec))
	defer srv.Close()
	c := batchClient(b, srv.URL)
	entries := make([]fhir.BatchEntry, 50)
	for i := range entries {
		entries[i] = entry(b, codec, "k-"+strings.Repeat("x", i), nil)
	}
	for b.Loop() {
		got, err := c.Batch(context.Background(), entries)
		if err != nil || len(got) != 50 || !got[49].OK() {
			b.Fatalf("Batch: %v, %v", got, err)
		}
	}
}
