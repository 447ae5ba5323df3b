package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Invalidator is implemented by token sources that cache, such as the ones
// NewTokenSource, ClientSecretTokenSource and Cache return. Invalidate drops
// tok from the cache so the next Token call fetches a new one.
type Invalidator interface {
	Invalidate(tok *oauth2.Token)
}

// RefreshingTransport adds "Authorization: Bearer <token>" to each request,
// like oauth2.Transport, and recovers from a token the resource server no
// longer accepts (revoked, or expired early on a server with a skewed clock):
// on a 401 it invalidates the token (when Source is an Invalidator), and when
// the request body can be replayed (no body, or GetBody set, as
// http.NewRequest does for in-memory bodies) it fetches a new token and
// retries the request once. Without a replayable body the 401 is returned,
// and the next request uses a new token.
//
// The retry is safe for any method, POST included: a 401 means the server
// refused to authenticate the request and did not act on it (RFC 9110
// §15.5.2). The bridge's creates are conditional as well, so even a server
// that did act would not store a duplicate.
//
// Errors from Source are returned as they are (a *TokenError or
// *DiscoveryError); http.Client wraps them in a *url.Error, so use errors.As.
type RefreshingTransport struct {
	// Base sends the requests. Default: http.DefaultTransport.
	Base http.RoundTripper
	// Source supplies the tokens. Required.
	Source oauth2.TokenSource
}

// Transport returns a RefreshingTransport sending through base with tokens
// from ts. Use it as the Transport of the *http.Client given to the FHIR
// client (fhir.ClientConfig.HTTPClient).
func Transport(base http.RoundTripper, ts oauth2.TokenSource) http.RoundTripper {
	return &RefreshingTransport{Base: base, Source: ts}
}

// HTTPClient returns a copy of base (default: a zero http.Client) whose
// Transport is wrapped by Transport, so every request it sends carries a
// token from ts. base's Timeout, Jar and CheckRedirect are kept.
func HTTPClient(ts oauth2.TokenSource, base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	c.Transport = Transport(c.Transport, ts)
	return &c
}

// RoundTrip implements http.RoundTripper.
func (t *RefreshingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must close the request body, even on error; the base
	// transport does that once it has the request.
	bodyHandedOff := false
	defer func() {
		if !bodyHandedOff && req.Body != nil {
			req.Body.Close()
		}
	}()
	if t.Source == nil {
		return nil, errors.New("auth transport: no token source")
	}
	tok, err := t.Source.Token()
	if err != nil {
		return nil, err
	}
	bodyHandedOff = true
	resp, err := t.base().RoundTrip(withToken(req, tok, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	inv, ok := t.Source.(Invalidator)
	if !ok {
		return resp, nil
	}
	inv.Invalidate(tok)
	var body io.ReadCloser
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		body = req.Body
	case req.GetBody != nil:
		body, err = req.GetBody()
		if err != nil {
			return resp, nil
		}
	default:
		return resp, nil
	}
	fresh, err := t.Source.Token()
	if err != nil {
		closeBody(body)
		closeResponse(resp)
		return nil, err
	}
	if fresh.AccessToken == tok.AccessToken {
		// The source cannot do better (e.g. a static token): the 401 stands.
		closeBody(body)
		return resp, nil
	}
	closeResponse(resp)
	return t.base().RoundTrip(withToken(req, fresh, body))
}

func (t *RefreshingTransport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// withToken returns a shallow copy of req with body and the token set. The
// caller's request is not modified, as http.RoundTripper requires.
func withToken(req *http.Request, tok *oauth2.Token, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return r
}

func closeBody(b io.ReadCloser) {
	if b != nil && b != http.NoBody {
		b.Close()
	}
}

// closeResponse drains a little of the body so the connection can be reused.
func closeResponse(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// StaticToken returns a source that always yields token as a bearer token,
// for servers that hand out long-lived API tokens. It never refreshes.
func StaticToken(token string) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"})
}

// ClientSecretTokenSource returns a cached source of client_credentials tokens
// for servers that authenticate clients with a shared secret
// (client_secret_basic: HTTP Basic auth on the token request), using
// golang.org/x/oauth2/clientcredentials. SMART Backend Services prefers
// private_key_jwt (NewTokenSource); use this only where the EHR offers
// nothing else. ctx is used for every fetch; to use a custom HTTP client,
// store it in ctx under oauth2.HTTPClient. Fetch failures are *TokenError
// values with the secret redacted.
func ClientSecretTokenSource(ctx context.Context, tokenURL, clientID, secret string, scopes []string) (oauth2.TokenSource, error) {
	if clientID == "" || secret == "" {
		return nil, errors.New("client secret auth: client_id and secret are required")
	}
	if err := checkEndpointURL(tokenURL); err != nil {
		return nil, fmt.Errorf("client secret auth: token URL %q: %w", tokenURL, err)
	}
	cc := &clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		TokenURL:     tokenURL,
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	return Cache(secretSource{src: cc.TokenSource(ctx), secret: secret}, DefaultEarlyRefresh, nil), nil
}

// secretSource turns oauth2's errors, whose text includes the response body,
// into *TokenError values.
type secretSource struct {
	src    oauth2.TokenSource
	secret string
}

func (s secretSource) Token() (*oauth2.Token, error) {
	tok, err := s.src.Token()
	if err == nil {
		return tok, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return nil, &TokenError{
			Status:      re.Response.StatusCode,
			Code:        clean(re.ErrorCode, s.secret, 64),
			Description: clean(re.ErrorDescription, s.secret, 256),
		}
	}
	return nil, fmt.Errorf("client secret token request: %w", err)
}
