package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"paydesk/payment"
)

// subCommands are every command a newcomer may type; each help text
// must name them all.
var subCommands = []string{"demo", "journal", "sim pos", "sim terminal", "sim daraja", "version", "help"}

func TestHelpListsEveryCommand(t *testing.T) {
	var help bytes.Buffer
	if err := run(context.Background(), []string{"help"}, nil, &help, &help); err != nil {
		t.Fatal(err)
	}
	var dashH bytes.Buffer
	err := run(context.Background(), []string{"-h"}, nil, &dashH, &dashH)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("paydesk -h: err = %v", err)
	}
	for name, text := range map[string]string{"paydesk help": help.String(), "paydesk -h": dashH.String()} {
		for _, c := range subCommands {
			if !strings.Contains(text, "paydesk "+c) {
				t.Errorf("%s does not mention 'paydesk %s':\n%s", name, c, text)
			}
		}
		if !strings.Contains(text, "every peer simulated") {
			t.Errorf("%s does not say the demo simulates every peer:\n%s", name, text)
		}
	}
	// -h still lists the console's flags.
	if !strings.Contains(dashH.String(), "-listen") {
		t.Errorf("paydesk -h lists no flags:\n%s", dashH.String())
	}
}

func TestDemoHelpNamesNoJournalItDoesNotUse(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"demo", "-h"}, nil, &out, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("demo -h: err = %v", err)
	}
	if def := filepath.Dir(payment.DefaultJournalPath()); strings.Contains(out.String(), def) {
		t.Errorf("demo -h names the console's journal directory %s, which the demo does not use:\n%s", def, out.String())
	}
	if !strings.Contains(out.String(), "temporary directory") {
		t.Errorf("demo -h does not say where its journal is:\n%s", out.String())
	}
}

func TestVersionCommand(t *testing.T) {
	bin := binary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("paydesk version: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.HasPrefix(s, "paydesk ") || !strings.Contains(s, runtime.Version()) {
		t.Errorf("paydesk version = %q, want the module version and %s", s, runtime.Version())
	}
}

func TestFormatVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "paydesk", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "4fdd93e6cbcf0123"}, {Key: "vcs.modified", Value: "true"},
			{Key: "vcs.time", Value: "2026-12-04T22:00:00Z"}}}
	want := "paydesk v1.2.0, commit 4fdd93e6cbcf0123 (modified) of 2026-12-04T22:00:00Z, built with go1.26.8"
	if got := formatVersion(bi); got != want {
		t.Errorf("formatVersion = %q, want %q", got, want)
	}
	bi = &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "paydesk", Version: "(devel)"}}
	if got := formatVersion(bi); !strings.Contains(got, "commit unknown") {
		t.Errorf("without VCS stamping: %q, want it to say the commit is unknown", got)
	}
}

// TestSimDefaultsDoNotCollide runs each simulator from an empty
// directory: none may write there, each says where its log is, and the
// log is beside where paydesk keeps its own.
func TestSimDefaultsDoNotCollide(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the terminal simulator needs a pseudo-terminal")
	}
	bin := binary(t)
	for _, c := range []struct {
		args []string
		want string // in the start message
	}{
		{[]string{"sim", "pos", "--connect", "127.0.0.1:1", "--reconnect=false"}, "simulated POS POS101"},
		{[]string{"sim", "terminal"}, "terminal on "},
		{[]string{"sim", "daraja", "--listen", "127.0.0.1:0"}, "daraja on "},
	} {
		t.Run(c.args[1], func(t *testing.T) {
			cwd, data := t.TempDir(), t.TempDir()
			cmd := exec.Command(bin, c.args...)
			cmd.Dir = cwd
			cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+data, "PAYDESK_LOG=", "PAYDESK_JOURNAL=")
			out := &lines{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			out.waitFor(t, regexp.MustCompile(regexp.QuoteMeta(c.want)))
			logPath := filepath.Join(data, "paydesk", "paydesk-sim-"+c.args[1]+".log")
			out.waitFor(t, regexp.MustCompile(regexp.QuoteMeta("log: "+logPath)))
			if _, err := os.Stat(logPath); err != nil {
				t.Errorf("no log at %s: %v", logPath, err)
			}
			if ents, _ := os.ReadDir(cwd); len(ents) > 0 {
				t.Errorf("the simulator wrote into the current directory: %v", ents)
			}
		})
	}
}

func TestDemoKeptJournalIsNotTemporary(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "kept.db")
	_, stdin, out := startPaydesk(t, nil, "demo", "--plain", "--journal", journal)
	out.waitFor(t, regexp.MustCompile(`listening for POS terminals`))
	stdin.Write([]byte("7\n"))
	out.waitFor(t, regexp.MustCompile(regexp.QuoteMeta("the journal "+journal+" is kept")))
	if strings.Contains(out.String(), "temporary") {
		t.Errorf("the demo calls the kept journal %s temporary:\n%s", journal, out.String())
	}
	if _, err := os.Stat(journal); err != nil {
		t.Errorf("journal not kept: %v", err)
	}
}

// 'paydesk sim -h' asks for help: it lists the simulators and is no error.
func TestSimHelp(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"sim", "-h"}, nil, &out, &out)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Errorf("paydesk sim -h: %v", err)
	}
	for _, n := range []string{"pos", "terminal", "daraja"} {
		if !strings.Contains(out.String(), n) {
			t.Errorf("paydesk sim -h does not list %s:\n%s", n, out.String())
		}
	}
}

// A PAYDESK_* value that is not a number is said on the command's own
// stderr (the writer run was given), not on the process's.
func TestBadEnvNumberWarnsOnInjectedStderr(t *testing.T) {
	t.Setenv("PAYDESK_TERMINAL_BAUD", "fast")
	t.Setenv("PAYDESK_ACK_TIMEOUT", "soon")
	var out bytes.Buffer
	err := run(context.Background(), []string{"-h"}, nil, &out, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("paydesk -h: err = %v", err)
	}
	for _, want := range []string{`ignoring PAYDESK_TERMINAL_BAUD="fast"`, `ignoring PAYDESK_ACK_TIMEOUT="soon"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stderr does not say %s:\n%s", want, out.String())
		}
	}
}

// Every row of the table 'paydesk help' is printed from runs: asked for
// its help, each answers with its own usage, not the console's or an error.
func TestEveryHelpRowRuns(t *testing.T) {
	for _, c := range commands() {
		args := append(strings.Fields(c.name), "-h")
		var out bytes.Buffer
		err := run(context.Background(), args, nil, &out, &out)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("paydesk %s: %v", strings.Join(args, " "), err)
			continue
		}
		want := strings.TrimSpace("paydesk " + c.name)
		if c.name == "version" {
			want = "paydesk " // the version line
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("paydesk %s does not say %q:\n%s", strings.Join(args, " "), want, out.String())
		}
	}
}
