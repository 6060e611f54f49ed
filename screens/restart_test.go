package screens

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"paydesk/payment"
)

// openBusAt opens the journal at path (recovering it, as paydesk's start
// does) on a bus the caller closes.
func openBusAt(t testing.TB, path string) (*payment.Bus, func()) {
	t.Helper()
	j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, slog.New(slog.DiscardHandler))
	return bus, func() { bus.Close(); j.Close() }
}

// paydesk restarts while the customer pays on the app's own terminal:
// the payment, journaled from the tap, becomes unknown at the start; the
// app reconnects to the new process and its reports, under the flow's id
// from before, land on that same payment.
func TestTheAppsReportsAfterARestartOfPaydesk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	methods := []Method{{Name: "DEBIT_CARD", RailName: payment.RailScreen, Mode: payment.ModeCard}}
	bus, closeBus := openBusAt(t, path)
	s, url := startServer(t, bus, quick(Options{Currency: "GBP", Methods: methods}))
	a := dialApp(t, url, "10.0.0.71")
	a.settle()
	a.tapAmount(60, false)
	a.screen(ScreenPaymentMethod)
	flow := a.id()
	a.userAction("PAYMENT_METHOD", `{"selectionMethod":"DEBIT_CARD"}`)
	a.screen(ScreenProcessing)
	tx, ok := txnOf(t, bus, payment.StatusSent)
	if !ok {
		t.Fatal("the tap did not journal the payment")
	}
	s.Close()
	closeBus()

	bus, closeBus = openBusAt(t, path)
	defer closeBus()
	if got, _ := bus.Journal().Txn(context.Background(), tx.ID); got.Status != payment.StatusUnknown {
		t.Fatalf("after the restart the payment is %s, want unknown", got.Status)
	}
	_, url = startServer(t, bus, quick(Options{Currency: "GBP", Methods: methods}))
	b := dialApp(t, url, "10.0.0.71")
	b.settle()
	// Its card check (on NNSmart, after the sale) under the old flow.
	b.cardCheck(flow, 60)
	if m := b.limitCheck(); m.Screen != "APPROVED" {
		t.Fatalf("card check after the restart: %+v", m)
	}
	if err := b.paymentResult(flow, true); err != nil {
		t.Fatal(err)
	}
	b.screen(ScreenSuccess)
	b.screen(ScreenPrintTicket)
	if got, _ := bus.Journal().Txn(context.Background(), tx.ID); got.Status != payment.StatusApproved {
		t.Fatalf("the payment of before the restart is %s, want approved", got.Status)
	}
	txns, _ := bus.Journal().Recent(context.Background(), 10)
	if len(txns) != 1 {
		t.Fatalf("%d payments journaled for one sale: %+v", len(txns), txns)
	}
}
