package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The demo drives M-Pesa end to end through the real binary in line
// mode: item 9, the sandbox's test number, KES 150; the fake Daraja
// prompts, calls back, and the console prints an approved RESULT line
// with the M-Pesa receipt. A phone ending 1032 is cancelled by the
// customer. Phone numbers are shown masked.
func TestMPesaDemoPlain(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin, out := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir, "PAYDESK_LOG=" + filepath.Join(dir, "paydesk.log")}, "demo", "--plain")
	out.waitFor(t, regexp.MustCompile(`Select option`))
	io.WriteString(stdin, "9\n0708 374 149\n150\n")
	id := out.waitFor(t, regexp.MustCompile(`Transaction ID: (PD[0-9A-Z]{8})`))[1]
	waitLong(t, out, regexp.MustCompile(`RESULT `+id+` approved 150\.00 pos_txn=[0-9A-Z]{10}`))

	io.WriteString(stdin, "9\n+254 712 341 032\n20\n")
	waitLong(t, out, regexp.MustCompile(`RESULT PD[0-9A-Z]{8} cancelled 20\.00 reason="the customer cancelled the prompt"`))

	// A customer pays the paybill with a reference that is no sale: the
	// line console shows it for the operator.
	url := out.waitFor(t, regexp.MustCompile(`curl -d amount=100 -d ref=<sale reference> (http://\S+)/sandbox/c2b`))[1]
	resp, err := http.PostForm(url+"/sandbox/c2b", neturl.Values{"amount": {"70"}, "ref": {"NOSUCHREF"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out.waitFor(t, regexp.MustCompile(`NOTICE unmatched till payment [0-9A-Z]{10} KES 70\.00 ref "NOSUCHREF": no sale with this reference`))

	io.WriteString(stdin, "9\n0812345678\n")
	out.waitFor(t, regexp.MustCompile(`Enter amount \(KES`))
	io.WriteString(stdin, "10\n")
	out.waitFor(t, regexp.MustCompile(`ERROR phone number refused: not a Kenyan mobile number`))
	io.WriteString(stdin, "7\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("paydesk: %v\n%s", err, out.String())
	}
	for _, full := range []string{"0708374149", "254708374149", "712341032", "0708 374 149"} {
		if strings.Contains(strings.ReplaceAll(out.String(), "Customer's phone", ""), full) {
			t.Errorf("the full phone number %s reached the console:\n%s", full, out.String())
		}
	}
}

// A kiosk configured from a config file ([mpesa] with its secrets) pays
// against 'paydesk sim daraja' run as its own process: the customer
// never answers the prompt but pays the paybill with the sale's
// reference, typed in lower case; the C2B confirmation completes the
// sale. Neither the consumer secret, the passkey nor the full phone
// number reaches the log.
func TestMPesaSimDarajaAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	_, simIn, simOut := startPaydesk(t, []string{"PAYDESK_LOG=" + filepath.Join(dir, "sim.log")},
		"sim", "daraja", "--listen", "127.0.0.1:0", "--delay", "60s", "--prompt-ttl", "60s")
	url := simOut.waitFor(t, regexp.MustCompile(`daraja on (http://\S+)`))[1]

	cfg := filepath.Join(dir, "paydesk.toml")
	os.WriteFile(cfg, []byte(`[mpesa]
base-url = "`+url+`"
shortcode = "174379"
consumer-key = "paydesk-demo-key"
consumer-secret = "paydesk-demo-secret"
passkey = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
callback-listen = "127.0.0.1:0"
allow = "127.0.0.1"
register-c2b = true
`), 0o600)
	logPath := filepath.Join(dir, "paydesk.log")
	cmd, stdin, out := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir},
		"--plain", "--listen", "127.0.0.1:0", "--journal", filepath.Join(dir, "journal.db"), "--config", cfg, "--log", logPath)
	out.waitFor(t, regexp.MustCompile(`Select option`))
	io.WriteString(stdin, "9\n0712 341 037\n250\n")
	id := out.waitFor(t, regexp.MustCompile(`Transaction ID: (PD[0-9A-Z]{8})`))[1]
	out.waitFor(t, regexp.MustCompile(`waiting for the customer to enter the M-Pesa PIN`))
	io.WriteString(simIn, "c2b 250.00 "+strings.ToLower(id)+"\n")
	waitLong(t, out, regexp.MustCompile(`RESULT `+id+` approved 250\.00 pos_txn=[0-9A-Z]{10}`))
	io.WriteString(stdin, "7\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("paydesk: %v\n%s", err, out.String())
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"paydesk-demo-secret", "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919", "254712341037", "access_token"} {
		if bytes.Contains(log, []byte(secret)) || strings.Contains(out.String(), secret) {
			t.Errorf("%q reached the log or the console", secret)
		}
	}
	if !bytes.Contains(log, []byte("M-Pesa rail started")) {
		t.Errorf("log lacks the rail's start:\n%s", log)
	}
}

