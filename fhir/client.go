package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ContentType is the FHIR JSON media type. The charset is explicit because
// HTTP's default for text is ISO-8859-1.
const ContentType = "application/fhir+json; charset=utf-8"

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is the FHIR server base, e.g. https://ehr.example.org/fhir. Required.
	BaseURL string
	// Timeout bounds each request, including reading the response.
	// Default: 10s.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: a client with Timeout.
	HTTPClient *http.Client
	// UserAgent is sent on every request. Default: "fhir-bridge".
	UserAgent string
}

// Client talks FHIR REST to one server.
type Client struct {
	base    string
	timeout time.Duration
	hc      *http.Client
	ua      string
}

// NewClient returns a client for cfg.BaseURL.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fhir base URL %q: must be an absolute http(s) URL", cfg.BaseURL)
	}
	c := &Client{base: strings.TrimRight(cfg.BaseURL, "/"), timeout: cfg.Timeout, hc: cfg.HTTPClient, ua: cfg.UserAgent}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: c.timeout}
	}
	if c.ua == "" {
		c.ua = "fhir-bridge"
	}
	return c, nil
}

// BaseURL returns the server base the client posts to.
func (c *Client) BaseURL() string { return c.base }

// Result is the server's answer to a successful create.
type Result struct {
	// Status is 201 when the resource was created, 200 when a conditional
	// create matched an existing resource.
	Status int
	// Location is the Location header (or Content-Location), when given.
	Location string
}

// Created reports whether the server created a new resource.
func (r Result) Created() bool { return r.Status == http.StatusCreated }

// Create posts a resource to [base]/[resourceType]. When ifNoneExist is not
// empty it is sent as If-None-Exist (search parameters without the leading
// "?"), which makes the create idempotent: a repeat returns 200, not a copy.
// A failure is a *StatusError (the server answered) or a *TransportError.
func (c *Client) Create(ctx context.Context, resourceType string, body []byte, ifNoneExist string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base + "/" + resourceType
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("create %s: %w", resourceType, err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "return=minimal")
	req.Header.Set("User-Agent", c.ua)
	if ifNoneExist != "" {
		req.Header.Set("If-None-Exist", ifNoneExist)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Result{}, &TransportError{Op: "POST " + target, Err: err}
	}
	defer resp.Body.Close()
	// Read a bounded amount: only an OperationOutcome is of interest, and a
	// misbehaving server must not make the bridge buffer megabytes.
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Result{}, &TransportError{Op: "POST " + target, Err: err}
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		loc := resp.Header.Get("Location")
		if loc == "" {
			loc = resp.Header.Get("Content-Location")
		}
		return Result{Status: resp.StatusCode, Location: loc}, nil
	}
	return Result{}, &StatusError{
		Op:         "POST " + target,
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Outcome:    outcomeText(respBody),
	}
}

// StatusError is a non-success HTTP answer from the FHIR server.
type StatusError struct {
	Op         string
	Status     int
	RetryAfter time.Duration // from Retry-After; zero when absent
	Outcome    string        // OperationOutcome issues, flattened; may be empty
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Op, e.Status)
	if e.Outcome != "" {
		s += ": " + e.Outcome
	}
	return s
}

// Temporary reports whether repeating the request may succeed: 408, 429 and
// 5xx. Every other status is permanent (FHIR http.html: do not retry 4xx).
func (e *StatusError) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Wait is how long the server asked the client to wait before retrying.
func (e *StatusError) Wait() time.Duration { return e.RetryAfter }

// TransportError is a failure to get an answer at all: connection refused or
// reset, TLS failure, timeout. It is always worth retrying unless the caller's
// context has ended.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// Temporary reports true unless the request was cancelled by its caller.
func (e *TransportError) Temporary() bool { return !errors.Is(e.Err, context.Canceled) }

// maxRetryAfterSeconds is the largest delta-seconds a time.Duration holds.
const maxRetryAfterSeconds = math.MaxInt64 / int64(time.Second)

