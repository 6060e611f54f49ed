package screens

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/payment"
)

// fakeRail is a payment.Starter that journals real events on the bus: a
// created transition, then (after delay) the outcome chosen by outcome.
type fakeRail struct {
	bus     *payment.Bus
	rail    payment.Rail
	delay   time.Duration
	outcome func(payment.Request) (payment.Status, string)
	down    atomic.Bool
	n       atomic.Int64
	mu      sync.Mutex
	started []payment.Request
}

func (f *fakeRail) Start(ctx context.Context, req payment.Request) (string, error) {
	if f.down.Load() {
		return "", fmt.Errorf("fake rail: %w", payment.ErrUnavailable)
	}
	id := fmt.Sprintf("%s%04d", strings.ToUpper(string(f.rail[:1])), f.n.Add(1))
	f.mu.Lock()
	f.started = append(f.started, req)
	f.mu.Unlock()
	if _, err := f.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: f.rail, TxnID: id,
		Status: payment.StatusCreated, Mode: req.Mode, Amount: req.Amount, Peer: "fake"}); err != nil {
		return "", err
	}
	st, reason := payment.StatusApproved, ""
	if f.outcome != nil {
		st, reason = f.outcome(req)
	}
	finish := func() {
		f.bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: f.rail, TxnID: id,
			Status: st, Result: &payment.Result{Reason: reason, AuthCode: "A1"}, Detail: "fake outcome"})
	}
	if f.delay == 0 {
		finish() // before Start returns: the server must still see it
	} else {
		time.AfterFunc(f.delay, finish)
	}
	return id, nil
}

func (f *fakeRail) Cancel(id string) error {
	_, err := f.bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: f.rail, TxnID: id,
		Status: payment.StatusCancelled, Detail: "fake cancel"})
	return err
}

func (f *fakeRail) Health() payment.Health {
	if f.down.Load() {
		return payment.Health{Up: false, Detail: "unplugged"}
	}
	return payment.Health{Up: true, Detail: "ready"}
}

// newBus opens a real journal in a temporary directory.
func newBus(t testing.TB) *payment.Bus {
	t.Helper()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { bus.Close(); j.Close() })
	return bus
}

// startServer runs a screens server on loopback with opts (Addr and a
// silent Logger filled in) and returns it and its ws:// address.
func startServer(t testing.TB, bus *payment.Bus, opts Options) (*Server, string) {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := NewServer(bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(context.Background(), ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s, "ws://" + ln.Addr().String() + "/"
}

// client is a display as a test drives it.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	// flow is the last transactionId the server sent, copied as the app
	// copies it.
	flow    string
	session string
	// infoAsked counts the server's INFO_SCREEN requests.
	infoAsked int
	msgs      chan Message
	raws      chan []byte
	closed    chan error
}

func dial(t testing.TB, url string, h http.Header) *client {
	t.Helper()
	return dialWith(t, url, &websocket.DialOptions{HTTPHeader: h})
}

// dialFrom dials from the loopback address ip (127.0.0.2, …): a tablet
// whose address changed.
func dialFrom(t testing.TB, url, ip string) *client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return dialWith(t, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
}

func dialWith(t testing.TB, url string, opts *websocket.DialOptions) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &client{t: t, ws: ws, msgs: make(chan Message, 64), raws: make(chan []byte, 64), closed: make(chan error, 1)}
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				c.closed <- err
				close(c.msgs)
				return
			}
			var m Message
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("server sent invalid JSON %q: %v", b, err)
			}
			c.raws <- b
			c.msgs <- m
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	return c
}

// next returns the next message, failing after 5 s.
func (c *client) next() Message {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatalf("connection closed: %v", <-c.closed)
		}
		raw := <-c.raws
		checkTyped(c.t, raw)
		if m.Screen == ScreenInfo {
			// The app answers INFO_SCREEN by itself and keeps its
			// transactionId; so do the tests' displays.
			if m.Data["requestType"] != "DEVICE_INFO" || !strings.HasPrefix(m.TransactionID, "info-") {
				c.t.Fatalf("INFO_SCREEN %+v", m)
			}
			c.infoAsked++
			return c.next()
		}
		if m.TransactionID != "" {
			c.flow = m.TransactionID
		}
		if m.MessageType == TypeDeviceInfo {
			if id, ok := m.Data["sessionId"].(string); ok {
				c.session = id
			}
		}
		return m
	case <-time.After(5 * time.Second):
		c.t.Fatalf("no message within 5 s")
	}
	return Message{}
}

