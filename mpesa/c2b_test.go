package mpesa_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// startC2B starts a paybill/till sale of shillings with reference ref
// ("" lets the rail mint one).
func (h *harness) startC2B(shillings int64, ref string) string {
	h.t.Helper()
	return h.begin(payment.Request{Mode: payment.ModeC2B, Reference: ref}, shillings)
}

func (h *harness) pay(p sandbox.C2B) string {
	h.t.Helper()
	id, st, err := h.fake.SimulateC2B(context.Background(), p)
	if err != nil || st != http.StatusOK {
		h.t.Fatalf("C2B %+v: status %d, %v", p, st, err)
	}
	return id
}

func registered(t *testing.T, h *harness) {
	t.Helper()
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
}

// A paybill sale (ModeC2B) needs no phone: it is journaled created →
// sent with the paybill and its reference, offers them as instructions,
// and is approved by the C2B confirmation that carries the reference,
// even typed in lower case with O for 0 and spaces. Underpaid stays open
// and flagged, overpaid is approved and flagged; a reference one slip
// away is kept unmatched for the operator, naming the sale.
func TestC2BPaybillSale(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.C2BWait = time.Minute })
	registered(t, h)

	id := h.startC2B(150, "")
	if !regexp.MustCompile(`^PD[0-9A-Z]{8}$`).MatchString(id) {
		t.Fatalf("reference %q, want PD and 8 characters", id)
	}
	in, ok := h.rail.Instructions(id)
	if !ok || in.Kind != "paybill" || in.Number != sandbox.DefaultShortCode || in.Account != id ||
		in.Amount != (payment.Money{Minor: 15000, Currency: "KES"}) || time.Until(in.Until) < 50*time.Second {
		t.Fatalf("instructions %+v %v", in, ok)
	}
	if what, at, ok := h.rail.Deadline(id); !ok || what != "the customer's paybill payment" || !at.Equal(in.Until) {
		t.Errorf("deadline %q %v %v", what, at, ok)
	}
	tx := h.waitStatus(id, payment.StatusSent)
	if tx.Mode != payment.ModeC2B || tx.Amount.Minor != 15000 || tx.Peer != "" {
		t.Errorf("txn %+v", tx)
	}
	if h.count(id, func(e payment.Event) bool {
		return strings.Contains(e.Detail, "waiting for a paybill payment to paybill "+sandbox.DefaultShortCode+" account "+id)
	}) != 1 {
		t.Errorf("no waiting step naming the paybill and account:%s", h.history(id))
	}
	if n := h.fake.Counts().Push; n != 0 {
		t.Errorf("a paybill sale sent %d pushes", n)
	}
	typed := strings.ToLower(id[:2] + " " + strings.NewReplacer("0", "O", "1", "l").Replace(id[2:6]) + "-" + id[6:])
	receipt := h.pay(sandbox.C2B{Amount: "150", BillRef: typed})
	tx = h.waitStatus(id, payment.StatusApproved)
	if tx.Result.RemoteID != receipt || len(tx.Flags) != 0 {
		t.Errorf("approved %+v, want receipt %s and no flag", tx, receipt)
	}

	// Underpaid, then the rest and a shilling more.
	under := h.startC2B(100, "PD0123ABCD")
	h.pay(sandbox.C2B{Amount: "60", BillRef: "pd O123 abcd"})
	h.waitFor("underpaid flagged", func() bool { return h.count(under, hasFlag(mpesa.FlagUnderpaid)) == 1 })
	if tx := h.waitStatus(under, payment.StatusSent); tx.Status != payment.StatusSent {
		t.Fatal(tx)
	}
	last := h.pay(sandbox.C2B{Amount: "41", BillRef: "PD0123ABCD"})
	tx = h.waitStatus(under, payment.StatusApproved)
	if tx.Result.RemoteID != last || !tx.HasFlag(mpesa.FlagOverpaid) || !tx.HasFlag(mpesa.FlagUnderpaid) {
		t.Errorf("paid in two parts: %+v", tx)
	}

	// One character wrong: not guessed, listed with the sale it may be.
	slip := h.startC2B(20, "PD9ZZZ0000")
	h.pay(sandbox.C2B{Amount: "20", BillRef: "PD9ZZZ0001"})
	h.waitFor("near miss listed", func() bool {
		tp := h.rail.TillPayments()
		return len(tp) > 0 && tp[0].Reference == "PD9ZZZ0001"
	})
	if tp := h.rail.TillPayments()[0]; !tp.Unmatched() || !strings.Contains(tp.Note, "did the customer mean PD9ZZZ0000?") {
		t.Errorf("near miss %+v", tp)
	}
	if tx, _ := h.j.Txn(context.Background(), slip); tx.Status != payment.StatusSent {
		t.Errorf("the slip's sale is %s, want still waiting", tx.Status)
	}

	// Cancel stops the wait; a second cancel is refused.
	if err := h.rail.Cancel(slip); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(slip, payment.StatusCancelled)
	if err := h.rail.Cancel(slip); err == nil {
		t.Error("cancelled twice")
	}

	// Bad input is refused and journaled.
	for _, req := range []payment.Request{
		{Mode: payment.ModeC2B, Phone: "0708374149", Amount: payment.Money{Minor: 1000, Currency: "KES"}},
		{Mode: payment.ModeC2B, Amount: payment.Money{Minor: 1000, Currency: "MYR"}},
		{Mode: payment.ModeC2B, Amount: payment.Money{Minor: 1050, Currency: "KES"}},
		{Mode: payment.ModeC2B, Amount: payment.Money{Minor: 1000, Currency: "KES"}, Reference: id},
	} {
		if got, err := h.rail.Start(context.Background(), req); err == nil {
			t.Errorf("%+v started %s", req, got)
		}
	}
}

