package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBatchResponse bounds the batch-response Bundle the client reads. A
// response cut off at the limit fails to parse and is a *BatchError.
const maxBatchResponse = 8 << 20

// BatchEntry is one create in a batch Bundle.
type BatchEntry struct {
	ResourceType string // e.g. "Observation"
	Body         []byte // the resource's FHIR JSON (already encoded and validated)
	IfNoneExist  string // search params without "?", e.g. identifier=sys%7Cval; may be empty
}

// EntryResult is the server's answer for one entry.
type EntryResult struct {
	Status   int    // HTTP status parsed from response.status ("201 Created" -> 201)
	Location string // response.location
	Outcome  string // flattened OperationOutcome from response.outcome (like outcomeText), may be empty
}

// Temporary reports whether retrying this entry may succeed (408, 429, 5xx).
func (r EntryResult) Temporary() bool {
	return r.Status == http.StatusRequestTimeout || r.Status == http.StatusTooManyRequests || r.Status >= 500
}

// OK reports 200 or 201: created, or matched by a conditional create.
func (r EntryResult) OK() bool { return r.Status == http.StatusOK || r.Status == http.StatusCreated }

// BatchError is a 200 answer to a batch that is not a usable batch-response
// Bundle: not JSON, not a Bundle of type batch-response, a different number of
// entries than were sent, or an entry without a readable response.status. It
// is a protocol error, not a transient one: Temporary is false. The entries
// may or may not have been processed, so a caller that retries them must rely
// on conditional create (IfNoneExist) to stay idempotent.
type BatchError struct {
	Op     string
	Reason string
}

func (e *BatchError) Error() string { return e.Op + ": malformed batch-response: " + e.Reason }

// Temporary is always false.
func (e *BatchError) Temporary() bool { return false }

// Batch posts entries as one Bundle of type batch to the base URL and returns
// one EntryResult per entry, in order. Each entry succeeds or fails on its
// own (see EntryResult.OK and Temporary). The resources are embedded
// verbatim, not re-encoded. Headers and timeout are those of Create. A
// failure of the request as a whole is a *StatusError (non-200 answer), a
// *TransportError, or a *BatchError (200 with an unusable body). An empty
// entries sends nothing and returns nil.
func (c *Client) Batch(ctx context.Context, entries []BatchEntry) ([]EntryResult, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	body, err := batchBody(entries)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base
	op := "POST " + target + " (batch)"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "return=minimal")
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &TransportError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxBatchResponse))
	if err != nil {
		return nil, &TransportError{Op: op, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{
			Op:         op,
			Status:     resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Outcome:    outcomeText(respBody),
		}
	}
	return parseBatchResponse(op, respBody, len(entries))
}

// batchBody builds the request Bundle by concatenation, so each resource is
// sent byte for byte as given.
func batchBody(entries []BatchEntry) ([]byte, error) {
	n := 64
	for _, e := range entries {
		n += len(e.Body) + len(e.ResourceType) + len(e.IfNoneExist) + 80
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	buf.WriteString(`{"resourceType":"Bundle","type":"batch","entry":[`)
	for i, e := range entries {
		if e.ResourceType == "" || strings.ContainsAny(e.ResourceType, "/?# ") {
			return nil, fmt.Errorf("batch entry %d: bad resource type %q", i, e.ResourceType)
		}
		// An invalid body would corrupt the whole Bundle, not just its entry.
		if !json.Valid(e.Body) {
			return nil, fmt.Errorf("batch entry %d: %s body is not valid JSON", i, e.ResourceType)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"resource":`)
		buf.Write(bytes.TrimSpace(e.Body))
		buf.WriteString(`,"request":{"method":"POST","url":`)
		writeJSONString(buf, e.ResourceType)
		if e.IfNoneExist != "" {
			buf.WriteString(`,"ifNoneExist":`)
			writeJSONString(buf, e.IfNoneExist)
		}
		buf.WriteString(`}}`)
	}
	buf.WriteString(`]}`)
	return buf.Bytes(), nil
}

// writeJSONString writes s as a JSON string without HTML escaping, so a
// search such as a=1&b=2 stays readable on the wire.
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode's trailing newline
}

func parseBatchResponse(op string, body []byte, want int) ([]EntryResult, error) {
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Response *struct {
				Status   string          `json:"status"`
				Location string          `json:"location"`
				Outcome  json.RawMessage `json:"outcome"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, &BatchError{Op: op, Reason: "body is not JSON: " + outcomeText(body)}
	}
	if b.ResourceType != "Bundle" || b.Type != "batch-response" {
		return nil, &BatchError{Op: op, Reason: fmt.Sprintf("got %s of type %q, want a batch-response Bundle", strconv.Quote(b.ResourceType), b.Type)}
	}
	if len(b.Entry) != want {
		return nil, &BatchError{Op: op, Reason: fmt.Sprintf("%d entries for %d requests", len(b.Entry), want)}
	}
	out := make([]EntryResult, want)
	for i, e := range b.Entry {
		if e.Response == nil {
			return nil, &BatchError{Op: op, Reason: fmt.Sprintf("entry %d has no response", i)}
		}
		status := parseEntryStatus(e.Response.Status)
		if status == 0 {
			return nil, &BatchError{Op: op, Reason: fmt.Sprintf("entry %d: bad response.status %s", i, strconv.Quote(printable(e.Response.Status)))}
		}
		out[i] = EntryResult{Status: status, Location: printable(e.Response.Location)}
		if o := bytes.TrimSpace(e.Response.Outcome); len(o) > 0 && string(o) != "null" {
			out[i].Outcome = outcomeText(o)
		}
	}
	return out, nil
}

// parseEntryStatus reads the status code that begins response.status
// ("201 Created", or just "201"); 0 when there is none in 100..599.
func parseEntryStatus(s string) int {
	s = strings.TrimSpace(s)
	code, _, _ := strings.Cut(s, " ")
	if len(code) != 3 {
		return 0
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 599 {
		return 0
	}
	return n
}
