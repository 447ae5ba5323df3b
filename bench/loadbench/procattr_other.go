//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal is a no-op off Linux; the harness needs /proc anyway.
func setDeathSignal(*exec.Cmd, syscall.Signal) {}
