package screens

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
)

// staleAction is a well-formed USER_ACTION under an id the server never
// issued for the screen shown.
func staleAction(i int) string {
	return fmt.Sprintf(`{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":20,"selectionMethod":"PRESET_BUTTON"},"transactionId":"stale-%d","timestamp":1}`, i)
}

// rejections counts the refusals journaled.
func rejections(t testing.TB, bus *payment.Bus) int {
	t.Helper()
	evs, err := bus.Journal().EventsSince(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Kind == payment.KindRejected {
			n++
		}
	}
	return n
}

// Every refusal counts against the connection's allowance, not only
// unparseable frames: well-formed messages under a stale id, as fast as
// a client can send them, close it, and the journal gets a bounded number
// of rows.
func TestEveryRefusalCountsAgainstTheCap(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Methods: cardMethods(rail)}))
	good := dial(t, url, nil)
	good.screen(ScreenAmountSelect)
	a := dialApp(t, url, "10.0.0.51")
	a.settle()
	for i := range 500 {
		if a.write(staleAction(i)) != nil {
			break
		}
	}
	errs := 0
	for {
		select {
		case m, ok := <-a.msgs:
			if !ok {
				goto closed
			}
			if m.MessageType == TypeError {
				errs++
			}
			continue
		case <-time.After(10 * time.Second):
			t.Fatalf("500 refused messages did not close the connection (%d ERRORs)", errs)
		}
	}
closed:
	if errs > maxRefusals {
		t.Errorf("%d ERRORs sent before the close, want at most %d", errs, maxRefusals)
	}
	n := rejections(t, bus)
	if n > maxRefusals+1 {
		t.Errorf("%d refusals journaled, want at most %d", n, maxRefusals+1)
	}
	t.Logf("500 stale-id messages: %d ERRORs, %d refusals journaled, then the connection closed", errs, n)
	good.reset()
	good.screen(ScreenAmountSelect)
}

// A flood from many connections at once is journaled at a bounded rate.
func TestRefusalsAreJournaledAtABoundedRate(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Methods: cardMethods(rail)}))
	const conns = 10
	start := time.Now()
	for c := range conns {
		a := dialApp(t, url, fmt.Sprintf("10.0.1.%d", c))
		a.settle()
		for i := range maxRefusals {
			a.write(staleAction(i))
		}
		a.until("the last ERROR", func(m Message) bool {
			return m.MessageType == TypeError && m.Data["errorCode"] == CodeUnknownTransaction
		})
	}
	took := time.Since(start)
	// The bucket: a burst, then a steady rate; the flood took 'took'.
	allowed := rejectBurst + int(took.Seconds()*rejectRate) + 1
	if n := rejections(t, bus); n > allowed {
		t.Errorf("%d refusals journaled in %s from %d connections, want at most %d", n, took, conns, allowed)
	}
	n := rejections(t, bus)
	if n == 0 {
		t.Error("no refusal journaled")
	}
	t.Logf("%d refusals from %d connections in %s: %d journaled (bound %d)", conns*maxRefusals, conns, took.Round(time.Millisecond), n, allowed)
}

// The app never answers a server's close frame, and its reader stops
// on it: paydesk drops the TCP connection of the app without a close
// frame, so its reader notices at once and it reconnects.
func TestTheAppNoticesAClose(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	s, url := startServer(t, bus, quick(Options{Methods: cardMethods(rail)}))
	a := dialRawApp(t, url, "10.0.0.52")
	a.until("AMOUNT_SELECT", func(f string) bool { return strings.Contains(f, `"AMOUNT_SELECT"`) })
	waitApp(t, s) // its address reported: the server knows it is the app
	for i := 0; i <= maxRefusals; i++ {
		a.writeText("garbage")
	}
	t0 := time.Now()
	// Generous: the close is at once; the reader sees it within a second
	// even on a busy machine.
	if how := a.ended(4 * time.Second); !strings.HasPrefix(how, "eof") {
		t.Fatalf("the app's reader: %s, want the connection dropped (it is deaf after a close frame)", how)
	}
	t.Logf("the app's reader saw its connection end %s after its 21st refused frame", time.Since(t0).Round(time.Millisecond))
	b := dialRawApp(t, url, "10.0.0.52")
	b.until("a screen", func(f string) bool {
		return strings.Contains(f, `"SCREEN_CHANGE"`) && !strings.Contains(f, "INFO_SCREEN")
	})
	waitApp(t, s)
	s.Close()
	if how := b.ended(4 * time.Second); !strings.HasPrefix(how, "eof") {
		t.Fatalf("paydesk stopping, the app's reader: %s, want the connection dropped", how)
	}
}

// A client that does not answer the close frame (the app when paydesk
// cannot tell it is the app) has its TCP connection dropped promptly,
// not after the library's 5 s wait for the answer.
func TestAnUnansweredCloseDropsTheConnection(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Methods: cardMethods(rail)}))
	a := dialRawApp(t, url, "") // reports no address
	a.until("AMOUNT_SELECT", func(f string) bool { return strings.Contains(f, `"AMOUNT_SELECT"`) })
	for i := 0; i <= maxRefusals; i++ {
		a.writeText("garbage")
	}
	if how := a.ended(4 * time.Second); how != "close" {
		t.Fatalf("reader: %s, want a close frame", how)
	}
	t0 := time.Now()
	// closeWait is 1 s; 2.5 s more is margin for a busy machine, still
	// short of the 5 s the library would wait.
	if !a.dropped(3500 * time.Millisecond) {
		t.Fatal("the TCP connection is still open 3.5 s after the close frame")
	}
	t.Logf("TCP connection dropped %s after the unanswered close frame", time.Since(t0).Round(time.Millisecond))
}

// waitApp waits until a connected display is known to be the app (it
// reported its address).
func waitApp(t testing.TB, s *Server) {
	t.Helper()
	waitFor(t, func() bool {
		s.mu.Lock()
		all := make([]*display, 0, len(s.sessions))
		for _, d := range s.sessions {
			all = append(all, d)
		}
		s.mu.Unlock()
		for _, d := range all {
			d.mu.Lock()
			app := d.app && d.conn != nil
			d.mu.Unlock()
			if app {
				return true
			}
		}
		return false
	})
}
