package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// Signing algorithms SMART Backend Services allows for client assertions
// (SMART App Launch v2.2, "Authenticating to the Token endpoint"): clients
// support both, servers validate at least one.
const (
	RS384 = "RS384" // RSASSA-PKCS1-v1_5 with SHA-384; RSA key of at least 2048 bits
	ES384 = "ES384" // ECDSA on P-384 with SHA-384
)

// MinRSABits is the smallest RSA modulus LoadPrivateKey and NewTokenSource
// accept. SMART does not set one; 2048 is what NIST SP 800-131A and every EHR
// vendor's registration page ask for.
const MinRSABits = 2048

// LoadPrivateKey parses the first PEM block of pemBytes as a private key for
// signing client assertions. It accepts PKCS#8 ("PRIVATE KEY") holding an RSA
// or EC key, PKCS#1 ("RSA PRIVATE KEY") and SEC 1 ("EC PRIVATE KEY"). RSA keys
// must have at least MinRSABits bits and EC keys must be on P-384, the only
// curve ES384 uses. Encrypted PEM is not supported: protect the file with
// permissions or a secret store instead.
//
// Errors describe the problem (block type, key type, size, curve) and never
// contain key material.
func LoadPrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("private key: no PEM block found")
	}
	if _, ok := block.Headers["Proc-Type"]; ok {
		return nil, errors.New("private key: encrypted PEM is not supported")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("private key: encrypted PKCS#8 is not supported")
	default:
		return nil, fmt.Errorf("private key: PEM block type %q is not a private key (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		// The x509 parse errors name the structure that failed, not its
		// contents, so they are safe to wrap.
		return nil, fmt.Errorf("private key: parsing %s block: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key: unsupported key type %T", key)
	}
	if _, err := algForKey(signer.Public()); err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	return signer, nil
}

// algForKey returns the SMART signing algorithm for a public key, or an error
// for key types, sizes and curves that SMART does not allow.
func algForKey(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return "", fmt.Errorf("RSA key has %d bits, need at least %d", bits, MinRSABits)
		}
		return RS384, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P384() {
			return "", fmt.Errorf("EC key is on curve %s, ES384 needs P-384", k.Curve.Params().Name)
		}
		return ES384, nil
	default:
		return "", fmt.Errorf("unsupported key type %T: SMART client assertions need RSA (RS384) or EC P-384 (ES384)", pub)
	}
}

// KeyID returns the RFC 7638 JWK thumbprint of pub (SHA-256, base64url without
// padding). It depends only on the public key, so it is stable across restarts
// and hosts and makes a good "kid". It returns "" for a key type other than
// RSA or ECDSA.
func KeyID(pub crypto.PublicKey) string {
	var members []byte
	switch k := pub.(type) {
	case *rsa.PublicKey:
		// Members in lexicographic order, no whitespace (RFC 7638 §3.2).
		members = fmt.Appendf(nil, `{"e":"%s","kty":"RSA","n":"%s"}`,
			b64(big.NewInt(int64(k.E)).Bytes()), b64(k.N.Bytes()))
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		x, y, ok := ecPoint(k, size)
		if !ok {
			return ""
		}
		members = fmt.Appendf(nil, `{"crv":"%s","kty":"EC","x":"%s","y":"%s"}`,
			k.Curve.Params().Name, b64(x), b64(y))
	default:
		return ""
	}
	sum := sha256.Sum256(members)
	return b64(sum[:])
}

// JWK is the public JSON Web Key the bridge publishes for one signing key.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	// RSA
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
	// EC
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// JWKS returns a JSON Web Key Set ({"keys":[...]}) holding the public half of
// each key, with kty, kid (KeyID), alg (RS384 or ES384) and use "sig". This is
// the document an operator serves at the JWKS URL registered with the EHR.
// Private keys may be passed: only their public parts are written. During a
// key rotation pass both the old and the new key.
func JWKS(pubs ...crypto.PublicKey) ([]byte, error) {
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: []JWK{}}
	for i, p := range pubs {
		if s, ok := p.(crypto.Signer); ok {
			p = s.Public()
		}
		alg, err := algForKey(p)
		if err != nil {
			return nil, fmt.Errorf("jwks key %d: %w", i, err)
		}
		k := JWK{Kid: KeyID(p), Alg: alg, Use: "sig"}
		switch pk := p.(type) {
		case *rsa.PublicKey:
			k.Kty = "RSA"
			k.N = b64(pk.N.Bytes())
			k.E = b64(big.NewInt(int64(pk.E)).Bytes())
		case *ecdsa.PublicKey:
			x, y, ok := ecPoint(pk, 48)
			if !ok {
				return nil, fmt.Errorf("jwks key %d: invalid EC public key", i)
			}
			k.Kty, k.Crv, k.X, k.Y = "EC", "P-384", b64(x), b64(y)
		}
		set.Keys = append(set.Keys, k)
	}
	return json.MarshalIndent(set, "", "  ")
}

// GenerateKey creates a new signing key for alg (RS384: RSA 3072 bits; ES384:
// EC P-384) and returns it with its PKCS#8 PEM encoding, ready to be written
// to a file only the bridge can read.
func GenerateKey(alg string) (crypto.Signer, []byte, error) {
	var (
		key crypto.Signer
		err error
	)
	switch alg {
	case RS384:
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		return nil, nil, fmt.Errorf("generate key: unsupported algorithm %q (want %s or %s)", alg, RS384, ES384)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: encoding PKCS#8: %w", alg, err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ecPoint returns the uncompressed coordinates of k, each left-padded to size
// bytes as RFC 7518 §6.2.1.2 requires.
func ecPoint(k *ecdsa.PublicKey, size int) (x, y []byte, ok bool) {
	raw, err := k.Bytes() // 0x04 || X || Y
	if err != nil || len(raw) != 1+2*size {
		return nil, nil, false
	}
	return raw[1 : 1+size], raw[1+size:], true
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
