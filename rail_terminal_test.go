package main

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The real binary drives a simulated terminal started as 'paydesk sim
// terminal', the way an integrator tries a kiosk without hardware: one
// approved and one refused payment on item 8, each journaled.
func TestTerminalRailWithSimCommand(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the terminal simulator needs Linux pseudo-terminals")
	}
	bin := binary(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "tty")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim := exec.CommandContext(ctx, bin, "sim", "terminal", "--link", link, "--think", "50ms")
	sim.Env = append(sim.Environ(), "PAYDESK_LOG="+filepath.Join(dir, "sim.log"))
	var simOut lines
	sim.Stdout, sim.Stderr = &simOut, &simOut
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); sim.Wait() }()
	simOut.waitFor(t, regexp.MustCompile(`terminal on /dev/\S+ \(link `))

	journal := filepath.Join(dir, "journal.db")
	cmd := exec.Command(bin, "--plain", "--listen", "127.0.0.1:0", "--journal", journal,
		"--terminal-port", link, "--terminal-currency", "EUR")
	cmd.Env = append(cmd.Environ(), "XDG_CONFIG_HOME="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lines
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out.waitFor(t, regexp.MustCompile(`Select option`))
	io.WriteString(stdin, "8\n12.50\n")
	out.waitFor(t, regexp.MustCompile(`Enter amount \(EUR\)`))
	id := out.waitFor(t, regexp.MustCompile(`Transaction ID: (TRM[0-9A-Z]{10})`))[1]
	waitLong(t, &out, regexp.MustCompile(`RESULT `+id+` approved 12\.50 card=\*\*\*\*1234`))

	io.WriteString(stdin, "8\n6.01\n")
	waitLong(t, &out, regexp.MustCompile(`RESULT TRM[0-9A-Z]{10} declined 6\.01`))
	io.WriteString(stdin, "7\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("paydesk: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "4970101234561234") {
		t.Error("a full card number reached the console")
	}

	var jb bytes.Buffer
	j := exec.Command(bin, "journal", "--journal", journal)
	j.Stdout, j.Stderr = &jb, &jb
	if err := j.Run(); err != nil {
		t.Fatalf("journal: %v\n%s", err, jb.String())
	}
	for _, want := range []string{id, "approved", "declined", "terminal"} {
		if !strings.Contains(jb.String(), want) {
			t.Errorf("journal lacks %q:\n%s", want, jb.String())
		}
	}
}

// waitLong is waitFor for results that take a terminal session or two.
func waitLong(t *testing.T, l *lines, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if re.MatchString(l.String()) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s in output:\n%s", re, l.String())
}
