package tui

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// keys sends one key to the model straight through Update; Cmds are
// dropped (the tests here look at the screen a key leads to).
func keys(m Model, keys ...string) Model {
	for _, k := range keys {
		var msg tea.KeyMsg
		switch k {
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "tab":
			msg = tea.KeyMsg{Type: tea.KeyTab}
		case "backspace":
			msg = tea.KeyMsg{Type: tea.KeyBackspace}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		m = update(m, msg)
	}
	return m
}

// fullModel is a console with every rail and screen configured, so every
// menu item is listed.
func fullModel(t *testing.T) Model {
	t.Helper()
	bus := testBus(t)
	cfg := testConfig()
	cfg.Rails = testRails{Terminal: &scriptRail{bus: bus, rail: payment.RailTerminal},
		MPesa: &tillRail{scriptRail: scriptRail{bus: bus, rail: payment.RailMPesa}}}
	cfg.Displays = &fakeDisplays{}
	return newModel(cfg, &fakeRail{}, bus)
}

// Rebinding a menu key changes what the key does, not only the help:
// Update matches through the keymap.
func TestRebindingAMenuKeyChangesWhatItDoes(t *testing.T) {
	m := fullModel(t)
	m.c.keys.Journal = key.NewBinding(key.WithKeys("J"), key.WithHelp("J", "journal"))
	m.c.keys.Card = key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "card"))
	if got := at(keys(m, "j")); got != scrMenu {
		t.Errorf("j after rebinding the journal to J: screen %d, want the menu", got)
	}
	if got := at(keys(m, "J")); got != scrJournal {
		t.Errorf("J after rebinding the journal to J: screen %d, want the journal", got)
	}
	if got := at(keys(m, "1")); got != scrMenu {
		t.Errorf("1 after rebinding card to x: screen %d, want the menu", got)
	}
	if got := keys(m, "x"); at(got) != scrAmount || got.form.item.Mode != payment.ModeCard {
		t.Errorf("x after rebinding card to x: screen %d mode %q, want the card amount", at(got), got.form.item.Mode)
	}
	if v := m.View(); !strings.Contains(v, "x. Card Payment") || !strings.Contains(v, "J. Journal") {
		t.Errorf("the menu does not show the rebound keys:\n%s", v)
	}
}

// Every binding of the keymap, which is every key Update handles, is in
// the menu's full help with what it does.
func TestFullHelpListsEveryBinding(t *testing.T) {
	m := fullModel(t)
	// With a payment in flight and the operator away from it, so the key
	// back to it is listed too.
	next, _ := m.Update(startedMsg{id: "TXN1795340000000", amount: payment.Money{Minor: 2550, Currency: "MYR"}})
	// 80 columns: the full help must fit them, not lose a column.
	m = keys(sized(next.(Model), 80, 60), "esc", "?")
	view := m.View()
	km := reflect.ValueOf(*m.c.keys)
	for i := range km.NumField() {
		b := km.Field(i).Interface().(key.Binding)
		h := b.Help()
		if !regexp.MustCompile(regexp.QuoteMeta(h.Key) + ` +` + regexp.QuoteMeta(h.Desc)).MatchString(view) {
			t.Errorf("full help lacks %s (%q %q):\n%s", km.Type().Field(i).Name, h.Key, h.Desc, view)
		}
	}
}

// Esc closes the full help, on the menu and on a screen where Esc would
// otherwise go back.
func TestEscClosesTheHelp(t *testing.T) {
	m := keys(fullModel(t), "?")
	if !m.help.ShowAll {
		t.Fatal("? did not open the help")
	}
	if m = keys(m, "esc"); m.help.ShowAll {
		t.Error("esc did not close the help on the menu")
	}
	m = keys(m, "j", "?", "esc")
	if m.help.ShowAll || at(m) != scrJournal {
		t.Errorf("esc on the journal's help: help open %v, screen %d; want closed, still the journal", m.help.ShowAll, at(m))
	}
}