// A paybill sale nobody pays times out after the rail's wait; the
// payment that arrives afterwards is journaled on the sale, flagged
// late_success, and listed for the operator.
func TestC2BTimeoutAndLatePayment(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.C2BWait = 300 * time.Millisecond })
	registered(t, h)
	id := h.startC2B(75, "")
	tx := h.waitStatus(id, payment.StatusTimedOut)
	if tx.Result.Reason != "no M-Pesa payment received in time" {
		t.Errorf("timed out %+v", tx)
	}
	// The timeout is journaled before the rail's memory has it: the
	// deadline goes a moment after.
	h.waitFor("the timed-out sale's deadline to go", func() bool { _, _, ok := h.rail.Deadline(id); return !ok })
	receipt := h.pay(sandbox.C2B{Amount: "75", BillRef: id})
	h.waitFor("late payment journaled", func() bool { return h.count(id, hasFlag(mpesa.FlagLateSuccess)) == 1 })
	tx, _ = h.j.Txn(context.Background(), id)
	if tx.Status != payment.StatusTimedOut || !tx.HasFlag(mpesa.FlagLateSuccess) {
		t.Errorf("after the late payment %+v", tx)
	}
	h.waitFor("late payment listed", func() bool { return len(h.rail.TillPayments()) == 1 })
	if tp := h.rail.TillPayments()[0]; tp.ID != receipt || !tp.Unmatched() || !strings.Contains(tp.Note, "already timed_out") {
		t.Errorf("till list %+v", tp)
	}
}

