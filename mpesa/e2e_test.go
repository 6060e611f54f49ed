package mpesa_test

import (
	"context"
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
	// Under load the rail's STK query can approve the sale before the
	// callback arrives; the receipt then reaches the row with the callback.
	h.waitFor("the M-Pesa receipt on the row", func() bool {
		tx, _ = h.j.Txn(context.Background(), id)
		return len(tx.Result.RemoteID) == 10
	})
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
