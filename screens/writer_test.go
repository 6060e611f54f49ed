package screens

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/payment"
)

// sockBuf is the send buffer of the server's connections in these tests
// (Linux doubles it), so a display that stops reading stalls the server's
// writes once its own receive buffer is full too.
const sockBuf = 4096

// smallBuffers gives every connection it accepts a small send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(sockBuf)
	}
	return c, err
}

// bulkyRail is a fakeRail whose payments' PROCESSING screen carries 8 KiB
// of instructions (where M-Pesa's carry a paybill and an account), so a
// display that stops reading fills its socket with a few dozen RESETs
// rather than thousands.
type bulkyRail struct{ *fakeRail }

func (bulkyRail) Instructions(string) (payment.PayInstructions, bool) {
	return payment.PayInstructions{Kind: "paybill", Number: "174379", Account: strings.Repeat("A", 8<<10),
		Amount: payment.Money{Minor: 4000, Currency: "MYR"}}, true
}

// startSmallBuffers is startServer on a listener whose connections have a
// small send buffer.
func startSmallBuffers(t testing.TB, bus *payment.Bus, opts Options) (*Server, string) {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
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
	go func() { defer close(done); s.Serve(context.Background(), smallBuffers{ln}) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s, "ws://" + ln.Addr().String() + "/"
}

// dialRaw dials a display whose frames the test reads itself
// (readScreen), for as long as it wants the display to read.
func dialRaw(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	tr := &http.Transport{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.CloseNow(); tr.CloseIdleConnections() })
	return ws
}

// readScreen reads ws until a SCREEN_CHANGE, skipping DEVICE_INFO, and
// checks it is want.
func readScreen(t testing.TB, ws *websocket.Conn, want Screen) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if m.MessageType == TypeDeviceInfo {
			continue
		}
		if m.MessageType != TypeScreenChange || m.Screen != want {
			t.Fatalf("got %s %s, want SCREEN_CHANGE %s", m.MessageType, m.Screen, want)
		}
		return m
	}
}

// writeTo sends frame on ws.
func writeTo(ws *websocket.Conn, frame string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, []byte(frame))
}

func resetFrame() string {
	return fmt.Sprintf(`{"messageType":"USER_ACTION","screen":"RESET","data":{},"transactionId":"x","timestamp":%d}`, time.Now().UnixMilli())
}

// payAndStopReading takes ws through an amount and a method to
// PROCESSING; the caller then never reads ws again.
func payAndStopReading(t testing.TB, ws *websocket.Conn, amount int) {
	t.Helper()
	flow := readScreen(t, ws, ScreenAmountSelect).TransactionID
	for _, step := range []struct {
		screen, data string
		want         Screen
	}{
		{"AMOUNT_SELECT", fmt.Sprintf(`{"selectedAmount":%d,"selectionMethod":"PRESET_BUTTON"}`, amount), ScreenPaymentMethod},
		{"PAYMENT_METHOD", `{"selectionMethod":"DEBIT_CARD"}`, ScreenProcessing},
	} {
		if err := writeTo(ws, fmt.Sprintf(`{"messageType":"USER_ACTION","screen":%q,"data":%s,"transactionId":%q,"timestamp":1}`, step.screen, step.data, flow)); err != nil {
			t.Fatal(err)
		}
		readScreen(t, ws, step.want)
	}
}

// displayNamed is the session of the display with label.
func displayNamed(t testing.TB, s *Server, label string) *display {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.sessions {
		if d.device == label {
			return d
		}
	}
	t.Fatalf("no display %s", label)
	return nil
}

// queued is how many frames wait in the display's queue, and whether it
// has a connection.
func (d *display) queued() (n int, connected bool) {
	d.mu.Lock()
	c := d.conn
	d.mu.Unlock()
	if c == nil {
		return 0, false
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return len(c.out), true
}

// journaledOrGone waits for the next screen the bus carries for display
// label; it reports false, instead of failing, if the display's
// connection is gone meanwhile.
func journaledOrGone(t testing.TB, sub *payment.Subscription, d *display, label, detail string) bool {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev := <-sub.C():
			if ev.Missed > 0 {
				t.Fatalf("subscription missed %d events", ev.Missed)
			}
			if ev.Kind == payment.KindMessage && ev.Peer == label && ev.Detail == detail {
				return true
			}
		case <-tick.C:
			if _, ok := d.queued(); !ok {
				return false
			}
		case <-deadline:
			t.Fatalf("%s: no %q journaled within 10 s", label, detail)
		}
	}
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects a logger's text output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// stall pays on a display that then stops reading, and sends it RESETs
// (each answered with PROCESSING while its payment is in flight) one at a
// time, each journaled before the next is sent, until its socket is full
// and frames wait in its queue: its writer is stuck in a write. One at a
// time, so the queue is not overrun by RESETs still in the pipe.
func stall(t testing.TB, s *Server, url, label string, frames int) (*websocket.Conn, *display) {
	t.Helper()
	ws := dialRaw(t, url+"?device="+label)
	payAndStopReading(t, ws, 40)
	d := displayNamed(t, s, label)
	sub := s.bus.Subscribe(4096)
	defer sub.Close()
	for range 1000 {
		if err := writeTo(ws, resetFrame()); err != nil {
			t.Fatal(err)
		}
		// Its answer journaled, or its connection closed meanwhile (a
		// write that timed out, on a busy machine, before frames queued).
		if !journaledOrGone(t, sub, d, label, "display PROCESSING") {
			return ws, d
		}
		if n, ok := d.queued(); n >= frames || !ok {
			return ws, d
		}
	}
	t.Fatalf("%s: 1,000 frames written and its socket not full", label)
	return nil, nil
}

