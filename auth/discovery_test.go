package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fhir-bridge/fhir-bridge/auth"
)

// discoveryServer serves doc (JSON-encoded unless it is a string) with
// status at any path and records the paths asked for.
func discoveryServer(t *testing.T, status int, doc any) (*httptest.Server, *[]string) {
	t.Helper()
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if s, ok := doc.(string); ok {
			_, _ = w.Write([]byte(s))
			return
		}
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	return srv, &paths
}

func TestDiscover(t *testing.T) {
	doc := map[string]any{
		"token_endpoint":                                   "https://auth.example.org/oauth2/token",
		"grant_types_supported":                            []string{"authorization_code", "client_credentials"},
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"scopes_supported":                                 []string{"system/Observation.c"},
		"capabilities":                                     []string{"client-confidential-asymmetric", "permission-v2"},
		"code_challenge_methods_supported":                 []string{"S256"},
	}
	srv, paths := discoveryServer(t, http.StatusOK, doc)
	for _, base := range []string{srv.URL + "/fhir/R4", srv.URL + "/fhir/R4/"} {
		got, err := auth.Discover(context.Background(), srv.Client(), base)
		if err != nil {
			t.Fatalf("Discover(%s): %v", base, err)
		}
		want := auth.SMARTConfig{
			TokenEndpoint:                              "https://auth.example.org/oauth2/token",
			GrantTypesSupported:                        []string{"authorization_code", "client_credentials"},
			TokenEndpointAuthMethodsSupported:          []string{"private_key_jwt"},
			TokenEndpointAuthSigningAlgValuesSupported: []string{"RS384", "ES384"},
			ScopesSupported:                            []string{"system/Observation.c"},
			Capabilities:                               []string{"client-confidential-asymmetric", "permission-v2"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config (-want +got):\n%s", diff)
		}
	}
	if diff := cmp.Diff([]string{"/fhir/R4/.well-known/smart-configuration", "/fhir/R4/.well-known/smart-configuration"}, *paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

func TestDiscoverLoopbackHTTP(t *testing.T) {
	for _, ep := range []string{"http://127.0.0.1:8080/token", "http://localhost/token", "http://[::1]:9/token"} {
		srv, _ := discoveryServer(t, http.StatusOK, map[string]any{"token_endpoint": ep})
		if _, err := auth.Discover(context.Background(), nil, srv.URL); err != nil {
			t.Errorf("token_endpoint %s: %v", ep, err)
		}
	}
}

func TestDiscoverErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		doc       any
		field     string // DiscoveryError.Field
		want      string // substring of the message
		temporary bool
	}{
		{name: "missing token_endpoint", doc: map[string]any{"grant_types_supported": []string{"client_credentials"}},
			field: "token_endpoint", want: "token_endpoint: missing"},
		{name: "http not loopback", doc: map[string]any{"token_endpoint": "http://auth.example.org/token"},
			field: "token_endpoint", want: "plain http is allowed only for a loopback host"},
		{name: "relative URL", doc: map[string]any{"token_endpoint": "/oauth2/token"},
			field: "token_endpoint", want: "not an absolute URL"},
		{name: "other scheme", doc: map[string]any{"token_endpoint": "ftp://auth.example.org/token"},
			field: "token_endpoint", want: `scheme "ftp"`},
		{name: "no client_credentials", doc: map[string]any{"token_endpoint": "https://a.example/t", "grant_types_supported": []string{"authorization_code"}},
			field: "grant_types_supported", want: "does not include client_credentials"},
		{name: "no asymmetric alg", doc: map[string]any{"token_endpoint": "https://a.example/t", "token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "HS256"}},
			field: "token_endpoint_auth_signing_alg_values_supported", want: "neither RS384 nor ES384"},
		{name: "not found", status: http.StatusNotFound, doc: "{}", want: "HTTP 404"},
		{name: "unavailable", status: http.StatusServiceUnavailable, doc: "", want: "HTTP 503", temporary: true},
		{name: "not JSON", doc: "<html>login</html>", want: "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status := tc.status
			if status == 0 {
				status = http.StatusOK
			}
			srv, _ := discoveryServer(t, status, tc.doc)
			_, err := auth.Discover(context.Background(), srv.Client(), srv.URL+"/fhir")
			var de *auth.DiscoveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DiscoveryError", err)
			}
			if de.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q (field %q), want field %q and %q", err, de.Field, tc.field, tc.want)
			}
			if tc.field != "" && !strings.Contains(err.Error(), tc.field) {
				t.Errorf("err = %q does not name the field", err)
			}
			if de.Temporary() != tc.temporary {
				t.Errorf("Temporary() = %v, want %v", de.Temporary(), tc.temporary)
			}
		})
	}
}

func TestDiscoverBadBase(t *testing.T) {
	for _, base := range []string{"", "ehr.example.org/fhir", "ftp://ehr.example.org/fhir"} {
		if _, err := auth.Discover(context.Background(), nil, base); err == nil {
			t.Errorf("Discover(%q) succeeded", base)
		}
	}
}

func TestDiscoverUnreachableIsTemporary(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	_, err := auth.Discover(context.Background(), nil, base)
	var de *auth.DiscoveryError
	if !errors.As(err, &de) || !de.Temporary() {
		t.Errorf("err = %v, want a temporary *DiscoveryError", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = auth.Discover(ctx, nil, base)
	if !errors.As(err, &de) || de.Temporary() {
		t.Errorf("cancelled: err = %v, want a permanent *DiscoveryError", err)
	}
}
