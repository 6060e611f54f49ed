package mpesa_test

import (
	"testing"

	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// The sandbox's test number pays: the push is accepted, the callback
// comes from the fake's own goroutine, and the sale is approved with the
// M-Pesa receipt, once.
func TestSTKPushApproved(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	id := h.start("0708 374 149", 150)
	tx := h.waitStatus(id, payment.StatusApproved)
	if len(tx.Result.RemoteID) != 10 {
		t.Errorf("receipt = %q, want a 10-character M-Pesa receipt", tx.Result.RemoteID)
	}
	if tx.Amount.Minor != 15000 || tx.Amount.Currency != "KES" {
		t.Errorf("amount = %+v", tx.Amount)
	}
	if tx.Peer != "2547****149" {
		t.Errorf("peer = %q, want the masked phone", tx.Peer)
	}
	for _, st := range []payment.Status{payment.StatusCreated, payment.StatusSent, payment.StatusAcknowledged, payment.StatusApproved} {
		if n := h.count(id, isTransition(st)); n != 1 {
			t.Errorf("%d transitions to %s, want 1:%s", n, st, h.history(id))
		}
	}
}