// A display that stops reading (its TCP window full) must not hold up the
// others: its frames wait in its own queue while the bus's outcomes reach
// every display, its own included; when its queue is full it is closed,
// with a warning saying why, and its session is kept for the reconnect.
func TestAStalledDisplayDoesNotDelayTheOthers(t *testing.T) {
	bus := newBus(t)
	// The outcomes are published by the test, in the order it chooses.
	// The stalled display pays by DEBIT_CARD, whose PROCESSING screen is
	// bulky; the other by PAY_BY_BANK.
	card := bulkyRail{&fakeRail{bus: bus, rail: payment.RailTerminal, delay: time.Hour}}
	bank := &fakeRail{bus: bus, rail: payment.RailPOS, delay: time.Hour}
	logs := &logBuffer{}
	// The write timeout is far beyond the test's waits, so it is not
	// what frees anything here.
	s, url := startSmallBuffers(t, bus, quick(Options{WriteTimeout: time.Minute, PingInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Methods: []Method{
			{Name: "DEBIT_CARD", Rail: card, RailName: payment.RailTerminal, Mode: payment.ModeCard},
			{Name: "PAY_BY_BANK", Rail: bank, RailName: payment.RailPOS, Mode: payment.ModeDuitNowQR},
		}}))

	other := dial(t, url+"?device=SN-OTHER", nil)
	other.screen(ScreenAmountSelect)
	other.pay(20, "PAY_BY_BANK")
	ws, stalled := stall(t, s, url, "SN-STALLED", 16)
	if _, ok := stalled.queued(); !ok {
		t.Fatal("the stalled display was closed while its socket filled")
	}

	txn := map[string]string{}
	for _, d := range s.Displays() {
		txn[d.Label] = d.TxnID
	}
	// The bus delivers the stalled display's outcome first: showing it
	// used to write to the full socket under the display's lock, and the
	// server's one follower of the bus waited there for the write timeout
	// before the other display's outcome.
	for _, p := range []struct {
		label string
		rail  payment.Rail
	}{{"SN-STALLED", payment.RailTerminal}, {"SN-OTHER", payment.RailPOS}} {
		if _, err := bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: p.rail,
			TxnID: txn[p.label], Status: payment.StatusApproved, Result: &payment.Result{AuthCode: "A1"}}); err != nil {
			t.Fatal(err)
		}
	}
	other.screen(ScreenSuccess)
	// The other display had its SUCCESS while the stalled one's frames
	// still waited, its own SUCCESS among them.
	if n, ok := stalled.queued(); !ok || n == 0 {
		t.Fatalf("the stalled display has %d frames queued (connected %v): it was not stalled", n, ok)
	}
	// Each display applies its outcome on its own executor, so the
	// stalled one's SUCCESS is not ordered before the other's: it must be
	// journaled well within the write timeout (a minute), which is what it
	// would wait for if the outcome waited on the full socket.
	eventually(t, "the stalled display's SUCCESS journaled while its socket is full", func() bool {
		hist, err := bus.Journal().History(context.Background(), txn["SN-STALLED"])
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range hist {
			if ev.Kind == payment.KindMessage && ev.Detail == "display SUCCESS" {
				return true
			}
		}
		return false
	})
	if _, ok := stalled.queued(); !ok {
		t.Fatal("the stalled display was closed before its queue was full")
	}

	// It goes on sending RESETs: its queue fills, and it is closed.
	eventually(t, "the stalled display closed for its full queue", func() bool {
		if _, ok := stalled.queued(); !ok {
			return true
		}
		writeTo(ws, resetFrame())
		return false
	})
	if !logs.has(`level=WARN msg="display too slow; closing its connection" component=screens display=SN-STALLED`) ||
		!logs.has(fmt.Sprintf("too slow: %d frames waiting to be written", maxQueued)) {
		t.Fatalf("no warning with the reason:\n%s", logs.String())
	}
	evs, err := bus.Journal().EventsSince(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	said := false
	for _, ev := range evs {
		said = said || (ev.Kind == payment.KindConnection && ev.Peer == "SN-STALLED" &&
			ev.Detail == fmt.Sprintf("display disconnected: too slow: %d frames waiting to be written", maxQueued))
	}
	if !said {
		t.Fatal("the journal does not say why the stalled display was disconnected")
	}
	flow := ""
	for _, d := range s.Displays() {
		if d.Label == "SN-STALLED" {
			flow = d.Flow
		}
	}
	// The session is kept: the reconnect is shown its screen, in the
	// flow it was in.
	back := dial(t, url+"?device=SN-STALLED", nil)
	if m := back.screen(ScreenAmountSelect); m.TransactionID != flow {
		t.Fatalf("reconnected in flow %q, want the session's %q", m.TransactionID, flow)
	}
	if n := len(s.Displays()); n != 2 {
		t.Fatalf("%d displays, want the same 2", n)
	}
	other.screen(ScreenPrintTicket)
}