// On a till (Buy Goods) the confirmation has no account: it pays the one
// open sale of exactly its amount; when two sales wait for that amount,
// or none does, it is kept unmatched for the operator.
func TestC2BTillMatchedByAmount(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	h.close()
	h.open(func(o *mpesa.Options) {
		c, err := daraja.NewClient(daraja.Config{BaseURL: h.fakeURL, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
			ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Till: true, TillNumber: "5123456", Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		o.Client, o.C2BWait = c, time.Minute
	})
	registered(t, h)
	a := h.startC2B(70, "")
	b := h.startC2B(80, "")
	if in, ok := h.rail.Instructions(a); !ok || in.Kind != "till" || in.Number != "5123456" || in.Account != "" {
		t.Fatalf("till instructions %+v %v", in, ok)
	}
	receipt := h.pay(sandbox.C2B{Amount: "70", Till: true})
	if tx := h.waitStatus(a, payment.StatusApproved); tx.Result.RemoteID != receipt {
		t.Errorf("till sale %+v", tx)
	}
	if tx, _ := h.j.Txn(context.Background(), b); tx.Status != payment.StatusSent {
		t.Errorf("the other sale is %s", tx.Status)
	}
	c := h.startC2B(80, "")
	h.pay(sandbox.C2B{Amount: "80", Till: true})
	h.waitFor("ambiguous payment listed", func() bool { return len(h.rail.TillPayments()) == 2 })
	if tp := h.rail.TillPayments()[0]; !tp.Unmatched() || !strings.Contains(tp.Note, "2 open sales wait for this amount") {
		t.Errorf("ambiguous till payment %+v", tp)
	}
	h.pay(sandbox.C2B{Amount: "81", Till: true})
	h.waitFor("wrong amount listed", func() bool { return len(h.rail.TillPayments()) == 3 })
	if tp := h.rail.TillPayments()[0]; !tp.Unmatched() {
		t.Errorf("a till payment of no sale's amount matched: %+v", tp)
	}
	for _, id := range []string{b, c} {
		if tx, _ := h.j.Txn(context.Background(), id); tx.Status != payment.StatusSent {
			t.Errorf("sale %s is %s, want still waiting", id, tx.Status)
		}
	}
}

// A paybill sale waiting when paydesk stops is unknown after the
// restart, and the customer's payment with its reference still
// completes it.
func TestC2BSaleSurvivesRestart(t *testing.T) {
	wait := func(o *mpesa.Options) { o.C2BWait = time.Minute }
	h := newHarness(t, sandbox.Options{}, wait)
	registered(t, h)
	id := h.startC2B(90, "")
	h.waitStatus(id, payment.StatusSent)
	h.close()
	h.open(wait)
	h.waitStatus(id, payment.StatusUnknown)
	receipt := h.pay(sandbox.C2B{Amount: "90", BillRef: id})
	if tx := h.waitStatus(id, payment.StatusApproved); tx.Result.RemoteID != receipt {
		t.Errorf("after the restart: %+v", tx)
	}
}

// A till (Buy Goods) sale left waiting by a restart is still a till
// sale: a payment of its amount without a reference pays it.
func TestC2BTillSaleSurvivesRestart(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	till := func(o *mpesa.Options) {
		c, err := daraja.NewClient(daraja.Config{BaseURL: h.fakeURL, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
			ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Till: true, TillNumber: "5123456", Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		o.Client, o.C2BWait = c, time.Minute
	}
	h.close()
	h.open(till)
	registered(t, h)
	id := h.startC2B(60, "")
	h.waitStatus(id, payment.StatusSent)
	h.close()
	h.open(till)
	h.waitStatus(id, payment.StatusUnknown)
	receipt := h.pay(sandbox.C2B{Amount: "60", Till: true})
	if tx := h.waitStatus(id, payment.StatusApproved); tx.Result.RemoteID != receipt {
		t.Errorf("after the restart: %+v", tx)
	}
}

// A sale cancelled after part of it was paid says a refund is due, as
// one that times out part-paid does.
func TestC2BCancelPartPaid(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.C2BWait = time.Minute })
	registered(t, h)
	id := h.startC2B(100, "")
	h.pay(sandbox.C2B{Amount: "60", BillRef: id})
	h.waitFor("underpaid flagged", func() bool { return h.count(id, hasFlag(mpesa.FlagUnderpaid)) == 1 })
	if err := h.rail.Cancel(id); err != nil {
		t.Fatal(err)
	}
	tx := h.waitStatus(id, payment.StatusCancelled)
	if !strings.Contains(tx.Result.Reason, "refund") || !strings.Contains(h.history(id), "refund KES 60.00 due") {
		t.Errorf("cancelled part-paid: reason %q, want a refund of KES 60.00 due:%s", tx.Result.Reason, h.history(id))
	}
}