// The operator can look away from a payment in flight (the journal, the
// log, the status) and come back to it with p; the header says so, and
// an outcome that comes meanwhile waits for them there.
func TestLookAwayFromAPaymentInFlight(t *testing.T) {
	m := keys(fullModel(t), "1")
	next, _ := m.Update(startedMsg{id: "TXN1795340000000", amount: payment.Money{Minor: 2550, Currency: "MYR"}})
	m = next.(Model)
	if at(m) != scrWaiting {
		t.Fatalf("screen %d after the start, want waiting", at(m))
	}
	for _, away := range []struct {
		key    string
		screen screen
	}{{"esc", scrMenu}, {"j", scrJournal}, {"l", scrLog}, {"6", scrStatus}} {
		a := keys(m, away.key)
		if at(a) != away.screen {
			t.Errorf("%s on the waiting view: screen %d, want %d", away.key, at(a), away.screen)
			continue
		}
		if v := a.View(); !strings.Contains(v, "p: back to TXN1795340000000") {
			t.Errorf("%s: the header does not show the payment in flight:\n%s", away.key, v)
		}
		if back := keys(a, "p"); at(back) != scrWaiting {
			t.Errorf("p after %s: screen %d, want the waiting view", away.key, at(back))
		}
	}
	a := keys(m, "j")
	next, _ = a.Update(eventMsg{Kind: payment.KindTransition, TxnID: "TXN1795340000000", Status: payment.StatusApproved,
		Result: &payment.Result{AuthCode: "A1"}, Detail: "approved"})
	a = next.(Model)
	if at(a) != scrJournal {
		t.Errorf("an outcome took the operator away from the journal (screen %d)", at(a))
	}
	if back := keys(a, "p"); at(back) != scrResult {
		t.Errorf("p after the outcome came: screen %d, want the result", at(back))
	}
	// 5 on the menu goes back to it and asks before cancelling; so it
	// does when the plans came while the operator looked away.
	if got := keys(m, "esc", "5"); at(got) != scrWaiting || !got.pay.confirmCanc {
		t.Errorf("5 while away: screen %d, asking %v; want the waiting view asking", at(got), got.pay.confirmCanc)
	}
	plans := send(keys(m, "j"), eventMsg{Kind: payment.KindTransition, TxnID: "TXN1795340000000", Status: payment.StatusPlansOffered,
		Plans: []payment.Plan{{ID: "IPP_3M"}}})
	if got := keys(plans, "esc", "5"); at(got) != scrPlans || !got.pay.confirmCanc {
		t.Errorf("5 while away from the plans: screen %d, asking %v; want the plans asking", at(got), got.pay.confirmCanc)
	}
	// A new payment is not started over the one in flight.
	if got := keys(m, "esc", "2"); at(got) == scrAmount {
		t.Error("a second payment was started while one is in flight")
	}
}

// The journal list and the event log move with the keymap's keys only:
// the bubbles table's and viewport's own keys (f, b, d, u, space, g)
// are not in the help, so they do nothing.
func TestListsMoveWithTheKeymapOnly(t *testing.T) {
	bus := testBus(t)
	for i := range 40 {
		if _, err := bus.Publish(context.Background(), payment.Event{Time: clock, Kind: payment.KindTransition,
			TxnID: fmt.Sprintf("TXN17953400000%02d", i), Rail: payment.RailPOS, Status: payment.StatusCreated, Mode: payment.ModeCard,
			Amount: payment.Money{Minor: 100, Currency: "MYR"}, Peer: "POS001"}); err != nil {
			t.Fatal(err)
		}
	}
	m := keys(sized(newModel(testConfig(), &fakeRail{}, bus), 80, 24), "j")
	for _, k := range []string{"f", "b", "d", "u", " ", "g", "G"} {
		if got := keys(m, k).journal.tbl.Cursor(); got != 0 {
			t.Errorf("%q moved the journal's selection to %d", k, got)
		}
	}
	if got := send(m, tea.KeyMsg{Type: tea.KeyPgDown}).journal.tbl.Cursor(); got < 10 {
		t.Errorf("pgdown moved the journal's selection to %d, want a page down", got)
	}
	if got := send(m, tea.KeyMsg{Type: tea.KeyDown}).journal.tbl.Cursor(); got != 1 {
		t.Errorf("down moved the journal's selection to %d, want 1", got)
	}
}

// The desk's ways to pay are bound by their names: rebinding M-Pesa (a
// rail's item, not the POS's) and the till payments moves what the keys
// do, the old keys do nothing, and the menu shows the new ones.
func TestRebindingAWayToPayByItsName(t *testing.T) {
	m := fullModel(t)
	m.c.keys.MPesa = key.NewBinding(key.WithKeys("P"), key.WithHelp("P", "M-Pesa"))
	m.c.keys.Till = key.NewBinding(key.WithKeys("T"), key.WithHelp("T", "till payments"))
	if got := keys(m, "9"); at(got) != scrMenu {
		t.Errorf("9 after rebinding M-Pesa to P: screen %d, want the menu", at(got))
	}
	if got := keys(m, "P"); at(got) != scrAmount || got.form.item.Name != "mpesa" || !got.form.askPhone {
		t.Errorf("P after rebinding M-Pesa to P: screen %d item %q, want the M-Pesa phone", at(got), got.form.item.Name)
	}
	if got := keys(m, "m"); at(got) != scrMenu {
		t.Errorf("m after rebinding the till to T: screen %d, want the menu", at(got))
	}
	if got := keys(m, "T"); at(got) != scrTill {
		t.Errorf("T after rebinding the till to T: screen %d, want the till payments", at(got))
	}
	if v := m.View(); !strings.Contains(v, "P. M-Pesa STK Push") || !strings.Contains(v, "T. Till payments") {
		t.Errorf("the menu does not show the rebound keys:\n%s", v)
	}
}
