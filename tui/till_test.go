package tui

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
)

// tillRail is a scripted M-Pesa rail that also lists till payments.
type tillRail struct {
	scriptRail
	tmu      sync.Mutex
	payments []payment.TillPayment
}

func (r *tillRail) TillPayments() []payment.TillPayment {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	return append([]payment.TillPayment(nil), r.payments...)
}

func (r *tillRail) AssignTill(id, txn string) error {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	for i := range r.payments {
		if r.payments[i].ID == id {
			if txn != "PD7K3M9QXA" {
				return fmt.Errorf("sale %s: not found", txn)
			}
			r.payments[i].TxnID, r.payments[i].Note = txn, "assigned by the operator"
			return nil
		}
	}
	return fmt.Errorf("no till payment %s", id)
}

// The till view lists C2B payments, unmatched ones marked, and assigns
// one to a sale by its reference; a wrong reference shows the rail's
// refusal.
func TestTillPayments(t *testing.T) {
	bus := testBus(t)
	mp := &tillRail{scriptRail: scriptRail{bus: bus, rail: payment.RailMPesa, health: payment.Health{Up: true, Detail: "ready"}}}
	at := time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC)
	mp.payments = []payment.TillPayment{
		{ID: "RKTQDM7W6S", Reference: "NOSUCH", Amount: payment.Money{Minor: 5000, Currency: "KES"}, Payer: "John 2547****126", Time: at, Note: "no sale with this reference"},
		{ID: "RKTQDM7W6T", Reference: "PD00000001", Amount: payment.Money{Minor: 2000, Currency: "KES"}, Payer: "2547****149", Time: at, TxnID: "PD00000001", Note: "paid"},
	}
	tm := startWithRails(t, testRails{MPesa: mp}, bus)
	waitText(t, tm, "m. Till payments (M-Pesa)")
	typeText(tm, "m")
	waitAll(t, tm, "Till payments (M-Pesa C2B)", "UNMATCHED: no sale with this reference", "→ PD00000001 paid", "2 payments, 1 unmatched")
	typeText(tm, "a")
	waitText(t, tm, "Assign RKTQDM7W6S to sale:")
	typeText(tm, "pdnope")
	enter(tm)
	waitText(t, tm, "sale PDNOPE: not found")
	typeText(tm, "a")
	typeText(tm, "pd7k3m9qxa")
	enter(tm)
	waitText(t, tm, "→ PD7K3M9QXA assigned by the operator")
	view := final(t, tm)
	if !strings.Contains(view, "0 unmatched") {
		t.Errorf("after assigning:\n%s", view)
	}
	if strings.Contains(view, "254708374149") {
		t.Error("a full phone number is on screen")
	}
}

// A payment arriving while the operator types the sale reference is
// listed first; the one chosen is still the one assigned.
func TestTillAssignWhileAPaymentArrives(t *testing.T) {
	bus := testBus(t)
	mp := &tillRail{scriptRail: scriptRail{bus: bus, rail: payment.RailMPesa, health: payment.Health{Up: true, Detail: "ready"}}}
	at := time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC)
	mp.payments = []payment.TillPayment{
		{ID: "RKTQDM7W6S", Reference: "NOSUCH", Amount: payment.Money{Minor: 5000, Currency: "KES"}, Payer: "2547****126", Time: at, Note: "no sale with this reference"},
	}
	tm := startWithRails(t, testRails{MPesa: mp}, bus)
	typeText(tm, "m")
	waitText(t, tm, "1 payment, 1 unmatched")
	typeText(tm, "a")
	waitText(t, tm, "Assign RKTQDM7W6S to sale:")
	mp.tmu.Lock()
	mp.payments = append([]payment.TillPayment{{ID: "RKNEW00001", Amount: payment.Money{Minor: 100, Currency: "KES"},
		Payer: "2547****000", Time: at.Add(time.Minute), Note: "no sale with this reference"}}, mp.payments...)
	mp.tmu.Unlock()
	typeText(tm, "pd7k3m9qxa")
	enter(tm)
	waitText(t, tm, "→ PD7K3M9QXA assigned by the operator")
	final(t, tm)
	for _, p := range mp.TillPayments() {
		if want := map[string]string{"RKTQDM7W6S": "PD7K3M9QXA", "RKNEW00001": ""}[p.ID]; p.TxnID != want {
			t.Errorf("%s assigned to %q, want %q", p.ID, p.TxnID, want)
		}
	}
}
