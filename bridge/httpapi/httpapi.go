// Package httpapi is the bridge's HTTP API, served by gin under a
// net/http.Server that the caller owns (for graceful shutdown):
//
//	POST /v1/ingest/{route}   RPM vendors post readings (scope "ingest")
//	GET  /v1/audit            search the audit trail (scope "audit.read")
//	GET  /healthz             liveness
//	GET  /readyz              readiness of Kafka, PostgreSQL, destinations
//
// Metrics are served on the separate operations listener (bridge/metrics).
//
// Every call to /v1 is verified (OIDC bearer token) and audited with the
// token's subject. Request bodies are bounded; payloads and tokens never
// reach the logs.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/gin-gonic/gin"
)

// ActionAPIAccess is the audit action of an API call.
const ActionAPIAccess = "api-access"

// Scopes the API checks.
const (
	ScopeIngest    = "ingest"
	ScopeAuditRead = "audit.read"
)

// Publisher writes accepted readings to a route's source topic, keyed by
// device, durably (all in-sync replicas) before it returns.
type Publisher interface {
	Publish(ctx context.Context, route string, records []Record) error
}

// Record is one reading to publish.
type Record struct {
	Key   []byte
	Value []byte
}

// AuditLog is the audit store as the API uses it.
type AuditLog interface {
	Append(ctx context.Context, events ...audit.Event) error
	List(ctx context.Context, f audit.Filter) ([]audit.Event, error)
}

// RouteMapper checks payloads for one route: Map maps each reading of a
// payload on its own (bridge.Mapper's MapEach).
type RouteMapper struct {
	Native bool
	Map    func(payload []byte) ([]mappers.Result, error)
}

// DeadLetters lists (dryRun) or replays a route's dead letters.
type DeadLetters interface {
	DeadLetters(ctx context.Context, route string, f DeadLetterFilter, dryRun bool, actor string) ([]DeadLetter, int, error)
}

// DeadLetterFilter selects dead letters; zero fields match all.
type DeadLetterFilter struct {
	Since, Until   time.Time
	Device, Reason string
}

// DeadLetter is one dead-letter record as the API shows it.
type DeadLetter struct {
	Partition   int       `json:"partition"`
	Offset      int64     `json:"offset"`
	Stage       string    `json:"stage"`
	Reason      string    `json:"reason"`
	Device      string    `json:"device,omitempty"`
	LastAttempt time.Time `json:"lastAttempt"`
}

// ScopeAdmin allows replaying dead letters.
const ScopeAdmin = "admin"

// Check is one readiness check.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Config configures the API.
type Config struct {
	Verifier auth.TokenVerifier
	Publish  Publisher
	Audit    AuditLog
	// Routes are the routes vendors may post to, by name, each with the
	// mapper that checks its payloads (the route's templates). A route whose
	// Native is true takes native-format readings, one or an array; others
	// take one payload in the route's template format per call.
	Routes map[string]RouteMapper
	// DeadLetters lists and replays a route's dead letters. Nil: the
	// endpoints answer 404.
	DeadLetters DeadLetters
	Checks      []Check
	// AuditEvents renders audit events as a FHIR Bundle of AuditEvents
	// (FHIR JSON). Nil: the endpoint answers 404.
	AuditEvents func(events []audit.Event) ([]byte, error)
	Log         *slog.Logger
	// MaxBody bounds a request body. Default: 1 MiB.
	MaxBody int64
	// MaxReadings bounds the readings in one ingest call. Default: 1000.
	MaxReadings int
	// MaxFuture is how far ahead of Now a reading's time may be (clock
	// skew). Default: 5 minutes.
	MaxFuture time.Duration
	Now       func() time.Time
}

// New returns the API's handler.
func New(cfg Config) http.Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxReadings <= 0 {
		cfg.MaxReadings = 1000
	}
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	a := &api{cfg: cfg}
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", a.ready)
	v1 := r.Group("/v1", a.audited)
	v1.POST("/ingest/:route", auth.Middleware(cfg.Verifier, ScopeIngest), a.ingest)
	v1.GET("/audit", auth.Middleware(cfg.Verifier, ScopeAuditRead), a.auditSearch)
	v1.GET("/audit/AuditEvent", auth.Middleware(cfg.Verifier, ScopeAuditRead), a.auditEvents)
	v1.GET("/dead-letters/:route", auth.Middleware(cfg.Verifier, ScopeAuditRead), a.deadLetters(true))
	v1.POST("/dead-letters/:route/replay", auth.Middleware(cfg.Verifier, ScopeAdmin), a.deadLetters(false))
	return r
}

type api struct {
	cfg Config
}

