package fhir

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// request is what a test server saw.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// fakeEHR starts a server that records each request on the returned channel
// (which gives the test a happens-before edge to read it) and answers with
// respond.
func fakeEHR(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, <-chan request) {
	t.Helper()
	seen := make(chan request, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen <- request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)}
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func newClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient(%+v): %v", cfg, err)
	}
	return c
}

func TestCreateRequest(t *testing.T) {
	const body = `{"resourceType":"Observation"}`
	ifNoneExist := IfNoneExistIdentifier("https://example.org/sid/obs-key", "abc 1|2&3")
	tests := []struct {
		name     string
		basePath string // appended to the server URL
		wantPath string
		ifNone   string
	}{
		{"root base, no slash", "", "/Observation", ifNoneExist},
		{"root base, trailing slash", "/", "/Observation", ifNoneExist},
		{"base with a path", "/fhir/r4", "/fhir/r4/Observation", ifNoneExist},
		{"base with a path and trailing slash", "/fhir/r4/", "/fhir/r4/Observation", ifNoneExist},
		{"without If-None-Exist", "/fhir", "/fhir/Observation", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := fakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "/fhir/Observation/1/_history/1")
				w.WriteHeader(http.StatusCreated)
			})
			c := newClient(t, ClientConfig{BaseURL: srv.URL + tt.basePath, UserAgent: "bridge-test/1"})
			if _, err := c.Create(context.Background(), "Observation", []byte(body), tt.ifNone); err != nil {
				t.Fatalf("Create: %v", err)
			}
			got := <-seen
			if got.Method != http.MethodPost {
				t.Errorf("method %s, want POST", got.Method)
			}
			if got.Path != tt.wantPath {
				t.Errorf("path %q, want %q", got.Path, tt.wantPath)
			}
			if got.Body != body {
				t.Errorf("body %q, want %q", got.Body, body)
			}
			for h, want := range map[string]string{
				"Content-Type": "application/fhir+json; charset=utf-8",
				"Accept":       "application/fhir+json",
				"Prefer":       "return=minimal",
				"User-Agent":   "bridge-test/1",
			} {
				if v := got.Header.Get(h); v != want {
					t.Errorf("%s: %q, want %q", h, v, want)
				}
			}
			if vs, ok := got.Header["If-None-Exist"]; tt.ifNone == "" {
				if ok {
					t.Errorf("If-None-Exist sent without being asked: %q", vs)
				}
			} else if len(vs) != 1 || vs[0] != tt.ifNone {
				t.Errorf("If-None-Exist %q, want exactly %q", vs, tt.ifNone)
			}
		})
	}
}

func TestCreateDefaultUserAgent(t *testing.T) {
	srv, seen := fakeEHR(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	c := newClient(t, ClientConfig{BaseURL: srv.URL})
	if _, err := c.Create(context.Background(), "Observation", nil, ""); err != nil {
		t.Fatal(err)
	}
	if got := (<-seen).Header.Get("User-Agent"); got != "fhir-bridge" {
		t.Errorf("User-Agent %q, want fhir-bridge", got)
	}
}

func TestCreateSuccess(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		headers     map[string]string
		want        Result
		wantCreated bool
	}{
		{
			name:        "201 with Location",
			status:      http.StatusCreated,
			headers:     map[string]string{"Location": "https://ehr.example.org/fhir/Observation/42/_history/1"},
			want:        Result{Status: 201, Location: "https://ehr.example.org/fhir/Observation/42/_history/1"},
			wantCreated: true,
		},
		{
			name:    "200 on a conditional-create match",
			status:  http.StatusOK,
			headers: map[string]string{"Location": "https://ehr.example.org/fhir/Observation/42/_history/1"},
			want:    Result{Status: 200, Location: "https://ehr.example.org/fhir/Observation/42/_history/1"},
		},
		{
			name:        "Content-Location when there is no Location",
			status:      http.StatusCreated,
			headers:     map[string]string{"Content-Location": "Observation/7/_history/1"},
			want:        Result{Status: 201, Location: "Observation/7/_history/1"},
			wantCreated: true,
		},
		{
			name:    "Location wins over Content-Location",
			status:  http.StatusOK,
			headers: map[string]string{"Location": "Observation/1", "Content-Location": "Observation/2"},
			want:    Result{Status: 200, Location: "Observation/1"},
		},
		{
			name:        "no Location at all",
			status:      http.StatusCreated,
			want:        Result{Status: 201},
			wantCreated: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
			})
			c := newClient(t, ClientConfig{BaseURL: srv.URL})
			got, err := c.Create(context.Background(), "Observation", []byte(`{}`), "identifier=s%7Cv")
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got != tt.want {
				t.Errorf("Result %+v, want %+v", got, tt.want)
			}
			if got.Created() != tt.wantCreated {
				t.Errorf("Created() = %v, want %v", got.Created(), tt.wantCreated)
			}
		})
	}
}

