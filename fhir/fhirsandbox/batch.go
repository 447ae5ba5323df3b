package fhirsandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/fhir-bridge/fhir-bridge/fhir"
)

// maxBatchBody bounds one batch Bundle.
const maxBatchBody = 8 << 20

// batchRequest is the part of a batch Bundle the sandbox reads. Resources are
// kept as raw JSON and validated one by one, exactly as a plain create body.
type batchRequest struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		Resource json.RawMessage `json:"resource"`
		Request  *struct {
			Method      string `json:"method"`
			URL         string `json:"url"`
			IfNoneExist string `json:"ifNoneExist"`
		} `json:"request"`
	} `json:"entry"`
}

type batchResponseEntry struct {
	Response batchEntryResponse `json:"response"`
}

type batchEntryResponse struct {
	Status   string `json:"status"`
	Location string `json:"location,omitempty"`
	Etag     string `json:"etag,omitempty"`
	Outcome  any    `json:"outcome,omitempty"`
}

// batch serves POST [base] with a Bundle of type batch (FHIR http.html
// batch/transaction; standards.md 3.5). Only POST (create) entries are
// supported. Every entry is processed on its own through the same create
// logic as POST [base]/[type] — validation, Reject, conditional create from
// request.ifNoneExist — and counted in Stats like a plain create; an entry
// that is not a supported create is answered 400 in its response entry. The
// answer is 200 with a batch-response Bundle, one entry per request entry in
// the same order: response.status ("201 Created", "200 OK", "400 Bad
// Request"...), response.location ("Type/id/_history/1") on success and
// response.outcome (an OperationOutcome) on failure. BeforeRespond runs once
// per stored or matched entry, after the store and before the Bundle is
// written. A transaction Bundle or any other type is refused with 400
// not-supported, a malformed Bundle with 400; neither counts in Stats.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	if status, msg := checkContentType(r); status != 0 {
		writeOutcome(w, status, "not-supported", "", msg)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBatchBody))
	if err != nil {
		writeOutcome(w, http.StatusRequestEntityTooLarge, "too-long", "", "body too large or unreadable")
		return
	}
	var b batchRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil || dec.More() {
		writeOutcome(w, http.StatusBadRequest, "structure", "", "body is not a JSON Bundle")
		return
	}
	if b.ResourceType != "Bundle" {
		writeOutcome(w, http.StatusBadRequest, "invalid", "resourceType", "POST [base] takes a Bundle")
		return
	}
	if b.Type != "batch" {
		writeOutcome(w, http.StatusBadRequest, "not-supported", "Bundle.type", "only batch Bundles are supported, not "+strconv.Quote(b.Type))
		return
	}

	out := make([]batchResponseEntry, len(b.Entry))
	for i, e := range b.Entry {
		s.mu.Lock()
		s.stats.Posts++
		s.mu.Unlock()
		var res createResult
		switch {
		case e.Request == nil || e.Request.Method != http.MethodPost:
			res = s.createFail(http.StatusBadRequest, "not-supported", "Bundle.entry.request.method", "only POST (create) entries are supported")
		case !validType(strings.Trim(e.Request.URL, "/")):
			res = s.createFail(http.StatusBadRequest, "not-supported", "Bundle.entry.request.url", "request.url must be a resource type")
		case len(e.Resource) == 0 || string(e.Resource) == "null":
			res = s.createFail(http.StatusBadRequest, "required", "Bundle.entry.resource", "a POST entry needs a resource")
		default:
			typ := strings.Trim(e.Request.URL, "/")
			// ifNoneExist is the query without "?"; tolerate the
			// "Type?query" form some servers document too.
			cond := strings.TrimPrefix(e.Request.IfNoneExist, typ+"?")
			res = s.createOne(typ, e.Resource, cond, "ifNoneExist")
		}
		resp := batchEntryResponse{Status: strconv.Itoa(res.status) + " " + http.StatusText(res.status)}
		if res.status < 300 {
			if s.BeforeRespond != nil {
				s.BeforeRespond(r, res.condIdent)
			}
			resp.Location = res.key + "/_history/1"
			resp.Etag = `W/"1"`
		} else {
			resp.Outcome = map[string]any{"resourceType": "OperationOutcome", "issue": res.issues}
		}
		out[i] = batchResponseEntry{Response: resp}
	}
	s.mu.Lock()
	s.stats.Batches++
	s.mu.Unlock()
	w.Header().Set("Content-Type", fhir.ContentType)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]any{"resourceType": "Bundle", "type": "batch-response", "entry": out})
}

// createFail counts and returns a rejected create.
func (s *Server) createFail(status int, code, expr, msg string) createResult {
	s.mu.Lock()
	s.stats.Rejected++
	s.mu.Unlock()
	return createResult{status: status, issues: []ooIssue{newIssue(code, expr, msg)}}
}

// validType reports whether t looks like a FHIR resource type name.
func validType(t string) bool {
	if t == "" || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for _, c := range t {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
