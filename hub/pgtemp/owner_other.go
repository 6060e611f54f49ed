//go:build !unix

package pgtemp

import (
	"os"
	"os/exec"
)

type owner struct{}

func unprivileged() (owner, error) { return owner{}, nil }

func (owner) own(string) error { return nil }

func (owner) apply(*exec.Cmd) {}

// immediateShutdown: without SIGQUIT, the process is killed.
var immediateShutdown os.Signal = os.Kill
