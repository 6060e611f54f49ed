package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
)

// The README's commands, run as a newcomer types them: .ci/run's README
// step is
//
//	go test -count=1 -run TestREADMECommands -v . -readme
//
// Without -readme the test is skipped: the README step runs it on its own,
// after the tests.
var readmeFlag = flag.Bool("readme", false, "run the shell commands of README.md and docs/*.md (.ci/run's README step)")

// shellCommand is one line of a command block of a Markdown page.
type shellCommand struct {
	File string
	Line int
	Text string // the command, without its trailing comment
}

func (c shellCommand) String() string { return fmt.Sprintf("%s:%d: %s", c.File, c.Line, c.Text) }

// extractCommands returns the commands of the page's command blocks: a
// fenced block marked sh, bash or shell, or an unmarked one whose every
// line is a paydesk or go command (docs/hub.md writes `paydesk hub demo`
// so). Blank lines and comment lines are left out, and so are blocks of
// output, TOML, JSON and transcripts ("$ paydesk …" followed by output).
func extractCommands(file string, md []byte) []shellCommand {
	var cmds, block []shellCommand
	in, marked, other := false, false, false
	pending, first := "", 0
	sc := bufio.NewScanner(bytes.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if fence := strings.TrimSpace(line); strings.HasPrefix(fence, "```") {
			if !in {
				info := strings.TrimSpace(strings.TrimPrefix(fence, "```"))
				in, block = true, nil
				marked = info == "sh" || info == "bash" || info == "shell"
				other = info != "" && !marked
				continue
			}
			in = false
			if marked || !other && allCommands(block) {
				cmds = append(cmds, block...)
			}
			continue
		}
		if !in || other {
			continue
		}
		// A line ending in a backslash goes on on the next one.
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			if pending == "" {
				first = n
			}
			pending += cont
			continue
		}
		at := n
		if pending != "" {
			line, at, pending = pending+line, first, ""
		}
		if text := strings.TrimSpace(stripComment(line)); text != "" {
			block = append(block, shellCommand{File: file, Line: at, Text: text})
		}
	}
	return cmds
}

// allCommands tells whether an unmarked block holds only commands.
func allCommands(block []shellCommand) bool {
	if len(block) == 0 {
		return false
	}
	for _, c := range block {
		if !strings.HasPrefix(c.Text, "paydesk ") && !strings.HasPrefix(c.Text, "go ") {
			return false
		}
	}
	return true
}

// stripComment removes a shell comment: a # at the start of a word and
// outside quotes.
func stripComment(line string) string {
	var quote rune
	prev := ' '
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return line[:i]
		}
		prev = r
	}
	return line
}

// How a command is checked.
type readmeKind int

const (
	kindUnknown    readmeKind = iota
	kindSkip                  // not run, for the reason given
	kindTestSuite             // the README's test command: CI runs it as its own step
	kindTestCmd               // another go test command: its packages and tests must exist
	kindBuild                 // go build -o paydesk .
	kindOneShot               // runs, exits 0, prints something
	kindPiped                 // the line console with piped input: exits 0 with RESULT lines
	kindFullScreen            // the full-screen console, in tmux: first screen, quit keys, exit 0
	kindLongRun               // runs until Ctrl-C: ready line, SIGINT, exit 0
)

var kindNames = map[readmeKind]string{kindSkip: "skip", kindTestSuite: "test-suite", kindTestCmd: "test-cmd",
	kindBuild: "build", kindOneShot: "one-shot", kindPiped: "piped", kindFullScreen: "full-screen", kindLongRun: "long-running"}

type readmeRule struct {
	match    *regexp.Regexp
	kind     readmeKind
	reason   string           // why a command is skipped
	want     []*regexp.Regexp // output a piped command must print
	screen   []string         // what the first full-screen screen must show
	ready    *regexp.Regexp   // the line a long-running command prints when ready
	env      []string         // added to the environment (not to the command), with the reason in note
	note     string
	freePort string // a fixed port in the command, replaced by one the kernel gives
	tmpPath  string // a fixed path in the command, replaced by one in the work directory
	needs    string // a program it needs: without it the command is skipped, except under CI=true
}

