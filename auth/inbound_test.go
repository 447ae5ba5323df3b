package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/auth/authtest"
)

const (
	inIssuer   = "https://idp.example.test/realms/rpm"
	inAudience = "fhir-bridge-api"
)

var inNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// inKeys are generated once per test binary: RSA key generation is slow.
var inKeys = sync.OnceValue(func() struct {
	rsa, other *rsa.PrivateKey
	ec         *ecdsa.PrivateKey
} {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return struct {
		rsa, other *rsa.PrivateKey
		ec         *ecdsa.PrivateKey
	}{gen(), gen(), ec}
})

// mint signs claims as a compact JWS with key, alg and kid (none if empty).
func mint(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validClaims returns claims that pass at inNow; mods are applied in order.
func validClaims(mods ...func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss":     inIssuer,
		"aud":     []string{inAudience, "account"},
		"sub":     "vendor-acme",
		"azp":     "acme-rpm",
		"iat":     inNow.Add(-time.Minute).Unix(),
		"nbf":     inNow.Add(-time.Minute).Unix(),
		"exp":     inNow.Add(5 * time.Minute).Unix(),
		"scope":   "readings.write openid",
		"devices": []string{"dev-1", "dev-2"},
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func set(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
func del(k string) func(map[string]any)        { return func(c map[string]any) { delete(c, k) } }

func staticVerifier(t testing.TB, mod func(*auth.InboundConfig)) *auth.Verifier {
	t.Helper()
	k := inKeys()
	cfg := auth.InboundConfig{
		Issuer:   inIssuer,
		Audience: inAudience,
		KeySet:   &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{k.rsa.Public(), k.ec.Public()}},
		Now:      func() time.Time { return inNow },
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := auth.NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func reasonOf(err error) string {
	var ve *auth.VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	if err != nil {
		return "untyped: " + err.Error()
	}
	return ""
}

func unsigned(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// tokenCase is one token and what the static verifier must say about it.
type tokenCase struct {
	name   string
	token  string
	reason string // "" = accepted
}

func tokenCases(t testing.TB) []tokenCase {
	k := inKeys()
	rs := func(mods ...func(map[string]any)) string {
		return mint(t, k.rsa, jose.RS256, "k1", validClaims(mods...))
	}

	pubDER, err := x509.MarshalPKIXPublicKey(k.rsa.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	// Signature of one payload spliced onto another.
	good := strings.Split(rs(), ".")
	evil := strings.Split(rs(set("devices", []string{"dev-1", "dev-2", "dev-666"})), ".")
	spliced := good[0] + "." + evil[1] + "." + good[2]

	return []tokenCase{
		{"valid RS256", rs(), ""},
		{"valid ES256", mint(t, k.ec, jose.ES256, "k2", validClaims()), ""},
		{"valid without kid", mint(t, k.rsa, jose.RS256, "", validClaims()), ""},
		{"single audience string", rs(set("aud", inAudience)), ""},
		{"empty", "", auth.ReasonMissing},
		{"not a JWT", "abc", auth.ReasonMalformed},
		{"three garbage parts", "a.b.c", auth.ReasonMalformed},
		{"JWE-like five parts", "a.b.c.d.e", auth.ReasonMalformed},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("{nope")) + ".e30.sig", auth.ReasonMalformed},
		{"bad signature encoding", good[0] + "." + good[1] + ".!!!", auth.ReasonMalformed},
		{"oversized", strings.Repeat("a", 20<<10), auth.ReasonMalformed},
		{"missing exp", rs(del("exp")), auth.ReasonMalformed},
		{"exp not a number", rs(set("exp", "tomorrow")), auth.ReasonMalformed},
		{"expired beyond leeway", rs(set("exp", inNow.Add(-31*time.Second).Unix())), auth.ReasonExpired},
		{"expired exactly at leeway", rs(set("exp", inNow.Add(-30*time.Second).Unix())), auth.ReasonExpired},
		{"expired within leeway", rs(set("exp", inNow.Add(-29*time.Second).Unix())), ""},
		{"nbf beyond leeway", rs(set("nbf", inNow.Add(31*time.Second).Unix())), auth.ReasonNotYetValid},
		{"nbf within leeway", rs(set("nbf", inNow.Add(29*time.Second).Unix())), ""},
		{"iat in the future", rs(set("iat", inNow.Add(time.Hour).Unix())), auth.ReasonNotYetValid},
		{"wrong issuer", rs(set("iss", "https://evil.example.test/realms/rpm")), auth.ReasonWrongIssuer},
		{"issuer with trailing slash", rs(set("iss", inIssuer+"/")), auth.ReasonWrongIssuer},
		{"wrong audience", rs(set("aud", []string{"some-other-api"})), auth.ReasonWrongAudience},
		{"no audience", rs(del("aud")), auth.ReasonWrongAudience},
		{"signed by another key", mint(t, k.other, jose.RS256, "k1", validClaims()), auth.ReasonBadSignature},
		{"spliced payload", spliced, auth.ReasonBadSignature},
		{"alg none", unsigned(map[string]any{"alg": "none", "typ": "JWT"}, validClaims()), auth.ReasonUnsupportedAlg},
		{"alg None", unsigned(map[string]any{"alg": "None"}, validClaims()), auth.ReasonUnsupportedAlg},
		{"HS256 keyed with the RSA public key", mint(t, pubPEM, jose.HS256, "k1", validClaims()), auth.ReasonUnsupportedAlg},
		{"HS256 keyed with the DER public key", mint(t, pubDER, jose.HS256, "k1", validClaims()), auth.ReasonUnsupportedAlg},
		{"RS384", mint(t, k.rsa, jose.RS384, "k1", validClaims()), auth.ReasonUnsupportedAlg},
		{"PS256", mint(t, k.rsa, jose.PS256, "k1", validClaims()), auth.ReasonUnsupportedAlg},
		{"ES384 header", unsigned(map[string]any{"alg": "ES384"}, validClaims()), auth.ReasonUnsupportedAlg},
	}
}

func TestVerifyReasons(t *testing.T) {
	v := staticVerifier(t, nil)
	for _, tc := range tokenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token)
			if got := reasonOf(err); got != tc.reason {
				t.Fatalf("reason = %q, want %q", got, tc.reason)
			}
			if err != nil {
				if !cmp.Equal(p, auth.Principal{}) {
					t.Errorf("rejected token gave principal %+v", p)
				}
				assertNoToken(t, err.Error(), tc.token)
			}
		})
	}
}

