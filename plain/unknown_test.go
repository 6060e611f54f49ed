package plain_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"paydesk/desk"
	"paydesk/payment"
	"paydesk/plain"
	"paydesk/protocol"
)

// An unknown payment says why it is unknown, and where to check it by
// its rail: a terminal payment is never sent to "the POS".
func TestUnknownSaysWhyAndWhere(t *testing.T) {
	k := newKiosk(t, protocol.Options{}, "POS001")
	mismatch := payment.Txn{ID: "TXN1", Rail: payment.RailPOS, Mode: payment.ModeCard, Amount: payment.Money{Minor: 2591, Currency: "MYR"},
		Peer: "POS001", Status: payment.StatusUnknown, Flags: []string{payment.FlagAmountMismatch},
		Result: payment.Result{Reason: "POS approved 25.00, not the 25.91 requested: check the POS, then resolve"}}
	out := k.runWith(t, plain.Config{Unresolved: []payment.Txn{mismatch}}, desk.Config{}, "7\n")
	if strings.Contains(out, "in flight when paydesk stopped") || !strings.Contains(out,
		"UNKNOWN TXN1 card 25.91 POS001: POS approved 25.00, not the 25.91 requested; check the POS, then 'r' to resolve") {
		t.Errorf("start of a console with an amount mismatch left unknown:\n%s", out)
	}

	// r lists the unknown payments, each with where to check it.
	ctx := context.Background()
	at := time.Now()
	for _, ev := range []payment.Event{
		{Time: at, Kind: payment.KindTransition, TxnID: "TXN9", Rail: payment.RailTerminal, Status: payment.StatusCreated, Mode: payment.ModeCard,
			Amount: payment.Money{Minor: 500, Currency: "EUR"}, Peer: "terminal"},
		{Time: at, Kind: payment.KindTransition, TxnID: "TXN9", Rail: payment.RailTerminal, Status: payment.StatusUnknown,
			Result: &payment.Result{Reason: "no answer from the terminal"}},
	} {
		if _, err := k.bus.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	out = k.run(t, "r\n\n7\n")
	if !strings.Contains(out, "TXN9 card 5.00 terminal") || !strings.Contains(out, "check the card terminal") {
		t.Errorf("r does not say where to check the terminal payment:\n%s", out)
	}
	if strings.Contains(out, "checking its POS") {
		t.Errorf("r sends the operator to the POS:\n%s", out)
	}
}

// r resolves only a payment that is unknown: a payment its rail ended is
// not rewritten by a resolve typed against it.
func TestResolveRefusesAPaymentThatIsNotUnknown(t *testing.T) {
	k := newKiosk(t, protocol.Options{}, "POS001")
	out := k.run(t, "1\n25.50\n1\n10.91\n7\n") // the second: the POS approves another amount
	r := results(out)
	if len(r) != 2 || r[0][2] != "approved" || r[1][2] != "unknown" {
		t.Fatalf("results = %q\n%s", r, out)
	}
	approved, unknown := r[0][1], r[1][1]
	out = k.run(t, "r\n"+approved+" declined\nr\n"+unknown+" approved\n7\n")
	if !strings.Contains(out, "ERROR resolve "+approved+": it is approved, not unknown") || strings.Contains(out, "Resolved "+approved) {
		t.Errorf("r on an approved payment:\n%s", out)
	}
	if !strings.Contains(out, "Resolved "+unknown+" as approved (journaled)") {
		t.Errorf("r on the unknown payment:\n%s", out)
	}
	tx, err := k.bus.Journal().Txn(context.Background(), approved)
	if err != nil || tx.Status != payment.StatusApproved || tx.HasFlag(payment.FlagResolved) {
		t.Errorf("journal has %+v, %v; want approved, not resolved", tx, err)
	}
}
