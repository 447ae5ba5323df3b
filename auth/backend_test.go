package auth_test

import (
	"crypto"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/auth/authtest"
)

const clientID = "fhir-bridge-test"

var (
	scopes = []string{"system/Observation.c"}
	epoch  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// env is an authtest server with one registered client and a shared clock.
type env struct {
	clock *authtest.Clock
	srv   *authtest.Server
	key   crypto.Signer
}

func newEnv(t *testing.T, key crypto.Signer) *env {
	t.Helper()
	jwks, err := auth.JWKS(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	clock := authtest.NewClock(epoch)
	srv := authtest.NewServer(authtest.Config{
		Clients: []authtest.Client{{ID: clientID, JWKS: jwks, Scopes: []string{"system/Observation.c", "system/Observation.rs"}}},
		Now:     clock.Now,
	})
	t.Cleanup(srv.Close)
	return &env{clock: clock, srv: srv, key: key}
}

func (e *env) config() auth.BackendConfig {
	return auth.BackendConfig{
		ClientID: clientID,
		TokenURL: e.srv.TokenURL(),
		Scopes:   scopes,
		Key:      e.key,
		Now:      e.clock.Now,
	}
}

func (e *env) source(t *testing.T, mod func(*auth.BackendConfig)) oauth2.TokenSource {
	t.Helper()
	cfg := e.config()
	if mod != nil {
		mod(&cfg)
	}
	ts, err := auth.NewTokenSource(cfg)
	if err != nil {
		t.Fatalf("NewTokenSource: %v", err)
	}
	return ts
}

func (e *env) wantStats(t *testing.T, issued int, rejections map[string]int) {
	t.Helper()
	st := e.srv.Stats()
	if st.Issued != issued {
		t.Errorf("server issued %d tokens, want %d", st.Issued, issued)
	}
	if rejections == nil {
		rejections = map[string]int{}
	}
	if diff := cmp.Diff(rejections, st.Rejections); diff != "" {
		t.Errorf("rejections (-want +got):\n%s", diff)
	}
}

func keys() map[string]crypto.Signer {
	return map[string]crypto.Signer{"RS384": rsaKey(), "ES384": ecKey()}
}

func TestTokenSource(t *testing.T) {
	for alg, key := range keys() {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, key)
			tok, err := e.source(t, nil).Token()
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if !e.srv.Valid(tok.AccessToken) {
				t.Error("server does not know the token")
			}
			if tok.TokenType != "Bearer" || !tok.Expiry.Equal(epoch.Add(300*time.Second)) || tok.Extra("scope") != "system/Observation.c" {
				t.Errorf("token type %q expiry %v scope %v", tok.TokenType, tok.Expiry, tok.Extra("scope"))
			}
			e.wantStats(t, 1, nil)

			// The assertion the server accepted, as sent.
			as := e.srv.Assertions()
			if len(as) != 1 {
				t.Fatalf("server saw %d assertions, want 1", len(as))
			}
			header, claims := decodeJWT(t, as[0], key.Public())
			wantHeader := map[string]any{"alg": alg, "kid": auth.KeyID(key.Public()), "typ": "JWT"}
			if diff := cmp.Diff(wantHeader, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			jti, _ := claims["jti"].(string)
			if len(jti) != 32 || strings.Trim(jti, "0123456789abcdef") != "" {
				t.Errorf("jti %q is not 128 bits of hex", jti)
			}
			delete(claims, "jti")
			wantClaims := map[string]any{
				"iss": clientID, "sub": clientID, "aud": e.srv.TokenURL(),
				"iat": float64(epoch.Unix()), "exp": float64(epoch.Add(4 * time.Minute).Unix()),
			}
			if diff := cmp.Diff(wantClaims, claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

// decodeJWT verifies a compact JWS with pub and returns its header and claims.
func decodeJWT(t *testing.T, s string, pub crypto.PublicKey) (map[string]any, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSigned(s, []jose.SignatureAlgorithm{jose.RS384, jose.ES384})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		t.Fatalf("assertion does not verify: %v", err)
	}
	var header, claims map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return header, claims
}

func TestTokenSourceFreshAssertionPerFetch(t *testing.T) {
	e := newEnv(t, ecKey())
	ts := e.source(t, nil)
	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Minute) // the token has expired
	second, err := ts.Token()
	if err != nil {
		t.Fatalf("second fetch (would fail as a replay if the assertion were reused): %v", err)
	}
	if first.AccessToken == second.AccessToken {
		t.Error("expired token was reused")
	}
	as := e.srv.Assertions()
	if len(as) != 2 || as[0] == as[1] {
		t.Fatalf("want two different assertions, got %d", len(as))
	}
	_, c0 := decodeJWT(t, as[0], ecKey().Public())
	_, c1 := decodeJWT(t, as[1], ecKey().Public())
	if c0["jti"] == c1["jti"] || c1["iat"] != float64(epoch.Add(5*time.Minute).Unix()) {
		t.Errorf("second assertion jti %v (first %v) iat %v", c1["jti"], c0["jti"], c1["iat"])
	}
	e.wantStats(t, 2, nil)
}

func TestTokenSourceCaches(t *testing.T) {
	e := newEnv(t, ecKey())
	ts := e.source(t, nil)
	a, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessToken != b.AccessToken {
		t.Error("second Token() fetched a new token")
	}
	if st := e.srv.Stats(); st.TokenRequests != 1 {
		t.Errorf("%d token requests, want 1", st.TokenRequests)
	}
}

func TestTokenSourceEarlyRefresh(t *testing.T) {
	tests := []struct {
		name     string
		early    time.Duration // BackendConfig.EarlyRefresh
		lifetime time.Duration // server's expires_in
		refresh  time.Duration // when after issue the token is replaced
	}{
		{"default 60s", 0, 300 * time.Second, 240 * time.Second},
		{"30s", 30 * time.Second, 300 * time.Second, 270 * time.Second},
		{"capped at half a short lifetime", 0, 20 * time.Second, 10 * time.Second},
		{"server's 3600s", 0, time.Hour, time.Hour - time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rsaKey())
			e.srv.SetTokenLifetime(tc.lifetime)
			ts := e.source(t, func(c *auth.BackendConfig) { c.EarlyRefresh = tc.early })
			first, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(tc.refresh - time.Second)
			if tok, err := ts.Token(); err != nil || tok.AccessToken != first.AccessToken {
				t.Fatalf("1s before the refresh point: %v, same token %v", err, err == nil && tok.AccessToken == first.AccessToken)
			}
			e.clock.Advance(time.Second)
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == first.AccessToken {
				t.Error("token not refreshed at the refresh point")
			}
			if !e.srv.Valid(first.AccessToken) {
				t.Error("the old token was replaced after it expired, not before")
			}
			e.wantStats(t, 2, nil)
		})
	}
}

func TestTokenSourceConcurrentFetchOnce(t *testing.T) {
	e := newEnv(t, ecKey())
	ts := e.source(t, nil)
	const n = 32
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		tokens = make([]string, n)
		errs   = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			tok, err := ts.Token()
			if err == nil {
				tokens[i] = tok.AccessToken
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("caller %d: err %v, same token %v", i, errs[i], tokens[i] == tokens[0])
		}
	}
	if st := e.srv.Stats(); st.TokenRequests != 1 {
		t.Errorf("%d token requests for %d concurrent callers, want 1", st.TokenRequests, n)
	}
}

