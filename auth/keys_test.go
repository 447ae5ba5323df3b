package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/fhir-bridge/fhir-bridge/auth"
)

// Keys are generated once per test binary: RSA generation is slow, and tests
// must not depend on committed keys.
var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	ecKey  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) })
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func TestLoadPrivateKey(t *testing.T) {
	sec1, err := x509.MarshalECPrivateKey(ecKey())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pem  []byte
		pub  crypto.PublicKey
	}{
		{"PKCS#8 RSA", pkcs8(t, rsaKey()), rsaKey().Public()},
		{"PKCS#1 RSA", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey())), rsaKey().Public()},
		{"PKCS#8 EC P-384", pkcs8(t, ecKey()), ecKey().Public()},
		{"SEC 1 EC P-384", pemBlock("EC PRIVATE KEY", sec1), ecKey().Public()},
		{"leading text", append([]byte("# bridge key\n"), pkcs8(t, ecKey())...), ecKey().Public()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := auth.LoadPrivateKey(tc.pem)
			if err != nil {
				t.Fatalf("LoadPrivateKey: %v", err)
			}
			if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
				t.Error("loaded key does not match the encoded one")
			}
		})
	}
}

func TestLoadPrivateKeyErrors(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(rsaKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pem  []byte
		want string // substring of the error
	}{
		{"empty", nil, "no PEM block"},
		{"garbage", []byte("not a key at all"), "no PEM block"},
		{"garbage in PEM", pemBlock("PRIVATE KEY", []byte("garbage garbage garbage")), "parsing PRIVATE KEY block"},
		{"PKCS#1 label on PKCS#8", pemBlock("RSA PRIVATE KEY", x509MustPKCS8(rsaKey())), "parsing RSA PRIVATE KEY block"},
		{"public key", pemBlock("PUBLIC KEY", pubDER), `"PUBLIC KEY" is not a private key`},
		{"encrypted PKCS#8", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), "encrypted"},
		{"encrypted legacy PEM", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1, 2, 3}}), "encrypted"},
		{"P-256", pkcs8(t, mustEC(elliptic.P256())), "curve P-256, ES384 needs P-384"},
		{"P-521", pkcs8(t, mustEC(elliptic.P521())), "curve P-521"},
		{"RSA 1024", pkcs8(t, mustRSA(1024)), "RSA key has 1024 bits, need at least 2048"},
		{"RSA 1024 PKCS#1", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(mustRSA(1024))), "1024 bits"},
		{"Ed25519", pkcs8(t, edKey), "unsupported key type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := auth.LoadPrivateKey(tc.pem)
			if err == nil {
				t.Fatalf("LoadPrivateKey = %T, want an error", k)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			assertNoKeyMaterial(t, err.Error(), tc.pem)
		})
	}
}

func x509MustPKCS8(key any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return der
}

// assertNoKeyMaterial fails if msg contains any 8-character run of the PEM
// body's base64 or any 6-byte run of the DER, the two forms key bytes could
// leak in.
func assertNoKeyMaterial(t *testing.T, msg string, pemBytes []byte) {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return
	}
	body := strings.Join(strings.Split(string(pemBytes), "\n")[1:], "")
	body = strings.TrimSuffix(body, "-----END "+block.Type+"-----")
	for i := 0; i+8 <= len(body); i++ {
		if chunk := body[i : i+8]; strings.Contains(msg, chunk) && strings.Trim(chunk, "A") != "" {
			t.Fatalf("error %q contains base64 key material %q", msg, chunk)
		}
	}
	for i := 0; i+6 <= len(block.Bytes); i++ {
		if strings.Contains(msg, string(block.Bytes[i:i+6])) {
			t.Fatalf("error %q contains DER key bytes", msg)
		}
	}
}

func TestKeyIDIsJWKThumbprint(t *testing.T) {
	keys := []crypto.PublicKey{rsaKey().Public(), mustRSA(2048).Public()}
	// Enough EC keys that some coordinate has a leading zero byte, which the
	// thumbprint must keep (fixed-width coordinates, RFC 7518 §6.2.1.2).
	for range 40 {
		keys = append(keys, mustEC(elliptic.P384()).Public())
	}
	for i, pub := range keys {
		want, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if got := auth.KeyID(pub); got != b64(want) {
			t.Errorf("key %d: KeyID = %q, go-jose thumbprint %q", i, got, b64(want))
		}
	}
	if got := auth.KeyID(rsaKey().Public()); got != auth.KeyID(rsaKey().Public()) || len(got) != 43 {
		t.Errorf("KeyID not stable or not 43 base64url chars: %q", got)
	}
	if got := auth.KeyID("not a key"); got != "" {
		t.Errorf("KeyID(string) = %q, want empty", got)
	}
}

func TestJWKS(t *testing.T) {
	// Private keys may be passed; only public parts may come out.
	raw, err := auth.JWKS(rsaKey(), ecKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("go-jose cannot parse the JWKS: %v\n%s", err, raw)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("got %d keys, want 2", len(set.Keys))
	}
	wantAlg := []string{"RS384", "ES384"}
	pubs := []crypto.PublicKey{rsaKey().Public(), ecKey().Public()}
	for i, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Errorf("key %d: public=%v valid=%v", i, k.IsPublic(), k.Valid())
		}
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if k.KeyID != b64(tp) || k.KeyID != auth.KeyID(pubs[i]) {
			t.Errorf("key %d: kid %q, thumbprint %q, KeyID %q", i, k.KeyID, b64(tp), auth.KeyID(pubs[i]))
		}
		if k.Algorithm != wantAlg[i] || k.Use != "sig" {
			t.Errorf("key %d: alg %q use %q", i, k.Algorithm, k.Use)
		}
		if !k.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(pubs[i]) {
			t.Errorf("key %d does not round-trip", i)
		}
	}
	// Exactly the public members, nothing private.
	var members struct{ Keys []map[string]any }
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, m := range members.Keys {
		var names []string
		for n := range m {
			names = append(names, n)
		}
		slices.Sort(names)
		got = append(got, names)
	}
	want := [][]string{
		{"alg", "e", "kid", "kty", "n", "use"},
		{"alg", "crv", "kid", "kty", "use", "x", "y"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JWK members (-want +got):\n%s", diff)
	}

	if _, err := auth.JWKS(mustEC(elliptic.P256()).Public()); err == nil {
		t.Error("JWKS accepted a P-256 key")
	}
	empty, err := auth.JWKS()
	if err != nil || !strings.Contains(string(empty), `"keys": []`) {
		t.Errorf("JWKS() = %s, %v; want an empty key list", empty, err)
	}
}

func TestGenerateKey(t *testing.T) {
	for _, alg := range []string{auth.RS384, auth.ES384} {
		t.Run(alg, func(t *testing.T) {
			key, pemBytes, err := auth.GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----") {
				t.Errorf("PEM is not PKCS#8: %.30q", pemBytes)
			}
			loaded, err := auth.LoadPrivateKey(pemBytes)
			if err != nil {
				t.Fatalf("LoadPrivateKey(generated): %v", err)
			}
			if auth.KeyID(loaded.Public()) != auth.KeyID(key.Public()) {
				t.Error("generated PEM does not hold the returned key")
			}
			jwks, err := auth.JWKS(key.Public())
			if err != nil || !strings.Contains(string(jwks), `"alg": "`+alg+`"`) {
				t.Errorf("JWKS = %s, %v", jwks, err)
			}
		})
	}
	if _, _, err := auth.GenerateKey("HS256"); err == nil {
		t.Error("GenerateKey(HS256) succeeded")
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
