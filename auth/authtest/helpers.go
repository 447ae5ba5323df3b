package authtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Clock is a settable clock for Config.Now and the client's Now, so tests
// move time instead of sleeping. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Claims returns a valid claim set for a client assertion: iss = sub =
// clientID, aud, iat = now, exp = now + 4 min and a random jti. Tests change
// entries to craft invalid assertions.
func Claims(clientID, aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss": clientID,
		"sub": clientID,
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(4 * time.Minute).Unix(),
		"jti": newID(16),
	}
}

// SignAssertion signs claims as a compact JWS with key and alg, with header
// typ "JWT" and, when not empty, kid. header entries are added to the
// protected header or replace typ; a "typ" of "" leaves typ out. Any go-jose
// signing key works, including []byte for HS256, so tests can craft
// assertions a correct client would never send.
func SignAssertion(key any, alg, kid string, claims any, header map[string]any) (string, error) {
	opts := &jose.SignerOptions{}
	typ := any("JWT")
	for k, v := range header {
		if k == "typ" {
			typ = v
			continue
		}
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	if typ != "" {
		opts = opts.WithHeader("typ", typ)
	}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// UnsignedAssertion returns an "alg":"none" JWT (RFC 7519 §6), which a
// SMART server must refuse.
func UnsignedAssertion(kid string, claims any) (string, error) {
	h, err := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + ".", nil
}

// newToken returns an opaque access token: 256 random bits.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
