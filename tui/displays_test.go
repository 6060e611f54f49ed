package tui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"paydesk/payment"
)

// fakeDisplays is a customer-display server with two tablets.
type fakeDisplays struct {
	mu     sync.Mutex
	list   []payment.Display
	resets []string
}

func (f *fakeDisplays) Displays() []payment.Display {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]payment.Display(nil), f.list...)
}

func (f *fakeDisplays) ResetDisplay(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, d := range f.list {
		if d.ID == id {
			if d.TxnID != "" && d.Screen == "PROCESSING" {
				return errors.New("reset display " + d.Label + ": payment " + d.TxnID + " is in flight")
			}
			f.resets = append(f.resets, id)
			f.list[i].Screen, f.list[i].Amount, f.list[i].Method = "AMOUNT_SELECT", payment.Money{}, ""
			return nil
		}
	}
	return errors.New("no such display")
}

func displaysTest(t *testing.T) (*teatest.TestModel, *fakeDisplays, *payment.Bus) {
	t.Helper()
	bus := testBus(t)
	if _, err := bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: payment.RailPOS,
		TxnID: "TXN1795340000777", Status: payment.StatusCreated, Mode: payment.ModeCard,
		Amount: payment.Money{Minor: 6000, Currency: "MYR"}, Peer: "POS001", Detail: "card RM60.00 to POS001"}); err != nil {
		t.Fatal(err)
	}
	fd := &fakeDisplays{list: []payment.Display{
		{ID: "a1", Label: "SN-0042", Addr: "10.0.0.7:40100", Connected: true, Screen: "PROCESSING", TxnID: "TXN1795340000777",
			Amount: payment.Money{Minor: 6000, Currency: "MYR"}, Method: "DEBIT_CARD", Since: clock},
		{ID: "b2", Label: "display-2", Addr: "10.0.0.8:40200", Connected: false, Screen: "PAYMENT_METHOD",
			Amount: payment.Money{Minor: 2000, Currency: "MYR"}, Since: clock.Add(time.Second)},
	}}
	cfg := testConfig()
	cfg.Displays = fd
	tm := teatest.NewTestModel(t, testModel{newModel(cfg, &fakeRail{}, bus)}, teatest.WithInitialTermSize(80, 24))
	return tm, fd, bus
}

func TestDisplaysView(t *testing.T) {
	tm, _, _ := displaysTest(t)
	waitText(t, tm, "Customer displays")
	tm.Type("v")
	waitText(t, tm, "SN-0042")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

func TestDisplayPaymentInTheWaitingView(t *testing.T) {
	tm, _, bus := displaysTest(t)
	tm.Type("v")
	waitText(t, tm, "SN-0042")
	enter(tm)
	waitText(t, tm, "TXN1795340000777")
	bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "TXN1795340000777",
		Status: payment.StatusApproved, Result: &payment.Result{AuthCode: "AUTH77"}, Detail: "approved"})
	waitText(t, tm, "AUTH77")
	v := final(t, tm)
	if !strings.Contains(v, "APPROVED") || !strings.Contains(v, "RM60.00") {
		t.Fatalf("result view:\n%s", v)
	}
}

func TestResetDisplayFromTheConsole(t *testing.T) {
	tm, fd, _ := displaysTest(t)
	tm.Type("v")
	waitText(t, tm, "SN-0042")
	tm.Type("r") // the first display is paying: refused, with the reason
	waitText(t, tm, "is in flight")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Type("r")
	deadline := time.Now().Add(5 * time.Second)
	for {
		fd.mu.Lock()
		n := len(fd.resets)
		fd.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second display was not reset")
		}
		time.Sleep(10 * time.Millisecond)
	}
	final(t, tm)
	if fd.resets[0] != "b2" {
		t.Fatalf("reset %v, want b2", fd.resets)
	}
}

func TestManyDisplaysFitTheWindow(t *testing.T) {
	fd := &fakeDisplays{}
	for i := range 40 {
		fd.list = append(fd.list, payment.Display{ID: strings.Repeat("x", i+1), Label: "tablet-" + string(rune('A'+i%26)) + string(rune('a'+i/26)),
			Connected: true, Screen: "AMOUNT_SELECT", Since: clock.Add(time.Duration(i) * time.Second)})
	}
	cfg := testConfig()
	cfg.Displays = fd
	m := newModel(cfg, &fakeRail{}, testBus(t))
	next, _ := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("v")})
	m = next.(Model)
	for range 30 {
		next, _ = m.Update(tea.KeyMsg{Type: tea.KeyDown})
		m = next.(Model)
	}
	v := m.View()
	if n := strings.Count(v, "\n") + 1; n > 24 {
		t.Fatalf("%d lines for a 24-line window:\n%s", n, v)
	}
	if !strings.Contains(v, "> tablet-Eb") || !strings.Contains(v, "of 40") {
		t.Fatalf("cursor row (31st display) or position not shown:\n%s", v)
	}
}

func TestDisplayLabelsAreCutOnCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"SN-0042":          "SN-0042",
		"caisse-entrée-12": "caisse-entr…",
		"ééééééééééééé":    "ééééééééééé…",
	} {
		if got := trimTo(in, 12); got != want {
			t.Errorf("trimTo(%q, 12) = %q, want %q", in, got, want)
		}
	}
}
