package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/kafka"
)

func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("replay", "replay --config FILE --route NAME [--since T] [--until T] [--device D] [--reason X] [--dry-run]\n\n"+
		"Re-injects the route's dead letters into its source topic, where the running bridge maps and\n"+
		"delivers them again (conditional create keeps an already delivered reading from being created\n"+
		"twice). Times are RFC 3339 and filter on the last delivery attempt. Each replayed record is audited.")
	configPath := fs.String("config", getenv("FHIR_BRIDGE_CONFIG"), "configuration file (env FHIR_BRIDGE_CONFIG)")
	routeName := fs.String("route", "", "route whose dead letters to replay (required)")
	since := fs.String("since", "", "only dead letters whose last attempt is at or after this time")
	until := fs.String("until", "", "only dead letters whose last attempt is at or before this time")
	device := fs.String("device", "", "only dead letters of this device (id or Device/id)")
	reason := fs.String("reason", "", "only dead letters with this reason (e.g. invalid-payload, http-422)")
	dryRun := fs.Bool("dry-run", false, "list what would be replayed, change nothing")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	if *configPath == "" || *routeName == "" {
		return &usageError{"replay: --config and --route are required"}
	}
	var f kafka.ReplayFilter
	for _, t := range []struct {
		flag string
		val  string
		dst  *time.Time
	}{{"--since", *since, &f.Since}, {"--until", *until, &f.Until}} {
		if t.val == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.val)
		if err != nil {
			return &usageError{fmt.Sprintf("replay: %s %q: want RFC 3339, e.g. 2026-11-25T10:00:00Z", t.flag, t.val)}
		}
		*t.dst = v
	}
	f.Device, f.Reason = *device, *reason
	cfg, err := bridge.LoadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	var rc *bridge.RouteConfig
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == *routeName {
			rc = &cfg.Routes[i]
		}
	}
	if rc == nil {
		return &usageError{fmt.Sprintf("replay: no route %q in %s", *routeName, *configPath)}
	}
	opts := kafka.ReplayOptions{Kafka: cfg.Kafka, Getenv: getenv, Route: *rc, Filter: f, DryRun: *dryRun, Actor: actor(getenv)}
	if !*dryRun {
		store, err := audit.OpenPostgres(ctx, cfg.Audit.DSN)
		if err != nil {
			return err
		}
		defer store.Close()
		opts.Audit = store
	}
	res, err := kafka.Replay(ctx, opts)
	for _, r := range res.Matched {
		fmt.Fprintf(stdout, "%s/%d/%d stage=%s reason=%s device=%s last_attempt=%s\n", rc.DeadLetterTopic, r.Partition, r.Offset,
			r.Stage, r.Reason, r.Device, r.LastAttempt.Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "scanned=%d matched=%d replayed=%d\n", res.Scanned, len(res.Matched), res.Replayed)
	return err
}

// actor names the operator for the audit trail: FHIR_BRIDGE_ACTOR, else the
// OS user.
func actor(getenv func(string) string) string {
	if a := getenv("FHIR_BRIDGE_ACTOR"); a != "" {
		return "cli:" + a
	}
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}
