//go:build !unix

package main

import (
	"os"
	"os/exec"
)

// TestREADMECommands skips on these systems; these keep it compiling.

func ownGroup(*exec.Cmd) {}

func interruptGroup(cmd *exec.Cmd) error { return cmd.Process.Signal(os.Interrupt) }

func killGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
