// Package wire builds the engine's routes from the configuration: it picks
// each route's mapper, encoder and sink by destination kind, constructs the
// FHIR clients (TLS, SMART Backend Services) and MLLP pools, and asks the
// caller for the source and dead-letter writer of every route. The engine
// (package bridge) knows none of these concrete types.
package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// Deps are what routes are built from besides the configuration.
type Deps struct {
	// Source returns a route's source (bridge/kafka.NewSource). Required.
	Source func(rc bridge.RouteConfig) (bridge.Source, error)
	// DeadLetters returns a route's dead-letter writer. Nil: refused
	// readings are recorded in the audit trail only.
	DeadLetters func(rc bridge.RouteConfig) (bridge.DeadLetters, error)
	// Ledger records MLLP deliveries. Required for MLLP routes.
	Ledger bridge.Ledger
	Codec  *fhir.Codec
	Log    *slog.Logger
}

// Routes builds the routes of cfg. On error, whatever was built is closed.
func Routes(cfg bridge.Config, d Deps) ([]bridge.RouteSpec, error) {
	var specs []bridge.RouteSpec
	fail := func(rc bridge.RouteConfig, err error) ([]bridge.RouteSpec, error) {
		Close(specs)
		return nil, fmt.Errorf("route %s: %w", rc.Name, err)
	}
	retry := Retry(cfg)
	for _, rc := range cfg.Routes {
		mapper, err := bridge.LoadMapper(rc.Templates, bridge.MapperOptions{DefaultPatientID: rc.DefaultPatient})
		if err != nil {
			return fail(rc, err)
		}
		spec := bridge.RouteSpec{Name: rc.Name, Mapper: mapper, InFlight: rc.InFlight}
		switch {
		case rc.Destination.MLLP != nil:
			m := rc.Destination.MLLP
			pool, err := newMLLPPool(m)
			if err != nil {
				return fail(rc, err)
			}
			sink, err := bridge.NewMLLPSink(bridge.MLLPSinkConfig{
				Route: rc.Name, Sender: pool, Ledger: d.Ledger, Parallel: m.Connections, Retry: retry,
				Close: pool.Close,
			})
			if err != nil {
				pool.Close(context.Background())
				return fail(rc, err)
			}
			spec.Sink = sink
			spec.Encoder = bridge.NewORUEncoder(mappers.ORUOptions{
				SendingApplication:   hd(m.SendingApplication),
				SendingFacility:      hd(m.SendingFacility),
				ReceivingApplication: hd(m.ReceivingApplication),
				ReceivingFacility:    hd(m.ReceivingFacility),
				PatientAuthority:     hd(m.PatientAuthority),
			})
			// Readings arriving together are sent over all connections at
			// once, one patient per connection at a time.
			spec.Batch = bridge.Batching{MaxReadings: 25 * m.Connections, MaxBytes: 4 << 20, Linger: 20 * time.Millisecond}
		case rc.Destination.FHIR != nil:
			f := rc.Destination.FHIR
			client, err := newFHIRClient(f, cfg.Getenv)
			if err != nil {
				return fail(rc, err)
			}
			var upsert bridge.FHIRUpdater
			if f.UpsertDevices {
				upsert = client
			}
			spec.Encoder = bridge.NewFHIREncoder(d.Codec, cfg.IdentifierSystem, f.UpsertDevices)
			if f.Batch.MaxEntries <= 1 {
				spec.Sink = bridge.NewFHIRSingleSink(client, upsert, client, d.Log)
				spec.Batch = bridge.Batching{MaxReadings: 1}
			} else {
				spec.Sink = bridge.NewFHIRBatchSink(client, upsert, client, bridge.BatchLimits{
					MaxEntries: f.Batch.MaxEntries, MaxBytes: f.Batch.MaxBytes, Concurrency: f.Batch.Concurrency,
				}, d.Log)
				// Enough for one Bundle per concurrent request.
				spec.Batch = bridge.Batching{MaxReadings: f.Batch.MaxEntries * f.Batch.Concurrency,
					MaxBytes: f.Batch.MaxBytes * f.Batch.Concurrency, Linger: f.Batch.Linger}
			}
		default:
			return fail(rc, errors.New("no destination"))
		}
		if spec.Source, err = d.Source(rc); err != nil {
			spec.Sink.Close(context.Background())
			return fail(rc, err)
		}
		if d.DeadLetters != nil {
			if spec.DeadLetters, err = d.DeadLetters(rc); err != nil {
				spec.Sink.Close(context.Background())
				return fail(rc, err)
			}
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// Close releases the sinks and dead-letter writers of specs (what
// bridge.Bridge.Run does when it returns), for callers that fail before
// running them.
func Close(specs []bridge.RouteSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range specs {
		s.Sink.Close(ctx)
		if s.DeadLetters != nil {
			s.DeadLetters.Close()
		}
	}
}

// Retry is the engine's retry policy from cfg.
func Retry(cfg bridge.Config) bridge.Retry {
	return bridge.Retry{Initial: cfg.Retry.Initial, Max: cfg.Retry.Max}
}

func hd(namespace string) hl7.HD { return hl7.HD{NamespaceID: namespace} }

// newMLLPPool builds the connection pool of an MLLP destination.
func newMLLPPool(m *bridge.MLLPDestination) (*hl7.Pool, error) {
	cfg := hl7.PoolConfig{Size: m.Connections, SenderConfig: hl7.SenderConfig{Addr: m.Address, AckTimeout: m.AckTimeout}}
	if m.TLS != nil {
		tc, err := hl7.TLSConfig(m.TLS.CAFile, m.TLS.CertFile, m.TLS.KeyFile, m.TLS.ServerName)
		if err != nil {
			return nil, fmt.Errorf("mllp tls: %w", err)
		}
		cfg.TLS = tc
	}
	return hl7.NewPool(cfg)
}

// Check is a named readiness check.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// DestinationChecks are readiness checks that every route's destination
// accepts connections: a TCP connection to the FHIR server or the MLLP
// engine (nothing is sent; authentication problems show in the delivery
// outcomes and metrics).
func DestinationChecks(cfg bridge.Config) []Check {
	var out []Check
	for _, rc := range cfg.Routes {
		var addr string
		switch {
		case rc.Destination.MLLP != nil:
			addr = rc.Destination.MLLP.Address
		case rc.Destination.FHIR != nil:
			u, err := url.Parse(rc.Destination.FHIR.BaseURL)
			if err != nil {
				continue
			}
			port := u.Port()
			if port == "" {
				port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
			}
			addr = net.JoinHostPort(u.Hostname(), port)
		}
		out = append(out, Check{Name: "destination:" + rc.Name, Run: func(ctx context.Context) error {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
			return c.Close()
		}})
	}
	return out
}
