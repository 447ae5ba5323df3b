package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// fakeVerifier accepts tokens named in its table; the real verifier has its
// own tests in package auth.
type fakeVerifier map[string]auth.Principal

func (f fakeVerifier) Verify(_ context.Context, raw string) (auth.Principal, error) {
	if p, ok := f[raw]; ok {
		return p, nil
	}
	return auth.Principal{}, errors.New("invalid token")
}

type fakePublisher struct {
	mu      sync.Mutex
	fail    bool
	records map[string][]Record
}

func (p *fakePublisher) Publish(_ context.Context, route string, rs []Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("kafka down")
	}
	if p.records == nil {
		p.records = map[string][]Record{}
	}
	p.records[route] = append(p.records[route], rs...)
	return nil
}

func (p *fakePublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, rs := range p.records {
		n += len(rs)
	}
	return n
}

type fixture struct {
	h    http.Handler
	pub  *fakePublisher
	al   *audit.Memory
	logs *bytes.Buffer
}

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{pub: &fakePublisher{}, al: audit.NewMemory(), logs: &bytes.Buffer{}}
	f.h = New(Config{
		Verifier: fakeVerifier{
			"vendor-a": {Subject: "vendor-a", Scopes: []string{ScopeIngest}, Devices: []string{"hrm-1", "hrm-2"}},
			"auditor":  {Subject: "auditor", Scopes: []string{ScopeAuditRead}},
		},
		Publish: f.pub, Audit: f.al, Routes: map[string]RouteMapper{"hr": {Native: true, Map: mappers.Native{}.MapEach}},
		Log:     slog.New(slog.NewTextHandler(f.logs, nil)),
		MaxBody: 4096, Now: func() time.Time { return now },
		Checks: []Check{{Name: "kafka", Run: func(context.Context) error { return nil }}},
	})
	return f
}

func (f *fixture) do(method, path, token, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

const good = `{"kind":"heart-rate","device":"hrm-1","patient":"secret-patient","time":"2026-11-25T11:59:00Z","value":72}`

func TestIngestAccepts(t *testing.T) {
	f := newFixture(t)
	w := f.do("POST", "/v1/ingest/hr", "vendor-a", "application/json", "["+good+","+strings.Replace(good, "hrm-1", "hrm-2", 1)+"]")
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp struct {
		Accepted int
		IDs      []string
	}
	json.Unmarshal(w.Body.Bytes(), &resp)
	if resp.Accepted != 2 || len(resp.IDs) != 2 || len(resp.IDs[0]) != 64 {
		t.Errorf("response %s", w.Body)
	}
	if f.pub.count() != 2 || string(f.pub.records["hr"][0].Key) != "hrm-1" {
		t.Errorf("published %+v, want 2 records keyed by device", f.pub.records)
	}
	evs, _ := f.al.List(context.Background(), audit.Filter{Action: ActionAPIAccess})
	if len(evs) != 1 || evs[0].Actor != "oidc:vendor-a" || evs[0].Status != 202 || evs[0].Detail != "POST /v1/ingest/:route" {
		t.Errorf("API access audit %+v", evs)
	}
	if strings.Contains(f.logs.String(), "secret-patient") {
		t.Error("logs contain a patient id")
	}
}

// TestIngestRefuses checks each refusal's exact status and that nothing was
// published.
func TestIngestRefuses(t *testing.T) {
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	tests := []struct {
		name, token, ctype, body string
		status                   int
		want                     string
	}{
		{"no token", "", "application/json", good, 401, ""},
		{"bad token", "forged", "application/json", good, 401, ""},
		{"missing scope", "auditor", "application/json", good, 403, ""},
		{"other vendor's device", "vendor-a", "application/json", strings.Replace(good, "hrm-1", "hrm-9", 1), 403, `"field":"device"`},
		{"wrong content type", "vendor-a", "text/plain", good, 415, ""},
		{"oversized", "vendor-a", "application/json", `{"kind":"` + strings.Repeat("x", 5000) + `"}`, 413, ""},
		{"deep nesting", "vendor-a", "application/json", deep, 400, "nested"},
		{"invalid UTF-8", "vendor-a", "application/json", "{\"kind\":\"\xff\"}", 400, "UTF-8"},
		{"non-numeric value", "vendor-a", "application/json", strings.Replace(good, "72", `"fast"`, 1), 400, `"field":"value"`},
		{"far future", "vendor-a", "application/json", strings.Replace(good, "2026-11-25T11:59:00Z", "2027-01-01T00:00:00Z", 1), 400, `"field":"time"`},
		{"every item bad", "vendor-a", "application/json", `[{"kind":"heart-rate"},{"kind":"heart-rate","device":"hrm-1"}]`, 400, `"index":1`},
		{"a good item beside another vendor's", "vendor-a", "application/json", "[" + good + "," + strings.Replace(good, "hrm-1", "hrm-9", 1) + "]", 403, `"index":1`},
		{"unknown route", "vendor-a", "application/json", good, 404, ""},
		{"empty array", "vendor-a", "application/json", "[]", 400, "no readings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			path := "/v1/ingest/hr"
			if tt.name == "unknown route" {
				path = "/v1/ingest/nope"
			}
			w := f.do("POST", path, tt.token, tt.ctype, tt.body)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.want != "" && !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("body %s lacks %s", w.Body, tt.want)
			}
			if f.pub.count() != 0 {
				t.Errorf("published %d records on a refused call", f.pub.count())
			}
			if strings.Contains(w.Body.String(), "forged") || strings.Contains(f.logs.String(), "secret-patient") {
				t.Error("token or patient id leaked")
			}
		})
	}
}