// assertNoToken fails if s holds the token or any of its non-trivial parts.
func assertNoToken(t *testing.T, s, token string) {
	t.Helper()
	if token == "" {
		return
	}
	if strings.Contains(s, token) {
		t.Fatalf("%q contains the token", s)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(s, part) {
			t.Fatalf("%q contains a token segment", s)
		}
	}
}

func TestVerifyErrorsNeverContainToken(t *testing.T) {
	v := staticVerifier(t, nil)
	var n int
	for _, tc := range tokenCases(t) {
		_, err := v.Verify(context.Background(), tc.token)
		if err == nil {
			continue
		}
		n++
		assertNoToken(t, err.Error(), tc.token)
		assertNoToken(t, fmt.Sprintf("%+v %#v", err, err), tc.token)
	}
	if n < 20 {
		t.Fatalf("only %d rejections checked", n)
	}
}

func TestVerifyPrincipal(t *testing.T) {
	k := inKeys()
	v := staticVerifier(t, nil)
	p, err := v.Verify(context.Background(), mint(t, k.rsa, jose.RS256, "k1", validClaims()))
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Principal{
		Subject:  "vendor-acme",
		Issuer:   inIssuer,
		ClientID: "acme-rpm",
		Scopes:   []string{"readings.write", "openid"},
		Devices:  []string{"dev-1", "dev-2"},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Fatalf("principal (-want +got):\n%s", diff)
	}
	if !p.HasScope("readings.write") || p.HasScope("audit.read") || p.HasScope("") {
		t.Errorf("HasScope wrong for %v", p.Scopes)
	}
	for dev, want := range map[string]bool{"dev-1": true, "dev-2": true, "dev-3": false, "": false} {
		if got := p.MayPostFor(dev); got != want {
			t.Errorf("MayPostFor(%q) = %v, want %v", dev, got, want)
		}
	}
}

