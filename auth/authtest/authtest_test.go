package authtest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/auth/authtest"
)

const clientID = "bridge"

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey { return newEC() })
)

func newEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func newServer(t *testing.T) (*authtest.Server, *authtest.Clock) {
	t.Helper()
	jwks, err := auth.JWKS(rsaKey().Public(), ecKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	clock := authtest.NewClock(epoch)
	srv := authtest.NewServer(authtest.Config{
		Clients: []authtest.Client{{ID: clientID, JWKS: jwks, Scopes: []string{"system/Observation.c", "system/Observation.rs"}}},
		Now:     clock.Now,
	})
	t.Cleanup(srv.Close)
	return srv, clock
}

// tokenRequest posts a token request and returns the status and the decoded
// JSON body.
func tokenRequest(t *testing.T, srv *authtest.Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(srv.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response is not JSON: %v", err)
	}
	return resp.StatusCode, body
}

func form(assertion string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {"system/Observation.c"},
		"client_assertion_type": {authtest.ClientAssertionType},
		"client_assertion":      {assertion},
	}
}

func sign(t *testing.T, key any, alg, kid string, claims map[string]any, header map[string]any) string {
	t.Helper()
	s, err := authtest.SignAssertion(key, alg, kid, claims, header)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokenEndpointRejects crafts one bad request per rule the server checks.
func TestTokenEndpointRejects(t *testing.T) {
	rsaKid := auth.KeyID(rsaKey().Public())
	ecKid := auth.KeyID(ecKey().Public())
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(rsaKey().Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()

	type req struct {
		form url.Values
		get  bool
	}
	tests := []struct {
		name   string
		build  func(srv *authtest.Server, c map[string]any) req
		status int
		code   string
		reason string
	}{
		{"valid RS384", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, rsaKey(), "RS384", rsaKid, c, nil))}
		}, 200, "", ""},
		{"valid ES384", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 200, "", ""},
		{"exp exactly 5 minutes ahead", func(srv *authtest.Server, c map[string]any) req {
			c["exp"] = epoch.Add(5 * time.Minute).Unix()
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 200, "", ""},
		{"wrong aud", func(srv *authtest.Server, c map[string]any) req {
			c["aud"] = srv.URL + "/oauth2/token"
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonAud},
		{"aud with trailing slash", func(srv *authtest.Server, c map[string]any) req {
			c["aud"] = srv.TokenURL() + "/"
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonAud},
		{"aud is the FHIR base", func(srv *authtest.Server, c map[string]any) req {
			c["aud"] = srv.FHIRBase()
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonAud},
		{"two audiences", func(srv *authtest.Server, c map[string]any) req {
			c["aud"] = []string{srv.TokenURL(), "https://other.example"}
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonAud},
		{"exp more than 5 minutes ahead", func(srv *authtest.Server, c map[string]any) req {
			c["exp"] = epoch.Add(5*time.Minute + time.Second).Unix()
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonExpTooFar},
		{"expired", func(srv *authtest.Server, c map[string]any) req {
			c["exp"] = epoch.Add(-time.Second).Unix()
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonExpired},
		{"exp now", func(srv *authtest.Server, c map[string]any) req {
			c["exp"] = epoch.Unix()
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonExpired},
		{"no exp", func(srv *authtest.Server, c map[string]any) req {
			delete(c, "exp")
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonExpMissing},
		{"nbf in the future", func(srv *authtest.Server, c map[string]any) req {
			c["nbf"] = epoch.Add(time.Minute).Unix()
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonNotYetValid},
		{"no jti", func(srv *authtest.Server, c map[string]any) req {
			delete(c, "jti")
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonJTIMissing},
		{"unknown kid", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, ecKey(), "ES384", "not-registered", c, nil))}
		}, 401, "invalid_client", authtest.ReasonKid},
		{"no kid", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, ecKey(), "ES384", "", c, nil))}
		}, 401, "invalid_client", authtest.ReasonKid},
		{"other key under a registered kid", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, newEC(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonSignature},
		{"EC kid, RSA signature", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, rsaKey(), "RS384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonSignature},
		{"tampered payload", func(srv *authtest.Server, c map[string]any) req {
			good := strings.Split(sign(t, ecKey(), "ES384", ecKid, c, nil), ".")
			c["scope_hint"] = "x"
			other := strings.Split(sign(t, ecKey(), "ES384", ecKid, c, nil), ".")
			return req{form: form(good[0] + "." + other[1] + "." + good[2])}
		}, 401, "invalid_client", authtest.ReasonSignature},
		{"alg none", func(srv *authtest.Server, c map[string]any) req {
			s, err := authtest.UnsignedAssertion(ecKid, c)
			if err != nil {
				t.Fatal(err)
			}
			return req{form: form(s)}
		}, 401, "invalid_client", authtest.ReasonAlg},
		{"HS256 keyed with the public key", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, pubPEM, "HS256", rsaKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonAlg},
		{"RS256", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, rsaKey(), "RS256", rsaKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonAlg},
		{"PS384", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, rsaKey(), "PS384", rsaKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonAlg},
		{"no typ", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, map[string]any{"typ": ""}))}
		}, 401, "invalid_client", authtest.ReasonTyp},
		{"typ at+jwt", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, map[string]any{"typ": "at+jwt"}))}
		}, 401, "invalid_client", authtest.ReasonTyp},
		{"unknown client", func(srv *authtest.Server, c map[string]any) req {
			c["iss"], c["sub"] = "stranger", "stranger"
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonUnknownClient},
		{"sub differs from iss", func(srv *authtest.Server, c map[string]any) req {
			c["sub"] = "someone"
			return req{form: form(sign(t, ecKey(), "ES384", ecKid, c, nil))}
		}, 401, "invalid_client", authtest.ReasonIssSub},
		{"client_id parameter differs", func(srv *authtest.Server, c map[string]any) req {
			f := form(sign(t, ecKey(), "ES384", ecKid, c, nil))
			f.Set("client_id", "someone")
			return req{form: f}
		}, 401, "invalid_client", authtest.ReasonIssSub},
		{"not a JWS", func(srv *authtest.Server, c map[string]any) req {
			return req{form: form("abc.def")}
		}, 401, "invalid_client", authtest.ReasonMalformed},
		{"scope not allowed", func(srv *authtest.Server, c map[string]any) req {
			f := form(sign(t, ecKey(), "ES384", ecKid, c, nil))
			f.Set("scope", "system/Observation.c system/Patient.cruds")
			return req{form: f}
		}, 400, "invalid_scope", authtest.ReasonScope},
		{"no scope", func(srv *authtest.Server, c map[string]any) req {
			f := form(sign(t, ecKey(), "ES384", ecKid, c, nil))
			f.Del("scope")
			return req{form: f}
		}, 400, "invalid_scope", authtest.ReasonScope},
		{"grant_type", func(srv *authtest.Server, c map[string]any) req {
			f := form(sign(t, ecKey(), "ES384", ecKid, c, nil))
			f.Set("grant_type", "Client_Credentials")
			return req{form: f}
		}, 400, "unsupported_grant_type", authtest.ReasonGrantType},
		{"client_assertion_type", func(srv *authtest.Server, c map[string]any) req {
			f := form(sign(t, ecKey(), "ES384", ecKid, c, nil))
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return req{form: f}
		}, 401, "invalid_client", authtest.ReasonAssertionType},
		{"GET", func(srv *authtest.Server, c map[string]any) req {
			return req{get: true}
		}, 400, "invalid_request", authtest.ReasonBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newServer(t)
			r := tc.build(srv, authtest.Claims(clientID, srv.TokenURL(), epoch))
			var (
				status int
				body   map[string]any
			)
			if r.get {
				resp, err := http.Get(srv.TokenURL() + "?" + form("x").Encode())
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				status = resp.StatusCode
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatal(err)
				}
			} else {
				status, body = tokenRequest(t, srv, r.form)
			}
			if status != tc.status || (tc.code != "" && body["error"] != tc.code) {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			st := srv.Stats()
			if tc.reason == "" {
				if st.Issued != 1 || body["token_type"] != "bearer" || body["expires_in"] != float64(300) || body["scope"] != "system/Observation.c" {
					t.Errorf("issued %d, response %v", st.Issued, body)
				}
				if !srv.Valid(body["access_token"].(string)) {
					t.Error("issued token is not valid")
				}
				return
			}
			if diff := cmp.Diff(map[string]int{tc.reason: 1}, st.Rejections); diff != "" || st.Issued != 0 {
				t.Errorf("issued %d; rejections (-want +got):\n%s", st.Issued, diff)
			}
		})
	}
}