// TestIngestAcceptsTheGoodItems: an upload of 30 readings with one that
// fails its checks gets the 29 into Kafka and says which one was refused
// and why.
func TestIngestAcceptsTheGoodItems(t *testing.T) {
	f := newFixture(t)
	var items []string
	for i := range 30 { // as many as the fixture's 4 KiB body limit takes
		item := strings.Replace(good, "11:59:00Z", fmt.Sprintf("10:%02d:00Z", i), 1)
		if i == 17 {
			item = strings.Replace(item, "72", "900", 1)
		}
		items = append(items, item)
	}
	w := f.do("POST", "/v1/ingest/hr", "vendor-a", "application/json", "["+strings.Join(items, ",")+"]")
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", w.Code, w.Body)
	}
	var resp struct {
		Accepted int      `json:"accepted"`
		IDs      []string `json:"ids"`
		Errors   []struct {
			Index  int    `json:"index"`
			Field  string `json:"field"`
			Reason string `json:"reason"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Accepted != 29 || len(resp.IDs) != 29 || len(resp.Errors) != 1 || resp.Errors[0].Index != 17 || resp.Errors[0].Field != "value" {
		t.Errorf("response %+v, want 29 accepted and item 17 refused on its value", resp)
	}
	if n := f.pub.count(); n != 29 {
		t.Errorf("published %d records, want 29", n)
	}
}

func TestIngestKafkaDown(t *testing.T) {
	f := newFixture(t)
	f.pub.fail = true
	if w := f.do("POST", "/v1/ingest/hr", "vendor-a", "application/json", good); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", w.Code)
	}
}

func TestAuditSearch(t *testing.T) {
	f := newFixture(t)
	f.al.Append(context.Background(),
		audit.Event{Time: now, Action: audit.ActionDelivered, Outcome: audit.OutcomeSuccess, Actor: "system", Route: "hr", Patient: "Patient/p1", Device: "Device/d1"},
		audit.Event{Time: now, Action: audit.ActionDelivered, Outcome: audit.OutcomeSuccess, Actor: "system", Route: "hr", Patient: "Patient/p2", Device: "Device/d2"},
	)
	w := f.do("GET", "/v1/audit?patient=Patient/p1", "auditor", "", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Patient/p1") || strings.Contains(w.Body.String(), "Patient/p2") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if w := f.do("GET", "/v1/audit", "vendor-a", "", ""); w.Code != 403 {
		t.Errorf("vendor reading the audit: %d, want 403", w.Code)
	}
	if w := f.do("GET", "/v1/audit?since=yesterday", "auditor", "", ""); w.Code != 400 {
		t.Errorf("bad since: %d, want 400", w.Code)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	f := newFixture(t)
	if w := f.do("GET", "/healthz", "", "", ""); w.Code != 200 {
		t.Errorf("healthz %d", w.Code)
	}
	if w := f.do("GET", "/readyz", "", "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"kafka":"ok"`) {
		t.Errorf("readyz %d %s", w.Code, w.Body)
	}
	if w := f.do("GET", "/metrics", "", "", ""); w.Code != 404 {
		t.Errorf("metrics on the API listener: %d, want 404 (they are on the ops listener)", w.Code)
	}
}

type fakeDLQ struct {
	calls []string
}

func (f *fakeDLQ) DeadLetters(_ context.Context, route string, flt DeadLetterFilter, dryRun bool, actor string) ([]DeadLetter, int, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s dry=%v reason=%s actor=%s", route, dryRun, flt.Reason, actor))
	n := 0
	if !dryRun {
		n = 1
	}
	return []DeadLetter{{Partition: 0, Offset: 7, Stage: "deliver", Reason: "http-422"}}, n, nil
}

func TestDeadLetterEndpoints(t *testing.T) {
	dlq := &fakeDLQ{}
	h := New(Config{
		Verifier: fakeVerifier{
			"auditor": {Subject: "auditor", Scopes: []string{ScopeAuditRead}},
			"ops":     {Subject: "ops", Scopes: []string{ScopeAdmin}},
		},
		Audit: audit.NewMemory(), Routes: map[string]RouteMapper{"hr": {Native: true, Map: mappers.Native{}.MapEach}},
		DeadLetters: dlq,
	})
	call := func(method, path, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	if w := call("GET", "/v1/dead-letters/hr?reason=http-422", "auditor"); w.Code != 200 || !strings.Contains(w.Body.String(), `"reason":"http-422"`) {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	if w := call("POST", "/v1/dead-letters/hr/replay", "auditor"); w.Code != 403 {
		t.Errorf("replay by an auditor: %d, want 403", w.Code)
	}
	if w := call("POST", "/v1/dead-letters/hr/replay?reason=http-422", "ops"); w.Code != 200 || !strings.Contains(w.Body.String(), `"replayed":1`) {
		t.Errorf("replay: %d %s", w.Code, w.Body)
	}
	if w := call("GET", "/v1/dead-letters/nope", "auditor"); w.Code != 404 {
		t.Errorf("unknown route: %d", w.Code)
	}
	want := []string{"hr dry=true reason=http-422 actor=oidc:auditor", "hr dry=false reason=http-422 actor=oidc:ops"}
	if strings.Join(dlq.calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls %q, want %q", dlq.calls, want)
	}
}
