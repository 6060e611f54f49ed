package tui

import (
	"context"
	"errors"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// refusingRail refuses every payment, as a rail does when its peer says
// no before any payment exists.
type refusingRail struct{}

func (refusingRail) Start(context.Context, payment.Request) (string, error) {
	return "", errors.New("start M-Pesa payment: Daraja is unreachable")
}
func (refusingRail) Cancel(string) error { return nil }

// mpesaModel is a console with an M-Pesa rail, on its phone field.
func mpesaModel(t *testing.T, rail payment.Starter) Model {
	t.Helper()
	cfg := testConfig()
	cfg.Rails = testRails{MPesa: rail}
	return keys(newModel(cfg, &fakeRail{}, testBus(t)), "9")
}

func typed(m Model, s string) Model {
	for _, r := range s {
		m = keys(m, string(r))
	}
	return m
}

// M-Pesa STK Push takes whole shillings: a fraction is refused as it is
// typed, in place, and Enter does not start the payment nor leave the form.
func TestMPesaFractionRefusedAsTyped(t *testing.T) {
	bus := testBus(t)
	mp := &scriptRail{bus: bus, rail: payment.RailMPesa}
	m := keys(typed(mpesaModel(t, mp), "0712345678"), "enter")
	m = typed(m, "150.5")
	if !strings.Contains(m.form.err, "whole shillings") {
		t.Errorf("150.5 typed: error %q, want whole shillings", m.form.err)
	}
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	m = next.(Model)
	if cmd != nil || at(m) != scrAmount || m.form.phone.Value() != "0712345678" || m.form.amount.Value() != "150.5" {
		t.Errorf("enter on 150.5: cmd %v, screen %d, phone %q, amount %q; want no start, the form as typed",
			cmd != nil, at(m), m.form.phone.Value(), m.form.amount.Value())
	}
	if m = typed(keys(m, "backspace"), ""); strings.Contains(m.form.err, "whole") {
		t.Errorf("error %q stays", m.form.err)
	}
}

// A payment the rail refuses to start leaves the operator on the form,
// the phone and the amount as typed and the refusal under them.
func TestStartRefusalKeepsTheForm(t *testing.T) {
	m := keys(typed(mpesaModel(t, refusingRail{}), "0712345678"), "enter")
	m = typed(m, "150")
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	if cmd == nil {
		t.Fatal("enter on 150 did not start the payment")
	}
	next, _ = next.Update(cmd())
	m = next.(Model)
	if at(m) != scrAmount || m.form.phone.Value() != "0712345678" || m.form.amount.Value() != "150" {
		t.Errorf("after the refusal: screen %d, phone %q, amount %q; want the form as typed", at(m), m.form.phone.Value(), m.form.amount.Value())
	}
	if v := m.View(); !strings.Contains(v, "Daraja is unreachable") {
		t.Errorf("the refusal is not on the form:\n%s", v)
	}
}

// Esc steps back one field: from the amount to the phone, kept, then to
// the menu.
func TestEscStepsBackOneField(t *testing.T) {
	bus := testBus(t)
	m := keys(typed(mpesaModel(t, &scriptRail{bus: bus, rail: payment.RailMPesa}), "0712345678"), "enter")
	m = keys(typed(m, "15"), "esc")
	if at(m) != scrAmount || !m.form.askPhone || m.form.phone.Value() != "0712345678" || !m.form.phone.Focused() {
		t.Fatalf("esc on the amount: screen %d, asking the phone %v, phone %q; want the phone, kept", at(m), m.form.askPhone, m.form.phone.Value())
	}
	if m = keys(m, "esc"); at(m) != scrMenu {
		t.Errorf("esc on the phone: screen %d, want the menu", at(m))
	}
}

// The IPP picker shows how long the customer has left, and q there asks
// before cancelling the customer's payment, as 5 does.
func TestPlanPickerCountdownAndQuitAsks(t *testing.T) {
	rail := &fakeRail{}
	rail.started.Store(true) // its flight has 8 s left
	m := newModel(testConfig(), rail, testBus(t))
	next, _ := m.Update(startedMsg{id: "TXN1795340000000", amount: payment.Money{Minor: 10000, Currency: "MYR"}})
	next, _ = next.Update(eventMsg{Kind: payment.KindTransition, TxnID: "TXN1795340000000", Status: payment.StatusPlansOffered,
		Plans: []payment.Plan{{ID: "IPP_3M", Frequency: "Monthly", TotalInstallments: 3}, {ID: "pay-in-full"}}})
	m = next.(Model)
	if at(m) != scrPlans {
		t.Fatalf("screen %d, want the plans", at(m))
	}
	if v := m.View(); !strings.Contains(v, "8s left") {
		t.Errorf("the picker shows no countdown:\n%s", v)
	}
	for _, k := range []string{"q", "esc", "5"} {
		next, cmd := m.Update(keyMsg(k))
		a := next.(Model)
		if cmd != nil || at(a) != scrPlans || !strings.Contains(a.View(), "y/n") {
			t.Errorf("%s on the picker: cmd %v, screen %d; want a question, no cancel yet:\n%s", k, cmd != nil, at(a), a.View())
			continue
		}
		if n := keys(a, "n"); at(n) != scrPlans || n.pay.confirmCanc {
			t.Errorf("n after %s: screen %d, asking %v; want the picker", k, at(n), n.pay.confirmCanc)
		}
		if _, cmd := a.Update(keyMsg("y")); cmd == nil {
			t.Errorf("y after %s did not cancel", k)
		} else {
			cmd()
		}
	}
	if len(rail.cancelled) != 3 {
		t.Errorf("cancels %v, want one per y", rail.cancelled)
	}
}

func keyMsg(k string) tea.KeyMsg {
	if k == "esc" {
		return tea.KeyMsg{Type: tea.KeyEsc}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}
