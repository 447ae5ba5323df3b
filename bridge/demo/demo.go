// Package demo runs the whole bridge in one process with nothing installed:
// an embedded Kafka-protocol broker (kfake), a simulated device fleet, the
// real pipeline, a sandbox FHIR server that validates what it receives, and
// the in-memory audit store.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/kafka"
	"github.com/fhir-bridge/fhir-bridge/bridge/wire"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirsandbox"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"
)

// Options configure a demo run.
type Options struct {
	// KafkaPort is the embedded broker's port on 127.0.0.1; 0 picks a free one.
	KafkaPort int
	Topic     string
	Devices   int
	Rate      float64       // readings per second, all devices together
	Duration  time.Duration // 0 runs until ctx ends
	Progress  time.Duration // interval between progress lines
	Log       *slog.Logger
}

// Result is what a run did.
type Result struct {
	Produced int64
	bridge.Stats
	EHR fhirsandbox.Stats
}

// Run runs the demo and writes progress lines to out. It stops after
// Duration or when ctx ends, then lets the pipeline finish what was produced
// (bounded), so the final counts add up.
func Run(ctx context.Context, o Options, out io.Writer) (Result, error) {
	cluster, err := kfake.NewCluster(kfake.Ports(o.KafkaPort), kfake.SeedTopics(4, o.Topic, o.Topic+".dead-letter"))
	if err != nil {
		return Result{}, fmt.Errorf("demo: embedded Kafka on 127.0.0.1:%d: %w (is another broker running? try --kafka-port 0)", o.KafkaPort, err)
	}
	defer cluster.Close()
	kafkaAddr := cluster.ListenAddrs()[0]

	codec, err := fhir.NewCodec()
	if err != nil {
		return Result{}, err
	}
	ehr := fhirsandbox.New(codec)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, fmt.Errorf("demo: sandbox FHIR server: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", ehr))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	ehrURL := "http://" + ln.Addr().String() + "/fhir"

	cfg := bridge.Config{
		Kafka:         bridge.KafkaConfig{Brokers: []string{kafkaAddr}},
		ShutdownGrace: 5 * time.Second,
		Routes: []bridge.RouteConfig{{
			Name:          "demo-heart-rate",
			Topic:         o.Topic,
			StartPosition: bridge.StartEarliest, // the fleet may start before the group has joined
			Destination:   bridge.DestinationConfig{FHIR: &bridge.FHIRDestination{BaseURL: ehrURL}},
		}},
	}
	cfg.SetDefaults()
	store := audit.NewMemory()
	noEnv := func(string) string { return "" }
	specs, err := wire.Routes(cfg, wire.Deps{
		Source: func(rc bridge.RouteConfig) (bridge.Source, error) {
			return kafka.NewSource(cfg.Kafka, rc, noEnv, o.Log)
		},
		DeadLetters: func(rc bridge.RouteConfig) (bridge.DeadLetters, error) {
			return kafka.NewDeadLetterWriter(cfg.Kafka, rc, noEnv)
		},
		Ledger: store, Codec: codec, Log: o.Log,
	})
	if err != nil {
		return Result{}, err
	}
	b, err := bridge.New(specs, bridge.Options{Audit: store, Retry: wire.Retry(cfg), Grace: cfg.ShutdownGrace, Log: o.Log})
	if err != nil {
		wire.Close(specs)
		return Result{}, err
	}
	fmt.Fprintf(out, "demo: kafka=%s topic=%s ehr=%s devices=%d rate=%g/s\n", kafkaAddr, o.Topic, ehrURL, o.Devices, o.Rate)

	// The pipeline gets its own context: when the demo is told to stop, the
	// fleet stops first and the pipeline drains before it is cancelled.
	pipeCtx, stopPipe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipe()
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- b.Run(pipeCtx) }()

	fleetCtx, stopFleet := context.WithCancel(ctx)
	if o.Duration > 0 {
		fleetCtx, stopFleet = context.WithTimeout(ctx, o.Duration)
	}
	defer stopFleet()
	fleet := NewFleet(kafkaAddr, o.Topic, o.Devices, o.Rate)
	g, gctx := errgroup.WithContext(fleetCtx)
	g.Go(func() error { return fleet.Run(gctx) })
	g.Go(func() error {
		start := time.Now()
		t := time.NewTicker(o.Progress)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				s := b.Stats()
				fmt.Fprintf(out, "demo: t=%s produced=%d received=%d delivered=%d dead_lettered=%d retries=%d ehr_created=%d\n",
					time.Since(start).Round(time.Second), fleet.Produced(), s.Received, s.Delivered, s.DeadLettered, s.Retries, ehr.Stats().Created)
			}
		}
	})
	fleetErr := g.Wait()

	// Drain: wait until everything produced has been handled, within a bound.
	drainBy := time.Now().Add(15 * time.Second)
	for time.Now().Before(drainBy) {
		s := b.Stats()
		if s.Received >= fleet.Produced() && s.Delivered+s.DeadLettered >= s.Received {
			break
		}
		select {
		case err := <-pipeDone:
			pipeDone <- err
			drainBy = time.Time{}
		case <-time.After(50 * time.Millisecond):
		}
	}
	stopPipe()
	pipeErr := <-pipeDone
	res := Result{Produced: fleet.Produced(), Stats: b.Stats(), EHR: ehr.Stats()}
	if err := errors.Join(fleetErr, pipeErr); err != nil {
		return res, err
	}
	if res.Received < res.Produced {
		return res, fmt.Errorf("demo: pipeline handled %d of %d readings before the drain deadline", res.Received, res.Produced)
	}
	return res, nil
}

// PortOf returns the port of a host:port address.
func PortOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}