// readmeRules say how each command of the README and docs/ is checked;
// the first that matches applies. A command no rule matches fails the
// check: a new command in the docs needs a rule that says how it runs.
var readmeRules = []readmeRule{
	{match: regexp.MustCompile(`^go test -race \./\.\.\.$`), kind: kindTestSuite},
	{match: regexp.MustCompile(`^go test `), kind: kindTestCmd},
	{match: regexp.MustCompile(`^go build -o paydesk \.$`), kind: kindBuild},
	{match: regexp.MustCompile(`--terminal-port /dev/`), kind: kindSkip, reason: "needs a card terminal on a serial port"},
	{match: regexp.MustCompile(`db\.example\.com`), kind: kindSkip, reason: "needs a real PostgreSQL server on the network"},
	{match: regexp.MustCompile(`--terminal-port /tmp/paydesk-terminal`), kind: kindSkip,
		reason: "drives the 'paydesk sim terminal' of the line before, running in another terminal (rail_terminal_test.go drives the console against the simulator)"},
	{match: regexp.MustCompile(`^curl .*127\.0\.0\.1:8090/sandbox/c2b`), kind: kindSkip,
		reason: "a customer's payment to the 'paydesk sim daraja' of a line before, running in another terminal, with a kiosk registered (mpesa/reliability_test.go covers C2B)"},
	{match: regexp.MustCompile(`^PAYDESK_SECRET=(one|two) \./paydesk`), kind: kindSkip,
		reason: "a pair in two terminals on the fixed port 8080, the kiosk then a simulator with another secret (protocol/secret_test.go drives it: TestSimWithAnotherSecret)"},
	{match: regexp.MustCompile(`(PORT|…)`), kind: kindSkip, reason: "placeholders (PORT, PD…) that a running demo prints"},
	{match: regexp.MustCompile(`^PAYDESK_SECRET=\.\.\. \./paydesk$`), kind: kindFullScreen, screen: []string{"paydesk KIOSK001", "1. Card Payment"},
		env: []string{"PAYDESK_LISTEN=127.0.0.1:0"}, note: "PAYDESK_LISTEN=127.0.0.1:0 in the environment instead of the fixed port 8080"},
	{match: regexp.MustCompile(`^printf '1\\n25\.50\\n4\\n100\\n1\\n7\\n' \| go run \. demo --plain$`), kind: kindPiped,
		want: []*regexp.Regexp{regexp.MustCompile(`(?m)^RESULT TXN\d+ approved 25\.50 `), regexp.MustCompile(`(?m)^RESULT TXN\d+ approved 100\.00 .*plan=IPP_3M`)}},
	{match: regexp.MustCompile(`^printf '9\\n0708 374 149\\n150\\n7\\n' \| go run \. demo --plain$`), kind: kindPiped,
		want: []*regexp.Regexp{regexp.MustCompile(`(?m)^RESULT \S+ approved 150\.00 .*pos_txn=`)}},
	{match: regexp.MustCompile(`\| *(go run \.|paydesk|\./paydesk) .*--plain`), kind: kindPiped,
		want: []*regexp.Regexp{regexp.MustCompile(`(?m)^RESULT \S+ approved `)}},
	{match: regexp.MustCompile(`^(go run \.|paydesk|\./paydesk) demo( --[a-z-]+ [^ |]+)*$`), kind: kindFullScreen, screen: []string{"DEMO paydesk", "1. Card Payment"}},
	{match: regexp.MustCompile(`^(\./)?paydesk sim pos `), kind: kindLongRun, ready: regexp.MustCompile(`simulated POS \S+ connecting to`),
		note: "192.0.2.10 is a documentation address: the simulator starts and keeps trying to connect"},
	{match: regexp.MustCompile(`^(go run \.|(\./)?paydesk) sim daraja --listen 127\.0\.0\.1:8090$`), kind: kindLongRun,
		ready: regexp.MustCompile(`daraja on http://`), freePort: "8090"},
	{match: regexp.MustCompile(`^(go run \.|(\./)?paydesk) sim terminal --link /tmp/paydesk-terminal$`), kind: kindLongRun,
		ready: regexp.MustCompile(`terminal on `), tmpPath: "/tmp/paydesk-terminal"},
	{match: regexp.MustCompile(`^(go run \.|(\./)?paydesk) hub demo$`), kind: kindLongRun, ready: regexp.MustCompile(`Ctrl-C stops and removes everything`),
		needs: "initdb"},
	{match: regexp.MustCompile(`^(go run \.|(\./)?paydesk) (journal|help|version)( |$)`), kind: kindOneShot},
	// Any other paydesk command is taken for a one-shot: one that is not
	// fails, still running after the one-shot's limit, and needs a rule.
	{match: regexp.MustCompile(`^(go run \.|(\./)?paydesk)( |$)`), kind: kindOneShot},
}

