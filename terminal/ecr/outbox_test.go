package ecr

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endpoint is a notification receiver that fails while down is set.
type endpoint struct {
	srv  *httptest.Server
	down atomic.Bool
	mu   sync.Mutex
	got  []notification
	fail int
}

type notification struct {
	key, txn, user, pass string
	body                 map[string]any
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if e.down.Load() {
			e.mu.Lock()
			e.fail++
			e.mu.Unlock()
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		n := notification{key: r.Header.Get("Idempotency-Key"), txn: r.Header.Get("X-Paydesk-Transaction")}
		n.user, n.pass, _ = r.BasicAuth()
		if err := json.Unmarshal(b, &n.body); err != nil {
			t.Errorf("notification body is not a JSON object: %s", b)
		}
		e.mu.Lock()
		e.got = append(e.got, n)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) received() []notification {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]notification(nil), e.got...)
}

func (e *endpoint) failures() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fail
}

func openTestOutbox(t *testing.T, dir, url string, log *slog.Logger) *Outbox {
	t.Helper()
	ob, err := OpenOutbox(OutboxOptions{Dir: dir, URL: url, Login: "99999999.stage", Password: "Test_hipay_secret",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, AttemptTimeout: time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func runOutbox(t *testing.T, ob *Outbox) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ob.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func TestPaymentResultIsForwardedAndRetriedUntilTheEndpointRecovers(t *testing.T) {
	r := newRig(t)
	ep := newEndpoint(t)
	dir := t.TempDir()
	ob := openTestOutbox(t, dir, ep.srv.URL+"/notify", r.log)
	stop := runOutbox(t, ob)
	defer stop()
	a := newAPI(t, r, func(o *Options) { o.Outbox = ob; o.NotifyWait = 500 * time.Millisecond })

	// Up: delivered at once.
	_, b := a.do(http.MethodPost, "/", seedRequest("8.99"))
	m := one(t, b)
	if m["status"] != StatusSuccess || m["notificationHipaySent"] != true {
		t.Fatalf("payment with the endpoint up: %s", b)
	}
	got := ep.received()
	if len(got) != 1 {
		t.Fatalf("%d notifications, want 1", len(got))
	}
	n := got[0]
	if n.user != "99999999.stage" || n.pass != "Test_hipay_secret" || n.key == "" || n.txn != m["transactionId"] {
		t.Errorf("notification headers: %+v", n)
	}
	if n.body["orderId"] != "Order_12345" || n.body["status"] != StatusSuccess || n.body["receipt"] == nil {
		t.Errorf("notification body: %v", n.body)
	}
	if _, ok := n.body["notificationHipaySent"]; ok {
		t.Error("the notification carries notificationHipaySent")
	}

	// Down for a while: the answer says not sent; retries deliver it later.
	ep.down.Store(true)
	_, b = a.do(http.MethodPost, "/", `{"amount": 2.50, "orderId": "while-down"}`)
	if m := one(t, b); m["status"] != StatusSuccess || m["notificationHipaySent"] != false {
		t.Fatalf("payment with the endpoint down: %s", b)
	}
	if p := ob.Pending(); len(p) != 1 {
		t.Fatalf("pending %+v, want 1", p)
	}
	waitFor(t, 2*time.Second, "three failed attempts", func() bool { return ep.failures() >= 3 })
	ep.down.Store(false)
	waitFor(t, 2*time.Second, "the retry to deliver", func() bool { return len(ob.Pending()) == 0 })
	got = ep.received()
	if len(got) != 2 || got[1].body["orderId"] != "while-down" {
		t.Fatalf("after recovery: %+v", got)
	}
	if !strings.Contains(r.logBuf.String(), "will retry") {
		t.Error("failed attempts not logged")
	}
	if strings.Contains(r.logBuf.String(), "Test_hipay_secret") {
		t.Error("the HiPay password is in the log")
	}
	lines := strings.Split(strings.TrimSpace(string(readFile(t, filepath.Join(dir, OutboxFile)))), "\n")
	if len(lines) != 4 {
		t.Fatalf("outbox file has %d lines, want add, sent, add, sent:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

func TestOutboxResendsPendingEntriesAfterRestart(t *testing.T) {
	// The first run posts to an endpoint that is down, the second to one
	// that is up. Two servers, not one flipped, so that a request still in
	// flight when the first run stops cannot be counted as delivered.
	downEP := newEndpoint(t)
	downEP.down.Store(true)
	ep := newEndpoint(t)
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)

	ob := openTestOutbox(t, dir, downEP.srv.URL, log)
	stop := runOutbox(t, ob)
	_, done1, err := ob.Enqueue("TRM1", []byte(`{"orderId":"A"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ob.Enqueue("TRM2", []byte(`{"orderId":"B"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "a failed attempt", func() bool { return downEP.failures() >= 1 })
	stop()
	ob.Close()
	select {
	case <-done1:
		t.Fatal("reported delivered while the endpoint was down")
	default:
	}
	// A crash in the middle of the next append leaves a torn line.
	f, err := os.OpenFile(filepath.Join(dir, OutboxFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"op":"sent","id":"`)
	f.Close()

	// Restart with the endpoint up: both are sent, in order.
	ob = openTestOutbox(t, dir, ep.srv.URL, log)
	if p := ob.Pending(); len(p) != 2 || p[0].Txn != "TRM1" || p[1].Txn != "TRM2" {
		t.Fatalf("pending after restart: %+v", p)
	}
	stop = runOutbox(t, ob)
	waitFor(t, 2*time.Second, "the resend", func() bool { return len(ob.Pending()) == 0 })
	stop()
	ob.Close()
	got := ep.received()
	if len(got) != 2 || got[0].body["orderId"] != "A" || got[1].body["orderId"] != "B" || got[0].txn != "TRM1" {
		t.Fatalf("received %+v", got)
	}

	// Once delivered, a further restart sends nothing again.
	ob = openTestOutbox(t, dir, ep.srv.URL, log)
	defer ob.Close()
	if p := ob.Pending(); len(p) != 0 {
		t.Fatalf("pending after delivery and restart: %+v", p)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(readFile(t, filepath.Join(dir, OutboxFile)))), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("outbox file keeps a torn line: %q", line)
		}
	}
}

func TestOpenOutboxRefusesABadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "not a url", "http://"} {
		if _, err := OpenOutbox(OutboxOptions{Dir: t.TempDir(), URL: u}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}
