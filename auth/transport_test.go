package auth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/auth/authtest"
)

// fhirServer is a stand-in FHIR endpoint behind authtest's RequireToken that
// records the bodies of the requests it let through.
type fhirServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newFHIRServer(t *testing.T, srv *authtest.Server) *fhirServer {
	t.Helper()
	f := &fhirServer{}
	f.Server = httptest.NewServer(srv.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}), "system/Observation.c"))
	t.Cleanup(f.Close)
	return f
}

func (f *fhirServer) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

func post(t *testing.T, hc *http.Client, url, body string) *http.Response {
	t.Helper()
	// http.NewRequest sets GetBody for a *bytes.Reader, as fhir.Client's
	// requests have.
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestTransportRetriesOnceOn401(t *testing.T) {
	e := newEnv(t, ecKey())
	fhir := newFHIRServer(t, e.srv)
	hc := auth.HTTPClient(e.source(t, nil), nil)

	if resp := post(t, hc, fhir.URL+"/Observation", `{"n":1}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first POST: %s", resp.Status)
	}
	e.srv.ExpireTokens() // the FHIR server now refuses the cached token
	if resp := post(t, hc, fhir.URL+"/Observation", `{"n":2}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST after revocation: %s, want 201 after one refresh", resp.Status)
	}
	if got := fhir.seen(); len(got) != 2 || got[1] != `{"n":2}` {
		t.Errorf("FHIR server got bodies %q; the retry must replay the body", got)
	}
	st := e.srv.Stats()
	if st.Issued != 2 || st.Unauthorized != 1 || st.Authorized != 2 {
		t.Errorf("issued %d, unauthorized %d, authorized %d; want 2, 1, 2", st.Issued, st.Unauthorized, st.Authorized)
	}
	// The refreshed token is cached again.
	post(t, hc, fhir.URL+"/Observation", `{"n":3}`)
	if st := e.srv.Stats(); st.Issued != 2 {
		t.Errorf("issued %d tokens after a normal request, want 2", st.Issued)
	}
}

func TestTransportRetriesOnlyOnce(t *testing.T) {
	e := newEnv(t, ecKey())
	var hits int
	always401 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		_, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer always401.Close()
	hc := auth.HTTPClient(e.source(t, nil), nil)
	if resp := post(t, hc, always401.URL, `{}`); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %s, want 401", resp.Status)
	}
	if hits != 2 {
		t.Errorf("server hit %d times, want 2 (one retry)", hits)
	}
	if st := e.srv.Stats(); st.Issued != 2 {
		t.Errorf("issued %d tokens, want 2", st.Issued)
	}
}

