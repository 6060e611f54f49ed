package screens

import (
	"context"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
)

// What the display shows is for the customer; the detail is for the log
// and the journal.
func TestTheDisplayTalksToCustomers(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal, delay: 10 * time.Millisecond,
		outcome: func(payment.Request) (payment.Status, string) {
			return payment.StatusDeclined, "ISO8583 05: do not honour (retry with ECR)"
		}}
	down := &fakeRail{bus: bus, rail: payment.RailPOS}
	down.down.Store(true)
	_, url := startServer(t, bus, quick(Options{Methods: []Method{
		{Name: "QR_CODE", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard},
		{Name: "BNPL", Rail: down, RailName: payment.RailPOS, Mode: payment.ModeBNPL},
	}}))
	a := dialApp(t, url, "10.0.0.61")
	a.settle()
	shown := func(m Message) {
		t.Helper()
		text, _ := m.Data["errorMessage"].(string)
		if !isCustomerText(text) || strings.Contains(text, "unplugged") || strings.Contains(text, "ISO8583") {
			t.Errorf("%s %s shows %q", m.MessageType, m.Screen, text)
		}
	}
	errorNext := func() {
		t.Helper()
		shown(a.until("ERROR", func(m Message) bool { return m.MessageType == TypeError }))
	}
	// A tap under a stale id, one on the wrong screen, an unknown method.
	a.write(staleAction(1))
	errorNext()
	a.userAction("PAYMENT_METHOD", `{"selectionMethod":"QR_CODE"}`)
	errorNext()
	a.tapAmount(20, false)
	a.screen(ScreenPaymentMethod)
	a.userAction("PAYMENT_METHOD", `{"selectionMethod":"BITCOIN"}`)
	errorNext()
	// A rail that is down.
	a.userAction("PAYMENT_METHOD", `{"selectionMethod":"BNPL"}`)
	shown(a.screen(ScreenDeviceError))
	// A decline with the terminal's own words.
	a.screen(ScreenAmountSelect)
	a.tapAmount(20, false)
	a.screen(ScreenPaymentMethod)
	a.userAction("PAYMENT_METHOD", `{"selectionMethod":"QR_CODE"}`)
	a.screen(ScreenProcessing)
	shown(a.screen(ScreenFailed))
	// The detail is in the journal.
	tx, ok := txnOf(t, bus, payment.StatusDeclined)
	if !ok || !strings.Contains(tx.Result.Reason, "ISO8583 05") {
		t.Fatalf("the decline's reason is not journaled: %+v", tx)
	}
	evs, _ := bus.Journal().EventsSince(context.Background(), 0, 10000)
	var refusals []string
	for _, ev := range evs {
		if ev.Kind == payment.KindRejected {
			refusals = append(refusals, ev.Detail)
		}
	}
	if len(refusals) < 3 || !strings.Contains(strings.Join(refusals, "|"), "transactionId") {
		t.Fatalf("the refusals' detail is not journaled: %q", refusals)
	}
}
