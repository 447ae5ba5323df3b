// Package authtest provides an in-process SMART Backend Services
// authorization server for tests and demos: a discovery document, a token
// endpoint that verifies private_key_jwt client assertions the way an EHR
// does (SMART App Launch v2.2, RFC 7523), and middleware with which a fake
// FHIR endpoint checks the bearer tokens it issued.
//
// It is strict where the specification is: only RS384 and ES384, a known
// kid, typ JWT, iss = sub = client_id, aud exactly the token URL, exp present
// and at most 5 minutes ahead, no jti replay. Every rejection is counted by
// reason, and knobs inject failures (FailNext) and revoke tokens
// (ExpireTokens), so tests can drive the client's error handling.
//
// It keeps everything in memory, never persists keys or tokens, and is not
// meant to guard anything real. It does not import the testing package, so a
// demo binary can use it too.
package authtest

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ClientAssertionType is the only client_assertion_type accepted.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLifetime is the furthest ahead an assertion's exp may be.
const MaxAssertionLifetime = 5 * time.Minute

// DefaultTokenLifetime is the expires_in of issued tokens unless configured.
const DefaultTokenLifetime = 300 * time.Second

// Rejection reasons, the keys of Stats.Rejections.
const (
	ReasonBadRequest    = "bad_request"    // not a form POST
	ReasonGrantType     = "grant_type"     // grant_type is not client_credentials
	ReasonAssertionType = "assertion_type" // client_assertion_type missing or wrong
	ReasonMalformed     = "malformed"      // the assertion is not a compact JWS
	ReasonAlg           = "alg"            // alg other than RS384/ES384 (none, HS256, RS256...)
	ReasonTyp           = "typ"            // header typ is not JWT
	ReasonUnknownClient = "unknown_client" // iss names no registered client
	ReasonKid           = "kid"            // kid missing or not in the client's JWKS
	ReasonSignature     = "signature"      // signature does not verify with that key
	ReasonIssSub        = "iss_sub"        // iss != sub, or client_id parameter differs
	ReasonAud           = "aud"            // aud is not exactly the token URL
	ReasonExpMissing    = "exp_missing"    // no exp claim
	ReasonExpTooFar     = "exp_too_far"    // exp more than 5 minutes ahead
	ReasonExpired       = "expired"        // exp not in the future
	ReasonNotYetValid   = "nbf"            // nbf in the future
	ReasonJTIMissing    = "jti_missing"    // no jti claim
	ReasonReplay        = "jti_reused"     // jti seen before within its lifetime
	ReasonScope         = "scope"          // a scope not allowed for the client, or none
	ReasonSecret        = "client_secret"  // client_secret_basic failed
	ReasonInjected      = "injected"       // a failure set up with FailNext
)

// Client is a registered client.
type Client struct {
	// ID is the client_id.
	ID string
	// JWKS holds the client's public keys (a JSON Web Key Set), for
	// private_key_jwt. Each key needs a kid.
	JWKS []byte
	// Secret, when set, lets the client authenticate with client_secret_basic
	// instead of an assertion.
	Secret string
	// Scopes the client may be granted.
	Scopes []string
}

// Config configures a Server.
type Config struct {
	// Clients registered at start; more can be added with AddClient.
	Clients []Client
	// TokenLifetime is the expires_in of issued tokens. Default: 300s.
	TokenLifetime time.Duration
	// Now returns the current time for every check. Default: time.Now.
	Now func() time.Time
	// FHIR, when set, is served under /fhir/, so that FHIRBase is a FHIR base
	// whose .well-known/smart-configuration points at this server. Wrap it in
	// RequireToken to check tokens.
	FHIR http.Handler
}

// Stats counts what the server did.
type Stats struct {
	TokenRequests int            // every request to the token endpoint
	Issued        int            // access tokens issued
	Rejections    map[string]int // token requests refused, by Reason*
	Authorized    int            // RequireToken requests let through
	Unauthorized  int            // RequireToken requests refused with 401
	Forbidden     int            // RequireToken requests refused with 403 (scope)
}

type client struct {
	Client
	keys jose.JSONWebKeySet
}

type issued struct {
	client  string
	scopes  []string
	expires time.Time
}

type failure struct {
	status int
	code   string
}

