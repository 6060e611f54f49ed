package ecr

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/termsim"
	"paydesk/terminal/termtest"
)

const (
	testUser = "log"
	testPass = "pwd-s3cret"
)

// rig is the real driver against the simulator over an in-memory pipe
// pair, with the journal and bus it publishes on (termtest's rig, under
// the names these tests use).
type rig struct {
	*termtest.Rig
	t      *testing.T
	bus    *payment.Bus
	j      *payment.Journal
	drv    *terminal.Driver
	sim    *termsim.Sim
	logBuf *termtest.SyncBuffer
	log    *slog.Logger
}

// testTimers shrink the driver's timers so failure paths take
// milliseconds; the result wait stays long enough for the slow cases.
// The simulator ends a probe's session at its EOT and waits for the
// ECR's EOT after unanswered frames, so no timer here needs to fit
// around the simulator's Timeout.
var testTimers = terminal.Timers{
	Ack:       150 * time.Millisecond,
	InterByte: 300 * time.Millisecond,
	ENQPause:  300 * time.Millisecond,
	Result:    4 * time.Second,
	EOT:       300 * time.Millisecond,
}

func newRig(t *testing.T) *rig { return newRigTimers(t, testTimers) }

func newRigTimers(t *testing.T, timers terminal.Timers) *rig {
	t.Helper()
	return newRigWith(t, timers, termsim.Options{Think: 30 * time.Millisecond, SlowDelay: 1500 * time.Millisecond}, nil)
}

// newRigWith builds a rig with the given timers, simulator options and
// driver clock (nil: time.Now).
func newRigWith(t *testing.T, timers terminal.Timers, so termsim.Options, now func() time.Time) *rig {
	t.Helper()
	so.Timeout = simTimeout
	tr := termtest.New(t, termtest.Options{Timers: timers, Sim: so, Now: now})
	return &rig{Rig: tr, t: t, bus: tr.Bus, j: tr.Journal, drv: tr.Driver, sim: tr.Sim, logBuf: tr.Log, log: tr.Logger}
}

// simTimeout is the simulator's wait for bytes and ACKs. It is generous:
// the simulator gives up an answer after three ENQs unanswered within it,
// and a loaded machine can delay the driver's ACK by much more than the
// 250 ms it once was (TestConsolePaymentMakesTheAPIBusy then waited in
// vain for the answer). Nothing waits this out on a good path.
const simTimeout = 2 * time.Second

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	termtest.WaitFor(t, d, what, cond)
}

// api is the handler on an httptest server.
type api struct {
	*rig
	h   *Handler
	srv *httptest.Server
}

func newAPI(t *testing.T, r *rig, mod func(*Options)) *api {
	t.Helper()
	opts := Options{Terminal: r.drv, Bus: r.bus, Login: testUser, Password: testPass, Logger: r.log,
		Settings: ConfigTxt{SerialPort: "/dev/ttyACM0", LocalPort: 8080, TerminalManagerLogin: testUser,
			TerminalManagerPassword: testPass, HiPayLogin: "99999999.stage", HiPayPassword: "Test_hipay_secret"},
		Location: time.UTC, SettleWait: 300 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	h, err := NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return &api{rig: r, h: h, srv: srv}
}

// do sends a request with the right credentials.
func (a *api) do(method, path, body string) (*http.Response, []byte) {
	return a.doAuth(method, path, body, testUser, testPass, true)
}

func (a *api) doAuth(method, path, body, user, pass string, auth bool) (*http.Response, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(user, pass)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp, b
}

// one decodes the answer array and returns its only element.
func one(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var arr []map[string]any
	if err := json.Unmarshal(b, &arr); err != nil {
		t.Fatalf("answer is not a JSON array: %v: %s", err, b)
	}
	if len(arr) != 1 {
		t.Fatalf("answer has %d elements, want 1: %s", len(arr), b)
	}
	return arr[0]
}

func errCode(t *testing.T, b []byte) (code, msg string) {
	t.Helper()
	m := one(t, b)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", b)
	}
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}

// events returns the journal's events so far.
func (r *rig) events() []payment.Event { return r.Events(r.t) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