func TestTokenEndpointRejectsReplay(t *testing.T) {
	srv, clock := newServer(t)
	kid := auth.KeyID(ecKey().Public())
	a := sign(t, ecKey(), "ES384", kid, authtest.Claims(clientID, srv.TokenURL(), epoch), nil)
	if status, body := tokenRequest(t, srv, form(a)); status != 200 {
		t.Fatalf("first use: %d %v", status, body)
	}
	clock.Advance(3 * time.Minute) // still within the assertion's lifetime
	if status, body := tokenRequest(t, srv, form(a)); status != 401 || body["error"] != "invalid_client" {
		t.Fatalf("replay: %d %v, want 401 invalid_client", status, body)
	}
	// Another assertion with the same jti is a replay too.
	c := authtest.Claims(clientID, srv.TokenURL(), clock.Now())
	var first map[string]any
	if err := decodePayload(a, &first); err != nil {
		t.Fatal(err)
	}
	c["jti"] = first["jti"]
	if status, _ := tokenRequest(t, srv, form(sign(t, ecKey(), "ES384", kid, c, nil))); status != 401 {
		t.Fatalf("same jti, new assertion: %d, want 401", status)
	}
	if got := srv.Stats().Rejections[authtest.ReasonReplay]; got != 2 {
		t.Errorf("%d replay rejections, want 2", got)
	}
}