// parseRetryAfter reads delta-seconds or an HTTP-date; unusable values give 0.
// A delay too long for a time.Duration saturates, as time.Time.Sub does for
// a far-future date, instead of wrapping around.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		if int64(n) > maxRetryAfterSeconds {
			return math.MaxInt64
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// outcomeText flattens an OperationOutcome body into "severity code: text"
// items. Anything else yields at most a short prefix of the body, so errors
// stay readable and bounded. The text is valid UTF-8 without NUL bytes: it
// ends up in logs and in the audit trail, and PostgreSQL text rejects both.
func outcomeText(body []byte) string {
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity    string   `json:"severity"`
			Code        string   `json:"code"`
			Diagnostics string   `json:"diagnostics"`
			Expression  []string `json:"expression"`
			Details     struct {
				Text string `json:"text"`
			} `json:"details"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" {
		s := printable(strings.TrimSpace(string(body)))
		if len(s) > 200 {
			cut := 200
			for !utf8.RuneStart(s[cut]) {
				cut--
			}
			s = s[:cut] + "..."
		}
		return s
	}
	parts := make([]string, 0, len(oo.Issue))
	for _, is := range oo.Issue {
		text := is.Diagnostics
		if text == "" {
			text = is.Details.Text
		}
		p := is.Severity + " " + is.Code
		if len(is.Expression) > 0 {
			p += " at " + strings.Join(is.Expression, ",")
		}
		if text != "" {
			p += ": " + text
		}
		parts = append(parts, p)
	}
	return printable(strings.Join(parts, "; "))
}

// printable replaces invalid UTF-8 and NUL bytes with U+FFFD.
func printable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// IfNoneExistIdentifier renders the If-None-Exist search for a token
// identifier=system|value, escaping both parts.
func IfNoneExistIdentifier(system, value string) string {
	return "identifier=" + url.QueryEscape(system+"|"+value)
}

// Update puts a resource with a client-assigned id: PUT [base]/[type]/[id],
// which creates it when the server allows update-as-create. 200 and 201 are
// success; failures are typed as for Create.
func (c *Client) Update(ctx context.Context, resourceType, id string, body []byte) (Result, error) {
	return c.UpdateVersion(ctx, resourceType, id, body, "")
}

// UpdateVersion is Update with If-Match on the resource's current version
// (meta.versionId; "" sends none): a server whose resource has moved on
// answers 412, a *StatusError, and nothing is changed (FHIR's optimistic
// locking for concurrent updates).
func (c *Client) UpdateVersion(ctx context.Context, resourceType, id string, body []byte, version string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base + "/" + resourceType + "/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("update %s/%s: %w", resourceType, id, err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "return=minimal")
	req.Header.Set("User-Agent", c.ua)
	if version != "" {
		req.Header.Set("If-Match", `W/"`+version+`"`)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Result{}, &TransportError{Op: "PUT " + target, Err: err}
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Result{}, &TransportError{Op: "PUT " + target, Err: err}
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		return Result{Status: resp.StatusCode, Location: resp.Header.Get("Location")}, nil
	}
	return Result{}, &StatusError{Op: "PUT " + target, Status: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), Outcome: outcomeText(respBody)}
}

// Stored is a resource as the server holds it.
type Stored struct {
	ID      string // logical id
	Version string // meta.versionId
	// Body is the resource's FHIR JSON as the server returned it.
	Body []byte
}

// FindByIdentifier searches [base]/[type]?identifier=system|value and
// returns the resource found; found is false when there is none. More than
// one match is an error: the identifier is meant to be unique.
func (c *Client) FindByIdentifier(ctx context.Context, resourceType, system, value string) (Stored, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base + "/" + resourceType + "?" + IfNoneExistIdentifier(system, value)
	op := "GET " + c.base + "/" + resourceType + "?identifier"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return Stored{}, false, fmt.Errorf("search %s: %w", resourceType, err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.hc.Do(req)
	if err != nil {
		return Stored{}, false, &TransportError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Stored{}, false, &TransportError{Op: op, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return Stored{}, false, &StatusError{Op: op, Status: resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), Outcome: outcomeText(body)}
	}
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Search struct {
				Mode string `json:"mode"`
			} `json:"search"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &bundle); err != nil || bundle.ResourceType != "Bundle" {
		return Stored{}, false, &BatchError{Op: op, Reason: "not a searchset Bundle"}
	}
	var found []Stored
	for _, e := range bundle.Entry {
		if e.Search.Mode != "" && e.Search.Mode != "match" {
			continue // included resources, outcomes
		}
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
			Meta         struct {
				VersionID string `json:"versionId"`
			} `json:"meta"`
		}
		if json.Unmarshal(e.Resource, &head) != nil || head.ResourceType != resourceType || head.ID == "" {
			continue
		}
		found = append(found, Stored{ID: head.ID, Version: head.Meta.VersionID, Body: e.Resource})
	}
	switch len(found) {
	case 0:
		return Stored{}, false, nil
	case 1:
		return found[0], true, nil
	}
	return Stored{}, false, &BatchError{Op: op, Reason: fmt.Sprintf("%d resources carry the identifier", len(found))}
}
