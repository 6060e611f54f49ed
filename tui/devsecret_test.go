package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

func press(m Model, k string) Model {
	return update(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
}

// The public development secret lets anyone sign POS messages: the
// operator must see that on every screen, and on the status screen.
func TestDevSecretWarnedInHeaderAndStatus(t *testing.T) {
	cfg := testConfig()
	cfg.Demo = false
	cfg.DevSecret = true
	m := newModel(cfg, &fakeRail{}, testBus(t))
	const warn = "development secret"
	head := strings.Join(strings.Split(m.View(), "\n")[:3], "\n")
	if !strings.Contains(head, warn) || !strings.Contains(head, "PAYDESK_SECRET") {
		t.Errorf("the header does not warn of the development secret:\n%s", m.View())
	}
	for _, line := range strings.Split(m.View(), "\n") {
		if w := len([]rune(line)); w > 80 {
			t.Errorf("line wider than 80 columns (%d): %q", w, line)
		}
	}
	m = press(m, "6")
	if at(m) != scrStatus {
		t.Fatalf("6 did not open the status screen")
	}
	body := m.status.view()
	if !strings.Contains(body, warn) {
		t.Errorf("the status screen does not say the development secret is in use:\n%s", body)
	}

	cfg.DevSecret = false
	m = newModel(cfg, &fakeRail{}, testBus(t))
	if strings.Contains(m.View(), warn) || strings.Contains(press(m, "6").View(), warn) {
		t.Errorf("a real secret is warned of:\n%s", m.View())
	}
}

func TestStatusCountsOneTransaction(t *testing.T) {
	bus := testBus(t)
	for _, ev := range []payment.Event{
		{Time: clock, Kind: payment.KindTransition, TxnID: "TXN1795340000001", Rail: payment.RailPOS, Status: payment.StatusCreated,
			Mode: payment.ModeCard, Amount: payment.Money{Minor: 2550, Currency: "MYR"}, Peer: "POS001"},
		{Time: clock.Add(time.Second), Kind: payment.KindTransition, TxnID: "TXN1795340000001", Rail: payment.RailPOS, Status: payment.StatusApproved},
	} {
		if _, err := bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	m := press(newModel(testConfig(), &fakeRail{}, bus), "6")
	if v := m.View(); !strings.Contains(v, "Journal: 1 transaction (approved 1)") {
		t.Errorf("status screen:\n%s", v)
	}
}

// A long reason (the POS's secret differs) is read whole at 80 columns,
// not cut at the edge.
func TestResultReasonWraps(t *testing.T) {
	m := newModel(testConfig(), &fakeRail{}, testBus(t))
	m.screen, m.pay.phase, m.pay.txn = scrPay, phaseResult, "TXN1795340000000"
	reason := "no ack from POS within 10s: the POS's messages fail the signature check: the POS and this kiosk have different secrets"
	m.pay.result = payment.Event{Kind: payment.KindTransition, Status: payment.StatusTimedOut, Result: &payment.Result{Reason: reason}}
	v := m.View()
	flat := strings.Join(strings.Fields(v), " ")
	if !strings.Contains(flat, reason) {
		t.Errorf("the reason is cut:\n%s", v)
	}
	for _, l := range strings.Split(v, "\n") {
		if w := len([]rune(l)); w > 80 {
			t.Errorf("line of %d columns: %q", w, l)
		}
	}
}
