package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/httpapi"
	"github.com/fhir-bridge/fhir-bridge/bridge/kafka"
	"github.com/fhir-bridge/fhir-bridge/bridge/metrics"
)

// apiServer is the HTTP API (docs/api.md) on its listener.
type apiServer struct {
	srv *http.Server
	ln  net.Listener
	tls bool
	pub *kafka.Publisher
	cfg bridge.APIConfig
}

// newAPIServer builds the API and binds its listener.
func newAPIServer(ctx context.Context, cfg bridge.Config, getenv func(string) string, store *audit.Postgres, checks []metrics.Check, log *slog.Logger) (*apiServer, error) {
	routes := map[string]httpapi.RouteMapper{}
	for _, rc := range cfg.Routes {
		m, err := bridge.LoadMapper(rc.Templates, bridge.MapperOptions{DefaultPatientID: rc.DefaultPatient})
		if err != nil {
			return nil, fmt.Errorf("api: route %s: %w", rc.Name, err)
		}
		routes[rc.Name] = httpapi.RouteMapper{Native: len(rc.Templates) == 0, Map: m.MapEach}
	}
	v, err := auth.NewVerifier(ctx, auth.InboundConfig{Issuer: cfg.API.OIDC.Issuer, Audience: cfg.API.OIDC.Audience, DeviceClaim: cfg.API.OIDC.DeviceClaim})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	pub, err := kafka.NewPublisher(cfg, getenv)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	var hc []httpapi.Check
	for _, c := range checks {
		hc = append(hc, httpapi.Check{Name: c.Name, Run: c.Run})
	}
	h := httpapi.New(httpapi.Config{
		Verifier: v, Publish: pub, Audit: store, Routes: routes, Log: log, MaxBody: cfg.API.MaxBody,
		AuditEvents: func(events []audit.Event) ([]byte, error) { return auditBundleJSON(events, cfg) },
		DeadLetters: deadLetterService{cfg: cfg, getenv: getenv, audit: store},
		Checks:      hc,
	})
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		pub.Close()
		return nil, fmt.Errorf("api: %w", err)
	}
	log.Info("api listening", "addr", ln.Addr().String())
	return &apiServer{
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute},
		ln: ln, tls: cfg.API.TLSCertFile != "", pub: pub, cfg: cfg.API,
	}, nil
}

// Serve serves until Shutdown (nil) or a failure (the error).
func (a *apiServer) Serve() error {
	var err error
	if a.tls {
		err = a.srv.ServeTLS(a.ln, a.cfg.TLSCertFile, a.cfg.TLSKeyFile)
	} else {
		err = a.srv.Serve(a.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown lets requests in flight finish (10 s) and closes the publisher.
func (a *apiServer) Shutdown(log *slog.Logger) {
	shutdown(a.srv.Shutdown, log, "api")
	a.pub.Close()
}

// deadLetterService serves the API's dead-letter endpoints with bridge.Replay.
type deadLetterService struct {
	cfg    bridge.Config
	getenv func(string) string
	audit  bridge.AuditLog
}

func (d deadLetterService) DeadLetters(ctx context.Context, route string, f httpapi.DeadLetterFilter, dryRun bool, actor string) ([]httpapi.DeadLetter, int, error) {
	var rc *bridge.RouteConfig
	for i := range d.cfg.Routes {
		if d.cfg.Routes[i].Name == route {
			rc = &d.cfg.Routes[i]
		}
	}
	if rc == nil {
		return nil, 0, fmt.Errorf("unknown route %q", route)
	}
	res, err := kafka.Replay(ctx, kafka.ReplayOptions{
		Kafka: d.cfg.Kafka, Getenv: d.getenv, Route: *rc, DryRun: dryRun, Audit: d.audit, Actor: actor,
		Filter: kafka.ReplayFilter{Since: f.Since, Until: f.Until, Device: f.Device, Reason: f.Reason},
	})
	out := make([]httpapi.DeadLetter, len(res.Matched))
	for i, m := range res.Matched {
		out[i] = httpapi.DeadLetter{Partition: m.Partition, Offset: m.Offset, Stage: m.Stage, Reason: m.Reason, Device: m.Device, LastAttempt: m.LastAttempt}
	}
	return out, res.Replayed, err
}