func ruleFor(c shellCommand) (readmeRule, bool) {
	for _, r := range readmeRules {
		if r.match.MatchString(c.Text) {
			return r, true
		}
	}
	return readmeRule{}, false
}

// readmeRunner runs commands in a work directory, with HOME and the XDG
// directories in a temporary directory.
type readmeRunner struct {
	repo    string // the module's directory
	work    string // the commands' current directory: ./paydesk is built here
	bin     string // paydesk for `go run .` and `paydesk`: built once
	env     []string
	ciRun   string // the path of .ci/run
	tmuxNum int
}

// newReadmeRunner prepares the temporary home and the environment: the
// user's PAYDESK_* settings are left out, Go keeps its caches.
func newReadmeRunner(t *testing.T, bin string) *readmeRunner {
	t.Helper()
	repo, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	r := &readmeRunner{repo: repo, work: filepath.Join(root, "work"), bin: bin, ciRun: filepath.Join(repo, ".ci", "run")}
	home := filepath.Join(root, "home")
	for _, d := range []string{r.work, home, filepath.Join(home, ".config"), filepath.Join(home, ".local", "share"), filepath.Join(home, ".cache"), filepath.Join(home, ".local", "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	goenv := map[string]string{}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN"} {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		goenv[k] = strings.TrimSpace(string(out))
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PAYDESK_") || strings.HasPrefix(k, "XDG_") || strings.HasPrefix(k, "GO") || k == "HOME" || k == "TMUX" || k == "PATH" {
			continue
		}
		r.env = append(r.env, kv)
	}
	for k, v := range goenv {
		if v != "" {
			r.env = append(r.env, k+"="+v)
		}
	}
	r.env = append(r.env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_STATE_HOME="+filepath.Join(home, ".local", "state"), "NO_COLOR=1",
		// `paydesk` is the binary built for the check.
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	return r
}

// outcome is what checking one command found.
type outcome struct {
	cmd  shellCommand
	kind readmeKind
	note string // what was run and seen, or why it was skipped
	err  error  // names the command and what it printed
	took time.Duration
}

// commandLine is the command as run: `go run .` is the built binary.
func (r *readmeRunner) commandLine(text string) string {
	return goRun.ReplaceAllString(text, "${1}"+strings.ReplaceAll(shellQuote(r.bin), "$", "$$")+"${2}")
}

var goRun = regexp.MustCompile(`(^|\s)go run \.(\s|$)`)

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (r *readmeRunner) check(ctx context.Context, c shellCommand) (o outcome) {
	start := time.Now()
	o.cmd = c
	defer func() { o.took = time.Since(start) }()
	rule, ok := ruleFor(c)
	if !ok {
		o.err = fmt.Errorf("%s: no rule in readme_test.go says how to run this command", c)
		return o
	}
	o.kind = rule.kind
	line := r.commandLine(c.Text)
	if rule.freePort != "" {
		port, err := readmeFreePort()
		if err != nil {
			o.err = fmt.Errorf("%s: %w", c, err)
			return o
		}
		line = strings.ReplaceAll(line, ":"+rule.freePort, ":"+port)
		o.note = "port " + rule.freePort + " replaced by the free port " + port + "; "
	}
	if rule.tmpPath != "" {
		p := filepath.Join(r.work, filepath.Base(rule.tmpPath))
		line = strings.ReplaceAll(line, rule.tmpPath, p)
		o.note = rule.tmpPath + " replaced by " + p + "; "
	}
	if rule.needs != "" && !hasProgram(rule.needs) {
		if os.Getenv("CI") == "true" {
			o.err = fmt.Errorf("%s: needs %s, which CI must have (.ci/run installs it)", c, rule.needs)
			return o
		}
		o.kind, o.note = kindSkip, "needs "+rule.needs+", not installed here (CI fails without it)"
		return o
	}
	if rule.note != "" {
		o.note += rule.note + "; "
	}
	fail := func(what string, out []byte) outcome {
		o.err = fmt.Errorf("%s: %s; it printed:\n%s", c, what, indent(out))
		return o
	}
	switch rule.kind {
	case kindSkip:
		o.note = rule.reason
	case kindTestSuite:
		if err := checkCIRunsTestCommand(r.ciRun, c.Text); err != nil {
			o.err = fmt.Errorf("%s: %w", c, err)
			return o
		}
		o.note = "not run here: .ci/run runs exactly this command as its test step (checked)"
	case kindTestCmd:
		if err := checkTestCommand(r.repo, c.Text); err != nil {
			o.err = fmt.Errorf("%s: %w", c, err)
			return o
		}
		o.note = "not run here (CI's test step runs every test): its packages and tests exist (checked)"
	case kindBuild:
		// As written, but the binary goes to the work directory, not the repository.
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(r.work, "paydesk"), ".")
		cmd.Dir, cmd.Env = r.repo, r.env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fail(err.Error(), out)
		}
		o.note = "built into the work directory, where the ./paydesk commands run"
	case kindOneShot:
		// A one-shot command answers in well under a second; 30 s leaves
		// room for a loaded machine.
		out, errOut, err := r.shell(ctx, line, 30*time.Second)
		if err != nil {
			return fail(err.Error(), append(out, errOut...))
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return fail("exit 0 but nothing on standard output", errOut)
		}
		o.note += fmt.Sprintf("exit 0, %d lines of output", bytes.Count(out, []byte("\n")))
	case kindPiped:
		// The demo starts and pays in a few seconds; 60 s leaves room for a
		// loaded machine.
		out, errOut, err := r.shell(ctx, line, 60*time.Second)
		all := append(out, errOut...)
		if err != nil {
			return fail(err.Error(), all)
		}
		var got []string
		for _, re := range rule.want {
			m := re.Find(out)
			if m == nil {
				return fail("no line matching "+re.String(), all)
			}
			got = append(got, strings.TrimSpace(string(m)))
		}
		o.note += "exit 0; " + strings.Join(got, "; ")
	case kindFullScreen:
		note, err := r.fullScreen(line, rule)
		if err != nil {
			o.err = fmt.Errorf("%s: %w", c, err)
			return o
		}
		o.note += note
	case kindLongRun:
		note, err := r.longRun(line, rule)
		if err != nil {
			o.err = fmt.Errorf("%s: %w", c, err)
			return o
		}
		o.note += note
	}
	return o
}

