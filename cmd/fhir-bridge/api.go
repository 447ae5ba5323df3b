package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fhir-bridge/fhir-bridge/auth"
	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/httpapi"
	"github.com/segmentio/kafka-go"
)

// startAPI serves the HTTP API when configured and returns the function that
// shuts it down gracefully (in-flight requests get 10 s).
func startAPI(ctx context.Context, cfg bridge.Config, b *bridge.Bridge, store *audit.Postgres, log *slog.Logger) (func(), error) {
	if cfg.API.Listen == "" {
		return func() {}, nil
	}
	routes := map[string]httpapi.RouteMapper{}
	for _, rc := range cfg.Routes {
		m, err := bridge.LoadMapper(rc.Templates, bridge.MapperOptions{DefaultPatientID: rc.DefaultPatient})
		if err != nil {
			return nil, fmt.Errorf("api: route %s: %w", rc.Name, err)
		}
		routes[rc.Name] = httpapi.RouteMapper{Native: len(rc.Templates) == 0, Map: m.Map}
	}
	v, err := auth.NewVerifier(ctx, auth.InboundConfig{Issuer: cfg.API.OIDC.Issuer, Audience: cfg.API.OIDC.Audience, DeviceClaim: cfg.API.OIDC.DeviceClaim})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	pub := bridge.NewPublisher(cfg)
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: 3 * time.Second}
	h := httpapi.New(httpapi.Config{
		Verifier: v, Publish: pub, Audit: store, Routes: routes, Log: log, MaxBody: cfg.API.MaxBody,
		AuditEvents: func(events []audit.Event) ([]byte, error) { return auditBundleJSON(events, cfg) },
		DeadLetters: deadLetterService{cfg: cfg, audit: store},
		Checks: []httpapi.Check{
			{Name: "kafka", Run: func(ctx context.Context) error {
				_, err := client.Metadata(ctx, &kafka.MetadataRequest{})
				return err
			}},
			{Name: "postgres", Run: func(ctx context.Context) error {
				_, err := store.List(ctx, audit.Filter{Limit: 1})
				return err
			}},
		},
		Metrics: func(w io.Writer) {
			s := b.Stats()
			secs, batches := b.Handling()
			cs := []httpapi.Counter{
				{Name: "fhir_bridge_handling_seconds_sum", Help: "Time from fetch to commit of handled batches.", Value: secs},
				{Name: "fhir_bridge_handling_seconds_count", Help: "Handled batches.", Value: float64(batches)},
				{Name: "fhir_bridge_messages_received_total", Help: "Messages fetched from Kafka.", Value: float64(s.Received)},
				{Name: "fhir_bridge_messages_delivered_total", Help: "Messages whose readings were all delivered.", Value: float64(s.Delivered)},
				{Name: "fhir_bridge_messages_dead_lettered_total", Help: "Messages with a rejected reading, sent to the dead-letter topic.", Value: float64(s.DeadLettered)},
				{Name: "fhir_bridge_delivery_retries_total", Help: "Retryable delivery failures that were retried.", Value: float64(s.Retries)},
			}
			for route, lag := range b.Lag() {
				cs = append(cs, httpapi.Counter{Name: "fhir_bridge_consumer_lag", Type: "gauge", Help: "Messages the route's consumer is behind.",
					Labels: map[string]string{"route": route}, Value: float64(lag)})
			}
			httpapi.WriteCounters(w, cs)
		},
	})
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		pub.Close()
		return nil, fmt.Errorf("api: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		if cfg.API.TLSCertFile != "" {
			err = srv.ServeTLS(ln, cfg.API.TLSCertFile, cfg.API.TLSKeyFile)
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api stopped", "err", err)
		}
	}()
	log.Info("api listening", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("api shutdown", "err", err)
		}
		<-done
		pub.Close()
	}, nil
}

// deadLetterService serves the API's dead-letter endpoints with bridge.Replay.
type deadLetterService struct {
	cfg   bridge.Config
	audit bridge.AuditLog
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
	res, err := bridge.Replay(ctx, bridge.ReplayOptions{
		Brokers: d.cfg.Kafka.Brokers, Route: *rc, DryRun: dryRun, Audit: d.audit, Actor: actor,
		Filter: bridge.ReplayFilter{Since: f.Since, Until: f.Until, Device: f.Device, Reason: f.Reason},
	})
	out := make([]httpapi.DeadLetter, len(res.Matched))
	for i, m := range res.Matched {
		out[i] = httpapi.DeadLetter{Partition: m.Partition, Offset: m.Offset, Stage: m.Stage, Reason: m.Reason, Device: m.Device, LastAttempt: m.LastAttempt}
	}
	return out, res.Replayed, err
}
