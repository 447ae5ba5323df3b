package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/kafka"
	"github.com/fhir-bridge/fhir-bridge/bridge/metrics"
	"github.com/fhir-bridge/fhir-bridge/bridge/tracing"
	"github.com/fhir-bridge/fhir-bridge/bridge/wire"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	rungroup "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// stdin is where commands read "-"; run's signature keeps to the streams
// the pipeline needs, and commands that read input are the exception.
var stdin io.Reader = os.Stdin

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

const usage = `fhir-bridge carries device vitals from Kafka into EHRs as FHIR R4 Observations and HL7 v2 ORU^R01.

Usage:
  fhir-bridge <command> [flags]

Commands:
  run       run the bridge with a configuration file (production)
  audit     verify the audit trail's hash chains, export it as FHIR AuditEvents
  demo      run everything in one process: embedded Kafka, simulated devices, sandbox EHR
  map       map one payload with the native format or templates; print FHIR or HL7
  keys      generate a SMART Backend Services key, print the JWKS to publish
  replay    re-inject a route's dead letters into its source topic
  validate  validate a FHIR R4 resource or Bundle and print each issue with its path
  version   print the version

Run "fhir-bridge <command> --help" for a command's flags.
`

// run is the whole program: main only adds the process's arguments,
// environment, streams and a signal-aware context, so tests can call run.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command given"}
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "run":
		return runBridge(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "map":
		return runMap(ctx, rest, stdin, stdout)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout)
	case "keys":
		return runKeys(rest, stdout)
	case "replay":
		return runReplay(ctx, rest, getenv, stdout)
	case "validate":
		return runValidate(ctx, rest, stdin, stdout)
	case "version":
		return runVersion(rest, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// parseFlags parses the flags of a subcommand that takes no operands.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	return parseFlagsArgs(fs, args, stdout, 0)
}

// parseFlagsArgs parses a subcommand's flags and allows up to maxArgs
// operands. --help prints to stdout and returns errHelp, which callers turn
// into a clean exit.
func parseFlagsArgs(fs *flag.FlagSet, args []string, stdout io.Writer, maxArgs int) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelp
	}
	if err != nil {
		return &usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > maxArgs {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(maxArgs))}
	}
	return nil
}

var errHelp = errors.New("help requested")