// A write that does not finish within WriteTimeout closes the connection
// (before the queue is full); the session waits for the reconnect.
func TestAWriteTimeoutClosesTheConnection(t *testing.T) {
	bus := newBus(t)
	rail := bulkyRail{&fakeRail{bus: bus, rail: payment.RailTerminal, delay: time.Hour}}
	logs := &logBuffer{}
	s, url := startSmallBuffers(t, bus, quick(Options{WriteTimeout: time.Second, PingInterval: time.Hour,
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))

	_, stalled := stall(t, s, url, "SN-SLOW", 8)
	eventually(t, "the stalled display closed for its write timeout", func() bool {
		_, ok := stalled.queued()
		return !ok
	})
	// The writer logs its timeout after it shut the queue, while the
	// reader detaches the session: the line may come just after the
	// detach (it did, 1 run in 3, on a busy machine), so wait for it.
	eventually(t, "the write's timeout in the log", func() bool {
		return logs.has(`level=WARN msg="display write timed out; closing" component=screens display=SN-SLOW`)
	})
	if logs.has("too slow") {
		t.Fatalf("want the write's failure in the log, and no full queue:\n%s", logs.String())
	}
	// Its payment is still in flight: the reconnect is shown PROCESSING.
	back := dial(t, url+"?device=SN-SLOW", nil)
	back.screen(ScreenProcessing)
}

// Frames reach a display in the order they were journaled, which is the
// order they were queued in: here from two goroutines at once (the
// display's RESETs through its reader, the operator's resets through
// ResetDisplay), with refusals' ERRORs, not journaled, among them.
func TestFramesKeepTheirOrder(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	s, url := startServer(t, bus, quick(Options{PingInterval: time.Hour,
		Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url+"?device=SN-ORDER", nil)
	c.screen(ScreenAmountSelect)
	id := s.Displays()[0].ID

	const n, garbage = 30, 10
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := writeTo(c.ws, resetFrame()); err != nil {
				sent <- err
				return
			}
			if i%(n/garbage) == 0 {
				if err := writeTo(c.ws, "garbage"); err != nil {
					sent <- err
					return
				}
			}
		}
		sent <- nil
	}()
	for range n {
		if err := s.ResetDisplay(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}

	// The screens on the wire: the first AMOUNT_SELECT was read above.
	var wire [][]byte
	flow := c.flow
	refused := 0
	deadline := time.After(10 * time.Second)
	for len(wire) < 2*n || refused < garbage {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatalf("connection closed: %v", <-c.closed)
			}
			raw := <-c.raws
			switch m.MessageType {
			case TypeScreenChange:
				wire = append(wire, raw)
				flow = m.TransactionID
			case TypeError:
				// An ERROR carries the flow of the screen before it.
				if m.TransactionID != flow {
					t.Fatalf("ERROR of flow %s after the screen of flow %s: out of order", m.TransactionID, flow)
				}
				refused++
			}
		case <-deadline:
			t.Fatalf("%d screens and %d ERRORs within 10 s, want %d and %d", len(wire), refused, 2*n, garbage)
		}
	}

	evs, err := bus.Journal().EventsSince(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var book [][]byte
	for _, ev := range evs {
		if ev.Kind == payment.KindMessage && ev.Peer == "SN-ORDER" {
			book = append(book, ev.Raw)
		}
	}
	if len(book) != 2*n+1 {
		t.Fatalf("%d screens journaled, want %d", len(book), 2*n+1)
	}
	book = book[1:] // the first AMOUNT_SELECT
	for i := range book {
		if !bytes.Equal(book[i], wire[i]) {
			t.Fatalf("screen %d on the wire is\n%s\nthe journal's is\n%s", i, wire[i], book[i])
		}
	}
}
