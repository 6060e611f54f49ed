package main

import (
	"fmt"
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
	bin := binary(t)
	dir := t.TempDir()
	tm := startTmux(t, "mpesa", fmt.Sprintf("'%s' demo --journal '%s' --log '%s'; echo paydesk-exit=$?; sleep 30",
		bin, filepath.Join(dir, "journal.db"), filepath.Join(dir, "log")), 20*time.Second)
	tmux, waitFor := tm.run, tm.waitFor
	// The rails' line lists the POS rail first since the rails describe
	// themselves; the test needs the M-Pesa rail ready (and the terminal,
	// as before).
	waitFor("terminal ready  mpesa ready")
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
