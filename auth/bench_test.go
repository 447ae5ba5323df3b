package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"
)

// BenchmarkAssertion measures minting one client assertion: claims, a fresh
// jti, JSON, and the signature, which dominates.
func BenchmarkAssertion(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		key  crypto.Signer
	}{{"RS384-2048", rsaKey}, {"ES384", ecKey}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := newAssertionSource(BackendConfig{ClientID: "bench", TokenURL: "https://auth.example.org/token", Key: bc.key})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.assertion("https://auth.example.org/token", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