func decodePayload(jws string, v any) error {
	parts := strings.Split(jws, ".")
	raw, err := decodeSegment(parts[1])
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func TestRequireToken(t *testing.T) {
	srv, clock := newServer(t)
	h := srv.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), "system/Observation.c")
	kid := auth.KeyID(ecKey().Public())
	issue := func(scope string) string {
		f := form(sign(t, ecKey(), "ES384", kid, authtest.Claims(clientID, srv.TokenURL(), clock.Now()), nil))
		f.Set("scope", scope)
		status, body := tokenRequest(t, srv, f)
		if status != 200 {
			t.Fatalf("token: %d %v", status, body)
		}
		return body["access_token"].(string)
	}
	write, read := issue("system/Observation.c"), issue("system/Observation.rs")
	call := func(auth string) int {
		r, _ := http.NewRequest(http.MethodPost, "/fhir/Observation", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, r)
		return w.status
	}
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", 401},
		{"unknown token", "Bearer nope", 401},
		{"basic scheme", "Basic " + write, 401},
		{"valid", "Bearer " + write, 200},
		{"lower-case scheme", "bearer " + write, 200},
		{"scope not granted", "Bearer " + read, 403},
	}
	for _, tc := range tests {
		if got := call(tc.auth); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	clock.Advance(299 * time.Second)
	if got := call("Bearer " + write); got != 200 {
		t.Errorf("1s before expiry: %d", got)
	}
	clock.Advance(time.Second)
	if got := call("Bearer " + write); got != 401 || srv.Valid(write) {
		t.Errorf("at expiry: %d, valid %v", got, srv.Valid(write))
	}
	fresh := issue("system/Observation.c")
	srv.ExpireTokens()
	if srv.Valid(fresh) {
		t.Error("ExpireTokens left a token valid")
	}
	st := srv.Stats()
	if st.Authorized != 3 || st.Unauthorized != 4 || st.Forbidden != 1 {
		t.Errorf("authorized %d unauthorized %d forbidden %d", st.Authorized, st.Unauthorized, st.Forbidden)
	}
}

// recorder is a minimal ResponseWriter keeping the status.
type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(s int) { r.status = s }

func TestFailNext(t *testing.T) {
	srv, clock := newServer(t)
	srv.FailNext(2, http.StatusServiceUnavailable, "")
	kid := auth.KeyID(ecKey().Public())
	for i, want := range []int{503, 503, 200} {
		a := sign(t, ecKey(), "ES384", kid, authtest.Claims(clientID, srv.TokenURL(), clock.Now()), nil)
		resp, err := http.PostForm(srv.TokenURL(), form(a))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	if st := srv.Stats(); st.Rejections[authtest.ReasonInjected] != 2 || st.Issued != 1 || st.TokenRequests != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestDiscoveryDocument(t *testing.T) {
	srv, _ := newServer(t)
	for _, base := range []string{srv.URL, srv.FHIRBase()} {
		cfg, err := auth.Discover(t.Context(), nil, base)
		if err != nil {
			t.Fatalf("Discover(%s): %v", base, err)
		}
		if cfg.TokenEndpoint != srv.TokenURL() || !cfg.SupportsAlg("ES384") || !cfg.SupportsAlg("RS384") {
			t.Errorf("config %+v", cfg)
		}
	}
}

func TestAddClientErrors(t *testing.T) {
	srv, _ := newServer(t)
	priv, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-384", "kid": "k",
		"x": b64(mustBytes(ecKey().PublicKey.Bytes())[1:49]), "y": b64(mustBytes(ecKey().PublicKey.Bytes())[49:]),
		"d": b64(mustBytes(ecKey().Bytes())),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	noKid, _ := auth.JWKS(ecKey().Public())
	noKid = []byte(strings.Replace(string(noKid), `"kid": "`+auth.KeyID(ecKey().Public())+`"`, `"kid": ""`, 1))
	tests := []struct {
		name string
		c    authtest.Client
	}{
		{"no id", authtest.Client{Secret: "s"}},
		{"no credentials", authtest.Client{ID: "x"}},
		{"bad JWKS", authtest.Client{ID: "x", JWKS: []byte("{")}},
		{"private key in JWKS", authtest.Client{ID: "x", JWKS: priv}},
		{"key without kid", authtest.Client{ID: "x", JWKS: noKid}},
	}
	for _, tc := range tests {
		if err := srv.AddClient(tc.c); err == nil {
			t.Errorf("%s: AddClient succeeded", tc.name)
		}
	}
}

func mustBytes(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
