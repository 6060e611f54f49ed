package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxSession is the real binary running in a private tmux server, for the
// end-to-end tests of the full-screen console.
type tmuxSession struct {
	t          *testing.T
	sock, conf string
	wait       time.Duration
}

// startTmux runs command in a new 80x24 tmux session without colour. It
// skips when tmux is missing, but fails in CI, where .ci/run installs it.
func startTmux(t *testing.T, name, command string, wait time.Duration) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is required in CI (.ci/run installs it)")
		}
		t.Skip("tmux not installed")
	}
	conf, _ := filepath.Abs("testdata/tmux.conf")
	s := &tmuxSession{t: t, sock: fmt.Sprintf("paydesk-%s-%d", name, os.Getpid()), conf: conf, wait: wait}
	t.Cleanup(func() { exec.Command("tmux", "-L", s.sock, "kill-server").Run() })
	s.run("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "-e", "NO_COLOR=1", command)
	return s
}

// run runs a tmux command on the session's server and returns its output.
func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.sock, "-f", s.conf}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitFor polls the screen until it shows text, and returns that screen.
func (s *tmuxSession) waitFor(text string) string {
	s.t.Helper()
	return s.waitUntil(fmt.Sprintf("%q", text), func(screen string) bool { return strings.Contains(screen, text) })
}

// waitUntil polls the screen until ok holds for it, and returns that
// screen; what names the wait in the failure.
func (s *tmuxSession) waitUntil(what string, ok func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(s.wait)
	for time.Now().Before(deadline) {
		if screen := s.run("capture-pane", "-p", "-t", "t"); ok(screen) {
			return screen
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("no %s on screen:\n%s", what, s.run("capture-pane", "-p", "-t", "t"))
	return ""
}
