package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CheckTimeout bounds every readiness check. Orchestrators probe every few
// seconds; a check that cannot answer in this time counts as failed.
const CheckTimeout = 2 * time.Second

// checkGrace is how long /readyz waits past CheckTimeout for a check to
// report that its context ended, before calling it unanswered.
const checkGrace = CheckTimeout / 4

// ShutdownTimeout is how long Server.Run lets scrapes in progress finish.
const ShutdownTimeout = 5 * time.Second

// Check is one readiness check, e.g. Kafka metadata or the audit database.
type Check struct {
	// Name keys the check in the /readyz body: "kafka", "postgres", ...
	Name string
	// Run returns nil when the dependency is usable. Its error text is
	// served to anyone who can reach the listener: name hosts and topics,
	// never readings. Run must return soon after ctx ends.
	Run func(ctx context.Context) error
}

// Handler serves the operations endpoints, without authentication (the
// listener is loopback unless the operator says otherwise):
//
//	GET /metrics  Prometheus text exposition of reg
//	GET /healthz  200 "ok": the process is alive and serving
//	GET /readyz   200 when every check passes, 503 naming the failures
//
// Other paths answer 404, other methods 405 (HEAD is served as GET).
func Handler(reg *prometheus.Registry, checks []Check) http.Handler {
	return newHandler(reg, checks, CheckTimeout, checkGrace)
}

func newHandler(reg *prometheus.Registry, checks []Check, timeout, grace time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// Serve what can be gathered and count the failures
		// (promhttp_metric_handler_errors_total), rather than lose a whole
		// scrape to one broken collector.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", readyHandler(checks, timeout, grace))
	return mux
}

// Readiness is the /readyz body.
type Readiness struct {
	// Status is "ready" or "unavailable".
	Status string `json:"status"`
	// Checks maps each check's name to "ok" or its error text.
	Checks map[string]string `json:"checks"`
}

func readyHandler(checks []Check, timeout, grace time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		type result struct {
			name string
			err  error
		}
		// Buffered so that a check answering after the handler gave up
		// does not block its goroutine forever.
		results := make(chan result, len(checks))
		for _, c := range checks {
			go func() { results <- result{c.Name, c.Run(ctx)} }()
		}
		body := Readiness{Status: "ready", Checks: make(map[string]string, len(checks))}
		// Overwritten by the answer; stays for a check that ignores ctx.
		placeholder := fmt.Sprintf("no answer within %s", timeout)
		for _, c := range checks {
			body.Checks[c.Name] = placeholder
		}
		// A check that honours ctx answers just after the deadline; the
		// grace lets its error, which says more than "no answer", through.
		giveUp := time.NewTimer(timeout + grace)
		defer giveUp.Stop()
		failed := false
	wait:
		for range checks {
			select {
			case res := <-results:
				if res.err != nil {
					failed = true
					body.Checks[res.name] = res.err.Error()
				} else if body.Checks[res.name] == placeholder {
					// Names should be unique; if not, an error stays.
					body.Checks[res.name] = "ok"
				}
			case <-giveUp.C:
				failed = true
				break wait
			case <-r.Context().Done():
				return // the client left: nobody reads the answer
			}
		}
		status := http.StatusOK
		if failed {
			status, body.Status = http.StatusServiceUnavailable, "unavailable"
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	})
}

// Server is the operations listener. Listen binds it first, so a port in use
// fails at start-up and tests can listen on 127.0.0.1:0; Serve then runs it
// as an actor until Shutdown.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr and prepares to serve h on it. log receives the
// server's own errors (TLS handshakes, panics in handlers); nil discards
// them.
func Listen(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ops listener: %w", err)
	}
	return &Server{
		ln: ln,
		srv: &http.Server{
			Handler: h,
			// Bounds a client that opens connections and never sends a
			// request (Slowloris); the rest bounds slow scrapes.
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr is the bound address, e.g. "127.0.0.1:9464".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown; it then returns nil. Any other return is the
// listener failing.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ops listener: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for requests in progress
// until ctx ends; bound ctx with a timeout. It also closes the listener when
// Serve never ran.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ops listener shutdown: %w", err)
	}
	return nil
}

// Run serves until ctx ends, then shuts down within ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := s.Shutdown(sctx)
	if serr := <-served; err == nil {
		err = serr
	}
	return err
}
