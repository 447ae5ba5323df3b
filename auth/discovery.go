package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SMARTConfig is the part of a FHIR server's
// [base]/.well-known/smart-configuration document (SMART App Launch v2.2
// §"SMART on FHIR Authorization: Discovery") that backend services use.
type SMARTConfig struct {
	Issuer                                     string   `json:"issuer,omitempty"`
	JWKSURI                                    string   `json:"jwks_uri,omitempty"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	GrantTypesSupported                        []string `json:"grant_types_supported,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	Capabilities                               []string `json:"capabilities,omitempty"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint,omitempty"`
	RevocationEndpoint                         string   `json:"revocation_endpoint,omitempty"`
}

// SupportsAlg reports whether the server accepts client assertions signed
// with alg. A server that does not list its algorithms is assumed to accept
// both SMART algorithms.
func (c SMARTConfig) SupportsAlg(alg string) bool {
	return len(c.TokenEndpointAuthSigningAlgValuesSupported) == 0 ||
		slices.Contains(c.TokenEndpointAuthSigningAlgValuesSupported, alg)
}

// WellKnownPath is appended to the FHIR base URL to find the SMART
// configuration.
const WellKnownPath = "/.well-known/smart-configuration"

// maxDiscoveryBytes bounds the discovery document; real ones are a few KB.
const maxDiscoveryBytes = 1 << 20

// Discover fetches and checks the SMART configuration of the FHIR server at
// fhirBase. The well-known path is appended to the base even when the base
// has a path of its own (https://ehr.example.org/fhir/R4 →
// https://ehr.example.org/fhir/R4/.well-known/smart-configuration). hc
// defaults to a client with a 10 s timeout; it must not be an authenticated
// client, the document is public.
//
// The document must name a token_endpoint that is an absolute https URL
// (http is allowed only for a loopback host, for tests and local demos).
// When present, grant_types_supported must include client_credentials and
// token_endpoint_auth_signing_alg_values_supported must include RS384 or
// ES384. A failure is a *DiscoveryError that names the offending field.
func Discover(ctx context.Context, hc *http.Client, fhirBase string) (SMARTConfig, error) {
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	target := strings.TrimRight(fhirBase, "/") + WellKnownPath
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return SMARTConfig{}, &DiscoveryError{URL: target, Msg: "FHIR base must be an absolute http(s) URL"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return SMARTConfig{}, &DiscoveryError{URL: target, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return SMARTConfig{}, &DiscoveryError{URL: target, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes+1))
	if err != nil {
		return SMARTConfig{}, &DiscoveryError{URL: target, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return SMARTConfig{}, &DiscoveryError{URL: target, Status: resp.StatusCode, Msg: "unexpected HTTP status"}
	}
	if len(body) > maxDiscoveryBytes {
		return SMARTConfig{}, &DiscoveryError{URL: target, Msg: "document larger than 1 MiB"}
	}
	var cfg SMARTConfig
	if err := json.Unmarshal(body, &cfg); err != nil {
		return SMARTConfig{}, &DiscoveryError{URL: target, Msg: "document is not a JSON object", Err: err}
	}
	if err := cfg.Validate(); err != nil {
		var de *DiscoveryError
		if errors.As(err, &de) {
			de.URL = target
		}
		return SMARTConfig{}, err
	}
	return cfg, nil
}

// Validate checks what a backend service needs from the configuration; see
// Discover. Errors are *DiscoveryError values naming the field.
func (c SMARTConfig) Validate() error {
	if c.TokenEndpoint == "" {
		return &DiscoveryError{Field: "token_endpoint", Msg: "missing"}
	}
	if err := checkEndpointURL(c.TokenEndpoint); err != nil {
		return &DiscoveryError{Field: "token_endpoint", Msg: err.Error()}
	}
	if len(c.GrantTypesSupported) > 0 && !slices.Contains(c.GrantTypesSupported, "client_credentials") {
		return &DiscoveryError{Field: "grant_types_supported", Msg: "does not include client_credentials (the server does not offer SMART Backend Services)"}
	}
	if algs := c.TokenEndpointAuthSigningAlgValuesSupported; len(algs) > 0 &&
		!slices.Contains(algs, RS384) && !slices.Contains(algs, ES384) {
		return &DiscoveryError{Field: "token_endpoint_auth_signing_alg_values_supported", Msg: "includes neither RS384 nor ES384"}
	}
	return nil
}

// checkEndpointURL accepts an absolute https URL, or an http URL whose host
// is a loopback address or "localhost". Bearer tokens and client assertions
// must never cross a network in clear text.
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Host == "" || !u.IsAbs() {
		return errors.New("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("plain http is allowed only for a loopback host; use https")
	default:
		return fmt.Errorf("scheme %q is not https", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DiscoveryError is a failure to fetch or accept a SMART configuration.
type DiscoveryError struct {
	URL    string // the well-known URL, when known
	Status int    // HTTP status when the server answered with a non-200
	Field  string // the offending field of the document, if any
	Msg    string
	Err    error // underlying transport or decoding error, if any
}

// Error describes the failure, naming the URL and the field when known.
func (e *DiscoveryError) Error() string {
	var b strings.Builder
	b.WriteString("smart discovery")
	if e.URL != "" {
		b.WriteString(" " + e.URL)
	}
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d: ", e.Status)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	if e.Msg != "" {
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying transport or decoding error, if any.
func (e *DiscoveryError) Unwrap() error { return e.Err }

// Temporary reports whether trying again may succeed: transport failures
// (unless cancelled by the caller), 408, 429 and 5xx. A document that is
// missing a field or offers no backend services is permanent.
func (e *DiscoveryError) Temporary() bool {
	if e.Status != 0 {
		return temporaryStatus(e.Status)
	}
	if e.Err != nil && e.Field == "" && e.Msg == "" {
		return !errors.Is(e.Err, context.Canceled)
	}
	return false
}

func temporaryStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

const defaultTimeout = 10 * time.Second