// Server is a SMART authorization server. It is an http.Handler serving
// /.well-known/smart-configuration, /fhir/.well-known/smart-configuration,
// /token and, when configured, /fhir/. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string

	now  func() time.Time
	fhir http.Handler
	hs   *httptest.Server

	mu         sync.Mutex
	clients    map[string]*client
	lifetime   time.Duration
	tokens     map[string]issued
	jtis       map[string]time.Time // client + "\x00" + jti → exp
	fail       []failure
	stats      Stats
	assertions []string
}

// NewServer starts a Server on a loopback port. Close it when done. It panics
// if a client in cfg is invalid, as httptest.NewServer panics when it cannot
// listen.
func NewServer(cfg Config) *Server {
	hs := httptest.NewUnstartedServer(nil)
	s, err := New("http://"+hs.Listener.Addr().String(), cfg)
	if err != nil {
		hs.Close()
		panic("authtest: " + err.Error())
	}
	hs.Config.Handler = s
	s.hs = hs
	hs.Start()
	return s
}

// New returns a Server to mount yourself, e.g. in a demo. baseURL is the URL
// at which clients reach it; its token URL, the audience assertions must
// name, is baseURL + "/token".
func New(baseURL string, cfg Config) (*Server, error) {
	s := &Server{
		URL:      strings.TrimRight(baseURL, "/"),
		now:      cfg.Now,
		fhir:     cfg.FHIR,
		clients:  map[string]*client{},
		lifetime: cfg.TokenLifetime,
		tokens:   map[string]issued{},
		jtis:     map[string]time.Time{},
		stats:    Stats{Rejections: map[string]int{}},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultTokenLifetime
	}
	for _, c := range cfg.Clients {
		if err := s.AddClient(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close shuts down a server started by NewServer.
func (s *Server) Close() {
	if s.hs != nil {
		s.hs.Close()
	}
}

// TokenURL is the token endpoint, the exact aud assertions must carry.
func (s *Server) TokenURL() string { return s.URL + "/token" }

// FHIRBase is a FHIR base URL whose SMART configuration is this server's.
func (s *Server) FHIRBase() string { return s.URL + "/fhir" }

// AddClient registers or replaces a client.
func (s *Server) AddClient(c Client) error {
	if c.ID == "" {
		return errors.New("client without ID")
	}
	cl := &client{Client: c}
	if len(c.JWKS) > 0 {
		if err := json.Unmarshal(c.JWKS, &cl.keys); err != nil {
			return fmt.Errorf("client %q: JWKS: %w", c.ID, err)
		}
		for i, k := range cl.keys.Keys {
			if k.KeyID == "" {
				return fmt.Errorf("client %q: JWKS key %d has no kid", c.ID, i)
			}
			if !k.IsPublic() {
				return fmt.Errorf("client %q: JWKS key %q is not a public key", c.ID, k.KeyID)
			}
		}
	} else if c.Secret == "" {
		return fmt.Errorf("client %q: needs a JWKS or a secret", c.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = cl
	return nil
}

// SetTokenLifetime changes the expires_in of tokens issued from now on. Use
// a positive duration: a real client rejects expires_in <= 0.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// FailNext makes the next n token requests fail with status and, when code is
// not empty, an OAuth error body with that code. They count as
// ReasonInjected rejections.
func (s *Server) FailNext(n, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status, code})
	}
}

// ExpireTokens makes every token issued so far invalid, as if the server had
// revoked them or its clock had jumped.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, t := range s.tokens {
		t.expires = now
		s.tokens[k] = t
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Rejections = maps.Clone(s.stats.Rejections)
	return st
}

// Assertions returns the client assertions received so far, in order,
// including rejected ones, so tests can inspect what a client sent.
func (s *Server) Assertions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.assertions)
}

// Valid reports whether token is an unexpired access token issued here.
func (s *Server) Valid(token string) bool {
	_, ok := s.lookup(token)
	return ok
}

// Scopes returns the scopes granted with an unexpired token, or nil.
func (s *Server) Scopes(token string) []string {
	t, _ := s.lookup(token)
	return t.scopes
}

func (s *Server) lookup(token string) (issued, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[token]
	if !ok || !s.now().Before(t.expires) {
		return issued{}, false
	}
	return t, true
}

