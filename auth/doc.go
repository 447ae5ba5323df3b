// Package auth will hold the bridge's authentication: inbound, OIDC bearer
// tokens verified with go-oidc for the HTTP API; outbound, SMART Backend
// Services client-assertion tokens for EHR FHIR endpoints. It is a leaf package.
//
// Nothing is implemented yet; the walking skeleton has no HTTP API and posts to
// EHRs without credentials.
package auth