// paydesk is killed (SIGKILL) between the push and the callback. On
// restart on the same journal the payment is listed UNKNOWN, the rail
// queries Daraja by its CheckoutRequestID, and the console prints it
// approved.
func TestMPesaKilledAndRestarted(t *testing.T) {
	dir := t.TempDir()
	// The customer answers 3 s after the push: paydesk is killed a moment
	// after it prints the wait, well before.
	simLog := filepath.Join(dir, "sim.log")
	_, _, simOut := startPaydesk(t, []string{"PAYDESK_LOG=" + simLog}, "sim", "daraja", "--listen", "127.0.0.1:0", "--delay", "3s")
	url := simOut.waitFor(t, regexp.MustCompile(`daraja on (http://\S+)`))[1]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cbAddr := ln.Addr().String()
	ln.Close()
	journal := filepath.Join(dir, "journal.db")
	run := func() (*exec.Cmd, io.WriteCloser, *lines) {
		cmd, stdin, out := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir, "PAYDESK_MPESA_CONSUMER_KEY=paydesk-demo-key",
			"PAYDESK_MPESA_CONSUMER_SECRET=paydesk-demo-secret", "PAYDESK_MPESA_PATH_SECRET=fixedpathsecret7",
			"PAYDESK_MPESA_PASSKEY=bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"},
			"--plain", "--listen", "127.0.0.1:0", "--journal", journal, "--log", filepath.Join(dir, "paydesk.log"),
			"--mpesa-base-url", url, "--mpesa-shortcode", "174379", "--mpesa-callback-listen", cbAddr, "--mpesa-allow", "127.0.0.1")
		out.waitFor(t, regexp.MustCompile(`Select option`))
		return cmd, stdin, out
	}
	cmd, stdin, out := run()
	io.WriteString(stdin, "9\n0708374149\n120\n")
	id := out.waitFor(t, regexp.MustCompile(`Transaction ID: (PD[0-9A-Z]{8})`))[1]
	out.waitFor(t, regexp.MustCompile(`waiting for the customer to enter the M-Pesa PIN`))
	cmd.Process.Kill()
	cmd.Wait()
	// The callback finds nobody; the outcome is final at Daraja.
	waitForLog(t, simLog, "sandbox callback failed")

	_, stdin, out = run()
	out.waitFor(t, regexp.MustCompile(`UNKNOWN `+id+` stk_push 120\.00`))
	waitLong(t, out, regexp.MustCompile(`RESULT `+id+` approved 120\.00`))
	io.WriteString(stdin, "7\n")
	stdin.Close()
}