const operationOutcome = `{"resourceType":"OperationOutcome","issue":[
 {"severity":"error","code":"required","diagnostics":"Observation.category: minimum required = 1","expression":["Observation.category"]},
 {"severity":"warning","code":"code-invalid","details":{"text":"Unknown code 'bpm'"},"expression":["Observation.valueQuantity.code","Observation.valueQuantity.unit"]}]}`

func TestCreateStatusErrors(t *testing.T) {
	// Retry-After dates are two minutes ahead; the HTTP-date's one-second
	// resolution and a slow test run make the wait somewhat shorter.
	future := time.Now().Add(120 * time.Second).UTC().Format(http.TimeFormat)
	long := strings.Repeat("<p>not found</p>", 40)
	tests := []struct {
		name        string
		status      int
		retryAfter  string
		body        string
		temporary   bool
		waitMin     time.Duration
		waitMax     time.Duration
		outcome     []string // substrings of Outcome
		wantOutcome *string  // exact Outcome, when set
	}{
		{
			name:      "400 with an OperationOutcome",
			status:    http.StatusBadRequest,
			body:      operationOutcome,
			temporary: false,
			outcome: []string{
				"error required at Observation.category: Observation.category: minimum required = 1",
				"warning code-invalid at Observation.valueQuantity.code,Observation.valueQuantity.unit: Unknown code 'bpm'",
			},
		},
		{
			name:      "422 with an OperationOutcome",
			status:    http.StatusUnprocessableEntity,
			body:      `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"profile heartrate: value must be /min","expression":["Observation.valueQuantity"]}]}`,
			temporary: false,
			outcome:   []string{"error business-rule at Observation.valueQuantity: profile heartrate: value must be /min"},
		},
		{
			name:        "404 with a long non-FHIR body is truncated",
			status:      http.StatusNotFound,
			body:        long,
			temporary:   false,
			wantOutcome: ptr(long[:200] + "..."),
		},
		{
			name:        "409 with an empty body",
			status:      http.StatusConflict,
			temporary:   false,
			wantOutcome: ptr(""),
		},
		{
			name:       "429 with Retry-After seconds",
			status:     http.StatusTooManyRequests,
			retryAfter: "7",
			temporary:  true,
			waitMin:    7 * time.Second,
			waitMax:    7 * time.Second,
		},
		{
			name:       "429 with a Retry-After HTTP-date",
			status:     http.StatusTooManyRequests,
			retryAfter: future,
			temporary:  true,
			waitMin:    110 * time.Second,
			waitMax:    120 * time.Second,
		},
		{
			name:       "503 with Retry-After seconds",
			status:     http.StatusServiceUnavailable,
			retryAfter: "30",
			body:       "maintenance",
			temporary:  true,
			waitMin:    30 * time.Second,
			waitMax:    30 * time.Second,
			outcome:    []string{"maintenance"},
		},
		{
			name:       "503 with a Retry-After HTTP-date",
			status:     http.StatusServiceUnavailable,
			retryAfter: future,
			temporary:  true,
			waitMin:    110 * time.Second,
			waitMax:    120 * time.Second,
		},
		{
			name:      "500 without Retry-After",
			status:    http.StatusInternalServerError,
			temporary: true,
		},
		{
			name:       "502 with an unusable Retry-After",
			status:     http.StatusBadGateway,
			retryAfter: "soon",
			temporary:  true,
		},
		{
			name:      "408 is temporary",
			status:    http.StatusRequestTimeout,
			temporary: true,
		},
		{
			name:      "401 is permanent for the client",
			status:    http.StatusUnauthorized,
			temporary: false,
		},
		{
			name:      "412 (several matches) is permanent",
			status:    http.StatusPreconditionFailed,
			temporary: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.Header().Set("Location", "must-not-be-used")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			c := newClient(t, ClientConfig{BaseURL: srv.URL})
			res, err := c.Create(context.Background(), "Observation", []byte(`{}`), "")
			if err == nil {
				t.Fatalf("Create succeeded: %+v", res)
			}
			if res != (Result{}) {
				t.Errorf("Result %+v with an error, want zero", res)
			}
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want *StatusError", err, err)
			}
			if se.Status != tt.status {
				t.Errorf("Status %d, want %d", se.Status, tt.status)
			}
			if got := se.Temporary(); got != tt.temporary {
				t.Errorf("Temporary() = %v, want %v", got, tt.temporary)
			}
			if w := se.Wait(); w < tt.waitMin || w > tt.waitMax {
				t.Errorf("Wait() = %v, want between %v and %v", w, tt.waitMin, tt.waitMax)
			}
			if se.Wait() != se.RetryAfter {
				t.Errorf("Wait() %v != RetryAfter %v", se.Wait(), se.RetryAfter)
			}
			if want := "POST " + srv.URL + "/Observation"; se.Op != want {
				t.Errorf("Op %q, want %q", se.Op, want)
			}
			for _, s := range tt.outcome {
				if !strings.Contains(se.Outcome, s) {
					t.Errorf("Outcome %q lacks %q", se.Outcome, s)
				}
			}
			if tt.wantOutcome != nil && se.Outcome != *tt.wantOutcome {
				t.Errorf("Outcome %q, want %q", se.Outcome, *tt.wantOutcome)
			}
			msg := err.Error()
			if want := se.Op + ": HTTP " + strconv.Itoa(tt.status); !strings.HasPrefix(msg, want) {
				t.Errorf("Error() %q does not start with %q", msg, want)
			}
			if se.Outcome != "" && !strings.HasSuffix(msg, ": "+se.Outcome) {
				t.Errorf("Error() %q does not end with the outcome", msg)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateTransportErrors(t *testing.T) {
	t.Run("connection refused is temporary", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close() // nothing listens on base any more
		c := newClient(t, ClientConfig{BaseURL: base})
		_, err := c.Create(context.Background(), "Observation", []byte(`{}`), "")
		var te *TransportError
		if !errors.As(err, &te) {
			t.Fatalf("error %T %v, want *TransportError", err, err)
		}
		if !te.Temporary() {
			t.Errorf("Temporary() = false for %v", err)
		}
		if te.Op != "POST "+base+"/Observation" {
			t.Errorf("Op %q", te.Op)
		}
		if errors.Unwrap(te) == nil || !strings.HasPrefix(te.Error(), te.Op+": ") {
			t.Errorf("error %q does not wrap its cause", te)
		}
	})

	t.Run("cancelled context is not temporary", func(t *testing.T) {
		srv, seen := fakeEHR(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
		c := newClient(t, ClientConfig{BaseURL: srv.URL})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Create(ctx, "Observation", []byte(`{}`), "")
		var te *TransportError
		if !errors.As(err, &te) {
			t.Fatalf("error %T %v, want *TransportError", err, err)
		}
		if te.Temporary() {
			t.Errorf("Temporary() = true for a cancelled request: %v", err)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		select {
		case r := <-seen:
			t.Errorf("server saw a cancelled request: %+v", r)
		default:
		}
	})

	// The server blocks until the client gives up; a request that outlives
	// the timeout fails with a temporary TransportError. Both the default
	// HTTP client and a caller-supplied one without its own timeout must
	// honour ClientConfig.Timeout.
	for _, tt := range []struct {
		name string
		hc   *http.Client
	}{
		{"default HTTP client", nil},
		{"caller's HTTP client without a timeout", &http.Client{}},
	} {
		t.Run("timeout with "+tt.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Read the body first: net/http notices a closed connection,
				// and cancels r.Context(), only once the body is consumed.
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) }) // runs before srv.Close
			const timeout = 100 * time.Millisecond
			c := newClient(t, ClientConfig{BaseURL: srv.URL, Timeout: timeout, HTTPClient: tt.hc})
			start := time.Now()
			_, err := c.Create(context.Background(), "Observation", []byte(`{}`), "")
			elapsed := time.Since(start)
			var te *TransportError
			if !errors.As(err, &te) {
				t.Fatalf("error %T %v, want *TransportError", err, err)
			}
			if !te.Temporary() {
				t.Errorf("Temporary() = false for a timeout: %v", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v is not a deadline", err)
			}
			if elapsed < timeout {
				t.Errorf("returned after %v, before the %v timeout", elapsed, timeout)
			}
			if elapsed > 10*time.Second {
				t.Errorf("returned after %v: timeout %v not honoured", elapsed, timeout)
			}
		})
	}
}

func TestCreateReadsABoundedBody(t *testing.T) {
	// A huge error body must not be buffered whole, nor end up in the error.
	srv, _ := fakeEHR(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		chunk := []byte(strings.Repeat("x", 1<<10))
		for range 1 << 10 { // 1 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	c := newClient(t, ClientConfig{BaseURL: srv.URL})
	_, err := c.Create(context.Background(), "Observation", []byte(`{}`), "")
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v, want *StatusError", err, err)
	}
	if len(se.Outcome) > 203 {
		t.Errorf("Outcome is %d bytes, want at most 203", len(se.Outcome))
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		wantErr bool
		want    string // BaseURL()
	}{
		{name: "https", base: "https://ehr.example.org/fhir", want: "https://ehr.example.org/fhir"},
		{name: "http with port", base: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{name: "trailing slashes trimmed", base: "https://ehr.example.org/fhir//", want: "https://ehr.example.org/fhir"},
		{name: "empty", base: "", wantErr: true},
		{name: "relative path", base: "/fhir", wantErr: true},
		{name: "relative host", base: "ehr.example.org/fhir", wantErr: true},
		{name: "ftp", base: "ftp://ehr.example.org/fhir", wantErr: true},
		{name: "no host", base: "https:///fhir", wantErr: true},
		{name: "unparseable", base: "http://[::1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(ClientConfig{BaseURL: tt.base})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewClient(%q) succeeded with base %q", tt.base, c.BaseURL())
				}
				if !strings.Contains(err.Error(), "absolute http(s) URL") {
					t.Errorf("error %q does not say what is expected", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient(%q): %v", tt.base, err)
			}
			if got := c.BaseURL(); got != tt.want {
				t.Errorf("BaseURL() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIfNoneExistIdentifier(t *testing.T) {
	tests := []struct {
		name          string
		system, value string
		want          string
	}{
		{
			name:   "plain",
			system: "https://example.org/sid/obs-key", value: "abc123",
			want: "identifier=https%3A%2F%2Fexample.org%2Fsid%2Fobs-key%7Cabc123",
		},
		{
			name:   "bar in the value is escaped",
			system: "urn:s", value: "a|b",
			want: "identifier=urn%3As%7Ca%7Cb",
		},
		{
			name:   "space and ampersand are escaped",
			system: "urn:s", value: "a b&c=d",
			want: "identifier=urn%3As%7Ca+b%26c%3Dd",
		},
		{
			name:   "empty value",
			system: "urn:s", value: "",
			want: "identifier=urn%3As%7C",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := IfNoneExistIdentifier(tt.system, tt.value)
			if got != tt.want {
				t.Errorf("IfNoneExistIdentifier(%q, %q) = %q, want %q", tt.system, tt.value, got, tt.want)
			}
			// A server parsing the header as a query gets exactly one
			// identifier parameter back, system|value intact.
			q, err := url.ParseQuery(got)
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", got, err)
			}
			if diff := cmp.Diff(url.Values{"identifier": {tt.system + "|" + tt.value}}, q); diff != "" {
				t.Errorf("parsed back (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"absent", "", 0},
		{"blank", "   ", 0},
		{"zero", "0", 0},
		{"seconds", "120", 120 * time.Second},
		{"seconds with spaces", " 5 ", 5 * time.Second},
		{"negative", "-1", 0},
		{"fraction", "1.5", 0},
		{"garbage", "soon", 0},
		{"IMF-fixdate in the future", "Wed, 25 Nov 2026 10:16:30 GMT", 90 * time.Second},
		{"RFC 850 date", "Wednesday, 25-Nov-26 10:16:00 GMT", 60 * time.Second},
		{"asctime date", "Wed Nov 25 10:15:10 2026", 10 * time.Second},
		{"date now", "Wed, 25 Nov 2026 10:15:00 GMT", 0},
		{"date in the past", "Wed, 25 Nov 2026 10:14:00 GMT", 0},
		{"date in another zone is not an HTTP-date", "Wed, 25 Nov 2026 11:16:30 +0100", 0},
		{"largest delay that fits", "9223372036", 9223372036 * time.Second},
		{"seconds beyond time.Duration saturate", "9223372037", time.Duration(1<<63 - 1)},
		{"seconds far beyond time.Duration saturate", "100000000000", time.Duration(1<<63 - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestOutcomeText(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{
			name: "issues flattened in order",
			body: operationOutcome,
			want: "error required at Observation.category: Observation.category: minimum required = 1; " +
				"warning code-invalid at Observation.valueQuantity.code,Observation.valueQuantity.unit: Unknown code 'bpm'",
		},
		{
			name: "diagnostics preferred over details.text",
			body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"d","details":{"text":"t"}}]}`,
			want: "error invalid: d",
		},
		{
			name: "issue without text or expression",
			body: `{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`,
			want: "fatal exception",
		},
		{
			name: "OperationOutcome without issues",
			body: `{"resourceType":"OperationOutcome"}`,
			want: "",
		},
		{
			name: "another resource is treated as text",
			body: `{"resourceType":"Observation"}`,
			want: `{"resourceType":"Observation"}`,
		},
		{
			name: "plain text is trimmed",
			body: "  Service Unavailable\n",
			want: "Service Unavailable",
		},
		{
			name: "exactly 200 bytes are kept whole",
			body: strings.Repeat("a", 200),
			want: strings.Repeat("a", 200),
		},
		{
			name: "201 bytes are cut to 200 and marked",
			body: strings.Repeat("a", 201),
			want: strings.Repeat("a", 200) + "...",
		},
		{
			name: "a cut never splits a UTF-8 character",
			body: strings.Repeat("a", 199) + "é and more",
			want: strings.Repeat("a", 199) + "...",
		},
		{
			name: "invalid UTF-8 is replaced",
			body: "Fehler: ung\xfcltig",
			want: "Fehler: ung\uFFFDltig",
		},
		{
			name: "NUL bytes are replaced",
			body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"a\u0000b"}]}`,
			want: "error invalid: a\uFFFDb",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outcomeText([]byte(tt.body)); got != tt.want {
				t.Errorf("outcomeText(%q)\n got %q\nwant %q", tt.body, got, tt.want)
			}
		})
	}
}
