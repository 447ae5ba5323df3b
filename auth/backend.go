package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// ClientAssertionType is the client_assertion_type of a private_key_jwt
// token request (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how far ahead of its iat a client assertion expires.
// SMART allows at most 5 minutes; one minute less leaves room for the
// bridge's clock running ahead of the authorization server's, which would
// otherwise make the server see an exp more than 5 minutes away and reject
// the assertion as invalid_client.
const AssertionLifetime = 4 * time.Minute

// DefaultEarlyRefresh is how long before expiry a cached access token is
// replaced. SMART recommends renewing 30-60 s early.
const DefaultEarlyRefresh = 60 * time.Second

// DefaultExpiresIn is the lifetime assumed when a token response has no
// expires_in: the SMART recommended (and maximum advised) 300 s.
const DefaultExpiresIn = 300 * time.Second

// maxTokenResponseBytes bounds what is read from the token endpoint.
const maxTokenResponseBytes = 64 << 10

// BackendConfig configures a SMART Backend Services token source
// (private_key_jwt client authentication with the client_credentials grant).
type BackendConfig struct {
	// ClientID is the client_id the EHR assigned at registration. Required.
	ClientID string
	// TokenURL is the token endpoint. The client assertion's aud is exactly
	// this string. Default: discovered from FHIRBaseURL on the first fetch.
	TokenURL string
	// FHIRBaseURL is the FHIR server base whose
	// .well-known/smart-configuration names the token endpoint. Required when
	// TokenURL is empty, otherwise unused.
	FHIRBaseURL string
	// Scopes to request, e.g. system/Observation.c. Sent space-separated;
	// omitted from the request when empty.
	Scopes []string
	// Key signs the client assertions: RSA of at least 2048 bits or EC P-384.
	// Any crypto.Signer works, so the key may live in an HSM or KMS. Required.
	Key crypto.Signer
	// KeyID is the JWT kid; it must match the key's kid in the JWKS the EHR
	// knows. Default: KeyID(Key.Public()), the RFC 7638 thumbprint, which is
	// also what JWKS publishes.
	KeyID string
	// Alg is RS384 or ES384. Default: RS384 for an RSA key, ES384 for P-384.
	Alg string
	// HTTPClient sends discovery and token requests. It must not be the
	// authenticated client built with Transport. Default: clients with a
	// 10 s timeout; the one for token requests does not follow redirects (a
	// redirect must not carry the assertion to another URL).
	HTTPClient *http.Client
	// Now returns the current time, for the assertion's iat/exp and for the
	// cache's expiry checks. Default: time.Now.
	Now func() time.Time
	// EarlyRefresh is how long before its expiry a cached token is replaced.
	// It is capped at half the token's lifetime. Default: 60s.
	EarlyRefresh time.Duration
}

// NewTokenSource returns a token source for SMART Backend Services. Each
// fetch signs a fresh client assertion (header alg, kid, typ=JWT; claims
// iss = sub = ClientID, aud = token URL, iat, exp = iat + AssertionLifetime,
// a 128-bit random jti) and posts it to the token endpoint with the
// client_credentials grant. Tokens are cached and renewed EarlyRefresh before
// they expire; concurrent callers share one fetch. The source is safe for
// concurrent use, and it also implements Invalidate (see Cache), which
// Transport calls when the FHIR server answers 401.
//
// Token has no context: each fetch is bounded by the HTTPClient's timeout.
// Fetch failures from the endpoint are *TokenError values, discovery
// failures *DiscoveryError; neither ever contains the assertion or a token.
func NewTokenSource(cfg BackendConfig) (oauth2.TokenSource, error) {
	src, err := newAssertionSource(cfg)
	if err != nil {
		return nil, err
	}
	return Cache(src, cfg.EarlyRefresh, cfg.Now), nil
}

