package auth

// The inbound side: verifying OIDC / OAuth 2.0 bearer tokens presented to
// the bridge's own HTTP API (RPM vendors posting readings, operators reading
// the audit trail).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Reasons a bearer token is rejected; the Reason of a *VerifyError.
const (
	ReasonMissing        = "missing"
	ReasonMalformed      = "malformed"
	ReasonBadSignature   = "bad signature"
	ReasonExpired        = "expired"
	ReasonNotYetValid    = "not yet valid"
	ReasonWrongIssuer    = "wrong issuer"
	ReasonWrongAudience  = "wrong audience"
	ReasonUnsupportedAlg = "unsupported algorithm"
	ReasonUnknownKey     = "unknown key"
	// ReasonKeySetUnavailable means the issuer's JWKS could not be fetched:
	// the token may well be valid, the failure is on the bridge's side.
	ReasonKeySetUnavailable = "key set unavailable"
)

// Defaults of InboundConfig.
const (
	DefaultScopeClaim  = "scope"
	DefaultDeviceClaim = "devices"
	DefaultLeeway      = 30 * time.Second
	// AdminScope grants every scope and, without a device claim, every device.
	AdminScope = "admin"
	// jwksMinInterval is the least time between two JWKS fetches triggered by
	// tokens with a key id the bridge has not seen.
	jwksMinInterval = 30 * time.Second
	maxTokenBytes   = 16 << 10
	maxJWKSBytes    = 1 << 20
)

// allowedAlgs are the only JWS algorithms accepted: never "none", never HMAC
// (whose secret an attacker could take from a published public key).
var allowedAlgs = []string{oidc.RS256, oidc.ES256}

// VerifyError is a rejected bearer token. It never holds the token or any
// part of it. (TokenError is the outbound token endpoint's error.)
type VerifyError struct {
	Reason string // one of the Reason constants
	err    error  // cause for ReasonKeySetUnavailable; never token data
}

// Error returns "auth: bearer token rejected: <reason>".
func (e *VerifyError) Error() string {
	if e.err != nil {
		return "auth: bearer token rejected: " + e.Reason + ": " + e.err.Error()
	}
	return "auth: bearer token rejected: " + e.Reason
}

// Unwrap returns the cause of a ReasonKeySetUnavailable error.
func (e *VerifyError) Unwrap() error { return e.err }

func reject(reason string) error { return &VerifyError{Reason: reason} }

// InboundConfig configures a Verifier.
type InboundConfig struct {
	// Issuer is the OIDC issuer URL; it must equal the discovery document's
	// issuer and every token's iss exactly (mind trailing slashes).
	Issuer string
	// Audience must be one of the token's aud values.
	Audience string
	// ScopeClaim names the scope claim, a space-separated string or an array;
	// default "scope", with "scp" accepted when "scope" is absent.
	ScopeClaim string
	// RolesClaim optionally names a roles claim (array or space-separated
	// string); a dotted name such as "realm_access.roles" reaches into
	// objects when no claim has the literal name.
	RolesClaim string
	// DeviceClaim names the claim listing the device ids the caller may post
	// readings for; default "devices". When it is absent the caller is
	// unrestricted only if it has the admin scope, otherwise restricted to
	// no device at all.
	DeviceClaim string
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30s.
	Leeway time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// HTTPClient is used for discovery and JWKS fetches; default
	// http.DefaultClient.
	HTTPClient *http.Client
	// KeySet, when set, verifies signatures instead of the issuer's JWKS and
	// discovery is skipped (tests use an oidc.StaticKeySet). The unknown-kid
	// guard applies only to the discovered JWKS.
	KeySet oidc.KeySet
}

// Principal is the authenticated caller.
type Principal struct {
	Subject  string
	Issuer   string
	ClientID string // azp, else client_id
	Scopes   []string
	Roles    []string
	// Devices the caller may post readings for; nil means unrestricted and
	// is only produced for tokens with the admin scope.
	Devices []string
}

// HasScope reports whether the principal has scope s or the admin scope.
func (p Principal) HasScope(s string) bool {
	return slices.Contains(p.Scopes, AdminScope) || (s != "" && slices.Contains(p.Scopes, s))
}

// HasRole reports whether the principal has role r.
func (p Principal) HasRole(r string) bool { return r != "" && slices.Contains(p.Roles, r) }

// MayPostFor reports whether the principal may post readings for deviceID.
// A nil Devices list allows every device only together with the admin
// scope, so a zero Principal may post for nothing.
func (p Principal) MayPostFor(deviceID string) bool {
	if deviceID == "" {
		return false
	}
	if p.Devices == nil {
		return p.HasScope(AdminScope)
	}
	return slices.Contains(p.Devices, deviceID)
}

