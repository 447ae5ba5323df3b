package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit/auditevent"
	"github.com/fhir-bridge/fhir-bridge/fhir"
)

const auditUsage = `Usage:
  fhir-bridge audit verify --config FILE
      walk every hash chain of the audit trail; exit 1 and list each broken link if any
  fhir-bridge audit export --config FILE [--patient REF] [--device REF] [--route R] [--since T] [--until T] [--limit N]
      print matching audit events as a FHIR R4 Bundle of AuditEvents (IHE BALP)
`

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return &usageError{"audit: give a subcommand: verify or export"}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, auditUsage)
		return nil
	case "verify":
		fs := newFlagSet("audit verify", "audit verify --config FILE")
		configPath := fs.String("config", getenv("FHIR_BRIDGE_CONFIG"), "configuration file (env FHIR_BRIDGE_CONFIG)")
		if err := parseFlags(fs, args[1:], stdout); err != nil {
			if errors.Is(err, errHelp) {
				return nil
			}
			return err
		}
		store, _, err := openAuditStore(ctx, *configPath, getenv)
		if err != nil {
			return err
		}
		defer store.Close()
		rep, err := store.Verify(ctx)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		for _, b := range rep.Broken {
			fmt.Fprintf(stdout, "BROKEN chain=%s row=%d seq=%d reason=%q expected=%s found=%s\n", b.Chain, b.RowID, b.Seq, b.Reason, b.Expected, b.Found)
		}
		fmt.Fprintf(stdout, "chains=%d rows=%d unchained=%d broken=%d\n", rep.Chains, rep.Rows, rep.Unchained, len(rep.Broken))
		if !rep.OK() {
			return fmt.Errorf("audit verify: %d broken link(s)", len(rep.Broken))
		}
		return nil
	case "export":
		fs := newFlagSet("audit export", "audit export --config FILE [filters]")
		configPath := fs.String("config", getenv("FHIR_BRIDGE_CONFIG"), "configuration file (env FHIR_BRIDGE_CONFIG)")
		patient := fs.String("patient", "", "only events about this patient, e.g. Patient/123")
		device := fs.String("device", "", "only events about this device, e.g. Device/hrm-1")
		route := fs.String("route", "", "only events of this route")
		since := fs.String("since", "", "only events at or after this time (RFC 3339)")
		until := fs.String("until", "", "only events before this time (RFC 3339)")
		limit := fs.Int("limit", 1000, "at most this many events")
		if err := parseFlags(fs, args[1:], stdout); err != nil {
			if errors.Is(err, errHelp) {
				return nil
			}
			return err
		}
		f := audit.Filter{Patient: *patient, Device: *device, Route: *route, Limit: *limit}
		var err error
		if f.Since, err = optRFC3339("--since", *since); err != nil {
			return err
		}
		if f.Until, err = optRFC3339("--until", *until); err != nil {
			return err
		}
		store, cfg, err := openAuditStore(ctx, *configPath, getenv)
		if err != nil {
			return err
		}
		defer store.Close()
		events, err := store.List(ctx, f)
		if err != nil {
			return fmt.Errorf("audit export: %w", err)
		}
		out, err := auditBundleJSON(events, cfg)
		if err != nil {
			return fmt.Errorf("audit export: %w", err)
		}
		_, err = stdout.Write(out)
		return err
	default:
		return &usageError{fmt.Sprintf("audit: unknown subcommand %q; want verify or export", args[0])}
	}
}

func optRFC3339(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &usageError{fmt.Sprintf("%s %q: want RFC 3339", flag, v)}
	}
	return t, nil
}

func openAuditStore(ctx context.Context, path string, getenv func(string) string) (*audit.Postgres, bridge.Config, error) {
	if path == "" {
		return nil, bridge.Config{}, &usageError{"--config is required"}
	}
	cfg, err := bridge.LoadConfig(path, getenv)
	if err != nil {
		return nil, cfg, err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := audit.OpenPostgres(octx, cfg.Audit.DSN)
	return store, cfg, err
}

// auditEventOptions describes this bridge for AuditEvents.
func auditEventOptions(cfg bridge.Config) auditevent.Options {
	host, _ := os.Hostname()
	o := auditevent.Options{BridgeID: "fhir-bridge", BridgeHost: host, Destinations: map[string]string{}, OIDCIssuer: cfg.API.OIDC.Issuer}
	for _, r := range cfg.Routes {
		switch {
		case r.Destination.FHIR != nil:
			o.Destinations[r.Name] = r.Destination.FHIR.BaseURL
		case r.Destination.MLLP != nil:
			o.Destinations[r.Name] = "mllp://" + r.Destination.MLLP.Address
		}
	}
	return o
}

// auditBundleJSON renders events as an indented Bundle of AuditEvents.
func auditBundleJSON(events []audit.Event, cfg bridge.Config) ([]byte, error) {
	b, err := auditevent.Bundle(events, auditEventOptions(cfg))
	if err != nil {
		return nil, err
	}
	codec, err := fhir.NewCodec()
	if err != nil {
		return nil, err
	}
	compact, err := codec.Encode(b)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, compact, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