func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: fhir-bridge %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, &usageError{fmt.Sprintf("log level %q: want debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func runBridge(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "run --config FILE [--log-level LEVEL]")
	configPath := fs.String("config", getenv("FHIR_BRIDGE_CONFIG"), "configuration file (YAML; env FHIR_BRIDGE_CONFIG)")
	logLevel := fs.String("log-level", envOr(getenv, "FHIR_BRIDGE_LOG_LEVEL", "info"), "debug, info, warn or error (env FHIR_BRIDGE_LOG_LEVEL)")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	if *configPath == "" {
		return &usageError{"run: --config is required"}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := bridge.LoadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := audit.OpenPostgres(openCtx, cfg.Audit.DSN)
	cancel()
	if err != nil {
		return err
	}
	defer store.Close()
	return serve(ctx, cfg, *configPath, getenv, store, log)
}

// serve runs the bridge's actors in one group: the pipeline, the operations
// listener and the API. The first to end (a stop, or a failure of any)
// stops the others; every exit path drains the pipeline within its grace
// and leaves the Kafka groups.
func serve(ctx context.Context, cfg bridge.Config, path string, getenv func(string) string, store *audit.Postgres, log *slog.Logger) error {
	codec, err := fhir.NewCodec()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	obs := metrics.New(reg, versionString())
	tp, stopTracing, err := tracing.Setup(ctx, cfg.Tracing, versionString())
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("flushing traces", "err", err)
		}
	}()
	var sources []*kafka.Source
	specs, err := wire.Routes(cfg, wire.Deps{
		Source: func(rc bridge.RouteConfig) (bridge.Source, error) {
			s, err := kafka.NewSource(cfg.Kafka, rc, getenv, log)
			if err == nil {
				sources = append(sources, s)
			}
			return s, err
		},
		DeadLetters: func(rc bridge.RouteConfig) (bridge.DeadLetters, error) {
			return kafka.NewDeadLetterWriter(cfg.Kafka, rc, getenv)
		},
		Ledger: store, Codec: codec, Log: log,
	})
	if err != nil {
		return err
	}
	b, err := bridge.New(specs, bridge.Options{Audit: store, Retry: wire.Retry(cfg), Grace: cfg.ShutdownGrace,
		Observer: obs, Tracer: tp.Tracer("github.com/fhir-bridge/fhir-bridge"), Log: log,
		SpanContext: func(h []bridge.Header) trace.SpanContext {
			return trace.SpanContextFromContext(tracing.Extract(context.Background(), h))
		}})
	if err != nil {
		wire.Close(specs)
		return err
	}
	// The configuration in force is part of the record (HIPAA audit
	// controls): which routes, destinations and templates were running.
	if err := store.Append(ctx, configLoaded(cfg, path)); err != nil {
		wire.Close(specs)
		return err
	}

	var g rungroup.Group
	// The pipeline: a stop cancels its context; it drains within the grace.
	pipeCtx, stopPipe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipe()
	g.Add(func() error { return b.Run(pipeCtx) }, func(error) { stopPipe() })

	// The process's own stop (SIGINT, SIGTERM, SIGHUP: see main).
	stopped := make(chan struct{})
	g.Add(func() error {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		return nil
	}, func(error) { close(stopped) })

	checks := readinessChecks(cfg, getenv, store, sources)
	if cfg.Ops.Listen != "off" {
		ops, err := metrics.Listen(cfg.Ops.Listen, metrics.Handler(reg, checks), log)
		if err != nil {
			wire.Close(specs)
			return fmt.Errorf("ops.listen: %w", err)
		}
		log.Info("ops listening", "addr", ops.Addr())
		g.Add(func() error {
			if err := ops.Serve(); err != nil {
				return fmt.Errorf("ops listener: %w", err)
			}
			return nil
		}, func(error) { shutdown(ops.Shutdown, log, "ops") })
	}
	if cfg.API.Listen != "" {
		api, err := newAPIServer(ctx, cfg, getenv, store, checks, log)
		if err != nil {
			wire.Close(specs)
			return err
		}
		g.Add(func() error {
			if err := api.Serve(); err != nil {
				return fmt.Errorf("api: %w", err)
			}
			return nil
		}, func(error) { api.Shutdown(log) })
	}

	names := make([]string, len(cfg.Routes))
	for i, r := range cfg.Routes {
		names[i] = r.Name
	}
	log.Info("bridge started", "version", versionString(), "routes", strings.Join(names, ","))
	err = g.Run()
	s := b.Stats()
	log.Info("bridge stopped", "received", s.Received, "delivered", s.Delivered, "dead_lettered", s.DeadLettered, "retries", s.Retries)
	return err
}

// shutdown stops a server within 10 s, logging a failure.
func shutdown(f func(context.Context) error, log *slog.Logger, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		log.Warn(what+" shutdown", "err", err)
	}
}

// readinessChecks are what /readyz asks: Kafka and every route topic,
// PostgreSQL, and every destination reachable.
func readinessChecks(cfg bridge.Config, getenv func(string) string, store *audit.Postgres, sources []*kafka.Source) []metrics.Check {
	var topics []string
	for _, rc := range cfg.Routes {
		topics = append(topics, rc.Topic)
	}
	checks := []metrics.Check{
		{Name: "kafka", Run: func(ctx context.Context) error { return kafka.Check(ctx, cfg.Kafka, getenv, topics) }},
		{Name: "postgres", Run: func(ctx context.Context) error {
			_, err := store.List(ctx, audit.Filter{Limit: 1})
			return err
		}},
	}
	for _, c := range wire.DestinationChecks(cfg) {
		checks = append(checks, metrics.Check{Name: c.Name, Run: c.Run})
	}
	return checks
}

func runVersion(args []string, stdout io.Writer) error {
	fs := newFlagSet("version", "version")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	fmt.Fprintf(stdout, "fhir-bridge %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}

// configLoaded is the audit event of a start with cfg: route names with their
// destination kind, no secrets.
func configLoaded(cfg bridge.Config, path string) audit.Event {
	var parts []string
	for _, r := range cfg.Routes {
		kind := "fhir"
		if r.Destination.MLLP != nil {
			kind = "mllp"
		}
		parts = append(parts, r.Name+"("+r.Topic+"->"+kind+")")
	}
	return audit.Event{
		Time: time.Now(), Action: audit.ActionConfigLoaded, Outcome: audit.OutcomeSuccess, Actor: audit.ActorSystem,
		Route: "config", Location: path, Detail: "version " + versionString() + "; routes " + strings.Join(parts, ", "),
	}
}