// Verifier verifies inbound bearer tokens. It is safe for concurrent use.
type Verifier struct {
	cfg  InboundConfig
	idv  *oidc.IDTokenVerifier
	jwks *guardedJWKS // nil when cfg.KeySet is used
}

// NewVerifier returns a Verifier for cfg. Unless cfg.KeySet is set it runs
// OIDC discovery against cfg.Issuer; keys are fetched on first use.
func NewVerifier(ctx context.Context, cfg InboundConfig) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth: inbound: issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth: inbound: audience is required")
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("auth: inbound: negative leeway")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.ScopeClaim == "" {
		cfg.ScopeClaim = DefaultScopeClaim
	}
	if cfg.DeviceClaim == "" {
		cfg.DeviceClaim = DefaultDeviceClaim
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}

	v := &Verifier{cfg: cfg}
	keySet := cfg.KeySet
	if keySet == nil {
		provider, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
		if err != nil {
			return nil, fmt.Errorf("auth: inbound: discovery: %w", err)
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
			return nil, errors.New("auth: inbound: discovery document has no jwks_uri")
		}
		v.jwks = &guardedJWKS{url: meta.JWKSURI, client: cfg.HTTPClient, now: cfg.Now}
		keySet = v.jwks
	}
	v.idv = oidc.NewVerifier(cfg.Issuer, &recordingKeySet{keySet}, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: allowedAlgs,
		// exp and nbf are checked below with our leeway and clock; go-oidc
		// has no exp leeway and a fixed 5-minute nbf leeway.
		SkipExpiryCheck: true,
		Now:             cfg.Now,
	})
	return v, nil
}

// Verify checks rawToken's algorithm, key id, signature, iss, aud, exp, nbf
// and iat and returns the caller. Every failure is a *VerifyError.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (Principal, error) {
	if rawToken == "" {
		return Principal{}, reject(ReasonMissing)
	}
	if len(rawToken) > maxTokenBytes {
		return Principal{}, reject(ReasonMalformed)
	}
	hdr, err := parseHeader(rawToken)
	if err != nil {
		return Principal{}, err
	}
	jws, err := jose.ParseSigned(rawToken, joseAlgs(allowedAlgs))
	if err != nil || len(jws.Signatures) != 1 {
		return Principal{}, reject(ReasonMalformed)
	}
	if v.jwks != nil {
		// Reject unknown key ids before go-oidc sees the token: a refetch
		// per forged token would hammer the IdP.
		if err := v.jwks.ensureKey(ctx, hdr.KeyID); err != nil {
			return Principal{}, err
		}
	}

	var sigOK bool
	tok, err := v.idv.Verify(context.WithValue(ctx, sigOKKey{}, &sigOK), rawToken)
	if err != nil {
		if !sigOK {
			return Principal{}, reject(ReasonBadSignature)
		}
		// The payload is authentic; find out which claim check failed.
		var c rawClaims
		if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c) != nil {
			return Principal{}, reject(ReasonMalformed)
		}
		if c.Issuer != v.cfg.Issuer {
			return Principal{}, reject(ReasonWrongIssuer)
		}
		if !slices.Contains([]string(c.Audience), v.cfg.Audience) {
			return Principal{}, reject(ReasonWrongAudience)
		}
		return Principal{}, reject(ReasonMalformed)
	}

	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, reject(ReasonMalformed)
	}
	if err := v.checkTimes(claims); err != nil {
		return Principal{}, err
	}
	return v.principal(tok, claims), nil
}

// checkTimes requires exp and applies the leeway to exp, nbf and iat.
func (v *Verifier) checkTimes(claims map[string]any) error {
	now, leeway := v.cfg.Now(), v.cfg.Leeway
	exp, ok, err := numericDate(claims, "exp")
	if err != nil || !ok {
		return reject(ReasonMalformed)
	}
	if !now.Before(exp.Add(leeway)) {
		return reject(ReasonExpired)
	}
	for _, name := range []string{"nbf", "iat"} {
		t, ok, err := numericDate(claims, name)
		if err != nil {
			return reject(ReasonMalformed)
		}
		if ok && now.Add(leeway).Before(t) {
			return reject(ReasonNotYetValid)
		}
	}
	return nil
}

func (v *Verifier) principal(tok *oidc.IDToken, claims map[string]any) Principal {
	p := Principal{Subject: tok.Subject, Issuer: tok.Issuer}
	p.ClientID, _ = claims["azp"].(string)
	if p.ClientID == "" {
		p.ClientID, _ = claims["client_id"].(string)
	}
	sc, ok := lookup(claims, v.cfg.ScopeClaim)
	if !ok && v.cfg.ScopeClaim == DefaultScopeClaim {
		sc, _ = lookup(claims, "scp")
	}
	p.Scopes = stringList(sc)
	if v.cfg.RolesClaim != "" {
		r, _ := lookup(claims, v.cfg.RolesClaim)
		p.Roles = stringList(r)
	}
	if d, ok := lookup(claims, v.cfg.DeviceClaim); ok {
		p.Devices = stringList(d)
		if p.Devices == nil {
			p.Devices = []string{}
		}
	} else if !slices.Contains(p.Scopes, AdminScope) {
		p.Devices = []string{}
	}
	return p
}