func TestVerifyClaimShapes(t *testing.T) {
	k := inKeys()
	tests := []struct {
		name string
		mod  func(*auth.InboundConfig)
		mods []func(map[string]any)
		want auth.Principal
	}{
		{
			name: "scp array, client_id, no devices claim",
			mods: []func(map[string]any){del("scope"), del("azp"), del("devices"),
				set("scp", []string{"readings.write"}), set("client_id", "cid")},
			want: auth.Principal{ClientID: "cid", Scopes: []string{"readings.write"}, Devices: []string{}},
		},
		{
			name: "admin without devices claim is unrestricted",
			mods: []func(map[string]any){del("devices"), set("scope", "admin")},
			want: auth.Principal{ClientID: "acme-rpm", Scopes: []string{"admin"}},
		},
		{
			name: "admin with devices claim stays restricted",
			mods: []func(map[string]any){set("scope", "admin"), set("devices", []string{"dev-9"})},
			want: auth.Principal{ClientID: "acme-rpm", Scopes: []string{"admin"}, Devices: []string{"dev-9"}},
		},
		{
			name: "empty devices list",
			mods: []func(map[string]any){set("devices", []string{})},
			want: auth.Principal{ClientID: "acme-rpm", Scopes: []string{"readings.write", "openid"}, Devices: []string{}},
		},
		{
			name: "custom claims, nested roles",
			mod: func(c *auth.InboundConfig) {
				c.ScopeClaim, c.RolesClaim, c.DeviceClaim = "perms", "realm_access.roles", "rpm_devices"
			},
			mods: []func(map[string]any){del("devices"), set("perms", "readings.write"),
				set("realm_access", map[string]any{"roles": []string{"operator", "auditor"}}),
				set("rpm_devices", "dev-7 dev-8")},
			want: auth.Principal{ClientID: "acme-rpm", Scopes: []string{"readings.write"},
				Roles: []string{"operator", "auditor"}, Devices: []string{"dev-7", "dev-8"}},
		},
		{
			name: "custom scope claim does not fall back to scp",
			mod:  func(c *auth.InboundConfig) { c.ScopeClaim = "perms" },
			mods: []func(map[string]any){set("scp", []string{"admin"})},
			want: auth.Principal{ClientID: "acme-rpm", Devices: []string{"dev-1", "dev-2"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := staticVerifier(t, tc.mod)
			p, err := v.Verify(context.Background(), mint(t, k.rsa, jose.RS256, "k1", validClaims(tc.mods...)))
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Subject, tc.want.Issuer = "vendor-acme", inIssuer
			if diff := cmp.Diff(tc.want, p); diff != "" {
				t.Fatalf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrincipalAdminAndDevices(t *testing.T) {
	admin := auth.Principal{Scopes: []string{"admin"}}
	if !admin.HasScope("readings.write") || !admin.HasScope("audit.read") || !admin.MayPostFor("any-device") {
		t.Error("admin without device list must have every scope and device")
	}
	if admin.MayPostFor("") {
		t.Error("empty device id allowed")
	}
	restrictedAdmin := auth.Principal{Scopes: []string{"admin"}, Devices: []string{"dev-1"}}
	if !restrictedAdmin.MayPostFor("dev-1") || restrictedAdmin.MayPostFor("dev-2") {
		t.Error("admin with a device list must be restricted to it")
	}
	var zero auth.Principal
	if zero.MayPostFor("dev-1") || zero.HasScope("readings.write") {
		t.Error("zero Principal must be allowed nothing")
	}
	vendor := auth.Principal{Scopes: []string{"readings.write"}, Devices: []string{}}
	if vendor.MayPostFor("dev-1") {
		t.Error("vendor without devices may post for none")
	}
}

func TestVerifyLeewayConfigurable(t *testing.T) {
	k := inKeys()
	tok := mint(t, k.rsa, jose.RS256, "k1", validClaims(set("exp", inNow.Add(-90*time.Second).Unix())))
	if _, err := staticVerifier(t, nil).Verify(context.Background(), tok); reasonOf(err) != auth.ReasonExpired {
		t.Fatalf("default leeway: %v", err)
	}
	v := staticVerifier(t, func(c *auth.InboundConfig) { c.Leeway = 2 * time.Minute })
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("2m leeway: %v", err)
	}
}

func TestVerifyUsesClock(t *testing.T) {
	k := inKeys()
	clock := authtest.NewClock(inNow)
	v := staticVerifier(t, func(c *auth.InboundConfig) { c.Now = clock.Now })
	tok := mint(t, k.rsa, jose.RS256, "k1", validClaims())
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5*time.Minute + 30*time.Second)
	if _, err := v.Verify(context.Background(), tok); reasonOf(err) != auth.ReasonExpired {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	ks := &oidc.StaticKeySet{}
	for name, cfg := range map[string]auth.InboundConfig{
		"no issuer":      {Audience: inAudience, KeySet: ks},
		"no audience":    {Issuer: inIssuer, KeySet: ks},
		"negative skew":  {Issuer: inIssuer, Audience: inAudience, KeySet: ks, Leeway: -time.Second},
		"no idp running": {Issuer: "http://127.0.0.1:1/realms/none", Audience: inAudience},
	} {
		if _, err := auth.NewVerifier(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// idp is an oidctest issuer whose JWKS fetches are counted and whose keys
// can change while it serves.
type idp struct {
	srv     *httptest.Server
	mu      sync.Mutex
	oidc    oidctest.Server
	fetches atomic.Int64
	fail    atomic.Bool
}

func newIDP(t *testing.T, keys ...oidctest.PublicKey) *idp {
	t.Helper()
	i := &idp{}
	i.oidc.PublicKeys = keys
	i.oidc.Algorithms = []string{"RS256", "ES256"}
	i.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keys" {
			i.fetches.Add(1)
			if i.fail.Load() {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
		}
		i.mu.Lock()
		defer i.mu.Unlock()
		i.oidc.ServeHTTP(w, r)
	}))
	t.Cleanup(i.srv.Close)
	i.oidc.SetIssuer(i.srv.URL)
	return i
}

func (i *idp) addKey(k oidctest.PublicKey) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.oidc.PublicKeys = append(i.oidc.PublicKeys, k)
}

func (i *idp) verifier(t *testing.T, clock *authtest.Clock) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.InboundConfig{
		Issuer:     i.srv.URL,
		Audience:   inAudience,
		Now:        clock.Now,
		HTTPClient: i.srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (i *idp) token(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string) string {
	return mint(t, key, alg, kid, validClaims(set("iss", i.srv.URL)))
}

func TestVerifyDiscoveredJWKS(t *testing.T) {
	k := inKeys()
	i := newIDP(t,
		oidctest.PublicKey{PublicKey: k.rsa.Public(), KeyID: "k1", Algorithm: "RS256"},
		oidctest.PublicKey{PublicKey: k.ec.Public(), KeyID: "k2", Algorithm: "ES256"},
	)
	clock := authtest.NewClock(inNow)
	v := i.verifier(t, clock)
	if n := i.fetches.Load(); n != 0 {
		t.Fatalf("%d fetches before the first token", n)
	}
	ctx := context.Background()
	for _, tok := range []string{
		i.token(t, k.rsa, jose.RS256, "k1"),
		i.token(t, k.ec, jose.ES256, "k2"),
		i.token(t, k.rsa, jose.RS256, ""),
	} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	// A known kid with a bad signature is rejected without a fetch.
	if _, err := v.Verify(ctx, i.token(t, k.other, jose.RS256, "k1")); reasonOf(err) != auth.ReasonBadSignature {
		t.Fatalf("bad signature: %v", err)
	}
	// RSA key presented under the EC key's kid (alg mismatch with the JWK).
	if _, err := v.Verify(ctx, i.token(t, k.rsa, jose.RS256, "k2")); reasonOf(err) != auth.ReasonBadSignature {
		t.Fatalf("kid/alg mismatch: %v", err)
	}
	if _, err := v.Verify(ctx, mint(t, k.rsa, jose.RS256, "k1", validClaims())); reasonOf(err) != auth.ReasonWrongIssuer {
		t.Fatalf("static issuer against discovered one: %v", err)
	}
	if n := i.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
}

func TestVerifyUnknownKidRateLimited(t *testing.T) {
	k := inKeys()
	i := newIDP(t, oidctest.PublicKey{PublicKey: k.rsa.Public(), KeyID: "k1", Algorithm: "RS256"})
	clock := authtest.NewClock(inNow)
	v := i.verifier(t, clock)
	ctx := context.Background()

	forged := func(n int) string { return i.token(t, k.other, jose.RS256, fmt.Sprintf("forged-%d", n)) }

	// A flood of forged tokens with unknown kids, concurrently.
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for n := range errs {
		wg.Go(func() { _, errs[n] = v.Verify(ctx, forged(n)) })
	}
	wg.Wait()
	for n, err := range errs {
		if reasonOf(err) != auth.ReasonUnknownKey {
			t.Fatalf("forged token %d: %v", n, err)
		}
	}
	if n := i.fetches.Load(); n < 1 || n > 2 {
		t.Fatalf("50 forged tokens caused %d JWKS fetches, want 1-2", n)
	}
	before := i.fetches.Load()

	// Known keys keep working without fetches.
	if _, err := v.Verify(ctx, i.token(t, k.rsa, jose.RS256, "k1")); err != nil {
		t.Fatal(err)
	}
	// Key rotation: a new kid is not fetched again within 30s ...
	i.addKey(oidctest.PublicKey{PublicKey: k.ec.Public(), KeyID: "k2", Algorithm: "ES256"})
	rotated := i.token(t, k.ec, jose.ES256, "k2")
	clock.Advance(29 * time.Second)
	if _, err := v.Verify(ctx, rotated); reasonOf(err) != auth.ReasonUnknownKey {
		t.Fatalf("rotated key within 30s: %v", err)
	}
	if n := i.fetches.Load(); n != before {
		t.Fatalf("fetched within the rate limit: %d fetches, want %d", n, before)
	}
	// ... but is picked up once the interval has passed.
	clock.Advance(2 * time.Second)
	if _, err := v.Verify(ctx, rotated); err != nil {
		t.Fatalf("rotated key after 30s: %v", err)
	}
	for n := range 50 {
		if _, err := v.Verify(ctx, forged(100+n)); reasonOf(err) != auth.ReasonUnknownKey {
			t.Fatalf("forged after rotation: %v", err)
		}
	}
	if n := i.fetches.Load(); n != before+1 {
		t.Fatalf("%d fetches, want %d", n, before+1)
	}
}

func TestVerifyJWKSUnavailable(t *testing.T) {
	k := inKeys()
	i := newIDP(t, oidctest.PublicKey{PublicKey: k.rsa.Public(), KeyID: "k1", Algorithm: "RS256"})
	clock := authtest.NewClock(inNow)
	v := i.verifier(t, clock)
	i.fail.Store(true)
	tok := i.token(t, k.rsa, jose.RS256, "k1")
	for range 20 {
		_, err := v.Verify(context.Background(), tok)
		if reasonOf(err) != auth.ReasonKeySetUnavailable {
			t.Fatalf("JWKS down: %v", err)
		}
		assertNoToken(t, err.Error(), tok)
	}
	if n := i.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches while the IdP is down, want 1", n)
	}
	i.fail.Store(false)
	clock.Advance(31 * time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}