// audited records every /v1 call with the caller's subject (or
// "anonymous"), method, path and status, after the handler ran. Query
// strings are left out: they may name patients.
func (a *api) audited(c *gin.Context) {
	c.Next()
	actor := "anonymous"
	if p, ok := auth.PrincipalFromContext(c.Request.Context()); ok {
		actor = "oidc:" + p.Subject
	}
	outcome := audit.OutcomeSuccess
	if c.Writer.Status() >= 400 {
		outcome = audit.OutcomeFailure
	}
	e := audit.Event{
		Time: a.cfg.Now(), Action: ActionAPIAccess, Outcome: outcome, Actor: actor, Route: "api",
		Status: c.Writer.Status(), Detail: c.Request.Method + " " + c.FullPath(),
		CorrelationID: c.GetHeader("X-Request-Id"),
	}
	if err := a.cfg.Audit.Append(context.WithoutCancel(c.Request.Context()), e); err != nil {
		a.cfg.Log.Error("audit of API access failed", "path", c.FullPath(), "err", err)
	}
}

// itemError is one refused reading of an ingest call.
type itemError struct {
	Index int `json:"index"`
	// Reading is the reading's index within a template payload (in the
	// order the template finds them); absent for native items.
	Reading *int   `json:"reading,omitempty"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason"`
}

// newItemError describes why item i (reading r of it, when >= 0) was
// refused, with the field when the error names one.
func newItemError(i, r int, err error) itemError {
	e := itemError{Index: i, Reason: err.Error()}
	var fe *mappers.FieldError
	if errors.As(err, &fe) {
		e.Field, e.Reason = fe.Field, fe.Reason
	}
	if r >= 0 {
		e.Reading = &r
	}
	return e
}

func (a *api) ingest(c *gin.Context) {
	route := c.Param("route")
	rm, ok := a.cfg.Routes[route]
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "unknown route"})
		return
	}
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/json" {
		c.JSON(http.StatusUnsupportedMediaType, gin.H{"error": "Content-Type must be application/json"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, a.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": fmt.Sprintf("body larger than %d bytes", a.cfg.MaxBody)})
			return
		}
		c.JSON(http.StatusBadRequest, gin.H{"error": "unreadable body"})
		return
	}
	if !utf8.Valid(body) {
		c.JSON(http.StatusBadRequest, gin.H{"error": "body is not valid UTF-8"})
		return
	}
	var items []json.RawMessage
	if rm.Native {
		if items, err = splitItems(body, a.cfg.MaxReadings); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
	} else {
		// A template payload is one document; the template finds its readings.
		if depth(body) > 64 || !json.Valid(body) {
			c.JSON(http.StatusBadRequest, gin.H{"error": "body is not a JSON document (or is nested too deeply)"})
			return
		}
		items = []json.RawMessage{body}
	}
	p, _ := auth.PrincipalFromContext(c.Request.Context())
	var errs []itemError
	var forbidden []itemError
	records := make([]Record, 0, len(items))
	ids := make([]string, 0, len(items))
	for i, raw := range items {
		results, err := rm.Map(raw)
		if err != nil {
			errs = append(errs, newItemError(i, -1, err))
			continue
		}
		if len(results) == 0 {
			errs = append(errs, itemError{Index: i, Reason: "no reading matched the route's templates"})
			continue
		}
		var good []mappers.Measurement
		for _, res := range results {
			reading := res.Index
			if rm.Native {
				reading = -1 // a native item is one reading
			}
			switch m := res.Measurement; {
			case res.Err != nil:
				errs = append(errs, newItemError(i, reading, res.Err))
			case m.Time.After(a.cfg.Now().Add(a.cfg.MaxFuture)):
				errs = append(errs, newItemError(i, reading, &mappers.FieldError{Field: "time", Reason: "in the future"}))
			case !p.MayPostFor(m.Device.ID):
				forbidden = append(forbidden, newItemError(i, reading, &mappers.FieldError{Field: "device", Reason: "not a device this client may post for"}))
			default:
				good = append(good, m)
			}
		}
		if len(good) == 0 {
			continue
		}
		// A template payload goes to Kafka whole when any of its readings
		// is good: the route refuses the others again, on their own, and
		// dead-letters the payload naming them.
		records = append(records, Record{Key: []byte(good[0].Device.ID), Value: raw})
		for _, m := range good {
			ids = append(ids, m.Key())
		}
	}
	switch {
	case len(forbidden) > 0:
		// Another vendor's device is an authorization failure, not bad
		// data: nothing of the request is taken.
		c.JSON(http.StatusForbidden, gin.H{"error": "forbidden readings; nothing was accepted", "errors": forbidden})
		return
	case len(records) == 0:
		c.JSON(http.StatusBadRequest, gin.H{"error": "invalid readings; nothing was accepted", "errors": errs})
		return
	}
	if err := a.cfg.Publish.Publish(c.Request.Context(), route, records); err != nil {
		a.cfg.Log.Error("ingest: publishing failed", "route", route, "readings", len(records), "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "could not accept the readings now; retry"})
		return
	}
	// Partial acceptance: the valid readings are in Kafka; errors lists the
	// refused ones (empty when all were accepted).
	if errs == nil {
		errs = []itemError{}
	}
	c.JSON(http.StatusAccepted, gin.H{"accepted": len(ids), "ids": ids, "errors": errs})
}