// screen reads messages until a SCREEN_CHANGE or ERROR, skipping
// DEVICE_INFO, and checks it is want.
func (c *client) screen(want Screen) Message {
	c.t.Helper()
	for {
		m := c.next()
		if m.MessageType == TypeDeviceInfo {
			continue
		}
		if m.MessageType != TypeScreenChange || m.Screen != want {
			c.t.Fatalf("got %s %s %v, want SCREEN_CHANGE %s", m.MessageType, m.Screen, m.Data, want)
		}
		return m
	}
}

// errorMsg reads the next message (skipping DEVICE_INFO) and checks it
// is an ERROR with code.
func (c *client) errorMsg(code string) Message {
	c.t.Helper()
	for {
		m := c.next()
		if m.MessageType == TypeDeviceInfo {
			continue
		}
		if m.MessageType != TypeError || m.Data["errorCode"] != code {
			c.t.Fatalf("got %s %s %v, want ERROR %s", m.MessageType, m.Screen, m.Data, code)
		}
		return m
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// action sends a USER_ACTION with the flow's transactionId.
func (c *client) action(screen, data string) {
	c.t.Helper()
	c.send(fmt.Sprintf(`{"messageType":"USER_ACTION","screen":%q,"data":%s,"transactionId":%q,"timestamp":%d}`,
		screen, data, c.flow, time.Now().UnixMilli()))
}

// pay chooses the preset amount and method and checks the screens that
// answer: PAYMENT_METHOD, then PROCESSING.
func (c *client) pay(amount int, method string) {
	c.t.Helper()
	c.action("AMOUNT_SELECT", fmt.Sprintf(`{"selectedAmount":%d,"selectionMethod":"PRESET_BUTTON"}`, amount))
	c.screen(ScreenPaymentMethod)
	c.action("PAYMENT_METHOD", fmt.Sprintf(`{"selectionMethod":%q}`, method))
	c.screen(ScreenProcessing)
}

func (c *client) reset() {
	c.t.Helper()
	c.send(fmt.Sprintf(`{"messageType":"USER_ACTION","screen":"RESET","data":{},"transactionId":%q,"timestamp":%d}`,
		"8d1f7a3c-0d55-4f0e-9a57-3f0b0c9d8e21", time.Now().UnixMilli()))
}

// checkTyped checks a server frame is typed as the app's Moshi classes
// parse it: every envelope field present, screen and transactionId
// strings, timestamp and the Int fields whole numbers.
func checkTyped(t testing.TB, raw []byte) {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("frame %s: %v", raw, err)
	}
	for _, k := range []string{"messageType", "screen", "data", "transactionId", "timestamp"} {
		if _, ok := env[k]; !ok {
			t.Fatalf("frame %s lacks %s", raw, k)
		}
	}
	var s string
	if json.Unmarshal(env["screen"], &s) != nil || json.Unmarshal(env["transactionId"], &s) != nil || json.Unmarshal(env["messageType"], &s) != nil {
		t.Fatalf("frame %s: messageType, screen and transactionId must be strings", raw)
	}
	var ts int64
	if err := json.Unmarshal(env["timestamp"], &ts); err != nil {
		t.Fatalf("frame %s: timestamp is not a Long: %v", raw, err)
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(env["data"], &data); err != nil {
		t.Fatalf("frame %s: data is not an object", raw)
	}
	for _, k := range []string{"selectedAmount", "limit", "remaining", "minAmount", "maxAmount", "minTransactionLimit", "maxTransactionLimit"} {
		if v, ok := data[k]; ok {
			var n int64
			if err := json.Unmarshal(v, &n); err != nil {
				t.Fatalf("frame %s: %s is not an Int: %v", raw, k, err)
			}
		}
	}
	if v, ok := data["amounts"]; ok {
		var ns []int64
		if err := json.Unmarshal(v, &ns); err != nil {
			t.Fatalf("frame %s: amounts is not a List<Int>: %v", raw, err)
		}
	}
}

// quick are short timings for tests.
func quick(o Options) Options {
	if o.StepDelay == 0 {
		o.StepDelay = 20 * time.Millisecond
	}
	if o.ResultHold == 0 {
		o.ResultHold = 50 * time.Millisecond
	}
	return o
}