func TestTokenSourceRefreshFailureKeepsValidToken(t *testing.T) {
	e := newEnv(t, ecKey())
	ts := e.source(t, nil)
	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(240 * time.Second) // in the early-refresh window
	e.srv.FailNext(1, http.StatusServiceUnavailable, "")
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != first.AccessToken {
		t.Fatalf("failed early refresh: err %v; want the still-valid cached token", err)
	}
	// Within 5 s of the failure the endpoint is not asked again.
	e.clock.Advance(4 * time.Second)
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if st := e.srv.Stats(); st.TokenRequests != 2 {
		t.Errorf("%d token requests, want 2", st.TokenRequests)
	}
	e.clock.Advance(time.Second)
	tok, err = ts.Token()
	if err != nil || tok.AccessToken == first.AccessToken {
		t.Fatalf("retry after 5 s: err %v, new token %v", err, err == nil && tok.AccessToken != first.AccessToken)
	}

	// Once the cached token has expired, a failure is returned.
	e.clock.Advance(300 * time.Second)
	e.srv.FailNext(1, http.StatusServiceUnavailable, "")
	if _, err := ts.Token(); err == nil {
		t.Error("expired token and failed refresh: want an error")
	}
}

func TestTokenSourceDiscovers(t *testing.T) {
	e := newEnv(t, rsaKey())
	ts := e.source(t, func(c *auth.BackendConfig) {
		c.TokenURL = ""
		c.FHIRBaseURL = e.srv.FHIRBase()
	})
	if _, err := ts.Token(); err != nil {
		t.Fatalf("Token with discovery: %v", err)
	}
	_, claims := decodeJWT(t, e.srv.Assertions()[0], rsaKey().Public())
	if claims["aud"] != e.srv.TokenURL() {
		t.Errorf("aud = %v, want the discovered %s", claims["aud"], e.srv.TokenURL())
	}
}

