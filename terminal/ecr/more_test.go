package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"net/netip"
	"strconv"

	"paydesk/payment"
	"paydesk/terminal/termsim"
)

func TestOutcomesBeyondApproveAndRefuse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      termsim.Behaviour
		status string
		msg    string
	}{
		// The terminal never ACKs the frame: unknown, then its later
		// answer resolves the payment (approved).
		{"request never acknowledged, answer later", termsim.NoAckFrame, StatusSuccess, ""},
		{"terminal never answers", termsim.NeverAnswer, StatusTimeout, "no answer from the terminal"},
		// The cable goes mid-payment: the driver leaves it unknown; the API
		// reads that from the journal and says so.
		{"cable unplugged after accepting", termsim.HangUp, StatusUnknown, "check the terminal"},
		{"answer with another amount", termsim.WrongAmount, StatusUnknown, "different echo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The result timeout is short only where the test waits for it
			// to fire (a terminal that never answers); where the terminal
			// does answer, a loaded machine must not turn its answer into
			// a timeout, so it is generous there (it once hit 800 ms).
			timers := testTimers
			timers.Result = 10 * time.Second
			if tc.b == termsim.NeverAnswer {
				timers.Result = 800 * time.Millisecond
			}
			// Likewise the ACK timeout: short only where the terminal
			// never ACKs the request (three sends, then unknown); where it
			// does, an ACK later than three short timeouts would make the
			// payment unknown.
			if tc.b != termsim.NoAckFrame {
				timers.Ack = 2 * time.Second
			}
			a := newAPI(t, newRigTimers(t, timers), nil)
			waitFor(t, 3*time.Second, "the terminal to be free and answering", func() bool {
				_, busy := a.drv.Current()
				return !busy && a.drv.Health().State != "port closed"
			})
			resp, b := a.do(http.MethodPost, "/", `{"amount": `+amountFor(tc.b)+`}`)
			m := one(t, b)
			if resp.StatusCode != http.StatusOK || m["status"] != tc.status {
				t.Fatalf("%d %s, want status %s", resp.StatusCode, b, tc.status)
			}
			if tc.msg != "" {
				if _, msg := errCode(t, b); !strings.Contains(msg, tc.msg) {
					t.Errorf("message %q lacks %q", msg, tc.msg)
				}
			}
			tx, err := a.j.Txn(context.Background(), m["transactionId"].(string))
			if err != nil || responseStatus(tx.Status) != tc.status {
				t.Errorf("journal %+v %v", tx, err)
			}
		})
	}
}

