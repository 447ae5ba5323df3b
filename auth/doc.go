// Package auth authenticates the bridge to EHR FHIR endpoints with SMART
// Backend Services (SMART App Launch v2.2, "Backend Services"; HL7 FHIR
// Bulk Data Access authorization), the client_credentials grant with
// private_key_jwt client authentication (RFC 7523) that Epic, Oracle Health
// and most US EHRs require of system clients.
//
// The outbound flow:
//
//  1. An operator generates a key (GenerateKey), publishes its public half
//     as a JWKS (JWKS, kid = KeyID, the RFC 7638 thumbprint) and registers a
//     client_id with the EHR. See docs/smart-backend-services.md.
//  2. The bridge loads the key (LoadPrivateKey) and optionally discovers the
//     token endpoint from [base]/.well-known/smart-configuration (Discover).
//  3. NewTokenSource signs a fresh, short-lived client assertion (RS384 or
//     ES384, unique jti) for every token request, and caches the access token
//     until shortly before it expires.
//  4. Transport / HTTPClient attach the token to FHIR requests and, when the
//     FHIR server answers 401, drop the token and retry once with a new one.
//
// Simpler servers are served by ClientSecretTokenSource (client_secret_basic)
// and StaticToken. Package authtest provides an in-process SMART token
// endpoint that verifies assertions the way an EHR does, for tests and demos.
//
// Failures are typed: *TokenError (the token endpoint's OAuth error, with
// Temporary) and *DiscoveryError. Neither, nor anything else this package
// returns, contains a client assertion, an access token or key material, and
// the package does not log.
//
// auth is a leaf package: it imports no other package of the bridge.
//
// Inbound, NewVerifier checks the OIDC bearer tokens of the bridge's HTTP
// API with go-oidc: RS256/ES256 only, issuer, audience, exp/nbf with a small
// leeway, and a guard that refetches the issuer's keys for an unknown key id
// at most every 30 s, so forged tokens cannot hammer the identity provider.
// A Principal carries the subject, scopes, roles and the devices a vendor may
// post for; Middleware enforces a scope on gin routes and stores the
// principal in the request context (PrincipalFromContext).
package auth
