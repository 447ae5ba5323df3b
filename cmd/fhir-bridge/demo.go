package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/demo"
)

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [--duration D] [--devices N] [--rate R] [--kafka-addr ADDR]")
	duration := fs.Duration("duration", 0, "stop after this long, e.g. 20s (default: until Ctrl-C)")
	devices := fs.Int("devices", 10, "number of simulated heart-rate monitors")
	rate := fs.Float64("rate", 20, "readings per second, all devices together")
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "embedded Kafka listener (loopback only; port 0 picks a free one)")
	progress := fs.Duration("progress", 5*time.Second, "interval between progress lines")
	topic := fs.String("topic", "vitals.native", "topic the simulated devices write to")
	logLevel := fs.String("log-level", envOr(getenv, "FHIR_BRIDGE_LOG_LEVEL", "warn"), "debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	switch {
	case *duration < 0:
		return &usageError{"demo: --duration must not be negative"}
	case *devices < 1 || *devices > 100000:
		return &usageError{"demo: --devices must be between 1 and 100000"}
	case *rate <= 0 || *rate > 100000:
		return &usageError{"demo: --rate must be above 0 and at most 100000"}
	case *progress <= 0:
		return &usageError{"demo: --progress must be positive"}
	}
	host, _, err := net.SplitHostPort(*kafkaAddr)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		return &usageError{fmt.Sprintf("demo: --kafka-addr %q: must be 127.0.0.1:PORT", *kafkaAddr)}
	}
	port, err := demo.PortOf(*kafkaAddr)
	if err != nil {
		return &usageError{fmt.Sprintf("demo: --kafka-addr %q: %v", *kafkaAddr, err)}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	res, err := demo.Run(ctx, demo.Options{
		KafkaPort: port, Topic: *topic, Devices: *devices, Rate: *rate,
		Duration: *duration, Progress: *progress, Log: log,
	}, stdout)
	// The last line is the contract scripts read, even after a failure.
	fmt.Fprintf(stdout, "received=%d delivered=%d dead_lettered=%d\n", res.Received, res.Delivered, res.DeadLettered)
	return err
}
