package auth

import (
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// refreshRetryDelay is how long a cache that still holds an unexpired token
// waits after a failed early refresh before it asks the endpoint again, so an
// outage of the authorization server does not turn every FHIR request into a
// token request.
const refreshRetryDelay = 5 * time.Second

// CachedTokenSource reuses a token until shortly before it expires, like
// oauth2.ReuseTokenSourceWithExpiry, and adds what that one lacks: an
// injectable clock and Invalidate, so a token the resource server rejected is
// not used again. It is safe for concurrent use; callers arriving while a
// fetch is in flight wait for it instead of starting their own.
type CachedTokenSource struct {
	src   oauth2.TokenSource
	early time.Duration
	now   func() time.Time

	mu        sync.Mutex // held during fetches: concurrent callers share one
	tok       *oauth2.Token
	refreshAt time.Time // when tok should be replaced
	failedAt  time.Time // last failed refresh while tok was still valid
}

// Cache wraps src. A token is replaced early before its Expiry, capped at
// half its lifetime so a short-lived token is not refetched on every call
// (early <= 0 means DefaultEarlyRefresh). If a refresh fails while the cached
// token has not yet expired, the cached token is returned and the refresh is
// retried on a call at least 5 s later. A token with a zero Expiry is kept
// until invalidated. now defaults to time.Now.
func Cache(src oauth2.TokenSource, early time.Duration, now func() time.Time) *CachedTokenSource {
	if early <= 0 {
		early = DefaultEarlyRefresh
	}
	if now == nil {
		now = time.Now
	}
	return &CachedTokenSource{src: src, early: early, now: now}
}

// Token returns the cached token or fetches a new one.
func (c *CachedTokenSource) Token() (*oauth2.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.tok != nil {
		if c.tok.Expiry.IsZero() || now.Before(c.refreshAt) {
			return c.tok, nil
		}
		if c.usable(now) && !c.failedAt.IsZero() && now.Sub(c.failedAt) < refreshRetryDelay {
			return c.tok, nil
		}
	}
	tok, err := c.src.Token()
	if err != nil {
		if c.tok != nil && c.usable(now) {
			c.failedAt = now
			return c.tok, nil
		}
		c.tok = nil
		return nil, err
	}
	c.tok, c.failedAt = tok, time.Time{}
	early := min(c.early, tok.Expiry.Sub(now)/2)
	c.refreshAt = tok.Expiry.Add(-early)
	return tok, nil
}

// usable reports whether the cached token has not yet expired.
func (c *CachedTokenSource) usable(now time.Time) bool {
	return c.tok.Expiry.IsZero() || now.Before(c.tok.Expiry)
}

// Invalidate drops the cached token if it is tok (compared by access token),
// so the next Token call fetches a new one. A nil tok drops whatever is
// cached. A token that was already replaced by another caller is left alone.
func (c *CachedTokenSource) Invalidate(tok *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && (tok == nil || c.tok.AccessToken == tok.AccessToken) {
		c.tok, c.failedAt = nil, time.Time{}
	}
}
