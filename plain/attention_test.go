package plain_test

import (
	"context"
	"strings"
	"testing"

	"paydesk/desk"
	"paydesk/payment"
	"paydesk/plain"
	"paydesk/protocol"
)

// underpayingRail approves each payment with a shilling less paid, as
// the M-Pesa rail reports an STK underpayment.
type underpayingRail struct{ approvingRail }

func (r *underpayingRail) Start(ctx context.Context, req payment.Request) (string, error) {
	id := r.id
	go func() {
		paid := req.Amount
		paid.Minor -= 100
		for _, ev := range []payment.Event{
			{Kind: payment.KindTransition, Status: payment.StatusCreated, Mode: req.Mode, Amount: req.Amount},
			{Kind: payment.KindTransition, Status: payment.StatusSent, Detail: "request sent"},
			{Kind: payment.KindTransition, Status: payment.StatusApproved, Detail: "paid: M-Pesa receipt REF1",
				Result: &payment.Result{RemoteID: "REF1", Paid: &paid, Flags: []string{"underpaid"}}},
		} {
			ev.Rail, ev.TxnID = r.rail, id
			r.bus.Publish(context.Background(), ev)
		}
	}()
	return id, nil
}

// An approval that needs attention does not read as a plain success: the
// console says what to check and what was paid, and so does the RESULT
// line. A payment left unknown on M-Pesa is checked on the M-Pesa
// statement, not on a POS.
func TestAttentionShown(t *testing.T) {
	k := newKiosk(t, protocol.Options{})
	if _, err := k.bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: payment.RailMPesa, TxnID: "TXN5",
		Status: payment.StatusCreated, Mode: payment.ModeSTKPush, Amount: payment.Money{Minor: 5000, Currency: "KES"}}); err != nil {
		t.Fatal(err)
	}
	mp := &underpayingRail{approvingRail{bus: k.bus, rail: payment.RailMPesa, id: "TXN9"}}
	unknown := payment.Txn{ID: "TXN5", Rail: payment.RailMPesa, Mode: payment.ModeSTKPush, Amount: payment.Money{Minor: 5000, Currency: "KES"}, Status: payment.StatusUnknown}
	got := k.runWith(t, plain.Config{Unresolved: []payment.Txn{unknown}}, desk.Config{Rails: rails(nil, mp)},
		"9\n0712345678\n150\n7\n")
	for _, s := range []string{
		"UNKNOWN TXN5 stk_push 50.00",
		"check the M-Pesa statement",
		"Payment Needs Checking (underpaid; paid 149.00 of 150.00):",
		"RESULT TXN9 approved 150.00 pos_txn=REF1 paid=149.00 flags=underpaid",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q:\n%s", s, got)
		}
	}
	if strings.Contains(got, "Payment Successful!") || strings.Contains(got, "check the POS") {
		t.Errorf("an underpaid M-Pesa payment read as a plain success, or the POS was named:\n%s", got)
	}
}
