package mpesa_test

import (
	"strings"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// resultLineOf is the RESULT line a console prints for payment id: from
// its final transition, as the consoles build it.
func (h *harness) resultLineOf(id string) string {
	h.t.Helper()
	tx, _ := h.j.Txn(h.t.Context(), id)
	for _, e := range h.events(id) {
		if e.Kind == payment.KindTransition && e.Status.Final() {
			return payment.ResultLine(id, e.Status, tx.Amount, e.Result)
		}
	}
	h.t.Fatalf("txn %s never ended:%s", id, h.history(id))
	return ""
}

// What needs the operator's attention says so on the RESULT line, with
// the amount actually paid: an STK payment one shilling short, a paybill
// sale paid over in two parts, and an approval whose callback came from
// outside the allow-list.
func TestAttentionOnResultLine(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.Poll.First = time.Hour })
	if _, err := h.rail.RegisterC2B(t.Context(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	short := h.start("0712340099", 150) // the fake pays one shilling less
	h.waitStatus(short, payment.StatusApproved)
	if l := h.resultLineOf(short); !strings.Contains(l, " approved 150.00 ") || !strings.Contains(l, " paid=149.00 flags=underpaid") {
		t.Errorf("STK underpayment: %s", l)
	}
	over := h.begin(payment.Request{Mode: payment.ModeC2B}, 100)
	h.fake.SimulateC2B(t.Context(), sandbox.C2B{Amount: "60", BillRef: over})
	h.fake.SimulateC2B(t.Context(), sandbox.C2B{Amount: "50.50", BillRef: over})
	h.waitStatus(over, payment.StatusApproved)
	if l := h.resultLineOf(over); !strings.Contains(l, " paid=110.50 flags=overpaid,fractional_amount") {
		t.Errorf("paybill overpayment: %s", l)
	}

	outside := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) {
		o.AllowList, o.Poll.First = mustPrefixes(t, "196.201.214.200"), time.Hour
	})
	id := outside.start("0708374149", 20)
	outside.waitStatus(id, payment.StatusApproved)
	if l := outside.resultLineOf(id); !strings.Contains(l, " flags=source_not_allowed") || strings.Contains(l, "paid=") {
		t.Errorf("approval from outside the allow-list: %s", l)
	}
}
