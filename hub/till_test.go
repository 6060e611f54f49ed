package hub

import (
	"context"
	"net/http"
	"testing"

	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// till makes a kiosk's M-Pesa a Buy Goods till: its sales carry no
// account, and a payment is matched by amount.
func till(c *daraja.Config) { c.Till, c.TillNumber = true, "5201314" }

// A Buy Goods payment carries no account: the hub routes it, as a kiosk
// matches its own, to the one open till sale of its amount across the
// fleet; two such sales (at one kiosk or two) leave it unmatched, and so
// does an amount no open sale asks.
func TestTillPaymentMatchedByAmountAtTheHub(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k1, k2 := f.kiosk("K1", hubURL, till), f.kiosk("K2", hubURL, till)
	k1.connect(hubURL)
	k2.connect(hubURL)
	k2.registerC2B()
	other := k1.c2bSale(250)
	sale := k2.c2bSale(300)
	k1.replicated()
	k2.replicated()
	pay := func(amount string) string {
		t.Helper()
		id, status, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: amount, Till: true})
		if err != nil || status != http.StatusOK {
			t.Fatalf("till payment: status %d, %v", status, err)
		}
		return id
	}
	pay("300")
	k2.waitStatus(sale, payment.StatusApproved)
	if tx, _ := k1.j.Txn(context.Background(), other); tx.Status != payment.StatusSent {
		t.Fatalf("K1's sale of another amount is %s", tx.Status)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K1'`); n != 0 {
		t.Fatalf("%d messages for K1", n)
	}

	// Ambiguous: one open sale of 400 at each kiosk.
	a1, a2 := k1.c2bSale(400), k2.c2bSale(400)
	k1.replicated()
	k2.replicated()
	amb := pay("400")
	// No amount: nothing open asks 999.
	none := pay("999")
	un, err := f.store.UnmatchedCallbacks(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, u := range un {
		keys[u.Key] = true
	}
	if len(un) != 2 || !keys[amb] || !keys[none] {
		t.Fatalf("unmatched list %+v, want the ambiguous %s and the unclaimed %s", un, amb, none)
	}
	for _, s := range []struct {
		k  *kiosk
		id string
	}{{k1, a1}, {k2, a2}, {k1, other}} {
		if tx, _ := s.k.j.Txn(context.Background(), s.id); tx.Status != payment.StatusSent {
			t.Fatalf("%s's sale %s is %s: a till payment was guessed", s.k.id, s.id, tx.Status)
		}
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 1 {
		t.Fatalf("%d messages, want only the one for K2's sale", n)
	}
}

// A till payment that reaches the hub before its sale (the kiosk's events
// not replicated yet) waits unmatched and is routed when the sale arrives.
func TestTillPaymentBeforeItsSaleIsRoutedWhenTheSaleArrives(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k := f.kiosk("K1", hubURL, till)
	k.registerC2B()
	sale := k.c2bSale(410) // journaled, not replicated: no link yet
	id, status, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "410", Till: true})
	if err != nil || status != http.StatusOK {
		t.Fatalf("till payment: status %d, %v", status, err)
	}
	f.unmatchedID(id)
	k.connect(hubURL)
	k.waitStatus(sale, payment.StatusApproved)
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks WHERE key = $1 AND kiosk_id = 'K1'`, id); n != 1 {
		t.Fatalf("payment %s not routed to K1", id)
	}
}