// shell runs line with sh in the work directory, in a process group of
// its own that is killed if it is still running after limit.
func (r *readmeRunner) shell(ctx context.Context, line string, limit time.Duration) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir, cmd.Env = r.work, r.env
	ownGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %s", limit)
	}
	return o.Bytes(), e.Bytes(), err
}

// longRun starts line, waits for its ready line, sends SIGINT to its
// process group, as Ctrl-C does, and wants a clean exit.
func (r *readmeRunner) longRun(line string, rule readmeRule) (string, error) {
	cmd := exec.Command("sh", "-c", "exec "+line)
	cmd.Dir, cmd.Env = r.work, r.env
	ownGroup(cmd)
	out := &lines{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { killGroup(cmd); <-exited }()
	// Each is ready in about a second (the hub's demo starts a PostgreSQL
	// cluster); 30 s leaves room for a loaded machine.
	deadline := time.After(30 * time.Second)
	for !rule.ready.MatchString(out.String()) {
		select {
		case err := <-exited:
			exited <- err
			return "", fmt.Errorf("exited (%v) before its ready line %q; it printed:\n%s", err, rule.ready, indent([]byte(out.String())))
		case <-deadline:
			return "", fmt.Errorf("no ready line %q after 30 s; it printed:\n%s", rule.ready, indent([]byte(out.String())))
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := interruptGroup(cmd); err != nil {
		return "", err
	}
	// It stops within a second; 20 s for a loaded machine.
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			return "", fmt.Errorf("after SIGINT: %v; it printed:\n%s", err, indent([]byte(out.String())))
		}
	case <-time.After(20 * time.Second):
		return "", fmt.Errorf("still running 20 s after SIGINT; it printed:\n%s", indent([]byte(out.String())))
	}
	return fmt.Sprintf("ready (%q), stopped with SIGINT, exit 0", rule.ready.FindString(out.String())), nil
}

// fullScreen runs line in an 80x24 tmux, waits for the first screen, types
// q and wants exit 0.
func (r *readmeRunner) fullScreen(line string, rule readmeRule) (string, error) {
	if _, err := exec.LookPath("tmux"); err != nil {
		return "", errors.New("tmux is needed to drive the full-screen console (.ci/run installs it)")
	}
	r.tmuxNum++
	sock := fmt.Sprintf("paydesk-readme-%d-%d", os.Getpid(), r.tmuxNum)
	conf := filepath.Join(r.repo, "testdata", "tmux.conf")
	env := append(append([]string{}, r.env...), rule.env...)
	tmux := func(args ...string) (string, error) {
		cmd := exec.Command("tmux", append([]string{"-L", sock, "-f", conf}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("tmux %v: %v: %s", args, err, out)
		}
		return string(out), nil
	}
	defer exec.Command("tmux", "-L", sock, "kill-server").Run()
	// The shell prints the exit status: tmux 3.3a does not always fill
	// #{pane_dead_status}.
	if _, err := tmux("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "-c", r.work,
		line+"; echo readme-exit=$?; sleep 30"); err != nil {
		return "", err
	}
	waitFor := func(text string) (string, error) {
		// The console's first screen comes within a couple of seconds;
		// 30 s leaves room for a loaded machine.
		deadline := time.Now().Add(30 * time.Second)
		for {
			screen, err := tmux("capture-pane", "-p", "-t", "t")
			if err != nil {
				return "", err
			}
			if strings.Contains(screen, text) {
				return screen, nil
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("no %q on the screen after 30 s; the screen:\n%s", text, indent([]byte(screen)))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, text := range rule.screen {
		if _, err := waitFor(text); err != nil {
			return "", err
		}
	}
	if _, err := tmux("send-keys", "-t", "t", "q"); err != nil {
		return "", err
	}
	screen, err := waitFor("readme-exit=")
	if err != nil {
		return "", fmt.Errorf("q did not quit: %w", err)
	}
	if !strings.Contains(screen, "readme-exit=0") {
		return "", fmt.Errorf("q quit with an error; the screen:\n%s", indent([]byte(screen)))
	}
	return fmt.Sprintf("in tmux 80x24: the first screen shows %q, q quits, exit 0", rule.screen), nil
}

// hasProgram tells whether name is on PATH or, for PostgreSQL's
// programs, where Debian installs them.
func hasProgram(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	return len(m) > 0
}

func readmeFreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

func indent(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return "    (nothing)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// checkCIRunsTestCommand wants the CI script to run the README's test
// command exactly, on a line of its own.
func checkCIRunsTestCommand(ciRun, command string) error {
	b, err := os.ReadFile(ciRun)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == command {
			return nil
		}
	}
	return fmt.Errorf("%s does not run the README's test command %q on a line of its own", ciRun, command)
}

// checkTestCommand checks a go test command of the docs without running
// it: its packages exist and each -run or -fuzz name is a test of one of
// them.
func checkTestCommand(repo, command string) error {
	fields := strings.Fields(command)
	var pkgs, names []string
	for i := 2; i < len(fields); i++ {
		f := fields[i]
		switch {
		case f == "-run" || f == "-fuzz" || f == "-fuzztime":
			if i+1 >= len(fields) {
				return fmt.Errorf("%s has no value", f)
			}
			if f != "-fuzztime" {
				names = append(names, strings.Trim(fields[i+1], `'"`))
			}
			i++
		case strings.HasPrefix(f, "-"):
		case strings.HasPrefix(f, "."):
			pkgs = append(pkgs, f)
		default:
			return fmt.Errorf("unexpected argument %q", f)
		}
	}
	if len(pkgs) == 0 {
		return errors.New("names no package")
	}
	var src strings.Builder
	for _, p := range pkgs {
		dir := filepath.Join(repo, strings.TrimSuffix(p, "/..."))
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("no package %s", p)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		if strings.HasSuffix(p, "/...") {
			files, _ = globTree(dir)
		}
		for _, f := range files {
			b, _ := os.ReadFile(f)
			src.Write(b)
		}
	}
	var funcs []string
	for _, m := range regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)\w+)\(`).FindAllStringSubmatch(src.String(), -1) {
		funcs = append(funcs, m[1])
	}
	for _, n := range names {
		if n == "^$" {
			continue // no test: a fuzz run
		}
		// Each alternative of a pattern must find a test.
		for _, alt := range strings.Split(n, "|") {
			re, err := regexp.Compile(alt)
			if err != nil {
				return fmt.Errorf("bad pattern %q: %w", n, err)
			}
			if !slices.ContainsFunc(funcs, re.MatchString) {
				return fmt.Errorf("no test matches %q (of %q) in %s", alt, n, strings.Join(pkgs, " "))
			}
		}
	}
	return nil
}

func globTree(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return err
	})
	return files, err
}

// seedExampleJournal writes the README's example transaction,
// TXN1757492341554 approved on 2026-11-22, into the default journal of
// the temporary home, so that the README's `journal show` and `journal
// totals --day 2026-11-22` find what they show.
func seedExampleJournal(t *testing.T, r *readmeRunner) {
	t.Helper()
	var data string
	for _, kv := range r.env {
		if v, ok := strings.CutPrefix(kv, "XDG_DATA_HOME="); ok {
			data = v
		}
	}
	path := filepath.Join(data, "paydesk", "journal.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	at := time.Date(2026, 11, 22, 10, 15, 0, 0, time.Local)
	id := "TXN1757492341554"
	for i, ev := range []payment.Event{
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusCreated, Mode: payment.ModeCard,
			Amount: payment.Money{Minor: 2550, Currency: "MYR"}, Peer: "POS101"},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusSent},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusAcknowledged, Detail: "ack processing"},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusApproved,
			Result: &payment.Result{AuthCode: "AUTH409", Card: "4242", RemoteID: "000410"}},
	} {
		ev.Time = at.Add(time.Duration(i) * time.Second)
		if _, err := j.Append(context.Background(), ev); err != nil {
			t.Fatalf("seed the journal: %v", err)
		}
	}
}

// readDocs returns the commands of README.md and docs/*.md.
func readDocs(t *testing.T) (readme, docs []shellCommand) {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme = extractCommands("README.md", b)
	pages, _ := filepath.Glob("docs/*.md")
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, extractCommands(filepath.ToSlash(p), b)...)
	}
	return readme, docs
}