// lookup finds claim name, or a dotted path into nested objects when no
// claim has the literal name.
func lookup(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringList reads a space-separated string or an array of strings; other
// values and non-string elements are ignored.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// numericDate reads a NumericDate claim (RFC 7519 §2).
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	raw, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, ok := raw.(float64)
	if !ok || f < 0 || f > 1e11 {
		return time.Time{}, false, errors.New("bad numeric date")
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true, nil
}

type rawClaims struct {
	Issuer   string   `json:"iss"`
	Audience audience `json:"aud"`
}

// audience is a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

type jwsHeader struct {
	Alg   string `json:"alg"`
	KeyID string `json:"kid"`
}

// parseHeader reads the protected header of a compact JWS and rejects
// algorithms other than allowedAlgs before anything else is done.
func parseHeader(raw string) (jwsHeader, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return jwsHeader{}, reject(ReasonMalformed)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return jwsHeader{}, reject(ReasonMalformed)
	}
	var h jwsHeader
	if err := json.Unmarshal(b, &h); err != nil || h.Alg == "" {
		return jwsHeader{}, reject(ReasonMalformed)
	}
	if !slices.Contains(allowedAlgs, h.Alg) {
		return jwsHeader{}, reject(ReasonUnsupportedAlg)
	}
	return h, nil
}

func joseAlgs(algs []string) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}

// sigOKKey carries a *bool that recordingKeySet sets once a signature has
// verified, so Verify can tell a bad signature from a bad claim without
// parsing go-oidc's error strings.
type sigOKKey struct{}

type recordingKeySet struct{ oidc.KeySet }

func (r *recordingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := r.KeySet.VerifySignature(ctx, jwt)
	if err == nil {
		if ok, _ := ctx.Value(sigOKKey{}).(*bool); ok != nil {
			*ok = true
		}
	}
	return payload, err
}

// guardedJWKS is the issuer's JWKS, fetched on first use and again, at most
// once per jwksMinInterval, when a token names a key id not in the cache.
// Unlike go-oidc's RemoteKeySet, a failed signature never causes a fetch.
type guardedJWKS struct {
	url    string
	client *http.Client
	now    func() time.Time

	fetchMu sync.Mutex // serialises fetches
	mu      sync.RWMutex
	keys    []jose.JSONWebKey
	fetched bool      // a fetch has succeeded
	last    time.Time // last fetch attempt
}

// ensureKey makes sure a key with id kid (any key when kid is empty) is
// cached, fetching the JWKS if that is allowed now.
func (g *guardedJWKS) ensureKey(ctx context.Context, kid string) error {
	if g.has(kid) {
		return nil
	}
	g.fetchMu.Lock()
	defer g.fetchMu.Unlock()
	if g.has(kid) { // fetched meanwhile
		return nil
	}
	g.mu.RLock()
	fetched, last := g.fetched, g.last
	g.mu.RUnlock()
	if fetched && g.now().Sub(last) < jwksMinInterval {
		return reject(ReasonUnknownKey)
	}
	if !fetched && !last.IsZero() && g.now().Sub(last) < jwksMinInterval {
		return reject(ReasonKeySetUnavailable)
	}
	keys, err := g.fetch(ctx)
	g.mu.Lock()
	g.last = g.now()
	if err == nil {
		g.keys, g.fetched = keys, true
	}
	g.mu.Unlock()
	if err != nil {
		return &VerifyError{Reason: ReasonKeySetUnavailable, err: err}
	}
	if !g.has(kid) {
		return reject(ReasonUnknownKey)
	}
	return nil
}

func (g *guardedJWKS) has(kid string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, k := range g.keys {
		if kid == "" || k.KeyID == kid {
			return true
		}
	}
	return false
}

func (g *guardedJWKS) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: HTTP %d", resp.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errors.New("jwks: not a JSON key set")
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil || !k.Valid() || !k.IsPublic() || k.Use == "enc" {
			continue // skip keys go-jose cannot use rather than fail the set
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// VerifySignature verifies against the cached keys only; ensureKey has
// fetched them. Keys whose alg differs from the token's are not tried.
func (g *guardedJWKS) VerifySignature(_ context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, joseAlgs(allowedAlgs))
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("malformed jws")
	}
	h := jws.Signatures[0].Header
	g.mu.RLock()
	keys := g.keys
	g.mu.RUnlock()
	for i := range keys {
		k := &keys[i]
		if h.KeyID != "" && k.KeyID != h.KeyID {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("signature verification failed")
}
