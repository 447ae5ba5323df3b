package fhirsandbox_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirsandbox"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"github.com/google/go-cmp/cmp"
)

type batchResponse struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		Response struct {
			Status   string   `json:"status"`
			Location string   `json:"location"`
			Outcome  *outcome `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

// bundleEntry renders one batch request entry around a resource.
func bundleEntry(resource []byte, method, url, ifNoneExist string) string {
	req, _ := json.Marshal(map[string]string{"method": method, "url": url, "ifNoneExist": ifNoneExist})
	return `{"resource":` + string(resource) + `,"request":` + string(req) + `}`
}

func bundle(typ string, entries ...string) []byte {
	return []byte(`{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`)
}

func postBatch(t *testing.T, url string, body []byte) batchResponse {
	t.Helper()
	r := do(t, http.MethodPost, url, fhir.ContentType, "", body)
	if r.Status != http.StatusOK {
		t.Fatalf("batch: HTTP %d: %s", r.Status, r.Body)
	}
	var b batchResponse
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("batch response is not JSON: %v\n%s", err, r.Body)
	}
	if b.ResourceType != "Bundle" || b.Type != "batch-response" {
		t.Fatalf("batch response is %q of type %q", b.ResourceType, b.Type)
	}
	return b
}

func TestBatch(t *testing.T) {
	var mu sync.Mutex
	var hooked []string
	s, srv := sandbox(t, func(r *http.Request, identifier string) {
		mu.Lock()
		hooked = append(hooked, identifier)
		mu.Unlock()
	})
	s.Reject = func(body []byte) (int, string) {
		if strings.Contains(string(body), `"k-busy"`) {
			return http.StatusServiceUnavailable, "busy"
		}
		return 0, ""
	}
	if r := post(t, srv, fhir.IfNoneExistIdentifier(idSystem, "k-old"), observation(t, "k-old", nil)); r.Status != http.StatusCreated {
		t.Fatalf("setup: %d", r.Status)
	}
	hooked = nil
	cond := func(k string) string { return fhir.IfNoneExistIdentifier(idSystem, k) }
	invalid := observation(t, "k-bad", func(o *observationpb.Observation) { o.Subject = nil })
	b := postBatch(t, srv.URL+"/", bundle("batch",
		bundleEntry(observation(t, "k-new", nil), "POST", "Observation", cond("k-new")),
		bundleEntry(observation(t, "k-old", nil), "POST", "Observation", "Observation?"+cond("k-old")),
		bundleEntry(invalid, "POST", "Observation", cond("k-bad")),
		bundleEntry(observation(t, "k-busy", nil), "POST", "Observation", cond("k-busy")),
		bundleEntry(observation(t, "k-put", nil), "PUT", "Observation/9", ""),
		bundleEntry(observation(t, "k-new", nil), "POST", "Observation", cond("k-new")),
	))
	want := []struct{ status, location, code string }{
		{"201 Created", "Observation/2/_history/1", ""},
		{"200 OK", "Observation/1/_history/1", ""},
		{"400 Bad Request", "", "invalid"},
		{"503 Service Unavailable", "", "business-rule"},
		{"400 Bad Request", "", "not-supported"},
		{"200 OK", "Observation/2/_history/1", ""}, // entries run in order
	}
	if len(b.Entry) != len(want) {
		t.Fatalf("%d response entries, want %d", len(b.Entry), len(want))
	}
	for i, w := range want {
		got := b.Entry[i].Response
		if got.Status != w.status || got.Location != w.location {
			t.Errorf("entry %d: %q at %q, want %q at %q", i, got.Status, got.Location, w.status, w.location)
		}
		switch {
		case w.code == "" && got.Outcome != nil:
			t.Errorf("entry %d: unexpected outcome %+v", i, got.Outcome)
		case w.code != "" && (got.Outcome == nil || got.Outcome.ResourceType != "OperationOutcome" || got.Outcome.Issue[0].Code != w.code):
			t.Errorf("entry %d: outcome %+v, want issue code %q", i, got.Outcome, w.code)
		}
	}
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: 7, Created: 2, Matched: 2, Rejected: 3, Batches: 1}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{idSystem + "|k-new", idSystem + "|k-old", idSystem + "|k-new"}, hooked); diff != "" {
		t.Errorf("BeforeRespond identifiers (-want +got):\n%s", diff)
	}
}

func TestBatchRefusedWhole(t *testing.T) {
	s, srv := sandbox(t, nil)
	ok := bundleEntry(observation(t, "k-1", nil), "POST", "Observation", "")
	tests := []struct {
		name, contentType string
		body              []byte
		status            int
		code              string
	}{
		{"transaction", fhir.ContentType, bundle("transaction", ok), http.StatusBadRequest, "not-supported"},
		{"no type", fhir.ContentType, []byte(`{"resourceType":"Bundle","entry":[` + ok + `]}`), http.StatusBadRequest, "not-supported"},
		{"not JSON", fhir.ContentType, []byte(`{"resourceType":"Bundle",`), http.StatusBadRequest, "structure"},
		{"trailing data", fhir.ContentType, append(bundle("batch", ok), "{}"...), http.StatusBadRequest, "structure"},
		{"bad entry shape", fhir.ContentType, []byte(`{"resourceType":"Bundle","type":"batch","entry":{}}`), http.StatusBadRequest, "structure"},
		{"not a Bundle", fhir.ContentType, observation(t, "k-2", nil), http.StatusBadRequest, "invalid"},
		{"content type", "text/plain", bundle("batch", ok), http.StatusUnsupportedMediaType, "not-supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodPost, srv.URL+"/", tt.contentType, "", tt.body)
			if r.Status != tt.status {
				t.Fatalf("HTTP %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if oo := parseOutcome(t, r); oo.Issue[0].Code != tt.code {
				t.Errorf("issue code %q, want %q", oo.Issue[0].Code, tt.code)
			}
		})
	}
	if diff := cmp.Diff(fhirsandbox.Stats{}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if n := len(s.Resources("Observation")); n != 0 {
		t.Errorf("%d Observations stored, want 0", n)
	}
}

func TestBatchEntryShapes(t *testing.T) {
	s, srv := sandbox(t, nil)
	b := postBatch(t, srv.URL, bundle("batch",
		`{"resource":`+string(observation(t, "k-1", nil))+`}`,
		`{"request":{"method":"POST","url":"Observation"}}`,
		bundleEntry(observation(t, "k-3", nil), "POST", "Observation?x=1", ""),
		bundleEntry(observation(t, "k-4", nil), "POST", "Observation", "identifier=no-bar"),
		bundleEntry(observation(t, "k-5", nil), "POST", "/Observation/", ""),
	))
	want := []string{"400 Bad Request", "400 Bad Request", "400 Bad Request", "400 Bad Request", "201 Created"}
	var got []string
	for _, e := range b.Entry {
		got = append(got, e.Response.Status)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: 5, Created: 1, Rejected: 4, Batches: 1}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}
