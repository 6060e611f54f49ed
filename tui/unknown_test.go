package tui

import (
	"strings"
	"testing"

	"paydesk/payment"
)

// Only a payment the journal recovered at start was "in flight when
// paydesk stopped"; one that ended unknown on its own says why.
func TestUnresolvedSaysWhy(t *testing.T) {
	cfg := testConfig()
	cfg.Demo = false
	cfg.Unresolved = []payment.Txn{
		{ID: "TXN1", Rail: payment.RailPOS, Mode: payment.ModeCard, Amount: payment.Money{Minor: 2591, Currency: "MYR"}, Peer: "POS001",
			Status: payment.StatusUnknown, Flags: []string{payment.FlagAmountMismatch},
			Result: payment.Result{Reason: "POS approved 25.00, not the 25.91 requested: check the POS, then resolve"}},
		{ID: "TXN2", Rail: payment.RailTerminal, Mode: payment.ModeCard, Amount: payment.Money{Minor: 500, Currency: "EUR"}, Peer: "terminal",
			Status: payment.StatusUnknown, Flags: []string{payment.FlagRecovered}},
	}
	v := newModel(cfg, &fakeRail{}, testBus(t)).View()
	flat := strings.Join(strings.Fields(v), " ")
	if strings.Contains(flat, "TXN1 card RM25.91 on POS001: in flight") {
		t.Errorf("an amount mismatch is said to have been in flight when paydesk stopped:\n%s", v)
	}
	if !strings.Contains(flat, "TXN1 card RM25.91 on POS001: POS approved 25.00, not the 25.91 requested; check the POS") {
		t.Errorf("the amount mismatch does not say why it is unknown:\n%s", v)
	}
	if !strings.Contains(flat, "TXN2 card 5.00 EUR on terminal: in flight when paydesk stopped; check the card terminal") {
		t.Errorf("the recovered terminal payment:\n%s", v)
	}
}
