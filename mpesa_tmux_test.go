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

// TestMPesaTUIInTmux drives the real binary's full-screen console in
// tmux: item 9 in the demo, the sandbox's test number, KES 150; the
// waiting view counts down for the customer's PIN, then the result shows
// the M-Pesa receipt. The phone is masked everywhere but its own field.
func TestMPesaTUIInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is required in CI (.ci/run installs it)")
		}
		t.Skip("tmux not installed")
	}
	bin := binary(t)
	conf, _ := filepath.Abs("testdata/tmux.conf")
	sock := fmt.Sprintf("paydesk-mpesa-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", sock, "-f", conf}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-L", sock, "kill-server").Run() })
	dir := t.TempDir()
	tmux("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "-e", "NO_COLOR=1",
		fmt.Sprintf("'%s' demo --journal '%s' --log '%s'; echo paydesk-exit=$?; sleep 30", bin, filepath.Join(dir, "journal.db"), filepath.Join(dir, "log")))
	waitFor := func(text string) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if screen := tmux("capture-pane", "-p", "-t", "t"); strings.Contains(screen, text) {
				return screen
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no %q on screen:\n%s", text, tmux("capture-pane", "-p", "-t", "t"))
		return ""
	}
	waitFor("rails:  terminal ready  mpesa ready")
	tmux("send-keys", "-t", "t", "9")
	waitFor("Customer's phone")
	tmux("send-keys", "-t", "t", "0708 374 149", "Enter")
	waitFor("Amount (KES)")
	tmux("send-keys", "-t", "t", "150", "Enter")
	screen := waitFor("waiting for the customer's PIN")
	if !strings.Contains(screen, "M-Pesa KES 150.00") {
		t.Errorf("waiting view:\n%s", screen)
	}
	screen = waitFor("APPROVED")
	for _, s := range []string{"M-Pesa receipt", "RESULT PD", "approved 150.00 pos_txn="} {
		if !strings.Contains(screen, s) {
			t.Errorf("result screen lacks %q:\n%s", s, screen)
		}
	}
	tmux("send-keys", "-t", "t", "x")
	waitFor("m. Till payments (M-Pesa)")
	tmux("send-keys", "-t", "t", "m")
	waitFor("No till or paybill payments yet")
	tmux("send-keys", "-t", "t", "Escape")
	waitFor("1. Card Payment")
	tmux("send-keys", "-t", "t", "q")
	waitFor("paydesk-exit=0")
}
