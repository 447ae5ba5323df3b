package fhir

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzOutcomeText checks that whatever an EHR sends back as an error body,
// the flattened text is safe to log and to store in the audit trail (valid
// UTF-8, no NUL: PostgreSQL text rejects both) and bounded: a non-FHIR body
// gives at most a 200-byte prefix plus "...", and an OperationOutcome no more
// than a small multiple of its own size.
func FuzzOutcomeText(f *testing.F) {
	for _, s := range []string{
		operationOutcome,
		`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","details":{"text":"t"}}]}`,
		`{"resourceType":"OperationOutcome","issue":[{}]}`,
		`{"resourceType":"OperationOutcome","issue":null}`,
		`{"resourceType":"OperationOutcome","issue":[{"expression":["",""]}]}`,
		`{"resourceType":"OperationOutcome","issue":[{"diagnostics":"a\u0000b"}]}`,
		`{"resourceType":"OperationOutcome","issue":[{"severity":1}]}`,
		`{"resourceType":"Observation"}`,
		"<html><body>502 Bad Gateway</body></html>",
		strings.Repeat("é", 150),
		"Fehler: ung\xfcltig",
		"",
		"null",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out := outcomeText(body)
		if !utf8.ValidString(out) {
			t.Errorf("outcomeText(%q) = %q: invalid UTF-8", body, out)
		}
		if strings.ContainsRune(out, 0) {
			t.Errorf("outcomeText(%q) = %q: contains NUL", body, out)
		}
		if !json.Valid(body) && len(out) > 203 {
			t.Errorf("outcomeText of a non-JSON body is %d bytes, want at most 203", len(out))
		}
		if len(out) > 203 && len(out) > 3*len(body) {
			t.Errorf("outcomeText of %d bytes is %d bytes long", len(body), len(out))
		}
	})
}

// FuzzParseRetryAfter checks that no Retry-After value, however hostile,
// yields a negative or wrapped-around wait, and that delta-seconds mean
// exactly that many seconds.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	for _, s := range []string{
		"", "0", "7", " 120 ", "-1", "+5", "1.5", "1e3", "soon",
		"9223372036", "9223372037", "99999999999999999999",
		"Wed, 25 Nov 2026 10:16:30 GMT",
		"Wednesday, 25-Nov-26 10:16:00 GMT",
		"Wed Nov 25 10:15:10 2026",
		"Fri, 31 Dec 9999 23:59:59 GMT",
		"Mon, 01 Jan 0001 00:00:00 GMT",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, negative", v, d)
		}
		if d == 0 {
			return
		}
		s := strings.TrimSpace(v)
		if n, err := strconv.Atoi(s); err == nil {
			if n <= 0 {
				t.Fatalf("parseRetryAfter(%q) = %v, want 0", v, d)
			}
			if n <= int(maxRetryAfterSeconds) && d != time.Duration(n)*time.Second {
				t.Fatalf("parseRetryAfter(%q) = %v, want %ds", v, d, n)
			}
			if n > int(maxRetryAfterSeconds) && d != time.Duration(1<<63-1) {
				t.Fatalf("parseRetryAfter(%q) = %v, want the largest duration", v, d)
			}
			return
		}
		at, err := http.ParseTime(s)
		if err != nil {
			t.Fatalf("parseRetryAfter(%q) = %v for neither seconds nor an HTTP-date", v, d)
		}
		if want := at.Sub(now); d != want {
			t.Fatalf("parseRetryAfter(%q) = %v, want %v", v, d, want)
		}
	})
}