// assertionSource fetches a new token on every call.
type assertionSource struct {
	clientID string
	scope    string
	alg      string
	signer   jose.Signer
	hc       *http.Client // token requests
	discover *http.Client // discovery; may follow redirects
	now      func() time.Time
	fhirBase string

	mu       sync.Mutex // guards tokenURL during lazy discovery
	tokenURL string
}

func newAssertionSource(cfg BackendConfig) (*assertionSource, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("smart backend: client_id is required")
	}
	if cfg.Key == nil {
		return nil, errors.New("smart backend: signing key is required")
	}
	keyAlg, err := algForKey(cfg.Key.Public())
	if err != nil {
		return nil, fmt.Errorf("smart backend: %w", err)
	}
	alg := cfg.Alg
	if alg == "" {
		alg = keyAlg
	}
	if alg != keyAlg {
		return nil, fmt.Errorf("smart backend: alg %q does not fit the key (want %s)", alg, keyAlg)
	}
	if cfg.TokenURL != "" {
		if err := checkEndpointURL(cfg.TokenURL); err != nil {
			return nil, fmt.Errorf("smart backend: token URL %q: %w", cfg.TokenURL, err)
		}
	} else if cfg.FHIRBaseURL == "" {
		return nil, errors.New("smart backend: need a token URL or a FHIR base URL to discover it from")
	}
	for _, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return nil, fmt.Errorf("smart backend: invalid scope %q", s)
		}
	}
	kid := cfg.KeyID
	if kid == "" {
		kid = KeyID(cfg.Key.Public())
	}
	signer, err := newJOSESigner(cfg.Key, alg, kid)
	if err != nil {
		return nil, fmt.Errorf("smart backend: %w", err)
	}
	s := &assertionSource{
		clientID: cfg.ClientID,
		scope:    strings.Join(cfg.Scopes, " "),
		alg:      alg,
		signer:   signer,
		hc:       cfg.HTTPClient,
		now:      cfg.Now,
		fhirBase: cfg.FHIRBaseURL,
		tokenURL: cfg.TokenURL,
	}
	s.discover = s.hc
	if s.hc == nil {
		s.discover = &http.Client{Timeout: defaultTimeout}
		s.hc = &http.Client{
			Timeout: defaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// newJOSESigner builds a JWS signer with the SMART header. RSA and ECDSA
// private keys are used directly; any other crypto.Signer (an HSM or KMS
// handle) goes through go-jose's opaque adapter.
func newJOSESigner(key crypto.Signer, alg, kid string) (jose.Signer, error) {
	var k any
	switch key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		k = jose.JSONWebKey{Key: key, KeyID: kid}
	default:
		k = cryptosigner.Opaque(key)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if _, ok := k.(jose.OpaqueSigner); ok {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	return jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: k}, opts)
}

// assertion signs a client assertion for tokenURL at time now.
func (s *assertionSource) assertion(tokenURL string, now time.Time) (string, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("client assertion: jti: %w", err)
	}
	claims := jwt.Claims{
		Issuer:   s.clientID,
		Subject:  s.clientID,
		Audience: jwt.Audience{tokenURL},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(AssertionLifetime)),
		ID:       hex.EncodeToString(nonce[:]),
	}
	a, err := jwt.Signed(s.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("client assertion: signing: %w", err)
	}
	return a, nil
}

// endpoint returns the token URL, discovering it on first use.
func (s *assertionSource) endpoint(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokenURL != "" {
		return s.tokenURL, nil
	}
	cfg, err := Discover(ctx, s.discover, s.fhirBase)
	if err != nil {
		return "", err
	}
	if !cfg.SupportsAlg(s.alg) {
		return "", &DiscoveryError{
			URL:   strings.TrimRight(s.fhirBase, "/") + WellKnownPath,
			Field: "token_endpoint_auth_signing_alg_values_supported",
			Msg:   fmt.Sprintf("does not include %s, the algorithm of the configured key", s.alg),
		}
	}
	s.tokenURL = cfg.TokenEndpoint
	return s.tokenURL, nil
}