func TestTransportNonReplayableBody(t *testing.T) {
	e := newEnv(t, ecKey())
	fhir := newFHIRServer(t, e.srv)
	hc := auth.HTTPClient(e.source(t, nil), nil)
	post(t, hc, fhir.URL, `{"n":1}`)
	e.srv.ExpireTokens()

	// A streaming body cannot be sent twice: the 401 comes back...
	req, err := http.NewRequest(http.MethodPost, fhir.URL, io.NopCloser(strings.NewReader(`{"n":2}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %s, want 401", resp.Status)
	}
	if st := e.srv.Stats(); st.Issued != 1 {
		t.Errorf("issued %d, want 1: no retry without GetBody", st.Issued)
	}
	// ...but the token was dropped, so the next request gets a new one.
	if resp := post(t, hc, fhir.URL, `{"n":3}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("next POST: %s", resp.Status)
	}
	if st := e.srv.Stats(); st.Issued != 2 || st.Unauthorized != 1 {
		t.Errorf("issued %d unauthorized %d, want 2 and 1", st.Issued, st.Unauthorized)
	}
}

func TestTransportGETWithoutBody(t *testing.T) {
	e := newEnv(t, ecKey())
	fhir := newFHIRServer(t, e.srv)
	hc := auth.HTTPClient(e.source(t, nil), nil)
	post(t, hc, fhir.URL, `{}`)
	e.srv.ExpireTokens()
	resp, err := hc.Get(fhir.URL + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("GET after revocation: %s", resp.Status)
	}
}

func TestTransportDoesNotModifyRequest(t *testing.T) {
	e := newEnv(t, ecKey())
	fhir := newFHIRServer(t, e.srv)
	rt := auth.Transport(nil, e.source(t, nil))
	req := httptest.NewRequest(http.MethodGet, fhir.URL, nil)
	req.RequestURI = ""
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || req.Header.Get("Authorization") != "" {
		t.Errorf("status %s; caller's Authorization header %q", resp.Status, req.Header.Get("Authorization"))
	}
}

func TestTransportTokenErrorReachesCaller(t *testing.T) {
	e := newEnv(t, ecKey())
	fhir := newFHIRServer(t, e.srv)
	hc := auth.HTTPClient(e.source(t, func(c *auth.BackendConfig) { c.ClientID = "unregistered" }), &http.Client{})
	_, err := hc.Post(fhir.URL, "application/fhir+json", strings.NewReader(`{}`))
	var te *auth.TokenError
	if !errors.As(err, &te) || te.Code != "invalid_client" || te.Temporary() {
		t.Errorf("err = %v, want a permanent invalid_client *TokenError through http.Client", err)
	}
	if st := e.srv.Stats(); st.Authorized+st.Unauthorized != 0 {
		t.Error("the FHIR server was called without a token")
	}
}

func TestStaticToken(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	hc := auth.HTTPClient(auth.StaticToken("api-token"), nil)
	if resp := post(t, hc, srv.URL, `{}`); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %s", resp.Status)
	}
	// A static token cannot be refreshed, so a 401 is not retried.
	if len(got) != 1 || got[0] != "Bearer api-token" {
		t.Errorf("Authorization headers %q, want one Bearer api-token", got)
	}
}

func TestClientSecretTokenSource(t *testing.T) {
	clock := authtest.NewClock(epoch)
	srv := authtest.NewServer(authtest.Config{
		Clients: []authtest.Client{{ID: "legacy", Secret: "hunter2", Scopes: scopes}},
		Now:     clock.Now,
	})
	defer srv.Close()
	ts, err := auth.ClientSecretTokenSource(context.Background(), srv.TokenURL(), "legacy", "hunter2", scopes)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if !srv.Valid(tok.AccessToken) {
		t.Error("server does not know the token")
	}
	if _, err := ts.Token(); err != nil || srv.Stats().Issued != 1 {
		t.Errorf("second Token: %v; issued %d, want 1 (cached)", err, srv.Stats().Issued)
	}

	bad, err := auth.ClientSecretTokenSource(context.Background(), srv.TokenURL(), "legacy", "wrong-secret", scopes)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Token()
	var te *auth.TokenError
	if !errors.As(err, &te) || te.Status != 401 || te.Code != "invalid_client" || te.Temporary() {
		t.Errorf("wrong secret: err = %v, want a permanent invalid_client *TokenError", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-secret") {
		t.Error("error contains the secret")
	}
	if _, err := auth.ClientSecretTokenSource(context.Background(), "http://auth.example.org/token", "legacy", "x", nil); err == nil {
		t.Error("accepted a plain-http token URL")
	}
}

// countingSource hands out tok-1, tok-2, ... without an expiry.
type countingSource struct{ n int }

func (c *countingSource) Token() (*oauth2.Token, error) {
	c.n++
	return &oauth2.Token{AccessToken: "tok-" + string(rune('0'+c.n))}, nil
}

func TestCacheInvalidate(t *testing.T) {
	src := &countingSource{}
	c := auth.Cache(src, 0, nil)
	a, _ := c.Token()
	c.Invalidate(&oauth2.Token{AccessToken: "some-older-token"})
	if b, _ := c.Token(); b.AccessToken != a.AccessToken {
		t.Error("invalidating a different token dropped the cached one")
	}
	c.Invalidate(a)
	if b, _ := c.Token(); b.AccessToken != "tok-2" {
		t.Errorf("after Invalidate got %q, want tok-2", b.AccessToken)
	}
	c.Invalidate(nil)
	if b, _ := c.Token(); b.AccessToken != "tok-3" {
		t.Errorf("after Invalidate(nil) got %q, want tok-3", b.AccessToken)
	}
}