// RequireToken lets a request through to next only with a valid bearer token
// issued here that was granted scope (any token when scope is ""). Otherwise
// it answers 401 (missing, unknown or expired token) or 403 (scope not
// granted) with a WWW-Authenticate header, as RFC 6750 describes.
func (s *Server) RequireToken(next http.Handler, scope string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		t, ok := issued{}, false
		if strings.EqualFold(scheme, "Bearer") && tok != "" {
			t, ok = s.lookup(tok)
		}
		switch {
		case !ok:
			s.count(func(st *Stats) { st.Unauthorized++ })
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid or missing bearer token", http.StatusUnauthorized)
		case scope != "" && !slices.Contains(t.scopes, scope):
			s.count(func(st *Stats) { st.Forbidden++ })
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, scope))
			http.Error(w, "scope not granted", http.StatusForbidden)
		default:
			s.count(func(st *Stats) { st.Authorized++ })
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/token":
		s.serveToken(w, r)
	case p == "/.well-known/smart-configuration" || p == "/fhir/.well-known/smart-configuration":
		s.serveDiscovery(w, r)
	case s.fhir != nil && (p == "/fhir" || strings.HasPrefix(p, "/fhir/")):
		s.fhir.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// Discovery returns the SMART configuration document the server serves.
func (s *Server) Discovery() map[string]any {
	s.mu.Lock()
	scopes := []string{}
	for _, c := range s.clients {
		scopes = append(scopes, c.Scopes...)
	}
	s.mu.Unlock()
	slices.Sort(scopes)
	return map[string]any{
		"issuer":                                s.URL,
		"token_endpoint":                        s.TokenURL(),
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "client_secret_basic"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"scopes_supported": slices.Compact(scopes),
		"capabilities":     []string{"client-confidential-asymmetric", "client-confidential-symmetric", "permission-v1", "permission-v2"},
	}
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Discovery())
}

// oauthError is a token endpoint refusal.
type oauthError struct {
	status int
	code   string
	desc   string
	reason string
}

func reject(reason, code, format string, args ...any) *oauthError {
	status := http.StatusBadRequest
	if code == "invalid_client" {
		status = http.StatusUnauthorized
	}
	return &oauthError{status: status, code: code, desc: fmt.Sprintf(format, args...), reason: reason}
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.TokenRequests++
	var injected *failure
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		injected = &f
		s.stats.Rejections[ReasonInjected]++
	}
	s.mu.Unlock()
	if injected != nil {
		if injected.code == "" {
			http.Error(w, http.StatusText(injected.status), injected.status)
			return
		}
		writeError(w, &oauthError{status: injected.status, code: injected.code, desc: "injected failure"})
		return
	}

	resp, oe := s.token(w, r)
	if oe != nil {
		s.count(func(st *Stats) { st.Rejections[oe.reason]++ })
		writeError(w, oe)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
}

