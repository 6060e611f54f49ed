package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
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
	simTerminal(t, dir, link)

	journal, logPath := filepath.Join(dir, "journal.db"), filepath.Join(dir, "paydesk.log")
	cmd, stdin, out := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir},
		"--plain", "--listen", "127.0.0.1:0", "--journal", journal, "--log", logPath, "--terminal-port", link, "--terminal-currency", "EUR")
	out.waitFor(t, regexp.MustCompile(`Select option`))
	// The driver starts beside the console, which refuses item 8 until it
	// runs ("the terminal driver is not running"): wait for the port to be
	// open. The console's own line for it may come before it subscribes.
	waitForLog(t, logPath, "terminal port open")
	io.WriteString(stdin, "8\n12.50\n")
	out.waitFor(t, regexp.MustCompile(`Enter amount \(EUR\)`))
	id := out.waitFor(t, regexp.MustCompile(`Transaction ID: (TRM[0-9A-Z]{10})`))[1]
	waitLong(t, out, regexp.MustCompile(`RESULT `+id+` approved 12\.50 card=\*\*\*\*1234`))

	io.WriteString(stdin, "8\n6.01\n")
	waitLong(t, out, regexp.MustCompile(`RESULT TRM[0-9A-Z]{10} declined 6\.01`))
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

