// Package fhirsandbox is a small in-memory FHIR R4 server that stands in for an
// EHR: in the demo, so the bridge has somewhere real to deliver, and in tests,
// where it counts what arrived. It implements create and conditional create
// (If-None-Exist on identifier), batch Bundles of such creates, read, search
// by identifier, and versioned update (meta.versionId and ETag, If-Match
// answered 412 on a stale version, as real servers do). It
// validates every resource it receives with google/fhir's validating
// unmarshaller plus the vital-signs profile rules, and rejects what fails with
// a 400 OperationOutcome, as a strict EHR would.
package fhirsandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// maxBody bounds one request body.
const maxBody = 1 << 20

// Stats counts what the server saw.
type Stats struct {
	Updates  int // PUT [type]/[id] requests stored (a new version, or update-as-create)
	Posts    int // create requests received
	Created  int // resources created (201)
	Matched  int // conditional creates that matched an existing resource (200)
	Rejected int // create requests answered 4xx
	Batches  int // batch Bundles answered 200; their entries count as creates above
}

// Server is an http.Handler serving [base]/[type] and [base]/[type]/[id].
// The zero value is not usable; call New.
type Server struct {
	codec *fhir.Codec
	// BeforeRespond, when set, runs after a create was stored and before the
	// answer is written, with the request's context. Tests use it to hold a
	// response open, e.g. to stop the bridge between the EHR's commit and its ack.
	BeforeRespond func(r *http.Request, identifier string)
	// Reject, when set, is asked about every valid create before it is
	// stored; a non-zero status refuses it with that status and message in an
	// OperationOutcome, as an EHR's business rules would.
	Reject func(body []byte) (status int, message string)

	mu      sync.Mutex
	stats   Stats
	nextID  int
	byID    map[string][]byte // "Type/id" -> body
	version map[string]int    // "Type/id" -> current version, from 1
	byIdent map[string]string // "Type|system|value" -> "Type/id"
	creates map[string]int    // "system|value" -> resources created with that identifier
	order   []string          // "Type/id" in creation order
}

// New returns an empty server.
func New(codec *fhir.Codec) *Server {
	return &Server{
		codec:   codec,
		byID:    map[string][]byte{},
		version: map[string]int{},
		byIdent: map[string]string{},
		creates: map[string]int{},
	}
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Resources returns the stored bodies of resourceType in creation order.
func (s *Server) Resources(resourceType string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, key := range s.order {
		if strings.HasPrefix(key, resourceType+"/") {
			out = append(out, s.byID[key])
		}
	}
	return out
}

// CreatesByIdentifier returns, per "system|value", how many resources were
// created carrying that identifier. With working deduplication every count is 1.
func (s *Server) CreatesByIdentifier() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.creates))
	for k, v := range s.creates {
		out[k] = v
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] != "":
		s.create(w, r, parts[0])
	case r.Method == http.MethodPost && len(parts) == 1 && r.ContentLength != 0:
		s.batch(w, r)
	case r.Method == http.MethodGet && len(parts) == 2:
		s.read(w, parts[0]+"/"+parts[1])
	case r.Method == http.MethodGet && len(parts) == 1 && r.URL.Query().Has("identifier"):
		s.search(w, parts[0], r.URL.Query().Get("identifier"))
	case r.Method == http.MethodPut && len(parts) == 2:
		s.update(w, r, parts[0], parts[1])
	default:
		writeOutcome(w, http.StatusNotFound, "not-supported", "", "unsupported interaction "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) read(w http.ResponseWriter, key string) {
	s.mu.Lock()
	body, ok := s.byID[key]
	v := s.version[key]
	s.mu.Unlock()
	if !ok {
		writeOutcome(w, http.StatusNotFound, "not-found", "", key+" not found")
		return
	}
	w.Header().Set("Content-Type", fhir.ContentType)
	w.Header().Set("ETag", `W/"`+strconv.Itoa(v)+`"`)
	_, _ = w.Write(withVersion(body, key, v))
}

// search answers [type]?identifier=system|value with a searchset Bundle
// holding the resource with that identifier, if any.
func (s *Server) search(w http.ResponseWriter, resourceType, ident string) {
	s.mu.Lock()
	key, ok := s.byIdent[resourceType+"|"+ident]
	body, v := s.byID[key], s.version[key]
	s.mu.Unlock()
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	}
	out := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Total        int     `json:"total"`
		Entry        []entry `json:"entry,omitempty"`
	}{ResourceType: "Bundle", Type: "searchset"}
	if ok {
		out.Total = 1
		out.Entry = []entry{{FullURL: key, Resource: withVersion(body, key, v)}}
	}
	w.Header().Set("Content-Type", fhir.ContentType)
	_ = json.NewEncoder(w).Encode(out)
}

// Version returns the current version of "Type/id" (0: no such resource).
func (s *Server) Version(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version[key]
}

// Read returns the stored body of "Type/id" with its id and meta.versionId.
func (s *Server) Read(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, ok := s.byID[key]
	if !ok {
		return nil, false
	}
	return withVersion(body, key, s.version[key]), true
}

// withVersion returns body with the id and meta.versionId a server adds.
func withVersion(body []byte, key string, version int) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return body
	}
	var meta map[string]json.RawMessage
	_ = json.Unmarshal(m["meta"], &meta)
	if meta == nil {
		meta = map[string]json.RawMessage{}
	}
	meta["versionId"], _ = json.Marshal(strconv.Itoa(version))
	m["meta"], _ = json.Marshal(meta)
	m["id"], _ = json.Marshal(key[strings.IndexByte(key, '/')+1:])
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

