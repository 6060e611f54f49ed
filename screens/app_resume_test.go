package screens

import (
	"fmt"
	"testing"
	"time"

	"paydesk/payment"
)

// firstScreen is the first SCREEN_CHANGE of a connection (INFO_SCREEN,
// which changes nothing on the app, aside).
func (a *appClient) firstScreen() Message {
	a.t.Helper()
	return a.until("a screen", func(m Message) bool { return m.MessageType == TypeScreenChange && m.Screen != ScreenInfo })
}

// waitDetached waits until the server has noticed the display left.
func waitDetached(t testing.TB, s *Server) {
	t.Helper()
	waitFor(t, func() bool {
		for _, d := range s.Displays() {
			if !d.Connected {
				return true
			}
		}
		return false
	})
}

// The app reconnects to the bare URL and reports its serial as
// "unknown": it is recognised by what it does send, and its first screen
// is where it was, not a fresh AMOUNT_SELECT (on which it clears its
// pending-ticket marker).
func TestTheAppResumesAfterAReconnect(t *testing.T) {
	t.Run("a payment on its own terminal: PROCESSING first, then its SUCCESS", func(t *testing.T) {
		bus := newBus(t)
		rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
		s, url := startServer(t, bus, quick(Options{Currency: "GBP", Methods: cardMethods(rail)}))
		a := dialApp(t, url, "10.0.0.41")
		a.settle()
		a.tapAmount(40, false)
		a.screen(ScreenPaymentMethod)
		flow := a.id()
		a.cardCheck(flow, 40)
		if m := a.limitCheck(); m.Screen != "APPROVED" {
			t.Fatalf("card check: %+v", m)
		}
		a.ws.CloseNow() // Wi-Fi lost mid-sale
		waitDetached(t, s)
		b := dialApp(t, url, "10.0.0.41")
		if m := b.firstScreen(); m.Screen != ScreenProcessing || m.TransactionID != flow {
			t.Fatalf("first screen after the reconnect: %s %s, want PROCESSING of %s", m.Screen, m.TransactionID, flow)
		}
		if err := b.paymentResult(flow, true); err != nil {
			t.Fatal(err)
		}
		b.screen(ScreenSuccess)
		b.screen(ScreenPrintTicket)
		if _, ok := txnOf(t, bus, payment.StatusApproved); !ok {
			t.Fatal("the SUCCESS is not journaled against the payment")
		}
	})
	t.Run("a payment finished while away: its SUCCESS and ticket screens", func(t *testing.T) {
		bus := newBus(t)
		rail := &fakeRail{bus: bus, rail: payment.RailMPesa, delay: 200 * time.Millisecond}
		s, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "QR_CODE", Rail: rail, RailName: payment.RailMPesa, Mode: payment.ModeC2B}}}))
		a := dialApp(t, url, "10.0.0.42")
		a.settle()
		a.tapAmount(40, false)
		a.screen(ScreenPaymentMethod)
		a.userAction("PAYMENT_METHOD", `{"selectionMethod":"QR_CODE"}`) // paid on the server's side: the app sends it
		a.screen(ScreenProcessing)
		a.ws.CloseNow()
		waitDetached(t, s)
		waitFor(t, func() bool { _, ok := txnOf(t, bus, payment.StatusApproved); return ok })
		b := dialApp(t, url, "10.0.0.42")
		if m := b.firstScreen(); m.Screen != ScreenSuccess {
			t.Fatalf("first screen after the reconnect: %s, want the payment's SUCCESS", m.Screen)
		}
		b.screen(ScreenPrintTicket)
	})
	t.Run("seen at another address: by the deviceIpAddress it reports", func(t *testing.T) {
		bus := newBus(t)
		rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
		s, url := startServer(t, bus, quick(Options{Currency: "GBP", Methods: cardMethods(rail)}))
		a := dialApp(t, url, "10.0.0.44")
		a.settle()
		a.tapAmount(20, false)
		a.screen(ScreenPaymentMethod)
		flow := a.id()
		a.cardCheck(flow, 20)
		a.limitCheck()
		a.ws.CloseNow()
		waitDetached(t, s)
		b := dialAppFrom(t, url, "10.0.0.44", "127.0.0.4")
		b.until("PROCESSING of its flow", func(m Message) bool {
			return m.MessageType == TypeScreenChange && m.Screen == ScreenProcessing && m.TransactionID == flow
		})
		if len(s.Displays()) != 1 {
			t.Fatalf("displays: %+v", s.Displays())
		}
	})
	t.Run("a flow id is matched to its flow whatever connection brings it", func(t *testing.T) {
		bus := newBus(t)
		rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
		_, url := startServer(t, bus, quick(Options{Currency: "GBP", Methods: cardMethods(rail)}))
		// An app the server cannot place (it does not answer INFO_SCREEN)
		// whose connection died unnoticed.
		old := dial(t, url, nil)
		old.screen(ScreenAmountSelect)
		old.action("AMOUNT_SELECT", `{"selectedAmount":60,"selectionMethod":"PRESET_BUTTON"}`)
		old.screen(ScreenPaymentMethod)
		flow := old.flow
		old.send(fmt.Sprintf(`{"messageType":"CARD_CHECK_RESULT","screen":"PROCESSING","data":{"cardToken":"t","selectedAmount":60},"transactionId":%q,"timestamp":1}`, flow))
		if m := old.next(); m.MessageType != TypeLimitCheckResult || m.Screen != "APPROVED" {
			t.Fatalf("card check: %+v", m)
		}
		b := dialApp(t, url, "10.0.0.43")
		b.settle()
		if err := b.paymentResult(flow, true); err != nil {
			t.Fatal(err)
		}
		b.until("SUCCESS", func(m Message) bool {
			if m.MessageType == TypeError {
				t.Fatalf("PAYMENT_RESULT of a flow paydesk issued refused: %v", m.Data)
			}
			return m.Screen == ScreenSuccess
		})
		if tx, ok := txnOf(t, bus, payment.StatusApproved); !ok || tx.Amount.Minor != 6000 {
			t.Fatalf("the SUCCESS is not journaled against the payment: %+v", tx)
		}
		select {
		case <-old.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the dead connection was not replaced")
		}
	})
}