func TestREADMECommands(t *testing.T) {
	if !*readmeFlag {
		t.Skip("run by .ci/run's README step: go test -count=1 -run TestREADMECommands -v . -readme")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the commands are for a Unix shell")
	}
	readme, docs := readDocs(t)
	// What the README promises a newcomer, literally.
	var tests []string
	hasDemo := false
	for _, c := range readme {
		if c.Text == "go run . demo" {
			hasDemo = true
		}
		if strings.HasPrefix(c.Text, "go test") {
			tests = append(tests, c.Text)
		}
	}
	if !hasDemo {
		t.Error("README.md has no `go run . demo` command")
	}
	if len(tests) != 1 {
		t.Errorf("README.md has %d go test commands, want its one test command: %q", len(tests), tests)
	} else if err := checkCIRunsTestCommand(filepath.Join(".ci", "run"), tests[0]); err != nil {
		t.Error(err)
	}
	r := newReadmeRunner(t, binary(t))
	seedExampleJournal(t, r)
	ctx := context.Background()
	ran, static, skipped := 0, 0, 0
	start := time.Now()
	for _, c := range append(readme, docs...) {
		o := r.check(ctx, c)
		switch {
		case o.err != nil:
			t.Errorf("FAIL %v", o.err)
		case o.kind == kindSkip:
			skipped++
			t.Logf("SKIP %s\n       %s", c, o.note)
		case o.kind == kindTestSuite || o.kind == kindTestCmd:
			static++
			t.Logf("TEST %s\n       %s", c, o.note)
		default:
			ran++
			t.Logf("OK   %s\n       %s: %s (%s)", c, kindNames[o.kind], o.note, o.took.Round(time.Millisecond))
		}
	}
	t.Logf("%d commands run, %d test commands checked without running them, %d skipped, in %s",
		ran, static, skipped, time.Since(start).Round(100*time.Millisecond))
}

