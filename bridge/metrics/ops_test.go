package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func do(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w.Code, w.Body.String()
}

func TestHandlerMetricsAndHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v1.2.3")
	m.Received("vitals", 0, 3)
	h := Handler(reg, nil)

	code, body := do(t, h, http.MethodGet, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`fhir_bridge_build_info{goversion="go`,
		`version="v1.2.3"} 1`,
		"go_goroutines ",
		`fhir_bridge_readings_received_total{partition="0",route="vitals"} 3`,
		"# TYPE fhir_bridge_readings_received_total counter",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if code, body := do(t, h, http.MethodGet, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := do(t, h, http.MethodHead, "/healthz"); code != http.StatusOK {
		t.Errorf("HEAD /healthz: %d", code)
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/metrics/x", http.StatusNotFound},
		{http.MethodGet, "/v1/audit", http.StatusNotFound},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodPut, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/readyz", http.StatusMethodNotAllowed},
	} {
		if code, _ := do(t, h, tc.method, tc.path); code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.want)
		}
	}
}

func readiness(t *testing.T, h http.Handler) (int, Readiness) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var r Readiness
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return w.Code, r
}

func ok(context.Context) error { return nil }

func TestReadyz(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, tc := range []struct {
		name   string
		checks []Check
		code   int
		want   Readiness
	}{{
		name: "no checks",
		code: http.StatusOK,
		want: Readiness{Status: "ready", Checks: map[string]string{}},
	}, {
		name:   "all pass",
		checks: []Check{{"kafka", ok}, {"postgres", ok}},
		code:   http.StatusOK,
		want:   Readiness{Status: "ready", Checks: map[string]string{"kafka": "ok", "postgres": "ok"}},
	}, {
		name: "one fails",
		checks: []Check{{"kafka", ok}, {"postgres", func(context.Context) error {
			return errors.New("dial tcp db.internal:5432: connection refused")
		}}},
		code: http.StatusServiceUnavailable,
		want: Readiness{Status: "unavailable", Checks: map[string]string{
			"kafka": "ok", "postgres": "dial tcp db.internal:5432: connection refused",
		}},
	}, {
		name:   "duplicate name, one fails",
		checks: []Check{{"kafka", func(context.Context) error { return errors.New("no broker") }}, {"kafka", ok}},
		code:   http.StatusServiceUnavailable,
		want:   Readiness{Status: "unavailable", Checks: map[string]string{"kafka": "no broker"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			code, got := readiness(t, Handler(reg, tc.checks))
			if code != tc.code {
				t.Errorf("status %d, want %d", code, tc.code)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadyzRunsChecksConcurrently(t *testing.T) {
	// Each check waits for the other to start: run one after the other,
	// they would both hit the deadline.
	a, b := make(chan struct{}), make(chan struct{})
	meet := func(mine, theirs chan struct{}) func(context.Context) error {
		return func(ctx context.Context) error {
			close(mine)
			select {
			case <-theirs:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	code, got := readiness(t, Handler(prometheus.NewRegistry(), []Check{{"a", meet(a, b)}, {"b", meet(b, a)}}))
	if code != http.StatusOK || got.Checks["a"] != "ok" || got.Checks["b"] != "ok" {
		t.Errorf("%d %+v", code, got)
	}
}

func TestReadyzTimeout(t *testing.T) {
	checks := []Check{
		{"kafka", ok},
		// Honours its context: its error is reported.
		{"postgres", func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("ping db.internal:5432: %w", ctx.Err())
		}},
	}
	code, got := readiness(t, newHandler(prometheus.NewRegistry(), checks, 20*time.Millisecond, time.Minute))
	want := Readiness{Status: "unavailable", Checks: map[string]string{
		"kafka": "ok", "postgres": "ping db.internal:5432: context deadline exceeded",
	}}
	if code != http.StatusServiceUnavailable {
		t.Errorf("status %d", code)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestReadyzCheckIgnoringContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	checks := []Check{
		{"kafka", ok},
		// Ignores its context: the handler stops waiting for it anyway.
		{"fhir", func(context.Context) error {
			<-release
			return nil
		}},
	}
	code, got := readiness(t, newHandler(prometheus.NewRegistry(), checks, 20*time.Millisecond, 0))
	want := Readiness{Status: "unavailable", Checks: map[string]string{
		"kafka": "ok", "fhir": "no answer within 20ms",
	}}
	if code != http.StatusServiceUnavailable {
		t.Errorf("status %d", code)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, "test")
	s, err := Listen("127.0.0.1:0", Handler(reg, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "fhir_bridge_build_info") {
		t.Errorf("GET /metrics: %d", resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Error("listener still open after Run returned")
	}
}

func TestServerShutdownBeforeServe(t *testing.T) {
	s, err := Listen("127.0.0.1:0", http.NotFoundHandler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	again, err := Listen(s.Addr(), http.NotFoundHandler(), nil)
	if err != nil {
		t.Fatalf("address not released: %v", err)
	}
	_ = again.Shutdown(t.Context())
}

func TestListenInUse(t *testing.T) {
	s, err := Listen("127.0.0.1:0", http.NotFoundHandler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	if _, err := Listen(s.Addr(), http.NotFoundHandler(), nil); err == nil {
		t.Error("second Listen on the same address succeeded")
	}
}
