// Command fhir-bridge carries device vitals from Kafka into EHRs as FHIR R4
// Observations and HL7 v2 messages, with an audit trail. Run "fhir-bridge help"
// for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// SIGHUP reloads "run": the bridge drains exactly as for SIGTERM
	// (nothing in flight is lost, every consumer group is left), then the
	// process replaces itself with a fresh start of the same command, which
	// reads the configuration and templates again. The PID stays the same,
	// so a supervisor sees no exit.
	ctx, reload := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var reloading atomic.Bool
	go func() {
		<-hup
		reloading.Store(true)
		reload()
	}()
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err == nil && reloading.Load() && len(os.Args) > 1 && os.Args[1] == "run" {
		err = reexec()
	}
	os.Exit(exitCode(err, os.Stderr))
}

// reexec replaces the process with a new start of the same command line.
func reexec() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	fmt.Fprintln(os.Stderr, "fhir-bridge: drained; reloading with the configuration file")
	if err := syscall.Exec(exe, os.Args, os.Environ()); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	return nil
}

// usageError is a command-line mistake: exit status 2, like flag's.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "fhir-bridge:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
