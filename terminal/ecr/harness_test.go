package ecr

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/termsim"
)

const (
	testUser = "log"
	testPass = "pwd-s3cret"
)

// rig is the real driver against the simulator over an in-memory pipe
// pair, with the journal and bus it publishes on.
type rig struct {
	t      *testing.T
	bus    *payment.Bus
	j      *payment.Journal
	drv    *terminal.Driver
	sim    *termsim.Sim
	logBuf *syncBuffer
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// syncBuffer is a goroutine-safe log sink, so tests can check what was
// logged (and that secrets were not).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testTimers shrink the driver's timers so failure paths take
// milliseconds; the result wait stays long enough for the slow cases.
//
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
	lb := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, log)
	so.Timeout = simTimeout
	sim := termsim.New(so)
	ctx, cancel := context.WithCancel(context.Background())
	var simWG sync.WaitGroup
	open := func() (terminal.Port, error) {
		a, b := net.Pipe()
		simWG.Add(1)
		go func() {
			defer simWG.Done()
			sim.Serve(ctx, b)
			b.Close()
		}()
		return a, nil
	}
	drv, err := terminal.NewDriver(bus, terminal.Options{Open: open, Timers: timers, ProbeInterval: -1,
		ReopenInterval: 50 * time.Millisecond, Logger: log, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, bus: bus, j: j, drv: drv, sim: sim, logBuf: lb, log: log, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		drv.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		simWG.Wait()
		bus.Close()
		j.Close()
	})
	waitFor(t, 3*time.Second, "the driver's first probe", func() bool { return drv.Health().State == terminal.HealthOK })
	return r
}

// simTimeout is the simulator's wait for bytes and ACKs. It is generous:
// the simulator gives up an answer after three ENQs unanswered within it,
// and a loaded machine can delay the driver's ACK by much more than the
// 250 ms it once was (TestConsolePaymentMakesTheAPIBusy then waited in
// vain for the answer). Nothing waits this out on a good path.
const simTimeout = 2 * time.Second

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
		Settings: Settings{SerialPort: "/dev/ttyACM0", LocalPort: 8080, TerminalManagerLogin: testUser,
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
func (r *rig) events() []payment.Event {
	r.t.Helper()
	evs, err := r.j.EventsSince(context.Background(), 0, 10000)
	if err != nil {
		r.t.Fatal(err)
	}
	return evs
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