func TestExtractCommands(t *testing.T) {
	md := "# t\n\n```sh\ngo run . demo          # a comment\n\n# a comment line\nprintf 'a # b\\n' | paydesk --plain\n```\n\n" +
		"```toml\nkey = \"v\" # no\n```\n\n```sh\npaydesk journal \\\n  --json   # both lines\n```\n\n```\nRESULT TXN1 approved 1.00\n```\n\n```\npaydesk hub demo\n```\n\n```\n$ paydesk journal\nTXN1\n```\n" +
		"    go run . indented   # not fenced\n"
	got := extractCommands("f.md", []byte(md))
	want := []shellCommand{{"f.md", 4, "go run . demo"}, {"f.md", 7, `printf 'a # b\n' | paydesk --plain`}, {"f.md", 15, "paydesk journal   --json"}, {"f.md", 24, "paydesk hub demo"}}
	if !slices.Equal(got, want) {
		t.Errorf("extractCommands =\n%q\nwant\n%q", got, want)
	}
}

// TestREADMECheckFailsOnABrokenREADME runs the check on a README with
// deliberately broken commands: each must fail, naming the command and
// what it printed.
func TestREADMECheckFailsOnABrokenREADME(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the commands are for a Unix shell")
	}
	b, err := os.ReadFile("testdata/readme-broken.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := extractCommands("testdata/readme-broken.md", b)
	if len(cmds) != 6 {
		t.Fatalf("extracted %d commands, want 6: %q", len(cmds), cmds)
	}
	r := newReadmeRunner(t, binary(t))
	// The README builds ./paydesk first; here it is the test's binary.
	if err := os.Symlink(r.bin, filepath.Join(r.work, "paydesk")); err != nil {
		t.Fatal(err)
	}
	wantErr := []string{
		"",
		`unexpected argument "versoin"`,
		"TXN0",
		"no line matching",
		"no rule in readme_test.go",
		`no test matches "TestNoSuchTest"`,
	}
	for i, c := range cmds {
		o := r.check(context.Background(), c)
		if wantErr[i] == "" {
			if o.err != nil {
				t.Errorf("%s: %v", c, o.err)
			}
			continue
		}
		if o.err == nil {
			t.Errorf("%s: passed (%s), want it to fail", c, o.note)
			continue
		}
		msg := o.err.Error()
		if !strings.Contains(msg, c.String()) || !strings.Contains(msg, wantErr[i]) {
			t.Errorf("%s: the failure does not name the command and %q:\n%s", c, wantErr[i], msg)
		}
		// The failure shows what the command printed: here the RESULT line of the declined payment.
		if i == 3 && !strings.Contains(msg, "RESULT TXN") {
			t.Errorf("%s: the failure does not show what the command printed:\n%s", c, msg)
		}
		first, _, _ := strings.Cut(msg, "\n")
		t.Logf("fails as it should: %s", first)
	}
}

func TestCIRunsTheREADMETestCommand(t *testing.T) {
	dir := t.TempDir()
	for script, ok := range map[string]bool{
		"step tests\ngo test -race ./...\n":                         true,
		"step tests\n\tgo test -race ./...  \n":                     true,
		"step tests\ngo test ./...\n":                               false,
		"step tests\n# go test -race ./...\ngo test -short ./...\n": false,
		"step tests\ngo test -race ./... || true\n":                 false,
	} {
		p := filepath.Join(dir, "run")
		if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := checkCIRunsTestCommand(p, "go test -race ./..."); (err == nil) != ok {
			t.Errorf("script %q: err = %v, want ok = %v", script, err, ok)
		}
	}
	// And the real one.
	if err := checkCIRunsTestCommand(".ci/run", "go test -race ./..."); err != nil {
		t.Error(err)
	}
}