// Token fetches a new access token. It does not cache.
func (s *assertionSource) Token() (*oauth2.Token, error) {
	ctx := context.Background()
	tokenURL, err := s.endpoint(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	assertion, err := s.assertion(tokenURL, now)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {ClientAssertionType},
		"client_assertion":      {assertion},
	}
	if s.scope != "" {
		form.Set("scope", s.scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("smart token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		// *url.Error carries the method, the URL and the cause, never the
		// request body.
		return nil, fmt.Errorf("smart token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("smart token request: reading response: %w", err)
	}
	return parseTokenResponse(resp, body, now, assertion)
}

// parseTokenResponse turns a token endpoint answer into a token or a
// *TokenError. secret is redacted from anything the server echoes back.
func parseTokenResponse(resp *http.Response, body []byte, now time.Time, secret string) (*oauth2.Token, error) {
	if resp.StatusCode != http.StatusOK {
		te := &TokenError{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &oe) == nil && oe.Error != "" {
			te.Code = clean(oe.Error, secret, 64)
			te.Description = clean(oe.Description, secret, 256)
		}
		return nil, te
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		Scope       string          `json:"scope"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		// The decoder's message may quote the body, which holds the token.
		return nil, &TokenError{Status: resp.StatusCode, Description: "response is not a JSON token response"}
	}
	if tr.AccessToken == "" {
		return nil, &TokenError{Status: resp.StatusCode, Description: "response has no access_token"}
	}
	if !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, &TokenError{Status: resp.StatusCode, Description: fmt.Sprintf("token_type %q is not bearer", clean(tr.TokenType, tr.AccessToken, 32))}
	}
	lifetime, err := parseExpiresIn(tr.ExpiresIn)
	if err != nil {
		return nil, &TokenError{Status: resp.StatusCode, Description: err.Error()}
	}
	tok := &oauth2.Token{
		AccessToken: tr.AccessToken,
		TokenType:   "Bearer",
		Expiry:      now.Add(lifetime),
		ExpiresIn:   int64(lifetime / time.Second),
	}
	return tok.WithExtra(map[string]any{"scope": tr.Scope}), nil
}

// parseExpiresIn reads expires_in as a JSON number or, leniently, a numeric
// string; absent or null means DefaultExpiresIn.
func parseExpiresIn(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return DefaultExpiresIn, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	n, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || n <= 0 || n > 1e9 {
		return 0, errors.New("expires_in is not a positive number of seconds")
	}
	return time.Duration(n * float64(time.Second)), nil
}

// clean makes server-supplied text safe to put in an error: the secret
// redacted, invalid UTF-8 and control characters replaced, length bounded.
func clean(s, secret string, limit int) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// TokenError is an unusable answer from the token endpoint: an OAuth 2.0
// error response (RFC 6749 §5.2) or a malformed success. It never holds the
// client assertion or an access token.
type TokenError struct {
	Status      int    // HTTP status of the answer
	Code        string // OAuth error code, e.g. invalid_client; may be empty
	Description string // error_description, or what was wrong with a 200
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
}

// Error returns "smart token endpoint: HTTP <status>[: <code>][: <description>]".
func (e *TokenError) Error() string {
	s := fmt.Sprintf("smart token endpoint: HTTP %d", e.Status)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Temporary reports whether fetching again may succeed: 408, 429, 5xx and
// the temporarily_unavailable code. invalid_client (a bad assertion, an
// unknown client or key), invalid_scope, unauthorized_client and other 4xx
// answers need an operator and are permanent.
func (e *TokenError) Temporary() bool {
	return temporaryStatus(e.Status) || e.Code == "temporarily_unavailable"
}

// Wait is how long the server asked the client to wait before retrying.
func (e *TokenError) Wait() time.Duration { return e.RetryAfter }

// parseRetryAfter reads delta-seconds or an HTTP-date; unusable values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		n = min(n, 86400) // a day is plenty; avoids overflowing a Duration
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
