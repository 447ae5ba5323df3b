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
	"syscall"
)

func main() {
	// SIGHUP drains like SIGTERM: the supervisor starts the process again
	// with the new configuration, and nothing in flight is lost.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
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
