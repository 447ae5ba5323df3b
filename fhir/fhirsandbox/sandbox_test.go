package fhirsandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirsandbox"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"github.com/google/go-cmp/cmp"
)

const idSystem = "https://example.org/sid/obs-key"

func newCodec(t *testing.T) *fhir.Codec {
	t.Helper()
	c, err := fhir.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// observation encodes a conformant heart-rate Observation carrying the
// identifier idSystem|key, after applying mut (may be nil). It is built with
// the fhir helpers, not the mappers, to keep this package's tests below them.
func observation(t *testing.T, key string, mut func(*observationpb.Observation)) []byte {
	t.Helper()
	o := &observationpb.Observation{
		Identifier: []*dtpb.Identifier{fhir.Identifier(idSystem, key)},
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
	b, err := newCodec(t).Encode(o)
	if err != nil {
		t.Fatalf("encode test Observation: %v", err)
	}
	return b
}

// sandbox starts the server under test behind httptest.
func sandbox(t *testing.T, hook func(r *http.Request, identifier string)) (*fhirsandbox.Server, *httptest.Server) {
	t.Helper()
	s := fhirsandbox.New(newCodec(t))
	s.BeforeRespond = hook
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func do(t *testing.T, method, url, contentType, ifNoneExist string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if ifNoneExist != "" {
		req.Header.Set("If-None-Exist", ifNoneExist)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func post(t *testing.T, srv *httptest.Server, ifNoneExist string, body []byte) response {
	t.Helper()
	return do(t, http.MethodPost, srv.URL+"/Observation", fhir.ContentType, ifNoneExist, body)
}

type outcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Diagnostics string   `json:"diagnostics"`
		Expression  []string `json:"expression"`
	} `json:"issue"`
}

func parseOutcome(t *testing.T, r response) outcome {
	t.Helper()
	var oo outcome
	if err := json.Unmarshal(r.Body, &oo); err != nil {
		t.Fatalf("response body is not JSON: %v\n%s", err, r.Body)
	}
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("response body is not an OperationOutcome with issues: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != fhir.ContentType {
		t.Errorf("OperationOutcome Content-Type %q, want %q", ct, fhir.ContentType)
	}
	return oo
}

func TestCreateThenRead(t *testing.T) {
	s, srv := sandbox(t, nil)
	body := observation(t, "k-1", nil)

	created := post(t, srv, fhir.IfNoneExistIdentifier(idSystem, "k-1"), body)
	if created.Status != http.StatusCreated {
		t.Fatalf("POST: %d %s, want 201", created.Status, created.Body)
	}
	if got := created.Header.Get("Location"); got != "/Observation/1/_history/1" {
		t.Errorf("Location %q", got)
	}
	if got := created.Header.Get("ETag"); got != `W/"1"` {
		t.Errorf("ETag %q", got)
	}

	read := do(t, http.MethodGet, srv.URL+"/Observation/1", "", "", nil)
	if read.Status != http.StatusOK {
		t.Fatalf("GET: %d %s", read.Status, read.Body)
	}
	if got := serverFields(t, read.Body, "1", "1"); !jsonEqual(t, got, body) {
		t.Errorf("GET body differs from what was posted (plus id and meta.versionId):\n got %s\nwant %s", read.Body, body)
	}
	if ct := read.Header.Get("Content-Type"); ct != fhir.ContentType {
		t.Errorf("GET Content-Type %q", ct)
	}
	if diff := cmp.Diff([][]byte{body}, s.Resources("Observation")); diff != "" {
		t.Errorf("Resources (-want +got):\n%s", diff)
	}
	if got := s.Resources("Patient"); len(got) != 0 {
		t.Errorf("Resources(Patient) = %d entries", len(got))
	}
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: 1, Created: 1}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

func TestConditionalCreate(t *testing.T) {
	s, srv := sandbox(t, nil)
	c, err := fhir.NewClient(fhir.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cond := fhir.IfNoneExistIdentifier(idSystem, "k-1")

	first, err := c.Create(ctx, "Observation", observation(t, "k-1", nil), cond)
	if err != nil {
		t.Fatalf("first create: %v", err)
	}
	second, err := c.Create(ctx, "Observation", observation(t, "k-1", nil), cond)
	if err != nil {
		t.Fatalf("second create: %v", err)
	}
	if !first.Created() || first.Status != http.StatusCreated {
		t.Errorf("first create %+v, want 201", first)
	}
	if second.Created() || second.Status != http.StatusOK {
		t.Errorf("repeat create %+v, want 200", second)
	}
	if first.Location != second.Location || first.Location == "" {
		t.Errorf("Locations %q and %q, want the same existing resource", first.Location, second.Location)
	}
	if n := len(s.Resources("Observation")); n != 1 {
		t.Errorf("%d Observations stored, want 1", n)
	}
	if diff := cmp.Diff(map[string]int{idSystem + "|k-1": 1}, s.CreatesByIdentifier()); diff != "" {
		t.Errorf("CreatesByIdentifier (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: 2, Created: 1, Matched: 1}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}

	// A different identifier is a different resource.
	third, err := c.Create(ctx, "Observation", observation(t, "k-2", nil), fhir.IfNoneExistIdentifier(idSystem, "k-2"))
	if err != nil || third.Status != http.StatusCreated {
		t.Fatalf("create with another identifier: %+v, %v", third, err)
	}
	if diff := cmp.Diff(map[string]int{idSystem + "|k-1": 1, idSystem + "|k-2": 1}, s.CreatesByIdentifier()); diff != "" {
		t.Errorf("CreatesByIdentifier (-want +got):\n%s", diff)
	}
}

func TestCreateWithoutIfNoneExistDuplicates(t *testing.T) {
	s, srv := sandbox(t, nil)
	body := observation(t, "k-1", nil)
	a := post(t, srv, "", body)
	b := post(t, srv, "", body)
	if a.Status != http.StatusCreated || b.Status != http.StatusCreated {
		t.Fatalf("statuses %d, %d, want 201 twice", a.Status, b.Status)
	}
	if la, lb := a.Header.Get("Location"), b.Header.Get("Location"); la == lb {
		t.Errorf("both creates answered Location %q", la)
	}
	if diff := cmp.Diff(map[string]int{idSystem + "|k-1": 2}, s.CreatesByIdentifier()); diff != "" {
		t.Errorf("CreatesByIdentifier (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: 2, Created: 2}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	// Once an identifier is stored, a conditional create matches it.
	c := post(t, srv, fhir.IfNoneExistIdentifier(idSystem, "k-1"), body)
	if c.Status != http.StatusOK {
		t.Errorf("conditional create after duplicates: %d, want 200", c.Status)
	}
}

func TestCreateRejected(t *testing.T) {
	valid := func(t *testing.T) []byte { return observation(t, "k-1", nil) }
	tests := []struct {
		name        string
		path        string // default /Observation
		contentType string // default fhir.ContentType
		ifNoneExist string
		body        func(t *testing.T) []byte
		status      int
		code        string // OperationOutcome issue code
		expression  []string
	}{
		{
			name: "Observation without category",
			body: func(t *testing.T) []byte {
				return observation(t, "k-1", func(o *observationpb.Observation) { o.Category = nil })
			},
			status:     http.StatusBadRequest,
			code:       "invalid",
			expression: []string{"Observation.category"},
		},
		{
			name: "Observation with a Device subject and no effective",
			body: func(t *testing.T) []byte {
				return observation(t, "k-1", func(o *observationpb.Observation) {
					o.Subject = fhir.DeviceRef("hrm-1")
					o.Effective = nil
				})
			},
			status:     http.StatusBadRequest,
			code:       "invalid",
			expression: []string{"Observation.subject", "Observation.effective[x]"},
		},
		{
			name: "invalid element",
			body: func(t *testing.T) []byte {
				return bytes.Replace(valid(t), []byte(`"code":"8867-4"`), []byte(`"code":" 8867-4"`), 1)
			},
			status:     http.StatusBadRequest,
			code:       "invalid",
			expression: []string{"Observation.code.coding[0].code"},
		},
		{
			name:       "malformed JSON",
			body:       func(*testing.T) []byte { return []byte(`{"resourceType":`) },
			status:     http.StatusBadRequest,
			code:       "invalid",
			expression: []string{"Observation"},
		},
		{
			name:       "a Patient posted to /Observation",
			body:       func(*testing.T) []byte { return []byte(`{"resourceType":"Patient","id":"p-1"}`) },
			status:     http.StatusBadRequest,
			code:       "invalid",
			expression: []string{"resourceType"},
		},
		{
			name:       "an Observation posted to /Patient",
			path:       "/Patient",
			body:       valid,
			status:     http.StatusBadRequest,
			code:       "invalid",
			expression: []string{"resourceType"},
		},
		{
			name:        "wrong content type",
			contentType: "text/plain",
			body:        valid,
			status:      http.StatusUnsupportedMediaType,
			code:        "not-supported",
		},
		{
			name:        "missing content type",
			contentType: "-",
			body:        valid,
			status:      http.StatusUnsupportedMediaType,
			code:        "not-supported",
		},
		{
			name:        "charset other than UTF-8",
			contentType: "application/fhir+json; charset=iso-8859-1",
			body:        valid,
			status:      http.StatusUnsupportedMediaType,
			code:        "not-supported",
		},
		{
			name:        "If-None-Exist on something other than identifier",
			ifNoneExist: "code=8867-4",
			body:        valid,
			status:      http.StatusBadRequest,
			code:        "not-supported",
		},
		{
			name:        "If-None-Exist identifier without a system",
			ifNoneExist: "identifier=k-1",
			body:        valid,
			status:      http.StatusBadRequest,
			code:        "not-supported",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hooked bool
			var mu sync.Mutex
			s, srv := sandbox(t, func(*http.Request, string) { mu.Lock(); hooked = true; mu.Unlock() })
			path, ct := tt.path, tt.contentType
			if path == "" {
				path = "/Observation"
			}
			switch ct {
			case "":
				ct = fhir.ContentType
			case "-":
				ct = ""
			}
			r := do(t, http.MethodPost, srv.URL+path, ct, tt.ifNoneExist, tt.body(t))
			if r.Status != tt.status {
				t.Fatalf("status %d %s, want %d", r.Status, r.Body, tt.status)
			}
			oo := parseOutcome(t, r)
			var exprs []string
			for _, is := range oo.Issue {
				if is.Severity != "error" || is.Code != tt.code {
					t.Errorf("issue %+v, want severity error, code %s", is, tt.code)
				}
				if is.Diagnostics == "" {
					t.Errorf("issue %+v has no diagnostics", is)
				}
				exprs = append(exprs, is.Expression...)
			}
			if diff := cmp.Diff(tt.expression, exprs); diff != "" {
				t.Errorf("issue expressions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(fhirsandbox.Stats{Posts: 1, Rejected: 1}, s.Stats()); diff != "" {
				t.Errorf("Stats (-want +got):\n%s", diff)
			}
			if n := len(s.Resources("Observation")) + len(s.Resources("Patient")); n != 0 {
				t.Errorf("%d resources stored after a rejection", n)
			}
			if len(s.CreatesByIdentifier()) != 0 {
				t.Errorf("CreatesByIdentifier = %v after a rejection", s.CreatesByIdentifier())
			}
			mu.Lock()
			defer mu.Unlock()
			if hooked {
				t.Error("BeforeRespond ran for a rejected request")
			}
		})
	}
}

func TestCreateOversizeBody(t *testing.T) {
	s := fhirsandbox.New(newCodec(t))
	// Call the handler directly: over a socket, the client may see the
	// connection reset while still writing the body, before it can read the 413.
	body := bytes.Repeat([]byte(" "), 1<<20+1)
	req := httptest.NewRequest(http.MethodPost, "/Observation", bytes.NewReader(body))
	req.Header.Set("Content-Type", fhir.ContentType)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	r := response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d %s, want 413", r.Status, r.Body)
	}
	if oo := parseOutcome(t, r); oo.Issue[0].Code != "too-long" {
		t.Errorf("issue code %q, want too-long", oo.Issue[0].Code)
	}
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: 1, Rejected: 1}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}

	// Exactly the limit is read whole (and then fails as JSON, not as size).
	req = httptest.NewRequest(http.MethodPost, "/Observation", bytes.NewReader(body[:1<<20]))
	req.Header.Set("Content-Type", fhir.ContentType)
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("body of exactly 1 MiB: status %d, want 400", rec.Code)
	}
}

func TestUnsupportedRoutes(t *testing.T) {
	s, srv := sandbox(t, nil)
	if r := post(t, srv, "", observation(t, "k-1", nil)); r.Status != http.StatusCreated {
		t.Fatalf("setup POST: %d", r.Status)
	}
	tests := []struct {
		name, method, path string
		code               string
	}{
		{"root", http.MethodGet, "/", "not-supported"},
		{"search", http.MethodGet, "/Observation", "not-supported"},
		{"unknown id", http.MethodGet, "/Observation/99", "not-found"},
		{"vread", http.MethodGet, "/Observation/1/_history/1", "not-supported"},
		{"delete", http.MethodDelete, "/Observation/1", "not-supported"},
		{"delete", http.MethodDelete, "/Observation/1", "not-supported"},
		{"POST to an instance", http.MethodPost, "/Observation/1", "not-supported"},
		{"POST to the base", http.MethodPost, "/", "not-supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, srv.URL+tt.path, fhir.ContentType, "", nil)
			if r.Status != http.StatusNotFound {
				t.Fatalf("%s %s: %d, want 404", tt.method, tt.path, r.Status)
			}
			if oo := parseOutcome(t, r); oo.Issue[0].Code != tt.code {
				t.Errorf("issue code %q, want %q", oo.Issue[0].Code, tt.code)
			}
		})
	}
	// Only create requests are counted; 404s for other interactions are not
	// in Rejected, so Posts == Created + Matched + Rejected always holds.
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: 1, Created: 1}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if n := len(s.Resources("Observation")); n != 1 {
		t.Errorf("%d Observations after unsupported interactions, want 1", n)
	}
}

func TestStatsCountEveryOutcome(t *testing.T) {
	s, srv := sandbox(t, nil)
	cond := fhir.IfNoneExistIdentifier(idSystem, "k-1")
	steps := []struct {
		name   string
		do     func() response
		status int
	}{
		{"create", func() response { return post(t, srv, cond, observation(t, "k-1", nil)) }, 201},
		{"match", func() response { return post(t, srv, cond, observation(t, "k-1", nil)) }, 200},
		{"match again", func() response { return post(t, srv, cond, observation(t, "k-1", nil)) }, 200},
		{"create unconditionally", func() response { return post(t, srv, "", observation(t, "k-2", nil)) }, 201},
		{"invalid", func() response {
			return post(t, srv, "", observation(t, "k-3", func(o *observationpb.Observation) { o.Value = nil }))
		}, 400},
		{"unsupported media type", func() response {
			return do(t, http.MethodPost, srv.URL+"/Observation", "application/xml", "", nil)
		}, 415},
		{"read", func() response { return do(t, http.MethodGet, srv.URL+"/Observation/2", "", "", nil) }, 200},
	}
	for _, st := range steps {
		if r := st.do(); r.Status != st.status {
			t.Fatalf("%s: status %d %s, want %d", st.name, r.Status, r.Body, st.status)
		}
	}
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: 6, Created: 2, Matched: 2, Rejected: 2}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

func TestBeforeRespond(t *testing.T) {
	type call struct {
		Method     string
		Identifier string
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	_, srv := sandbox(t, func(r *http.Request, identifier string) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{r.Method, identifier})
	})
	body := observation(t, "k-1", nil)
	cond := fhir.IfNoneExistIdentifier(idSystem, "k-1")
	for _, want := range []int{201, 200} {
		if r := post(t, srv, cond, body); r.Status != want {
			t.Fatalf("status %d, want %d", r.Status, want)
		}
	}
	if r := post(t, srv, "", body); r.Status != http.StatusCreated {
		t.Fatalf("unconditional create: %d", r.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []call{
		{http.MethodPost, idSystem + "|k-1"}, // created
		{http.MethodPost, idSystem + "|k-1"}, // matched
		{http.MethodPost, ""},                // no If-None-Exist: no identifier to report
	}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("BeforeRespond calls (-want +got):\n%s", diff)
	}
}

// TestBeforeRespondRunsAfterStore checks the hook's contract: the resource
// is stored before the hook runs, and the answer waits for the hook.
func TestBeforeRespondRunsAfterStore(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	s, srv := sandbox(t, func(*http.Request, string) {
		close(entered)
		<-release
	})
	done := make(chan response, 1)
	body := observation(t, "k-1", nil)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/Observation", bytes.NewReader(body))
		req.Header.Set("Content-Type", fhir.ContentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- response{}
			return
		}
		resp.Body.Close()
		done <- response{Status: resp.StatusCode}
	}()
	select {
	case <-entered:
	case r := <-done:
		t.Fatalf("answered (%d) without running the hook", r.Status)
	}
	if n := len(s.Resources("Observation")); n != 1 {
		t.Errorf("%d Observations stored when the hook runs, want 1", n)
	}
	select {
	case r := <-done:
		t.Fatalf("answered (%d) before the hook returned", r.Status)
	default:
	}
	close(release)
	if r := <-done; r.Status != http.StatusCreated {
		t.Errorf("status %d, want 201", r.Status)
	}
}

func TestConcurrentConditionalCreates(t *testing.T) {
	s, srv := sandbox(t, nil)
	c, err := fhir.NewClient(fhir.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	body := observation(t, "k-1", nil)
	cond := fhir.IfNoneExistIdentifier(idSystem, "k-1")
	start := make(chan struct{})
	results := make(chan error, n)
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := c.Create(context.Background(), "Observation", body, cond)
			results <- err
			statuses <- res.Status
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	close(statuses)
	var errs []error
	for err := range results {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent creates failed: %v", err)
	}
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	if diff := cmp.Diff(map[int]int{201: 1, 200: n - 1}, count); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{idSystem + "|k-1": 1}, s.CreatesByIdentifier()); diff != "" {
		t.Errorf("CreatesByIdentifier (-want +got):\n%s", diff)
	}
	if got := len(s.Resources("Observation")); got != 1 {
		t.Errorf("%d Observations stored, want 1", got)
	}
	if diff := cmp.Diff(fhirsandbox.Stats{Posts: n, Created: 1, Matched: n - 1}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

func TestReadReturnsStoredBytesPerID(t *testing.T) {
	_, srv := sandbox(t, nil)
	bodies := [][]byte{observation(t, "k-1", nil), observation(t, "k-2", nil)}
	for _, b := range bodies {
		if r := post(t, srv, "", b); r.Status != http.StatusCreated {
			t.Fatalf("POST: %d", r.Status)
		}
	}
	for i, posted := range bodies {
		path := "/Observation/" + strconv.Itoa(i+1)
		r := do(t, http.MethodGet, srv.URL+path, "", "", nil)
		if r.Status != http.StatusOK || !jsonEqual(t, serverFields(t, r.Body, strconv.Itoa(i+1), "1"), posted) {
			t.Errorf("GET %s: %d %s, want 200 %s", path, r.Status, r.Body, posted)
		}
	}
}

func TestUpdateAsCreate(t *testing.T) {
	codec, err := fhir.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	s := fhirsandbox.New(codec)
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, _ := fhir.NewClient(fhir.ClientConfig{BaseURL: srv.URL})
	dev := []byte(`{"resourceType":"Device","id":"hrm-1","manufacturer":"Acme"}`)
	if res, err := c.Update(context.Background(), "Device", "hrm-1", dev); err != nil || res.Status != 201 {
		t.Fatalf("first PUT: %+v %v", res, err)
	}
	if res, err := c.Update(context.Background(), "Device", "hrm-1", dev); err != nil || res.Status != 200 {
		t.Fatalf("second PUT: %+v %v", res, err)
	}
	if _, err := c.Update(context.Background(), "Device", "other", dev); err == nil {
		t.Error("PUT with a mismatched id accepted")
	}
	if got := s.Resources("Device"); len(got) != 1 || s.Stats().Updates != 2 {
		t.Errorf("stored %d devices, %d updates", len(got), s.Stats().Updates)
	}
}

// TestVersionedUpdate: a PUT makes a new version; If-Match with a stale
// version is refused with 412 and changes nothing; search by identifier
// finds the current version.
func TestVersionedUpdate(t *testing.T) {
	s, srv := sandbox(t, nil)
	if r := post(t, srv, "identifier=https://example.org/sid/obs-key|k-1", observation(t, "k-1", nil)); r.Status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	corrected := bytes.Replace(observation(t, "k-1", nil), []byte(`"resourceType":"Observation"`), []byte(`"resourceType":"Observation","id":"1"`), 1)
	corrected = bytes.Replace(corrected, []byte(`"status":"final"`), []byte(`"status":"corrected"`), 1)
	put := func(ifMatch string) int {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/Observation/1", bytes.NewReader(corrected))
		req.Header.Set("Content-Type", fhir.ContentType)
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := put(`W/"1"`); got != http.StatusOK || s.Version("Observation/1") != 2 {
		t.Fatalf("PUT If-Match 1: %d, version %d; want 200 and version 2", got, s.Version("Observation/1"))
	}
	if got := put(`W/"1"`); got != http.StatusPreconditionFailed || s.Version("Observation/1") != 2 {
		t.Fatalf("PUT with a stale If-Match: %d, version %d; want 412 and version 2", got, s.Version("Observation/1"))
	}
	r := do(t, http.MethodGet, srv.URL+"/Observation?identifier="+url.QueryEscape("https://example.org/sid/obs-key|k-1"), "", "", nil)
	if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"versionId":"2"`)) || !bytes.Contains(r.Body, []byte(`"status":"corrected"`)) {
		t.Errorf("search: %d %s; want the corrected version 2", r.Status, r.Body)
	}
}

// serverFields checks the id and meta.versionId a server adds to what it
// returns, and returns the body without them.
func serverFields(t *testing.T, body []byte, id, version string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("server body: %v", err)
	}
	meta, _ := m["meta"].(map[string]any)
	if m["id"] != id || meta["versionId"] != version {
		t.Errorf("server body id %v versionId %v, want %s and %s", m["id"], meta["versionId"], id, version)
	}
	delete(m, "id")
	delete(meta, "versionId")
	if len(meta) == 0 {
		delete(m, "meta")
	}
	out, _ := json.Marshal(m)
	return out
}

// jsonEqual reports whether two JSON documents hold the same values.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
