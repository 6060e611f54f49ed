package screens

import (
	"context"
	"testing"
	"time"

	"paydesk/payment"
)

// limitCheck reads until the LIMIT_CHECK_RESULT, failing on any ERROR or
// FAILED before it (the customer is at the app's terminal).
func (a *appClient) limitCheck() Message {
	a.t.Helper()
	for {
		m := a.next()
		if m.MessageType == TypeError || m.Screen == ScreenFailed {
			a.t.Fatalf("while the customer pays on the app's terminal: %s %s %v", m.MessageType, m.Screen, m.Data)
		}
		if m.MessageType == TypeLimitCheckResult {
			return m
		}
	}
}

// txnOf is the journaled payment with the given status, if one.
func txnOf(t testing.TB, bus *payment.Bus, st payment.Status) (payment.Txn, bool) {
	t.Helper()
	txns, err := bus.Journal().Recent(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range txns {
		if tx.Status == st {
			return tx, true
		}
	}
	return payment.Txn{}, false
}

// silence waits, as the customer at the app's terminal does, past d: the
// app sends nothing meanwhile. (A wait on the clock is the scenario
// itself, not a guess at when something happened.)
func silence(d time.Duration) { time.Sleep(d) }

// The app pays DEBIT_CARD on its own terminal without a word to the
// server until CARD_CHECK_RESULT (up to 60 s of card check on Integra, a
// whole sale of up to 120 s on NNSmart): the method screen's idle timeout
// must not fail the flow meanwhile.
func TestNoIdleTimeoutWhileTheCustomerIsAtTheAppsTerminal(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	idle := 150 * time.Millisecond
	_, url := startServer(t, bus, quick(Options{Currency: "GBP", IdleTimeout: idle, LocalTimeout: 10 * time.Second, Methods: cardMethods(rail)}))
	a := dialApp(t, url, "10.0.0.31")
	a.settle()
	a.tapAmount(60, false)
	scr := a.screen(ScreenPaymentMethod)
	// DEBIT_CARD: the app shows PROCESSING itself and reads the card.
	silence(4 * idle)
	a.cardCheck(a.id(), 60)
	if m := a.limitCheck(); m.Screen != "APPROVED" || m.TransactionID != scr.TransactionID {
		t.Fatalf("card check answered %+v", m)
	}
	if tx, ok := txnOf(t, bus, payment.StatusSent); !ok || tx.Amount.Minor != 6000 {
		t.Fatalf("the approved card check is not journaled as a payment in flight: %+v", tx)
	}
	if err := a.paymentResult(scr.TransactionID, true); err != nil {
		t.Fatal(err)
	}
	a.screen(ScreenSuccess)
	if tx, ok := txnOf(t, bus, payment.StatusApproved); !ok || tx.Rail != payment.RailScreen {
		t.Fatalf("approved payment: %+v", tx)
	}
	rail.mu.Lock()
	defer rail.mu.Unlock()
	if len(rail.started) != 0 {
		t.Fatal("the server started a payment of its own besides the app's")
	}
}

// A method paid on the display's own terminal (DEBIT_CARD=display): the
// tap journals the payment as started there and starts its clock; a
// payment never reported becomes unknown, and a late report resolves it.
func TestATapOnTheDisplaysTerminalStartsThePaymentsClock(t *testing.T) {
	bus := newBus(t)
	_, url := startServer(t, bus, quick(Options{Currency: "GBP", IdleTimeout: 100 * time.Millisecond, LocalTimeout: 400 * time.Millisecond,
		Methods: []Method{{Name: "DEBIT_CARD", RailName: payment.RailScreen, Mode: payment.ModeCard}}}))
	a := dialApp(t, url, "10.0.0.32")
	a.settle()
	a.tapAmount(40, false)
	a.screen(ScreenPaymentMethod)
	flow := a.id()
	a.userAction("PAYMENT_METHOD", `{"selectionMethod":"DEBIT_CARD"}`) // an app that says so (v1.x)
	a.screen(ScreenProcessing)
	tx, ok := txnOf(t, bus, payment.StatusSent)
	if !ok || tx.Amount.Minor != 4000 || tx.Rail != payment.RailScreen {
		t.Fatalf("the tap did not journal the payment as started on the display's terminal: %+v", tx)
	}
	// Nothing more from the app: the payment becomes unknown, not lost.
	if m := a.screen(ScreenFailed); m.Data["errorCode"] != "OUTCOME_UNKNOWN" {
		t.Fatalf("unreported payment: %v", m.Data)
	}
	if got, _ := bus.Journal().Txn(context.Background(), tx.ID); got.Status != payment.StatusUnknown {
		t.Fatalf("unreported payment is %s", got.Status)
	}
	// Its late SUCCESS is journaled against it and shown.
	a.screen(ScreenAmountSelect)
	if err := a.paymentResult(flow, true); err != nil {
		t.Fatal(err)
	}
	a.screen(ScreenSuccess)
	a.screen(ScreenPrintTicket)
	if got, _ := bus.Journal().Txn(context.Background(), tx.ID); got.Status != payment.StatusApproved {
		t.Fatalf("late SUCCESS left the payment %s", got.Status)
	}
}

// A CARD_CHECK_RESULT for a flow the server issued, arriving after that
// flow timed out, is never refused without a journaled payment.
func TestALateCardCheckIsJournaledNotRefused(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Currency: "GBP", IdleTimeout: 50 * time.Millisecond, LocalTimeout: 100 * time.Millisecond, Methods: cardMethods(rail)}))
	a := dialApp(t, url, "10.0.0.33")
	a.settle()
	a.tapAmount(20, false)
	old := a.screen(ScreenPaymentMethod).TransactionID
	// Longer than the app's longest path: the flow ends.
	a.until("TIMEOUT", func(m Message) bool { return m.MessageType == TypeError && m.Data["errorCode"] == CodeTimeout })
	a.screen(ScreenAmountSelect)
	a.cardCheck(old, 20)
	m := a.until("LIMIT_CHECK_RESULT", func(m Message) bool { return m.MessageType == TypeLimitCheckResult || m.MessageType == TypeError })
	if m.MessageType != TypeLimitCheckResult {
		t.Fatalf("late card check refused: %+v", m)
	}
	if _, ok := txnOf(t, bus, payment.StatusSent); !ok {
		t.Fatal("the late card check is not journaled")
	}
	if err := a.paymentResult(old, true); err != nil {
		t.Fatal(err)
	}
	a.screen(ScreenSuccess)
	if _, ok := txnOf(t, bus, payment.StatusApproved); !ok {
		t.Fatal("the late payment's SUCCESS is not journaled")
	}
}