// splitItems accepts one JSON object or an array of objects, with a nesting
// limit that stops pathological documents early.
func splitItems(body []byte, max int) ([]json.RawMessage, error) {
	if depth(body) > 16 {
		return nil, errors.New("JSON nested too deeply")
	}
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "[") {
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, errors.New("body is not a JSON array of readings")
		}
		if len(items) == 0 {
			return nil, errors.New("no readings")
		}
		if len(items) > max {
			return nil, fmt.Errorf("more than %d readings in one call", max)
		}
		return items, nil
	}
	if !json.Valid(body) || !strings.HasPrefix(trimmed, "{") {
		return nil, errors.New("body is not a JSON reading or array of readings")
	}
	return []json.RawMessage{body}, nil
}

// depth is the deepest nesting of objects and arrays, outside strings.
func depth(b []byte) int {
	d, maxD, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			d++
			maxD = max(maxD, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return maxD
}

// search reads the audit filter from the query and runs it; it answers
// the error itself and returns ok false when it did.
func (a *api) search(c *gin.Context) ([]audit.Event, bool) {
	f := audit.Filter{
		Route: c.Query("route"), Action: c.Query("action"), Outcome: c.Query("outcome"),
		Patient: c.Query("patient"), Device: c.Query("device"),
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			c.JSON(http.StatusBadRequest, gin.H{"error": "limit must be 1-10000"})
			return nil, false
		}
		f.Limit = n
	}
	var errS, errU error
	f.Since, errS = optTime(c.Query("since"))
	f.Until, errU = optTime(c.Query("until"))
	if errS != nil || errU != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "since and until must be RFC 3339"})
		return nil, false
	}
	events, err := a.cfg.Audit.List(c.Request.Context(), f)
	if err != nil {
		a.cfg.Log.Error("audit search failed", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "audit store unavailable"})
		return nil, false
	}
	return events, true
}

func (a *api) auditSearch(c *gin.Context) {
	if events, ok := a.search(c); ok {
		c.JSON(http.StatusOK, gin.H{"events": events})
	}
}

func (a *api) auditEvents(c *gin.Context) {
	if a.cfg.AuditEvents == nil {
		c.JSON(http.StatusNotFound, gin.H{"error": "AuditEvent export not configured"})
		return
	}
	events, ok := a.search(c)
	if !ok {
		return
	}
	body, err := a.cfg.AuditEvents(events)
	if err != nil {
		a.cfg.Log.Error("AuditEvent export failed", "err", err)
		c.JSON(http.StatusInternalServerError, gin.H{"error": "export failed"})
		return
	}
	c.Data(http.StatusOK, "application/fhir+json; charset=utf-8", body)
}

func optTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func (a *api) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	status := http.StatusOK
	res := map[string]string{}
	for _, ch := range a.cfg.Checks {
		if err := ch.Run(ctx); err != nil {
			status = http.StatusServiceUnavailable
			res[ch.Name] = "unavailable"
			a.cfg.Log.Warn("readiness check failed", "check", ch.Name, "err", err)
			continue
		}
		res[ch.Name] = "ok"
	}
	c.JSON(status, res)
}

// deadLetters lists (dryRun) or replays a route's dead letters, filtered by
// since, until, device and reason query parameters.
func (a *api) deadLetters(dryRun bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if a.cfg.DeadLetters == nil {
			c.JSON(http.StatusNotFound, gin.H{"error": "dead letters not available"})
			return
		}
		route := c.Param("route")
		if _, ok := a.cfg.Routes[route]; !ok {
			c.JSON(http.StatusNotFound, gin.H{"error": "unknown route"})
			return
		}
		var f DeadLetterFilter
		var errS, errU error
		f.Since, errS = optTime(c.Query("since"))
		f.Until, errU = optTime(c.Query("until"))
		if errS != nil || errU != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "since and until must be RFC 3339"})
			return
		}
		f.Device, f.Reason = c.Query("device"), c.Query("reason")
		actor := "api"
		if p, ok := auth.PrincipalFromContext(c.Request.Context()); ok {
			actor = "oidc:" + p.Subject
		}
		list, replayed, err := a.cfg.DeadLetters.DeadLetters(c.Request.Context(), route, f, dryRun, actor)
		if err != nil {
			a.cfg.Log.Error("dead letters", "route", route, "err", err)
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "dead-letter topic unavailable"})
			return
		}
		if list == nil {
			list = []DeadLetter{}
		}
		c.JSON(http.StatusOK, gin.H{"deadLetters": list, "replayed": replayed})
	}
}