func TestConsolePaymentMakesTheAPIBusy(t *testing.T) {
	a := newAPI(t, newRig(t), nil)
	id, err := a.drv.Start(context.Background(), payment.Request{Mode: payment.ModeCard,
		Amount: payment.Money{Minor: 603, Currency: "EUR"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, b := a.do(http.MethodPost, "/", `{"amount": 1.00}`)
	if resp.StatusCode != http.StatusConflict || one(t, b)["transactionId"] != id {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	// /cancel asks to cancel the terminal's payment, whoever started it.
	waitFor(t, 2*time.Second, "the slow payment on the terminal", func() bool { f, ok := a.drv.Current(); return ok && f.Accepted })
	if resp, b := a.do(http.MethodGet, "/cancel", ""); resp.StatusCode != http.StatusAccepted || one(t, b)["transactionId"] != id {
		t.Fatalf("cancel: %d %s", resp.StatusCode, b)
	}
	waitFor(t, 4*time.Second, "the payment to end", func() bool { _, ok := a.drv.Current(); return !ok })
}

func TestClientGoneMidPaymentStillForwardsTheResult(t *testing.T) {
	r := newRig(t)
	ep := newEndpoint(t)
	ob := openTestOutbox(t, t.TempDir(), ep.srv.URL, r.log)
	defer runOutbox(t, ob)()
	a := newAPI(t, r, func(o *Options) { o.Outbox = ob })
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.srv.URL+"/", strings.NewReader(`{"amount": `+amountFor(termsim.Slow)+`, "orderId": "gone"}`))
	req.SetBasicAuth(testUser, testPass)
	errc := make(chan error, 1)
	go func() {
		resp, err := a.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, 2*time.Second, "the payment on the terminal", func() bool { _, ok := a.drv.Current(); return ok })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the request did not fail after its context ended")
	}
	waitFor(t, 4*time.Second, "the notification", func() bool { return len(ep.received()) == 1 })
	if n := ep.received()[0]; n.body["orderId"] != "gone" || n.body["status"] != StatusSuccess {
		t.Errorf("notification %v", n.body)
	}
	if !strings.Contains(r.logBuf.String(), "client went away") {
		t.Error("the client's departure is not logged")
	}
}

func TestServerHonoursLocalPortAndStops(t *testing.T) {
	r := newRig(t)
	h, err := NewHandler(Options{Terminal: r.drv, Bus: r.bus, Login: testUser, Password: testPass, Logger: r.log})
	if err != nil {
		t.Fatal(err)
	}
	// Find a free port, then give it as LOCAL_PORT.
	probe := &Server{Port: 0, AnyPort: true, Handler: h}
	pln, err := probe.Listen()
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(interface{ AddrPort() netipAddrPort }).AddrPort().Port()
	pln.Close()
	s := NewServer(h, ConfigTxt{LocalPort: int(port)})
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	url := "http://127.0.0.1:" + itoa(int(port))
	waitForAPI(t, url)
	req, _ := http.NewRequest(http.MethodGet, url+"/stop", nil)
	req.SetBasicAuth(testUser, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stop: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("GET /stop did not stop the server")
	}
	// The port is taken: Listen says so, naming LOCAL_PORT.
	busy := &Server{Port: 0, AnyPort: true, Handler: h}
	bln, _ := busy.Listen()
	defer bln.Close()
	p2 := busy.Addr().(interface{ AddrPort() netipAddrPort }).AddrPort().Port()
	if _, err := NewServer(h, ConfigTxt{LocalPort: int(p2)}).Listen(); err == nil || !strings.Contains(err.Error(), "LOCAL_PORT") {
		t.Errorf("listen on a busy port: %v", err)
	}
}

type netipAddrPort = netip.AddrPort

func itoa(n int) string { return strconv.Itoa(n) }

func TestUnknownPaymentResolvedLaterIsForwarded(t *testing.T) {
	timers := testTimers
	timers.Result = 500 * time.Millisecond
	// The terminal never ACKs the request and answers (approved) only
	// once the API has answered Unknown: the simulator holds its late
	// answer until then (a delay raced the API's settle wait on a loaded
	// machine). The late answer resolves the payment and it is forwarded.
	r := newRigWith(t, timers, termsim.Options{Think: 30 * time.Millisecond}, nil)
	ep := newEndpoint(t)
	ob := openTestOutbox(t, t.TempDir(), ep.srv.URL, r.log)
	defer runOutbox(t, ob)()
	a := newAPI(t, r, func(o *Options) { o.Outbox = ob })
	r.sim.HoldAnswers(true)
	_, b := a.do(http.MethodPost, "/", `{"amount": `+amountFor(termsim.NoAckFrame)+`, "orderId": "late-1"}`)
	m := one(t, b)
	if m["status"] != StatusUnknown || m["notificationHipaySent"] != true {
		t.Fatalf("first answer: %s", b)
	}
	r.sim.HoldAnswers(false)
	// Generous: the answer goes out at once; the limit only bounds a hang.
	waitFor(t, 10*time.Second, "the resolution's notification", func() bool { return len(ep.received()) == 2 })
	got := ep.received()
	if got[0].body["status"] != StatusUnknown || got[1].body["status"] != StatusSuccess || got[1].body["orderId"] != "late-1" ||
		got[1].txn != m["transactionId"] || got[1].key == got[0].key {
		t.Fatalf("notifications: %+v", got)
	}
	tx, _ := a.j.Txn(context.Background(), m["transactionId"].(string))
	if tx.Status != payment.StatusApproved || !tx.HasFlag(payment.FlagLateResult) {
		t.Errorf("journal: %+v", tx)
	}
}

func TestServerReadTimeoutDoesNotCutALongPayment(t *testing.T) {
	r := newRig(t)
	h, err := NewHandler(Options{Terminal: r.drv, Bus: r.bus, Login: testUser, Password: testPass, Logger: r.log})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Port: 0, AnyPort: true, Handler: h, ReadTimeout: 200 * time.Millisecond}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr().String()+"/", strings.NewReader(`{"amount": `+amountFor(termsim.Slow)+`}`))
	req.SetBasicAuth(testUser, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var arr []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&arr); err != nil || len(arr) != 1 || arr[0]["status"] != StatusSuccess {
		t.Fatalf("slow payment through a 200 ms read timeout: %v %v", arr, err)
	}
}

func TestServerCloseStopsServe(t *testing.T) {
	r := newRig(t)
	h, err := NewHandler(Options{Terminal: r.drv, Bus: r.bus, Login: testUser, Password: testPass, Logger: r.log})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Port: 0, AnyPort: true, Handler: h}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	url := "http://" + s.Addr().String()
	waitForAPI(t, url)
	s.Close()
	// Close waits for Serve to stop: Serve logs its stop before it
	// returns, so the line is there as soon as Close returns.
	if !strings.Contains(r.logBuf.String(), "ecr api stopped") {
		t.Fatal("Close returned before Serve had stopped")
	}
	// Generous: Serve has stopped already; the limit only bounds a hang.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if _, err := http.Get(url + "/version"); err == nil {
		t.Error("the port still answers after Close")
	}
	// A Serve after Close does not start.
	ln2, err := (&Server{Port: 0, AnyPort: true, Handler: h}).Listen()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background(), ln2); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve after Close = %v, want net.ErrClosed", err)
	}
}

// waitForAPI waits until the API at url answers GET /version.
func waitForAPI(t *testing.T, url string) {
	t.Helper()
	waitFor(t, 2*time.Second, "the server", func() bool {
		req, _ := http.NewRequest(http.MethodGet, url+"/version", nil)
		req.SetBasicAuth(testUser, testPass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
