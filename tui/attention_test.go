package tui

import (
	"context"
	"strings"
	"testing"

	"paydesk/payment"
)

// An M-Pesa approval that needs attention (a shilling short) shows the
// flag and what was paid, not a plain tick.
func TestAttentionShown(t *testing.T) {
	bus := testBus(t)
	mp := &scriptRail{bus: bus, rail: payment.RailMPesa, health: payment.Health{Up: true, Detail: "ready"}, sent: "prompt sent"}
	tm := startWithRails(t, testRails{MPesa: mp}, bus)
	typeText(tm, "9")
	waitText(t, tm, "Customer's phone")
	typeText(tm, "0712 345 678")
	enter(tm)
	waitText(t, tm, "Amount (KES)")
	typeText(tm, "150")
	enter(tm)
	waitText(t, tm, "peer accepted")
	paid := payment.Money{Minor: 14900, Currency: "KES"}
	if _, err := bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: payment.RailMPesa, TxnID: "TXN-mpesa",
		Status: payment.StatusApproved, Detail: "paid", Result: &payment.Result{RemoteID: "RCPT0001", Paid: &paid, Flags: []string{"underpaid"}}}); err != nil {
		t.Fatal(err)
	}
	waitText(t, tm, "RESULT TXN-mpesa approved 150.00 pos_txn=RCPT0001 paid=149.00 flags=underpaid")
	view := final(t, tm)
	for _, s := range []string{"! APPROVED, CHECK", "Paid", "KES 149.00", "Check", "underpaid"} {
		if !strings.Contains(view, s) {
			t.Errorf("result view lacks %q:\n%s", s, view)
		}
	}
	if strings.Contains(view, "✓") {
		t.Errorf("an underpaid payment shows a plain tick:\n%s", view)
	}
}
