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

// TestTUIInTmux drives the real binary's full-screen console in tmux:
// start the demo, pay 25.50 by card, see it approved, quit.
func TestTUIInTmux(t *testing.T) {
	bin := binary(t)
	journal := filepath.Join(t.TempDir(), "journal.db")
	start := time.Now()
	// The shell prints the exit status: tmux 3.3a does not always fill
	// #{pane_dead_status}.
	tm := startTmux(t, "e2e", fmt.Sprintf("'%s' demo --journal '%s'; echo paydesk-exit=$?; sleep 30", bin, journal), 15*time.Second)
	tmux, waitFor := tm.run, tm.waitFor
	screen := waitFor("1 POS connected")
	t.Logf("start to first frame with the POS connected: %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(screen, "DEMO paydesk KIOSK001") || !strings.Contains(screen, "1. Card Payment") {
		t.Errorf("menu screen:\n%s", screen)
	}
	tmux("send-keys", "-t", "t", "1")
	waitFor("Amount (RM)")
	tmux("send-keys", "-t", "t", "25.50", "Enter")
	screen = waitFor("APPROVED")
	for _, s := range []string{"RM25.50", "**** 4242", "RESULT TXN", "approved 25.50"} {
		if !strings.Contains(screen, s) {
			t.Errorf("result screen lacks %q:\n%s", s, screen)
		}
	}
	pid, _ := exec.Command("pgrep", "-f", "-n", bin+" demo").Output()
	if status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				t.Logf("paydesk demo resident memory after one payment: %s", strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")))
			}
		}
	}
	tmux("send-keys", "-t", "t", "x") // back to the menu
	waitFor("1. Card Payment")
	tmux("send-keys", "-t", "t", "q")
	waitFor("paydesk-exit=0")
}

// Quitting the full-screen console with a payment on the card terminal
// (q, then y) ends the process within a couple of seconds: the terminal
// would keep it waiting for 3 minutes.
func TestTUIQuitWithATerminalPaymentInFlight(t *testing.T) {
	bin := binary(t)
	journal := filepath.Join(t.TempDir(), "journal.db")
	tm := startTmux(t, "quit", fmt.Sprintf("'%s' demo --journal '%s'; echo paydesk-exit=$?; sleep 30", bin, journal), 15*time.Second)
	tmux, waitFor := tm.run, tm.waitFor
	waitFor("1 POS connected")
	tmux("send-keys", "-t", "t", "8")
	waitFor("Amount (EUR)")
	tmux("send-keys", "-t", "t", "6.02", "Enter") // the simulated terminal accepts and never answers
	waitFor("terminal accepted the request")
	tmux("send-keys", "-t", "t", "q")
	waitFor("Quit? y/n")
	begin := time.Now()
	tmux("send-keys", "-t", "t", "y")
	waitFor("paydesk-exit=0")
	// "A couple of seconds", with room for a loaded machine and for
	// tmux's own polling.
	took := time.Since(begin)
	t.Logf("exit %s after the quit was confirmed", took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Errorf("the console took %s to exit after quit, want about 2 s at most", took)
	}
}

// The line console typed at a keyboard (--plain on a terminal): 7 with a
// payment on the card terminal quits at once too, and says the payment
// stays in the journal.
func TestPlainQuitAtTheKeyboardWithATerminalPaymentInFlight(t *testing.T) {
	bin := binary(t)
	journal := filepath.Join(t.TempDir(), "journal.db")
	tm := startTmux(t, "plainquit", fmt.Sprintf("'%s' demo --plain --journal '%s'; echo paydesk-exit=$?; sleep 30", bin, journal), 15*time.Second)
	tmux, waitFor := tm.run, tm.waitFor
	waitFor("Select option")
	tmux("send-keys", "-t", "t", "8", "Enter")
	waitFor("Enter amount (EUR)")
	tmux("send-keys", "-t", "t", "6.02", "Enter") // the simulated terminal accepts and never answers
	waitFor("terminal accepted the request")
	begin := time.Now()
	tmux("send-keys", "-t", "t", "7", "Enter")
	screen := waitFor("paydesk-exit=0")
	took := time.Since(begin)
	t.Logf("exit %s after 7", took.Round(time.Millisecond))
	// "A couple of seconds", with room for a loaded machine and tmux's
	// polling.
	if took > 4*time.Second {
		t.Errorf("the line console took %s to exit after 7, want about 2 s at most", took)
	}
	if !strings.Contains(screen, "stays in the journal") {
		t.Errorf("no word on the payment in flight:\n%s", screen)
	}
}
