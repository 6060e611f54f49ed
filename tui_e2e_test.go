package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// consoleKeys are the keys README.md documents for the full-screen
// console: the single characters and named keys in backticks in its
// section.
func consoleKeys(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### The full-screen console")
	if !ok {
		t.Fatal("README.md has no section on the full-screen console")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	named := map[string]bool{"tab": true, "esc": true, "enter": true, "pgup": true, "pgdn": true}
	var keys []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(section, -1) {
		if k := m[1]; regexp.MustCompile(`^[0-9a-z?]$`).MatchString(k) || named[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) < 10 {
		t.Fatalf("only %d keys found in README.md's console section: %q", len(keys), keys)
	}
	return keys
}

// menuLine is a menu item as drawn: "> 1. Card Payment" or "  j. Journal".
var menuLine = regexp.MustCompile(`^(> |  )\S\. `)

// TestTUIEveryMenuItemAt80x24 walks every menu item of the demo at 80×24
// in tmux: each screen keeps the header's first line, and the full help
// (?) lists every key README.md documents for the console.
func TestTUIEveryMenuItemAt80x24(t *testing.T) {
	bin := binary(t)
	journal := filepath.Join(t.TempDir(), "journal.db")
	tm := startTmux(t, "walk", fmt.Sprintf("'%s' demo --journal '%s'; echo paydesk-exit=$?; sleep 30", bin, journal), 15*time.Second)
	tmux, waitFor := tm.run, tm.waitFor
	waitFor("1 POS connected")
	// The other rails come up after the POS; wait for the card terminal.
	waitFor("terminal ready")

	tmux("send-keys", "-t", "t", "?")
	help := fullHelp(waitFor("ask the rail")) // only the full help says it
	for _, k := range consoleKeys(t) {
		if k == "p" {
			continue // listed while a payment runs: checked below
		}
		shown := map[string]string{"esc": "esc", "enter": "enter", "tab": "tab", "pgup": "pgup", "pgdn": "pgdn"}[k]
		if shown == "" {
			shown = k
		}
		// A key in the help stands before its description, alone or in
		// a group such as 5/c.
		if !regexp.MustCompile(`(^|\s|/)` + regexp.QuoteMeta(shown) + `(/\S+)?\s+\S`).MatchString(help) {
			t.Errorf("README.md's key %q is not in the full help:\n%s", k, help)
		}
	}
	// The menu's own footer: a screen reached from it no longer shows it,
	// and text that is also a menu item (Journal) is only then its title.
	const menuFooter = "? help • 7/q quit"
	onMenu := func() string {
		return tm.waitUntil("the menu", func(s string) bool { return strings.Contains(s, menuFooter) })
	}
	tmux("send-keys", "-t", "t", "Escape")
	onMenu() // one key at a time: Escape then 1 would read as alt+1

	for _, item := range []struct{ key, text, back string }{
		{"1", "Amount (RM)", "Escape"}, {"2", "Amount (RM)", "Escape"}, {"3", "Amount (RM)", "Escape"},
		{"4", "Amount (RM)", "Escape"}, {"5", "no payment in flight to cancel", ""}, {"6", "Connected POS", "Escape"},
		{"8", "Amount (EUR)", "Escape"}, {"9", "Customer's phone", "Escape"}, {"j", "Journal", "Escape"},
		{"l", "Event log", "Escape"}, {"w", "Connect a POS terminal", "x"}, {"m", "Till payments", "Escape"},
		{"v", "Customer displays", "Escape"}, {"n", "Demo notes", "Escape"},
	} {
		tmux("send-keys", "-t", "t", item.key)
		screen := tm.waitUntil(fmt.Sprintf("%q off the menu", item.text), func(s string) bool {
			return strings.Contains(s, item.text) && (item.back == "" || !strings.Contains(s, menuFooter))
		})
		if first := strings.SplitN(screen, "\n", 2)[0]; !strings.Contains(first, "paydesk KIOSK001") {
			t.Errorf("%s: the header's first line is gone at 80x24:\n%s", item.key, screen)
		}
		if item.back != "" {
			tmux("send-keys", "-t", "t", item.back)
		}
		onMenu()
	}

	// A payment the terminal never answers: look away, and p comes back.
	tmux("send-keys", "-t", "t", "8")
	waitFor("Amount (EUR)")
	tmux("send-keys", "-t", "t", "6.02", "Enter")
	waitFor("terminal accepted the request")
	tmux("send-keys", "-t", "t", "Escape")
	waitFor("p: back to")
	tmux("send-keys", "-t", "t", "?")
	if help := fullHelp(waitFor("ask the rail")); !strings.Contains(help, "p back to payment") {
		t.Errorf("no p in the full help while a payment runs:\n%s", help)
	}
	tmux("send-keys", "-t", "t", "Escape")
	onMenu() // one key at a time: Escape then p would read as alt+p
	tmux("send-keys", "-t", "t", "p")
	waitFor("terminal accepted the request")
	tmux("send-keys", "-t", "t", "q")
	waitFor("Quit? y/n")
	tmux("send-keys", "-t", "t", "y")
	waitFor("paydesk-exit=0")
}

// fullHelp is the part of a menu screen under its items: the full help.
func fullHelp(screen string) string {
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	last := 0
	for i, l := range lines {
		if menuLine.MatchString(l) || strings.Contains(l, "↓ more") {
			last = i
		}
	}
	return strings.Join(lines[last+1:], "\n")
}
