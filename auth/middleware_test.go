package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/auth/authtest"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// router serves GET /r behind Middleware(v, scope); the handler records the
// principal it sees through c.Request.Context().
type router struct {
	engine *gin.Engine
	called int
	seen   auth.Principal
	seenOK bool
}

func newRouter(v auth.TokenVerifier, scope string) *router {
	r := &router{engine: gin.New()}
	r.engine.GET("/r", auth.Middleware(v, scope), func(c *gin.Context) {
		r.called++
		r.seen, r.seenOK = auth.PrincipalFromContext(c.Request.Context())
		c.String(http.StatusOK, "ok")
	})
	return r
}

func (r *router) do(authz string, set bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/r", nil)
	if set {
		req.Header.Set("Authorization", authz)
	}
	rec := httptest.NewRecorder()
	r.engine.ServeHTTP(rec, req)
	return rec
}

type errBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// checkRejected asserts status, challenge, JSON body, that the handler was
// not called and that nothing in the response echoes the token.
func checkRejected(t *testing.T, r *router, rec *httptest.ResponseRecorder, token string, status int, challenge, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d (body %s)", rec.Code, status, rec.Body)
	}
	if r.called != 0 {
		t.Fatal("handler after the middleware was called")
	}
	if got := rec.Header().Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate = %q, want %q", got, challenge)
	}
	var b errBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if b.Error != code || b.Description == "" {
		t.Errorf("body = %+v, want error %q with a description", b, code)
	}
	all := rec.Body.String()
	for k, vs := range rec.Header() {
		all += k + ": " + strings.Join(vs, ",") + "\n"
	}
	assertNoToken(t, all, token)
}

func TestMiddlewareTokens(t *testing.T) {
	v := staticVerifier(t, nil)
	for _, tc := range tokenCases(t) {
		if tc.token == "" {
			continue // TestMiddlewareNoToken
		}
		t.Run(tc.name, func(t *testing.T) {
			r := newRouter(v, "readings.write")
			rec := r.do("Bearer "+tc.token, true)
			if tc.reason == "" {
				if rec.Code != http.StatusOK || r.called != 1 || !r.seenOK || r.seen.Subject != "vendor-acme" {
					t.Fatalf("status %d, called %d, principal %+v %v", rec.Code, r.called, r.seen, r.seenOK)
				}
				return
			}
			checkRejected(t, r, rec, tc.token, http.StatusUnauthorized,
				`Bearer error="invalid_token", error_description="`+tc.reason+`"`, "invalid_token")
			var b errBody
			_ = json.Unmarshal(rec.Body.Bytes(), &b)
			if b.Description != tc.reason {
				t.Errorf("error_description = %q, want %q", b.Description, tc.reason)
			}
		})
	}
}

func TestMiddlewareNoToken(t *testing.T) {
	v := staticVerifier(t, nil)
	for name, h := range map[string]*string{
		"no header":        nil,
		"empty header":     ptr(""),
		"basic scheme":     ptr("Basic YWxpY2U6c2VjcmV0"),
		"scheme only":      ptr("Bearer"),
		"scheme and space": ptr("Bearer   "),
		"token only":       ptr("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRouter(v, "readings.write")
			var rec *httptest.ResponseRecorder
			if h == nil {
				rec = r.do("", false)
			} else {
				rec = r.do(*h, true)
			}
			checkRejected(t, r, rec, "", http.StatusUnauthorized, "Bearer", "invalid_token")
		})
	}
}

func ptr(s string) *string { return &s }

func TestMiddlewareMalformedHeader(t *testing.T) {
	k := inKeys()
	tok := mint(t, k.rsa, jose.RS256, "k1", validClaims())
	v := staticVerifier(t, nil)
	for name, h := range map[string]string{
		"two tokens":   "Bearer " + tok + " " + tok,
		"token quoted": `Bearer "` + tok + `"`,
		"comma list":   "Bearer " + tok + ",x",
	} {
		t.Run(name, func(t *testing.T) {
			r := newRouter(v, "readings.write")
			checkRejected(t, r, r.do(h, true), tok, http.StatusUnauthorized,
				`Bearer error="invalid_token", error_description="malformed"`, "invalid_token")
		})
	}
}

func TestMiddlewareSchemeCaseInsensitive(t *testing.T) {
	k := inKeys()
	tok := mint(t, k.rsa, jose.RS256, "k1", validClaims())
	v := staticVerifier(t, nil)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		r := newRouter(v, "readings.write")
		if rec := r.do(scheme+" "+tok, true); rec.Code != http.StatusOK || r.called != 1 {
			t.Errorf("%s: status %d, called %d", scheme, rec.Code, r.called)
		}
	}
}