func TestTokenSourceDiscoveredAlgMismatch(t *testing.T) {
	srv, _ := discoveryServer(t, http.StatusOK, map[string]any{
		"token_endpoint": "https://auth.example.org/token",
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES384"},
	})
	ts, err := auth.NewTokenSource(auth.BackendConfig{ClientID: clientID, FHIRBaseURL: srv.URL, Key: rsaKey()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Token()
	var de *auth.DiscoveryError
	if !errors.As(err, &de) || de.Field != "token_endpoint_auth_signing_alg_values_supported" || !strings.Contains(err.Error(), "RS384") {
		t.Errorf("err = %v, want a DiscoveryError about RS384", err)
	}
}

func TestNewTokenSourceConfigErrors(t *testing.T) {
	good := auth.BackendConfig{ClientID: clientID, TokenURL: "https://auth.example.org/token", Key: ecKey()}
	tests := []struct {
		name string
		mod  func(*auth.BackendConfig)
		want string
	}{
		{"no client_id", func(c *auth.BackendConfig) { c.ClientID = "" }, "client_id is required"},
		{"no key", func(c *auth.BackendConfig) { c.Key = nil }, "signing key is required"},
		{"alg does not fit key", func(c *auth.BackendConfig) { c.Alg = "RS384" }, `alg "RS384" does not fit the key`},
		{"HS256", func(c *auth.BackendConfig) { c.Alg = "HS256" }, `alg "HS256"`},
		{"P-256 key", func(c *auth.BackendConfig) { c.Key = mustEC(elliptic.P256()) }, "P-256"},
		{"no token URL or base", func(c *auth.BackendConfig) { c.TokenURL = "" }, "need a token URL or a FHIR base URL"},
		{"http token URL", func(c *auth.BackendConfig) { c.TokenURL = "http://auth.example.org/token" }, "plain http"},
		{"scope with space", func(c *auth.BackendConfig) { c.Scopes = []string{"system/Observation.c system/Patient.r"} }, "invalid scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			_, err := auth.NewTokenSource(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := auth.NewTokenSource(good); err != nil {
		t.Errorf("good config: %v", err)
	}
}

// opaqueSigner hides the concrete key type, as an HSM or KMS handle does.
type opaqueSigner struct{ crypto.Signer }

func TestTokenSourceOpaqueSigner(t *testing.T) {
	for alg, key := range keys() {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, key)
			ts := e.source(t, func(c *auth.BackendConfig) { c.Key = opaqueSigner{key} })
			if _, err := ts.Token(); err != nil {
				t.Fatalf("Token with an opaque signer: %v", err)
			}
			header, _ := decodeJWT(t, e.srv.Assertions()[0], key.Public())
			if header["kid"] != auth.KeyID(key.Public()) || header["typ"] != "JWT" || header["alg"] != alg {
				t.Errorf("header %v", header)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(e *env, cfg *auth.BackendConfig)
		status    int
		code      string
		temporary bool
	}{
		{"unknown client", func(e *env, c *auth.BackendConfig) { c.ClientID = "someone-else" }, 401, "invalid_client", false},
		{"unregistered key", func(e *env, c *auth.BackendConfig) { c.Key = rsaKey() }, 401, "invalid_client", false},
		{"scope not allowed", func(e *env, c *auth.BackendConfig) { c.Scopes = []string{"system/Patient.cruds"} }, 400, "invalid_scope", false},
		{"503 without body", func(e *env, c *auth.BackendConfig) { e.srv.FailNext(1, 503, "") }, 503, "", true},
		{"429", func(e *env, c *auth.BackendConfig) { e.srv.FailNext(1, 429, "slow_down") }, 429, "slow_down", true},
		{"temporarily_unavailable", func(e *env, c *auth.BackendConfig) { e.srv.FailNext(1, 400, "temporarily_unavailable") }, 400, "temporarily_unavailable", true},
		{"invalid_grant", func(e *env, c *auth.BackendConfig) { e.srv.FailNext(1, 400, "invalid_grant") }, 400, "invalid_grant", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ecKey())
			cfg := e.config()
			tc.setup(e, &cfg)
			ts, err := auth.NewTokenSource(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ts.Token()
			var te *auth.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a *TokenError", err)
			}
			if te.Status != tc.status || te.Code != tc.code || te.Temporary() != tc.temporary {
				t.Errorf("got status %d code %q temporary %v, want %d %q %v", te.Status, te.Code, te.Temporary(), tc.status, tc.code, tc.temporary)
			}
			for _, a := range e.srv.Assertions() {
				if strings.Contains(err.Error(), a) || strings.Contains(err.Error(), strings.Split(a, ".")[2]) {
					t.Error("error contains the client assertion")
				}
			}
		})
	}
}

func TestTokenErrorTemporary(t *testing.T) {
	tests := []struct {
		status int
		code   string
		want   bool
	}{
		{500, "", true}, {502, "", true}, {503, "temporarily_unavailable", true}, {504, "", true},
		{429, "", true}, {408, "", true}, {400, "temporarily_unavailable", true},
		{401, "invalid_client", false}, {400, "invalid_client", false}, {400, "invalid_request", false},
		{400, "invalid_scope", false}, {400, "unauthorized_client", false}, {400, "unsupported_grant_type", false},
		{403, "", false}, {404, "", false}, {200, "", false},
	}
	for _, tc := range tests {
		if got := (&auth.TokenError{Status: tc.status, Code: tc.code}).Temporary(); got != tc.want {
			t.Errorf("TokenError{%d, %q}.Temporary() = %v, want %v", tc.status, tc.code, got, tc.want)
		}
	}
	e := &auth.TokenError{Status: 401, Code: "invalid_client", Description: "unknown kid"}
	if got, want := e.Error(), "smart token endpoint: HTTP 401: invalid_client: unknown kid"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestTokenResponses checks the client's parsing of token endpoint answers
// that authtest never gives.
func TestTokenResponses(t *testing.T) {
	const secretToken = "s3cr3t-access-token"
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string // %A is replaced by the client assertion
		wantErr    string // substring; "" means success
		wantExpiry time.Duration
	}{
		{name: "no expires_in", body: `{"access_token":"` + secretToken + `","token_type":"bearer"}`, wantExpiry: 300 * time.Second},
		{name: "Bearer capitalised", body: `{"access_token":"` + secretToken + `","token_type":"Bearer","expires_in":120}`, wantExpiry: 120 * time.Second},
		{name: "BEARER, expires_in string", body: `{"access_token":"` + secretToken + `","token_type":"BEARER","expires_in":"90"}`, wantExpiry: 90 * time.Second},
		{name: "not bearer", body: `{"access_token":"` + secretToken + `","token_type":"mac","expires_in":300}`, wantErr: `token_type "mac" is not bearer`},
		{name: "no token_type", body: `{"access_token":"` + secretToken + `","expires_in":300}`, wantErr: "is not bearer"},
		{name: "no access_token", body: `{"token_type":"bearer","expires_in":300}`, wantErr: "no access_token"},
		{name: "negative expires_in", body: `{"access_token":"` + secretToken + `","token_type":"bearer","expires_in":-5}`, wantErr: "expires_in"},
		{name: "not JSON", body: `access_token=` + secretToken, wantErr: "not a JSON token response"},
		{name: "oauth error", status: 401, body: `{"error":"invalid_client","error_description":"jti reused"}`, wantErr: "HTTP 401: invalid_client: jti reused"},
		{name: "server echoes the assertion", status: 400, body: `{"error":"invalid_request","error_description":"bad assertion %A"}`, wantErr: "bad assertion [redacted]"},
		{name: "html 502", status: 502, body: `<html>bad gateway</html>`, wantErr: "smart token endpoint: HTTP 502"},
		{name: "retry-after", status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"error":"slow_down"}`, wantErr: "HTTP 429: slow_down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var assertion string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				assertion = r.PostForm.Get("client_assertion")
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				_, _ = w.Write([]byte(strings.ReplaceAll(tc.body, "%A", assertion)))
			}))
			defer srv.Close()
			clock := authtest.NewClock(epoch)
			ts, err := auth.NewTokenSource(auth.BackendConfig{ClientID: clientID, TokenURL: srv.URL + "/token", Key: ecKey(), Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := ts.Token()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				if tok.AccessToken != secretToken || !tok.Expiry.Equal(epoch.Add(tc.wantExpiry)) {
					t.Errorf("token %q expiry %v, want expiry %v", tok.AccessToken, tok.Expiry, epoch.Add(tc.wantExpiry))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), assertion) {
				t.Errorf("error %q leaks the token or the assertion", err)
			}
			var te *auth.TokenError
			if tc.header["Retry-After"] != "" && (!errors.As(err, &te) || te.Wait() != 7*time.Second) {
				t.Errorf("Retry-After not carried: %v", err)
			}
		})
	}
}
