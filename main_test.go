package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/protocol"
	"paydesk/protocol/wire"
)

// binDir holds the binary built for this test run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary compiles paydesk once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "paydesk-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "paydesk")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &exec.ExitError{Stderr: out}
	}
	return bin, nil
})

func binary(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// startPaydesk starts the binary with args, env added to its
// environment, and its output and errors collected in out; stdin is a
// pipe. The process is killed and reaped when the test ends, if it has
// not exited by then.
func startPaydesk(t *testing.T, env []string, args ...string) (cmd *exec.Cmd, stdin io.WriteCloser, out *lines) {
	t.Helper()
	cmd = exec.Command(binary(t), args...)
	cmd.Env = append(cmd.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out = &lines{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdin, out
}

// lines collects a process's output and lets a test wait for a pattern.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lines) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(l.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s in output:\n%s", re, l.String())
	return nil
}

// waitForLog waits until the JSON-lines log at path holds a record with
// message msg: the event to wait for when the console does not print one
// (or may print it before the test is watching). The records wanted come
// within a second; 10 s leaves room for a loaded machine.
func waitForLog(t *testing.T, path, msg string) {
	t.Helper()
	want := []byte(`"msg":` + strconv.Quote(msg))
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the log %s:\n%s", want, path, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakePOS is a POS that acknowledges requests and never sends a result.
func fakePOS(t *testing.T, addr string, got chan<- *wire.Message) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		fr := wire.NewFrameReader(c, wire.MaxFrame)
		for {
			frame, err := fr.Next()
			if err != nil {
				return
			}
			var env struct{ Payload json.RawMessage }
			if json.Unmarshal(frame, &env) != nil {
				continue
			}
			m, err := wire.DecodePayload(env.Payload)
			if err != nil {
				continue
			}
			env2, _ := wire.Sign(wire.Payload{"type": "ack", "txn_id": m.TxnID, "status": "processing", "pos_id": "POS777",
				"timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "nonce": "n" + strconv.FormatInt(time.Now().UnixNano(), 10)},
				[]byte(protocol.DevSecret))
			c.Write(env2.Line())
			got <- m
		}
	}()
}

func TestKillMidPaymentLeavesUnknown(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL is a Unix signal")
	}
	bin := binary(t)
	dir := t.TempDir()
	journal := filepath.Join(dir, "journal.db")
	args := []string{"--plain", "--listen", "127.0.0.1:0", "--journal", journal, "--log", filepath.Join(dir, "log")}

	cmd, stdin, out := startPaydesk(t, []string{"PAYDESK_SECRET=" + protocol.DevSecret}, args...)
	addr := out.waitFor(t, regexp.MustCompile(`listening for POS terminals on (\S+)`))[1]
	got := make(chan *wire.Message, 1)
	fakePOS(t, addr, got)
	out.waitFor(t, regexp.MustCompile(`connected from`))
	io.WriteString(stdin, "1\n25.50\n")
	var req *wire.Message
	select {
	case req = <-got:
	case <-time.After(10 * time.Second):
		t.Fatalf("POS got no request:\n%s", out.String())
	}
	if req.Type != "transaction_request" || req.Amount != "25.5" || req.PaymentMode != "card" || req.KioskID != "KIOSK001" {
		t.Errorf("request = %+v", req)
	}
	out.waitFor(t, regexp.MustCompile(`ack processing`))

	// While it runs, the journal command reads the payment as it stands
	// (a payment in flight is not a crash's leftover), and a second
	// console on the same journal is refused, naming the first.
	var live bytes.Buffer
	if err := run(context.Background(), []string{"journal", "--journal", journal, "show", req.TxnID}, nil, &live, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(live.String(), "acknowledged") || strings.Contains(live.String(), "unknown") {
		t.Errorf("journal read while paydesk runs:\n%s", live.String())
	}
	second := exec.Command(bin, args...)
	second.Env = append(os.Environ(), "PAYDESK_SECRET="+protocol.DevSecret)
	second.Stdin = strings.NewReader("7\n")
	b2, err := second.CombinedOutput()
	wantInUse := fmt.Sprintf("journal in use by another paydesk (pid %d)", cmd.Process.Pid)
	if err == nil || !strings.Contains(string(b2), wantInUse) {
		t.Errorf("second console on the same journal: %v\n%s\nwant %q", err, b2, wantInUse)
	}

	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// The next start shows the payment for reconciliation.
	cmd2 := exec.Command(bin, args...)
	cmd2.Env = append(os.Environ(), "PAYDESK_SECRET="+protocol.DevSecret)
	cmd2.Stdin = strings.NewReader("6\n7\n")
	b, err := cmd2.CombinedOutput()
	if err != nil {
		t.Fatalf("restart: %v\n%s", err, b)
	}
	want := regexp.MustCompile(`UNKNOWN ` + req.TxnID + ` card 25\.50 POS777: in flight when paydesk stopped`)
	if !want.Match(b) {
		t.Errorf("restart output lacks %s:\n%s", want, b)
	}
	if !strings.Contains(string(b), "Journal: 1 transaction (unknown 1)") {
		t.Errorf("status after restart:\n%s", b)
	}

	// The log recorded the payment, and never the secret.
	logged, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logged, []byte(req.TxnID)) || !bytes.Contains(logged, []byte(`"msg":"payment request sent"`)) {
		t.Errorf("log lacks the payment:\n%s", logged)
	}
	if bytes.Contains(logged, []byte(protocol.DevSecret)) {
		t.Errorf("the shared secret is in the log")
	}

	// The journal command shows it too, with its whole history.
	var show bytes.Buffer
	if err := run(context.Background(), []string{"journal", "--journal", journal, "show", req.TxnID}, nil, &show, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"unknown", "created", "sent", "acknowledged", "was acknowledged when paydesk stopped", "recovered"} {
		if !strings.Contains(show.String(), s) {
			t.Errorf("journal show lacks %q:\n%s", s, show.String())
		}
	}
}

func TestJournalCommand(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	journal := filepath.Join(dir, "journal.db")
	// A demo run makes three payments against the built-in simulator.
	cmd := exec.Command(bin, "demo", "--plain", "--journal", journal)
	cmd.Stdin = strings.NewReader("1\n25.50\n2\n80.51\n4\n100\n2\n7\n")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, b)
	}
	if n := strings.Count(string(b), "\nRESULT "); n != 3 {
		t.Fatalf("%d RESULT lines:\n%s", n, b)
	}
	journalCmd := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"journal", "--journal", journal}, args...), nil, &out, io.Discard); err != nil {
			t.Fatalf("journal %v: %v", args, err)
		}
		return out.String()
	}

	t.Run("the table lists the latest first", func(t *testing.T) {
		out := journalCmd()
		rows := strings.Split(strings.TrimSpace(out), "\n")
		if len(rows) != 4 || !strings.HasPrefix(rows[0], "TIME") {
			t.Fatalf("table:\n%s", out)
		}
		for i, want := range []string{"ipp .* RM100.00 +approved", "bnpl .* RM80.51 +declined .*USER_ABORT", "card .* RM25.50 +approved .*auth"} {
			if !regexp.MustCompile(want).MatchString(rows[i+1]) {
				t.Errorf("row %d = %q, want %s", i+1, rows[i+1], want)
			}
		}
	})

	t.Run("JSON carries amounts as minor units and decimals", func(t *testing.T) {
		var txns []map[string]any
		if err := json.Unmarshal([]byte(journalCmd("--json")), &txns); err != nil {
			t.Fatal(err)
		}
		if len(txns) != 3 || txns[2]["amount"] != "25.50" || txns[2]["amount_minor"] != float64(2550) || txns[2]["card_last4"] != "4242" {
			t.Errorf("json = %v", txns)
		}
		if txns[0]["plan_id"] != "IPP_6M" {
			t.Errorf("IPP plan = %v", txns[0]["plan_id"])
		}
	})

	t.Run("CSV has a header and a row per transaction", func(t *testing.T) {
		recs, err := csv.NewReader(strings.NewReader(journalCmd("--csv"))).ReadAll()
		if err != nil || len(recs) != 4 || recs[0][0] != "id" || recs[2][10] != "" || recs[2][11] != "USER_ABORT" {
			t.Errorf("csv = %v, %v", recs, err)
		}
	})

	t.Run("totals per rail and status for today", func(t *testing.T) {
		out := journalCmd("totals")
		for _, want := range []string{`pos\s+approved\s+2\s+RM125.50`, `pos\s+declined\s+1\s+RM80.51`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("totals lack %s:\n%s", want, out)
			}
		}
	})

	t.Run("show prints one transaction's events", func(t *testing.T) {
		var txns []map[string]any
		json.Unmarshal([]byte(journalCmd("--json", "--limit", "1")), &txns)
		out := journalCmd("show", txns[0]["id"].(string))
		for _, s := range []string{"plans_offered", "3 plan(s) offered", "plan_selected", "ack plan_received", "approved"} {
			if !strings.Contains(out, s) {
				t.Errorf("show lacks %q:\n%s", s, out)
			}
		}
	})

	t.Run("an unknown id is a clear error", func(t *testing.T) {
		err := run(context.Background(), []string{"journal", "--journal", journal, "show", "TXN0"}, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `transaction "TXN0": not found`) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-amount", "abc"}, "--max-amount"},
		{[]string{"--ack-timeout", "0s"}, "--ack-timeout must be positive"},
		{[]string{"--secret-file", "/nonexistent/secret"}, "read secret file"},
		{[]string{"--tls-cert", "x.pem"}, "TLS needs both"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"sim", "pos", "--write", "sideways"}, "--write must be"},
		{[]string{"journal", "--json", "--csv"}, "choose one of --json and --csv"},
	} {
		err := run(context.Background(), append(c.args, "--journal", filepath.Join(t.TempDir(), "j.db")), strings.NewReader(""), io.Discard, io.Discard)
		if c.args[0] == "sim" {
			err = run(context.Background(), c.args, nil, io.Discard, io.Discard)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("paydesk %v: err = %v, want %q", c.args, err, c.want)
		}
	}
}
