package tui

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// runCmd runs cmd the way the program does, each Cmd of a batch in its
// own goroutine, and sends every message they return on out.
func runCmd(cmd tea.Cmd, out chan<- tea.Msg) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				runCmd(c, out)
			}
			return
		}
		if msg != nil {
			out <- msg
		}
	}()
}

// Update reads neither the journal nor anything else that can block: every
// message that used to read in Update (the tick, the status, the journal's
// list, history, ask and resolve, an outcome, a display's payment, the
// till) returns at once having read nothing, and the read happens in the
// Cmd it returns. The journal counts its reads (payment.Journal's read
// hook); Update is called directly, with no program around it.
func TestUpdateReadsNothing(t *testing.T) {
	bus := testBus(t)
	seed(t, bus)
	var reads atomic.Int64
	bus.Journal().SetReadHook(func(string) { reads.Add(1) })
	mp := &tillRail{scriptRail: scriptRail{bus: bus, rail: payment.RailMPesa, health: payment.Health{Up: true, Detail: "ready"}}}
	mp.payments = []payment.TillPayment{{ID: "RKTQDM7W6S", Amount: payment.Money{Minor: 5000, Currency: "KES"}, Time: clock, Note: "no sale"}}
	cfg := testConfig()
	cfg.Rails = testRails{MPesa: mp}
	cfg.Displays = &fakeDisplays{list: []payment.Display{{ID: "a1", Label: "SN-0042", Connected: true, Screen: "PROCESSING",
		TxnID: "TXN1795340000000", Amount: payment.Money{Minor: 2550, Currency: "MYR"}}}}
	m := newModel(cfg, &fakeRail{}, bus)
	if n := reads.Load(); n != 0 {
		t.Fatalf("New read the journal %d times", n)
	}

	// step hands msg to Update and checks it read nothing; when want is
	// set, the Cmd it returned must read, and come back as a want.
	// Then the model moves on as the program would (update).
	step := func(name string, msg tea.Msg, want string) {
		t.Helper()
		before := reads.Load()
		_, cmd := m.Update(msg)
		if n := reads.Load() - before; n != 0 {
			t.Fatalf("%s: Update read the journal %d times", name, n)
		}
		if want != "" {
			out := make(chan tea.Msg, 16)
			runCmd(cmd, out)
			deadline := time.After(10 * time.Second)
			for got := ""; got != want; {
				select {
				case msg := <-out:
					got = fmt.Sprintf("%T", msg)
				case <-deadline:
					t.Fatalf("%s: no %s from the Cmd within 10 s", name, want)
				}
			}
			if reads.Load() == before {
				t.Fatalf("%s: the Cmd's %s read nothing", name, want)
			}
		}
		m = update(m, msg)
	}
	const snap, journal = "tui.snapshotMsg", "tui.journalMsg"
	step("tick", tickMsg(clock), snap)
	step("status", keyMsg("6"), snap)
	step("back", keyMsg("esc"), "")
	step("journal", keyMsg("j"), journal)
	step("open a payment", tea.KeyMsg{Type: tea.KeyEnter}, journal)
	// What an ask or a resolution brings back changes the counts: a
	// refresh, in a Cmd.
	open := *m.journal.open
	step("an answer", journalMsg{asked: true, changed: true, words: "checked", open: &open, txns: m.journal.txns}, snap)
	step("back to the list", keyMsg("esc"), "")
	step("back to the menu", keyMsg("esc"), "")
	step("started", startedMsg{id: "TXN1795340000009", amount: payment.Money{Minor: 2550, Currency: "MYR"}}, "")
	step("an outcome", eventMsg{Kind: payment.KindTransition, TxnID: "TXN1795340000009", Status: payment.StatusApproved,
		Result: &payment.Result{AuthCode: "A1"}}, snap)
	step("read the result", keyMsg("x"), "")
	step("displays", keyMsg("v"), snap)
	step("a display's payment", tea.KeyMsg{Type: tea.KeyEnter}, "tui.shownMsg")
	if at(m) != scrResult || m.pay.txn != "TXN1795340000000" {
		t.Fatalf("the display's payment is not shown: screen %d, %q", at(m), m.pay.txn)
	}
	step("read it", keyMsg("x"), "")
	step("till", keyMsg("m"), snap)
	step("assigned", assignedMsg{}, snap)

	// The hook counts what Update would have read: the journal itself.
	before := reads.Load()
	m.c.desk.Journal().Counts(context.Background())
	if reads.Load() == before {
		t.Fatal("the read hook does not count")
	}
}

// A snapshot is read outside Update, so an older one (Init's, taken
// before the payment started) may come after a newer one (the start's):
// it must not replace it (the payment's countdown, the flights).
func TestAnOlderSnapshotDoesNotReplaceANewerOne(t *testing.T) {
	rail := &fakeRail{}
	m := newModel(testConfig(), rail, testBus(t))
	before := m.c.snapshot(context.Background(), 0, "", "") // as Init takes it
	rail.started.Store(true)
	after := m.c.snapshot(context.Background(), 0, payment.RailPOS, "TXN1795340000000")
	m = send(keys(m, "1"), startedMsg{id: "TXN1795340000000", amount: payment.Money{Minor: 2550, Currency: "MYR"}, snap: &after})
	if v := m.View(); !strings.Contains(v, "waiting for ack: 8s left") {
		t.Fatalf("no countdown after the start:\n%s", v)
	}
	m = send(m, before)
	if v := m.View(); !strings.Contains(v, "waiting for ack: 8s left") {
		t.Errorf("Init's older snapshot took the countdown away:\n%s", v)
	}
	if _, ok := m.snap.Flight("TXN1795340000000"); !ok {
		t.Errorf("Init's older snapshot replaced the start's: flights %v", m.snap.Flights)
	}
}