func TestMiddlewareScope(t *testing.T) {
	k := inKeys()
	v := staticVerifier(t, nil)
	vendor := mint(t, k.rsa, jose.RS256, "k1", validClaims())
	admin := mint(t, k.rsa, jose.RS256, "k1", validClaims(set("scope", "admin"), del("devices")))

	t.Run("missing scope", func(t *testing.T) {
		r := newRouter(v, "audit.read")
		checkRejected(t, r, r.do("Bearer "+vendor, true), vendor, http.StatusForbidden,
			`Bearer error="insufficient_scope", scope="audit.read"`, "insufficient_scope")
	})
	t.Run("right scope", func(t *testing.T) {
		r := newRouter(v, "readings.write")
		rec := r.do("Bearer "+vendor, true)
		if rec.Code != http.StatusOK || r.called != 1 {
			t.Fatalf("status %d, called %d", rec.Code, r.called)
		}
		if !r.seenOK || r.seen.ClientID != "acme-rpm" || !r.seen.MayPostFor("dev-1") || r.seen.MayPostFor("dev-3") {
			t.Fatalf("downstream principal %+v %v", r.seen, r.seenOK)
		}
	})
	t.Run("admin has every scope", func(t *testing.T) {
		r := newRouter(v, "audit.read")
		if rec := r.do("Bearer "+admin, true); rec.Code != http.StatusOK || r.called != 1 {
			t.Fatalf("status %d, called %d", rec.Code, r.called)
		}
		if r.seen.Devices != nil || !r.seen.MayPostFor("any-device") {
			t.Fatalf("admin principal %+v", r.seen)
		}
	})
	t.Run("no scope required", func(t *testing.T) {
		r := newRouter(v, "")
		if rec := r.do("Bearer "+vendor, true); rec.Code != http.StatusOK || r.called != 1 {
			t.Fatalf("status %d, called %d", rec.Code, r.called)
		}
	})
}

func TestMiddlewareUnknownKidAndIdPDown(t *testing.T) {
	k := inKeys()
	i := newIDP(t, oidctest.PublicKey{PublicKey: k.rsa.Public(), KeyID: "k1", Algorithm: "RS256"})
	clock := authtest.NewClock(inNow)
	v := i.verifier(t, clock)

	forged := i.token(t, k.other, jose.RS256, "nope")
	r := newRouter(v, "readings.write")
	checkRejected(t, r, r.do("Bearer "+forged, true), forged, http.StatusUnauthorized,
		`Bearer error="invalid_token", error_description="unknown key"`, "invalid_token")

	i.fail.Store(true)
	clock.Advance(31 * time.Second)
	forged = i.token(t, k.other, jose.RS256, "nope-2")
	r = newRouter(v, "readings.write")
	checkRejected(t, r, r.do("Bearer "+forged, true), forged, http.StatusServiceUnavailable, "", "temporarily_unavailable")
}

// fakeVerifier shows that the middleware only needs the small interface.
type fakeVerifier struct {
	p   auth.Principal
	err error
	got string
}

func (f *fakeVerifier) Verify(_ context.Context, raw string) (auth.Principal, error) {
	f.got = raw
	return f.p, f.err
}

func TestMiddlewareFakeVerifier(t *testing.T) {
	f := &fakeVerifier{p: auth.Principal{Subject: "op", Scopes: []string{"audit.read"}}}
	r := newRouter(f, "audit.read")
	if rec := r.do("Bearer abc.def.ghi", true); rec.Code != http.StatusOK || f.got != "abc.def.ghi" || r.seen.Subject != "op" {
		t.Fatalf("status %d, got %q, principal %+v", rec.Code, f.got, r.seen)
	}

	// An untyped error (whatever it says) is a generic invalid_token.
	f = &fakeVerifier{err: errors.New("db down for abc.def.ghi")}
	r = newRouter(f, "audit.read")
	checkRejected(t, r, r.do("Bearer abc.def.ghi", true), "abc.def.ghi", http.StatusUnauthorized,
		`Bearer error="invalid_token", error_description="invalid token"`, "invalid_token")
}

func TestPrincipalFromContext(t *testing.T) {
	if _, ok := auth.PrincipalFromContext(context.Background()); ok {
		t.Fatal("principal in empty context")
	}
	ctx := auth.ContextWithPrincipal(context.Background(), auth.Principal{Subject: "s"})
	if p, ok := auth.PrincipalFromContext(ctx); !ok || p.Subject != "s" {
		t.Fatalf("got %+v %v", p, ok)
	}
	// A string key with the same spelling cannot collide with the private one.
	ctx = context.WithValue(context.Background(), "principal", auth.Principal{Subject: "forged"}) //nolint:staticcheck // deliberate
	if _, ok := auth.PrincipalFromContext(ctx); ok {
		t.Fatal("string key accepted")
	}
}