func writeError(w http.ResponseWriter, oe *oauthError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if oe.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.WriteHeader(oe.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": oe.code, "error_description": oe.desc})
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// token authenticates the client and issues a token, or says why not.
func (s *Server) token(w http.ResponseWriter, r *http.Request) (*tokenResponse, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, reject(ReasonBadRequest, "invalid_request", "token requests must be POST")
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return nil, reject(ReasonBadRequest, "invalid_request", "body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, reject(ReasonBadRequest, "invalid_request", "unreadable form")
	}
	form := r.PostForm
	if got := form.Get("grant_type"); got != "client_credentials" {
		return nil, reject(ReasonGrantType, "unsupported_grant_type", "grant_type must be client_credentials")
	}
	var (
		cl *client
		oe *oauthError
	)
	if id, secret, ok := r.BasicAuth(); ok {
		cl, oe = s.authenticateSecret(id, secret)
	} else {
		cl, oe = s.authenticateAssertion(form.Get("client_assertion_type"), form.Get("client_assertion"), form.Get("client_id"))
	}
	if oe != nil {
		return nil, oe
	}

	requested := strings.Fields(form.Get("scope"))
	if len(requested) == 0 {
		return nil, reject(ReasonScope, "invalid_scope", "no scope requested")
	}
	for _, sc := range requested {
		if !slices.Contains(cl.Scopes, sc) {
			return nil, reject(ReasonScope, "invalid_scope", "scope %q is not allowed for this client", sc)
		}
	}
	tok := newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = issued{client: cl.ID, scopes: requested, expires: s.now().Add(s.lifetime)}
	s.stats.Issued++
	return &tokenResponse{
		AccessToken: tok,
		TokenType:   "bearer",
		ExpiresIn:   int64(s.lifetime / time.Second),
		Scope:       strings.Join(requested, " "),
	}, nil
}

func (s *Server) authenticateSecret(id, secret string) (*client, *oauthError) {
	s.mu.Lock()
	cl := s.clients[id]
	s.mu.Unlock()
	if cl == nil || cl.Secret == "" || subtle.ConstantTimeCompare([]byte(cl.Secret), []byte(secret)) != 1 {
		return nil, reject(ReasonSecret, "invalid_client", "client authentication failed")
	}
	return cl, nil
}

// jwtHeader is the part of a JOSE header checked before verification.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

func (s *Server) authenticateAssertion(assertionType, assertion, clientIDParam string) (*client, *oauthError) {
	if assertionType != ClientAssertionType {
		return nil, reject(ReasonAssertionType, "invalid_client", "client_assertion_type must be %s", ClientAssertionType)
	}
	s.mu.Lock()
	s.assertions = append(s.assertions, assertion)
	s.mu.Unlock()

	// Read the header before go-jose does, to report alg and typ precisely.
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return nil, reject(ReasonMalformed, "invalid_client", "client_assertion is not a compact JWS")
	}
	var h jwtHeader
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &h) != nil {
		return nil, reject(ReasonMalformed, "invalid_client", "client_assertion header is not base64url JSON")
	}
	if h.Alg != string(jose.RS384) && h.Alg != string(jose.ES384) {
		return nil, reject(ReasonAlg, "invalid_client", "alg %q is not RS384 or ES384", h.Alg)
	}
	if h.Typ != "JWT" {
		return nil, reject(ReasonTyp, "invalid_client", "typ must be JWT")
	}
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS384, jose.ES384})
	if err != nil {
		return nil, reject(ReasonMalformed, "invalid_client", "client_assertion does not parse")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, reject(ReasonMalformed, "invalid_client", "client_assertion claims do not parse")
	}
	s.mu.Lock()
	cl := s.clients[unverified.Issuer]
	s.mu.Unlock()
	if cl == nil || len(cl.keys.Keys) == 0 {
		return nil, reject(ReasonUnknownClient, "invalid_client", "unknown client")
	}
	if h.Kid == "" {
		return nil, reject(ReasonKid, "invalid_client", "kid is required")
	}
	keys := cl.keys.Key(h.Kid)
	if len(keys) == 0 {
		return nil, reject(ReasonKid, "invalid_client", "kid %q is not in the client's JWKS", h.Kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Alg {
			continue
		}
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, reject(ReasonSignature, "invalid_client", "signature does not verify")
	}
	if claims.Issuer != cl.ID || claims.Subject != cl.ID || (clientIDParam != "" && clientIDParam != cl.ID) {
		return nil, reject(ReasonIssSub, "invalid_client", "iss and sub must both be the client_id")
	}
	if len(claims.Audience) != 1 || claims.Audience[0] != s.TokenURL() {
		return nil, reject(ReasonAud, "invalid_client", "aud must be the token URL %s", s.TokenURL())
	}
	now := s.now()
	if claims.Expiry == nil {
		return nil, reject(ReasonExpMissing, "invalid_client", "exp is required")
	}
	exp := claims.Expiry.Time()
	if !exp.After(now) {
		return nil, reject(ReasonExpired, "invalid_client", "assertion expired")
	}
	if exp.After(now.Add(MaxAssertionLifetime)) {
		return nil, reject(ReasonExpTooFar, "invalid_client", "exp is more than 5 minutes ahead")
	}
	if claims.NotBefore != nil && claims.NotBefore.Time().After(now) {
		return nil, reject(ReasonNotYetValid, "invalid_client", "assertion not valid yet")
	}
	if claims.ID == "" {
		return nil, reject(ReasonJTIMissing, "invalid_client", "jti is required")
	}
	key := cl.ID + "\x00" + claims.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.jtis { // forget jtis whose assertions have expired
		if !e.After(now) {
			delete(s.jtis, k)
		}
	}
	if _, seen := s.jtis[key]; seen {
		return nil, reject(ReasonReplay, "invalid_client", "jti already used")
	}
	s.jtis[key] = exp
	return cl, nil
}