// simTerminal runs 'paydesk sim terminal' (logging in dir) with its
// device linked at link, and waits for the device.
func simTerminal(t *testing.T, dir, link string) {
	t.Helper()
	_, _, simOut := startPaydesk(t, []string{"PAYDESK_LOG=" + filepath.Join(dir, "sim.log")}, "sim", "terminal", "--link", link, "--think", "50ms")
	simOut.waitFor(t, regexp.MustCompile(`terminal on /dev/\S+ \(link `))
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

// A kiosk switching from HiPay's connector keeps its config.txt: paydesk
// reads it (serial port, API port, both logins), serves the API on
// LOCAL_PORT with TERMINAL_MANAGER_LOGIN, pays on the simulated terminal,
// and forwards the result to the notification endpoint with HIPAY_LOGIN.
func TestTerminalAPIFromConfigTxt(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the terminal simulator needs Linux pseudo-terminals")
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "tty")
	simTerminal(t, dir, link)

	type note struct {
		auth string
		body map[string]any
	}
	notes := make(chan note, 4)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		notes <- note{auth: u + ":" + p, body: decodeOne(t, r.Body)}
	}))
	defer sink.Close()

	port := freePort(t)
	cfg := filepath.Join(dir, "config.txt")
	txt := "# HiPay unattended ECR connector\r\nSERIAL_PORT=" + link + "\r\nLOCAL_PORT=" + strconv.Itoa(port) +
		"\r\nTERMINAL_MANAGER_LOGIN=kiosk\r\nTERMINAL_MANAGER_PWD=\"s3cret#1\"\r\nHIPAY_LOGIN=shop\r\nHIPAY_PWD=n0t1fy\r\nUPDATE_TIME=03:30\r\n"
	if err := os.WriteFile(cfg, []byte(txt), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "paydesk.log")
	cmd, stdin, out := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir, "PAYDESK_LOG=" + logFile},
		"--plain", "--listen", "127.0.0.1:0", "--journal", filepath.Join(dir, "journal.db"),
		"--terminal-config-txt", cfg, "--terminal-notify-url", sink.URL)
	defer stdin.Close()
	out.waitFor(t, regexp.MustCompile(`Select option`))

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	call := func(method, path, user, pass, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.SetBasicAuth(user, pass)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, decodeOne(t, resp.Body)
	}
	// The API comes up once the driver has opened the port.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/check", nil)
		req.SetBasicAuth("kiosk", "s3cret#1")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no API on LOCAL_PORT %d:\n%s", port, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := call(http.MethodGet, "/check", "kiosk", "wrong", ""); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	code, m := call(http.MethodPost, "/payment", "kiosk", "s3cret#1", `{"amount":12.5,"orderId":"A-1001","currency":"EUR"}`)
	if code != http.StatusOK || m["status"] != "Success" {
		t.Fatalf("payment: %d %v", code, m)
	}
	if m["notificationHipaySent"] != true {
		t.Errorf("notificationHipaySent = %v, want true", m["notificationHipaySent"])
	}
	select {
	case n := <-notes:
		if n.auth != "shop:n0t1fy" {
			t.Errorf("notification auth %q, want HIPAY_LOGIN:HIPAY_PWD", n.auth)
		}
		if n.body["status"] != "Success" {
			t.Errorf("notification %v", n.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification reached the endpoint")
	}
	io.WriteString(stdin, "7\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("paydesk: %v\n%s", err, out.String())
	}
	logged, _ := os.ReadFile(logFile)
	for _, secret := range []string{"s3cret#1", "n0t1fy"} {
		if bytes.Contains(logged, []byte(secret)) || strings.Contains(out.String(), secret) {
			t.Errorf("the password %q reached the log or the console", secret)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// decodeOne reads a JSON object, or the one object of an array (the
// shape HiPay's ECR connector answers with).
func decodeOne(t *testing.T, r io.Reader) map[string]any {
	t.Helper()
	b, _ := io.ReadAll(r)
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Errorf("not JSON: %v: %s", err, b)
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		return v
	case []any:
		if len(v) == 1 {
			if m, ok := v[0].(map[string]any); ok {
				return m
			}
		}
	}
	t.Errorf("not one JSON object: %s", b)
	return nil
}

// SIGTERM with a payment on the terminal ends paydesk within a couple of
// seconds (the terminal would keep it waiting for 3 minutes); the
// payment stays in the journal and the next start shows it unknown.
func TestSIGTERMWithATerminalPaymentInFlight(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the terminal simulator needs Linux pseudo-terminals")
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "tty")
	simTerminal(t, dir, link)
	journal := filepath.Join(dir, "journal.db")
	cmd, stdin, out := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir},
		"--plain", "--listen", "127.0.0.1:0", "--journal", journal, "--terminal-port", link, "--terminal-currency", "EUR")
	defer stdin.Close()
	out.waitFor(t, regexp.MustCompile(`Select option`))
	io.WriteString(stdin, "8\n6.02\n") // the simulator accepts 6.02 and never answers
	id := out.waitFor(t, regexp.MustCompile(`Transaction ID: (TRM[0-9A-Z]{10})`))[1]
	out.waitFor(t, regexp.MustCompile(id+`: terminal accepted the request`))

	begin := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("paydesk after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("paydesk still running 30 s after SIGTERM:\n%s", out.String())
	}
	// The limit is the "a couple of seconds", with room for a
	// loaded two-core machine; the stop itself waits on no peer.
	took := time.Since(begin)
	t.Logf("paydesk exited %s after SIGTERM", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("paydesk took %s to exit after SIGTERM, want about 2 s at most", took)
	}

	_, stdin2, out2 := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir}, "--plain", "--listen", "127.0.0.1:0", "--journal", journal)
	defer stdin2.Close()
	out2.waitFor(t, regexp.MustCompile(`UNKNOWN `+id+` card 6\.02 .*in flight when paydesk stopped`))
	io.WriteString(stdin2, "7\n")
}

// A script piped in whole acts only once the terminal driver is up: the
// first payment of 'printf "8\n12.00\n7\n" | paydesk --terminal-port X'
// is taken, every time.
func TestScriptSeesTheTerminalReady(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the terminal simulator needs Linux pseudo-terminals")
	}
	bin := binary(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "tty")
	simTerminal(t, dir, link)
	for i := range 5 {
		cmd := exec.Command(bin, "--plain", "--listen", "127.0.0.1:0", "--journal", filepath.Join(dir, fmt.Sprintf("journal%d.db", i)),
			"--terminal-port", link, "--terminal-currency", "EUR")
		cmd.Env = append(cmd.Environ(), "XDG_CONFIG_HOME="+dir)
		cmd.Stdin = strings.NewReader("8\n12.00\n7\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		if !regexp.MustCompile(`RESULT TRM[0-9A-Z]{10} approved 12\.00`).Match(out) {
			t.Fatalf("run %d: no approved payment:\n%s", i, out)
		}
	}
}
