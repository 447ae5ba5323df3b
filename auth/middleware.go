package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// TokenVerifier verifies a raw bearer token; *Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, rawToken string) (Principal, error)
}

type principalKey struct{}

// ContextWithPrincipal returns a copy of ctx carrying p, for Middleware and
// for tests of handlers that read PrincipalFromContext.
func ContextWithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal Middleware stored in the
// request's context (c.Request.Context()).
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Middleware authenticates requests with an RFC 6750 bearer token verified
// by v and, when scope is not empty, requires that scope (or admin). On
// success the principal is stored in c.Request's context. Otherwise the
// request is aborted with a small JSON body {"error", "error_description"}:
//
//   - no bearer token: 401, WWW-Authenticate: Bearer (RFC 6750 §3.1: no
//     error code when the request has no authentication information);
//   - a rejected token: 401, Bearer error="invalid_token";
//   - the issuer's keys cannot be fetched: 503 temporarily_unavailable;
//   - scope missing: 403, Bearer error="insufficient_scope".
//
// Neither responses nor anything else contain the token.
func Middleware(v TokenVerifier, scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		raw, ok := bearerToken(c.GetHeader("Authorization"))
		if !ok {
			c.Header("WWW-Authenticate", "Bearer")
			abort(c, http.StatusUnauthorized, "invalid_token", "missing bearer token")
			return
		}
		p, err := v.Verify(c.Request.Context(), raw)
		if err != nil {
			var ve *VerifyError
			reason := "invalid token"
			if errors.As(err, &ve) {
				if ve.Reason == ReasonKeySetUnavailable {
					abort(c, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot verify tokens now")
					return
				}
				reason = ve.Reason
			}
			c.Header("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+quoteSafe(reason)+`"`)
			abort(c, http.StatusUnauthorized, "invalid_token", reason)
			return
		}
		if scope != "" && !p.HasScope(scope) {
			c.Header("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+quoteSafe(scope)+`"`)
			abort(c, http.StatusForbidden, "insufficient_scope", "requires scope "+scope)
			return
		}
		c.Request = c.Request.WithContext(ContextWithPrincipal(c.Request.Context(), p))
		c.Next()
	}
}

// bearerToken extracts the token of "Bearer <token>" (scheme
// case-insensitive). Any other scheme counts as no bearer token; extra
// fields are returned as they are so that they fail verification.
func bearerToken(h string) (string, bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(h), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func abort(c *gin.Context, status int, code, desc string) {
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(status, gin.H{"error": code, "error_description": desc})
}

// quoteSafe drops characters not allowed in an RFC 6750 quoted attribute
// value (%x20-21 / %x23-5B / %x5D-7E).
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