// A display that keeps reconnecting does not keep its payment's clock
// from running out: the payment becomes unknown LocalTimeout after its
// card check, not LocalTimeout after the last reconnect.
func TestReconnectsDoNotRestartThePaymentsClock(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	s, url := startServer(t, bus, quick(Options{Currency: "GBP", LocalTimeout: 500 * time.Millisecond, Methods: cardMethods(rail)}))
	a := dialApp(t, url, "10.0.0.34")
	a.settle()
	a.tapAmount(20, false)
	a.screen(ScreenPaymentMethod)
	a.cardCheck(a.id(), 20)
	a.limitCheck()
	tx, _ := txnOf(t, bus, payment.StatusSent)
	// Reconnect every 250 ms for 2.5 s: five times the clock.
	end := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(end) {
		a.ws.CloseNow()
		waitDetached(t, s)
		a = dialApp(t, url, "10.0.0.34")
		a.firstScreen()
		silence(250 * time.Millisecond)
	}
	if got, _ := bus.Journal().Txn(context.Background(), tx.ID); got.Status != payment.StatusUnknown {
		t.Fatalf("2.5 s after a card check with a 500 ms clock, reconnecting, the payment is %s, want unknown", got.Status)
	}
}

// A card check refused twice in one flow (the customer tries another
// card) journals two payments, both declined: none left half-recorded.
func TestARefusedCardCheckTwiceInAFlow(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Currency: "GBP", DailyLimit: 50, Methods: cardMethods(rail)}))
	a := dialApp(t, url, "10.0.0.35")
	a.settle()
	a.tapAmount(40, false)
	a.screen(ScreenPaymentMethod)
	flow := a.id()
	for range 2 {
		a.cardCheck(flow, 60) // 60 with the app's fee: over the limit
		if m := a.limitCheck(); m.Screen != ScreenLimitError {
			t.Fatalf("card check over the limit: %+v", m)
		}
	}
	txns, _ := bus.Journal().Recent(context.Background(), 10)
	if len(txns) != 2 || txns[0].Status != payment.StatusDeclined || txns[1].Status != payment.StatusDeclined {
		t.Fatalf("journal: %+v", txns)
	}
}