func (s *Server) reject(w http.ResponseWriter, status int, code, expr, msg string) {
	s.mu.Lock()
	s.stats.Rejected++
	s.mu.Unlock()
	writeOutcome(w, status, code, expr, msg)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, resourceType string) {
	s.mu.Lock()
	s.stats.Posts++
	s.mu.Unlock()

	if status, msg := checkContentType(r); status != 0 {
		s.reject(w, status, "not-supported", "", msg)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reject(w, http.StatusRequestEntityTooLarge, "too-long", "", "body too large or unreadable")
		return
	}
	res := s.createOne(resourceType, body, r.Header.Get("If-None-Exist"), "If-None-Exist")
	if res.status >= 300 {
		writeOO(w, res.status, res.issues)
		return
	}
	if s.BeforeRespond != nil {
		s.BeforeRespond(r, res.condIdent)
	}
	w.Header().Set("Location", "/"+res.key+"/_history/1")
	if res.status == http.StatusCreated {
		w.Header().Set("ETag", `W/"1"`)
	}
	w.WriteHeader(res.status)
}

// checkContentType returns a non-zero status and a message when the request
// body is not FHIR JSON in UTF-8.
func checkContentType(r *http.Request) (int, string) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
		return http.StatusUnsupportedMediaType, "Content-Type must be application/fhir+json"
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
		return http.StatusUnsupportedMediaType, "charset must be utf-8"
	}
	return 0, ""
}

// createResult is the outcome of one create, plain or in a batch.
type createResult struct {
	status    int       // 201, 200 (conditional match) or the error status
	key       string    // "Type/id" on success
	condIdent string    // the matched or registered identifier of a conditional create
	issues    []ooIssue // on failure
}

// createOne validates and stores one resource. cond is the If-None-Exist
// search; condName names where it came from, for error messages. It counts
// Created, Matched and Rejected; the caller counts Posts.
func (s *Server) createOne(resourceType string, body []byte, cond, condName string) createResult {
	fail := s.createFail
	failIssues := func(issues []fhir.Issue) createResult {
		s.mu.Lock()
		s.stats.Rejected++
		s.mu.Unlock()
		return createResult{status: http.StatusBadRequest, issues: issuesOO(issues)}
	}
	msg, err := s.codec.Decode(body)
	if err != nil {
		var issues []fhir.Issue
		if ve, ok := err.(*fhir.ValidationError); ok {
			issues = ve.Issues
		} else {
			issues = []fhir.Issue{{Path: resourceType, Severity: "error", Message: err.Error()}}
		}
		return failIssues(issues)
	}
	cr, ok := msg.(*crpb.ContainedResource)
	if !ok {
		return fail(http.StatusBadRequest, "structure", "", "not a resource")
	}
	var identifiers []string
	switch resourceType {
	case "Observation":
		obs := cr.GetObservation()
		if obs == nil {
			return fail(http.StatusBadRequest, "invalid", "resourceType", "body is not an Observation")
		}
		if issues := fhir.CheckVitalSigns(obs); len(issues) > 0 {
			return failIssues(issues)
		}
		for _, id := range obs.GetIdentifier() {
			identifiers = append(identifiers, id.GetSystem().GetValue()+"|"+id.GetValue().GetValue())
		}
	default:
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		_ = json.Unmarshal(body, &head)
		if head.ResourceType != resourceType {
			return fail(http.StatusBadRequest, "invalid", "resourceType", fmt.Sprintf("body is %q, URL says %q", head.ResourceType, resourceType))
		}
	}

	if s.Reject != nil {
		if status, msg := s.Reject(body); status != 0 {
			return fail(status, "business-rule", "", msg)
		}
	}

	var condIdent string
	if cond != "" {
		q, err := url.ParseQuery(cond)
		if err != nil || len(q) != 1 || len(q["identifier"]) != 1 || !strings.Contains(q.Get("identifier"), "|") {
			return fail(http.StatusBadRequest, "not-supported", "", condName+": only identifier=system|value is supported")
		}
		condIdent = q.Get("identifier")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if condIdent != "" {
		if key, ok := s.byIdent[resourceType+"|"+condIdent]; ok {
			s.stats.Matched++
			return createResult{status: http.StatusOK, key: key, condIdent: condIdent}
		}
	}
	s.nextID++
	key := resourceType + "/" + strconv.Itoa(s.nextID)
	s.byID[key] = body
	s.version[key] = 1
	s.order = append(s.order, key)
	for _, id := range identifiers {
		s.byIdent[resourceType+"|"+id] = key
		s.creates[id]++
	}
	s.stats.Created++
	return createResult{status: http.StatusCreated, key: key, condIdent: condIdent}
}

type ooIssue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

func newIssue(code, expr, msg string) ooIssue {
	is := ooIssue{Severity: "error", Code: code, Diagnostics: msg}
	if expr != "" {
		is.Expression = []string{expr}
	}
	return is
}

func issuesOO(issues []fhir.Issue) []ooIssue {
	out := make([]ooIssue, len(issues))
	for i, is := range issues {
		out[i] = ooIssue{Severity: is.Severity, Code: "invalid", Diagnostics: is.Message, Expression: []string{is.Path}}
	}
	return out
}

func writeOutcome(w http.ResponseWriter, status int, code, expr, msg string) {
	writeOO(w, status, []ooIssue{newIssue(code, expr, msg)})
}

func writeOO(w http.ResponseWriter, status int, issues []ooIssue) {
	w.Header().Set("Content-Type", fhir.ContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"resourceType": "OperationOutcome", "issue": issues})
}
