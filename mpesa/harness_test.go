package mpesa_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// fastPoll keeps the tests' waits short while keeping the policy's shape.
var fastPoll = mpesa.PollPolicy{First: 60 * time.Millisecond, Every: 50 * time.Millisecond, Jitter: 10 * time.Millisecond,
	MaxBackoff: 400 * time.Millisecond, Budget: 3 * time.Second, Reconcile: 300 * time.Millisecond}

// harness is one kiosk end to end: the client talks to the fake Daraja
// over HTTP, the fake calls back the rail's callback server over HTTP,
// and the rail journals to a real SQLite journal through the bus.
type harness struct {
	t       testing.TB
	fake    *sandbox.Server
	fakeURL string
	client  *daraja.Client
	rail    *mpesa.Rail
	bus     *payment.Bus
	j       *payment.Journal
	path    string
	cbURL   string
	ln      net.Listener
	served  chan error // Serve's result
	closed  bool
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t testing.TB, fo sandbox.Options, tune func(*mpesa.Options)) *harness {
	t.Helper()
	if fo.PromptDelay == 0 {
		fo.PromptDelay = 100 * time.Millisecond
	}
	if fo.PromptTTL == 0 {
		fo.PromptTTL = 200 * time.Millisecond
	}
	h := &harness{t: t, fake: sandbox.New(fo), path: filepath.Join(t.TempDir(), "journal.db")}
	fs := httptest.NewServer(h.fake.Handler())
	t.Cleanup(func() { h.fake.Close(); fs.Close() })
	h.fakeURL = fs.URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.ln = ln
	h.cbURL = "http://" + ln.Addr().String()
	h.open(tune)
	t.Cleanup(h.close)
	return h
}

// open starts the rail (again, after close) on the same journal file and
// callback address.
func (h *harness) open(tune func(*mpesa.Options)) {
	t := h.t
	t.Helper()
	j, rec, err := payment.OpenJournal(h.path, payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = rec
	h.j = j
	h.bus = payment.NewBus(j, quietLog())
	c, err := daraja.NewClient(daraja.Config{BaseURL: h.fakeURL, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
		ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Logger: quietLog(),
		HTTP: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	o := mpesa.Options{Client: c, Bus: h.bus, PublicURL: h.cbURL, PathSecret: "k9x2test7path",
		AllowList: mustPrefixes(t, "127.0.0.0/8"), Poll: fastPoll, Logger: quietLog(), PushTimeout: 2 * time.Second}
	if tune != nil {
		tune(&o)
	}
	r, err := mpesa.NewRail(o)
	if err != nil {
		t.Fatal(err)
	}
	h.rail = r
	if err := r.Recover(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if h.ln == nil {
		ln, err := net.Listen("tcp", strings.TrimPrefix(h.cbURL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		h.ln = ln
	}
	served := make(chan error, 1)
	h.served = served
	go func(ln net.Listener) { served <- r.Serve(context.Background(), ln) }(h.ln)
	h.closed = false
}

// close stops the callback server, the rail and the journal, as a crash
// or an exit would.
func (h *harness) close() {
	if h.closed {
		return
	}
	h.closed = true
	h.rail.Close()
	if err := <-h.served; err != nil {
		h.t.Errorf("Serve: %v", err)
	}
	h.ln = nil
	h.bus.Close()
	h.j.Close()
}

func mustPrefixes(t testing.TB, s string) []netip.Prefix {
	t.Helper()
	p, err := mpesa.ParsePrefixes(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start begins an STK Push and returns the txn id.
func (h *harness) start(phone string, shillings int64) string {
	h.t.Helper()
	return h.begin(payment.Request{Mode: payment.ModeSTKPush, Phone: phone}, shillings)
}

// begin starts req for shillings (its Amount is set here), or fails the
// test, and returns the txn id.
func (h *harness) begin(req payment.Request, shillings int64) string {
	h.t.Helper()
	req.Amount = payment.Money{Minor: shillings * 100, Currency: "KES"}
	id, err := h.rail.Start(context.Background(), req)
	if err != nil {
		h.t.Fatalf("start %s: %v", req.Mode, err)
	}
	return id
}

// waitStatus waits until txn id reaches st in the journal.
func (h *harness) waitStatus(id string, st payment.Status) payment.Txn {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last payment.Txn
	for time.Now().Before(deadline) {
		tx, err := h.j.Txn(context.Background(), id)
		if err == nil {
			last = tx
			if tx.Status == st {
				return tx
			}
		} else if !errors.Is(err, payment.ErrNotFound) {
			h.t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("txn %s: status %s, want %s (history: %s)", id, last.Status, st, h.history(id))
	return last
}

// waitFor polls cond for up to 10 s.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("timed out waiting for %s", what)
}

func (h *harness) events(id string) []payment.Event {
	h.t.Helper()
	evs, err := h.j.History(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

func (h *harness) history(id string) string {
	var b strings.Builder
	for _, e := range h.events(id) {
		b.WriteString("\n  " + string(e.Kind) + " " + string(e.Status) + " [" + e.Flag + "] " + e.Detail)
	}
	return b.String()
}

// count counts the events of txn id matching f.
func (h *harness) count(id string, f func(payment.Event) bool) int {
	return len(slices.DeleteFunc(h.events(id), func(e payment.Event) bool { return !f(e) }))
}

// allEvents returns every event in the journal.
func (h *harness) allEvents() []payment.Event {
	h.t.Helper()
	evs, err := h.j.EventsSince(context.Background(), 0, 100000)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

func isTransition(st payment.Status) func(payment.Event) bool {
	return func(e payment.Event) bool { return e.Kind == payment.KindTransition && e.Status == st }
}

func hasFlag(f string) func(payment.Event) bool {
	return func(e payment.Event) bool { return e.Flag == f }
}
