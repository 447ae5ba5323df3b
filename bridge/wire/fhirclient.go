package wire

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"golang.org/x/oauth2"
)

// newFHIRClient builds the client of a FHIR destination: TLS settings, then
// the configured authentication around them. Secrets come from files or the
// environment and are never logged.
func newFHIRClient(f *bridge.FHIRDestination, getenv func(string) string) (*fhir.Client, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	if f.TLS != nil {
		// hl7.TLSConfig is the project's one loader of CA and client-cert PEM files.
		tc, err := hl7.TLSConfig(f.TLS.CAFile, f.TLS.CertFile, f.TLS.KeyFile, f.TLS.ServerName)
		if err != nil {
			return nil, fmt.Errorf("fhir tls: %w", err)
		}
		base.TLSClientConfig = tc
	} else {
		base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = base
	if f.Auth != nil {
		ts, err := tokenSource(f, getenv, &http.Client{Transport: base, Timeout: 10 * time.Second})
		if err != nil {
			return nil, err
		}
		rt = auth.Transport(base, ts)
	}
	return fhir.NewClient(fhir.ClientConfig{
		BaseURL:    f.BaseURL,
		Timeout:    f.Timeout,
		HTTPClient: &http.Client{Transport: rt, Timeout: f.Timeout},
	})
}

func tokenSource(f *bridge.FHIRDestination, getenv func(string) string, hc *http.Client) (oauth2.TokenSource, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	a := f.Auth
	switch {
	case a.SMARTBackend != nil:
		sb := a.SMARTBackend
		pemBytes := []byte(getenv("FHIR_BRIDGE_SMART_KEY"))
		if len(pemBytes) == 0 {
			var err error
			if pemBytes, err = os.ReadFile(sb.PrivateKeyFile); err != nil {
				return nil, fmt.Errorf("smart_backend.private_key_file: %w", err)
			}
		}
		key, err := auth.LoadPrivateKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("smart_backend private key: %w", err)
		}
		return auth.NewTokenSource(auth.BackendConfig{
			ClientID: sb.ClientID, TokenURL: sb.TokenURL, FHIRBaseURL: f.BaseURL,
			Scopes: sb.Scopes, Key: key, KeyID: sb.KeyID, HTTPClient: hc,
		})
	case a.ClientSecret != nil:
		cs := a.ClientSecret
		secret := getenv(cs.SecretEnv)
		if secret == "" {
			return nil, fmt.Errorf("client_secret: environment variable %s is empty", cs.SecretEnv)
		}
		return auth.ClientSecretTokenSource(context.Background(), cs.TokenURL, cs.ClientID, secret, cs.Scopes)
	default:
		tok := getenv(a.BearerTokenEnv)
		if tok == "" {
			return nil, fmt.Errorf("bearer_token_env: environment variable %s is empty", a.BearerTokenEnv)
		}
		return auth.StaticToken(tok), nil
	}
}