// Production needs an HTTPS callback URL, and a fixed path secret before
// the one-shot C2B registration; bad settings stop the start with the
// setting's name.
func TestMPesaSettingsRefused(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--mpesa-env", "production", "--mpesa-callback-url", "http://kiosk.example.com"}, "must be an https:// URL in production"},
		{[]string{"--mpesa-env", "production", "--mpesa-callback-url", "https://kiosk.example.com", "--mpesa-register-c2b"}, "PAYDESK_MPESA_PATH_SECRET"},
		{[]string{"--mpesa-type", "shop"}, "--mpesa-type must be paybill or till"},
		{[]string{"--mpesa-allow", "not-an-ip"}, "--mpesa-allow"},
		{[]string{"--mpesa-callback-url", "https://kiosk.example.com/mpesa"}, "which Daraja refuses"},
		{[]string{}, "missing consumer key"},
	} {
		args := append([]string{"--plain", "--listen", "127.0.0.1:0", "--journal", filepath.Join(dir, "j.db"), "--log", filepath.Join(dir, "log"),
			"--mpesa-shortcode", "174379", "--mpesa-callback-listen", "127.0.0.1:0"}, c.args...)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cmd.Environ(), "XDG_CONFIG_HOME="+dir)
		if len(c.args) > 0 {
			cmd.Env = append(cmd.Env, "PAYDESK_MPESA_CONSUMER_KEY=k", "PAYDESK_MPESA_CONSUMER_SECRET=s", "PAYDESK_MPESA_PASSKEY=p")
		}
		cmd.Stdin = strings.NewReader("7\n")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: %v\n%s\nwant %q", c.args, err, out, c.want)
		}
	}
}

// Without PAYDESK_MPESA_PATH_SECRET the callback path secret is made once
// and kept beside the journal (mode 0600): a callback for a push made
// before a restart still finds its URL. A request to an unknown path is
// logged, without the path's secret segment.
func TestMPesaPathSecretSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	_, _, simOut := startPaydesk(t, []string{"PAYDESK_LOG=" + filepath.Join(dir, "sim.log")}, "sim", "daraja", "--listen", "127.0.0.1:0")
	url := simOut.waitFor(t, regexp.MustCompile(`daraja on (http://\S+)`))[1]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cbAddr := ln.Addr().String()
	ln.Close()
	journal := filepath.Join(dir, "kiosk", "journal.db")
	logFile := filepath.Join(dir, "paydesk.log")
	run := func() (*exec.Cmd, io.WriteCloser) {
		cmd, stdin, out := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir, "PAYDESK_MPESA_CONSUMER_KEY=paydesk-demo-key",
			"PAYDESK_MPESA_CONSUMER_SECRET=paydesk-demo-secret",
			"PAYDESK_MPESA_PASSKEY=bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"},
			"--plain", "--listen", "127.0.0.1:0", "--journal", journal, "--log", logFile,
			"--mpesa-base-url", url, "--mpesa-shortcode", "174379", "--mpesa-callback-listen", cbAddr, "--mpesa-allow", "127.0.0.1")
		out.waitFor(t, regexp.MustCompile(`Select option`))
		return cmd, stdin
	}
	post := func(path string) int {
		t.Helper()
		resp, err := http.Post("http://"+cbAddr+path, "application/json",
			strings.NewReader(`{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_none","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cmd, stdin := run()
	file := filepath.Join(dir, "kiosk", "mpesa-path-secret")
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no path secret kept beside the journal: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", file, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(file)
	secret := strings.TrimSpace(string(b))
	if c := post("/" + secret + "/stk/result"); c != 200 {
		t.Errorf("callback on the kept secret's path: %d, want 200", c)
	}
	io.WriteString(stdin, "7\n")
	stdin.Close()
	cmd.Wait()

	cmd, stdin = run()
	if c := post("/" + secret + "/stk/result"); c != 200 {
		t.Errorf("after a restart, callback on the path given before it: %d, want 200", c)
	}
	if c := post("/oldsecret4711/stk/result"); c != 404 {
		t.Errorf("unknown path: %d, want 404", c)
	}
	io.WriteString(stdin, "7\n")
	stdin.Close()
	cmd.Wait()
	log, _ := os.ReadFile(logFile)
	if !bytes.Contains(log, []byte("/…/stk/result")) {
		t.Errorf("the request to an unknown path is not logged:\n%s", log)
	}
	if bytes.Contains(log, []byte("oldsecret4711")) || bytes.Contains(log, []byte(secret)) {
		t.Errorf("a path secret reached the log:\n%s", log)
	}
}
