package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// An M-Pesa payment's peer is a masked phone: the journal list shows it
// whole, as the history does, under a header that fits every rail, and
// the history's long details are read whole at 80 columns.
func TestJournalShowsPhoneWhole(t *testing.T) {
	bus := testBus(t)
	detail := "STK Push of KES 150 to 2547****149, reference PD75GWE5QK, waiting for the customer to enter the M-Pesa PIN"
	for _, ev := range []payment.Event{
		{Time: clock, Kind: payment.KindTransition, TxnID: "PD75GWE5QK", Rail: payment.RailMPesa, Status: payment.StatusCreated,
			Mode: payment.Mode("stk_push"), Amount: payment.Money{Minor: 15000, Currency: "KES"}, Peer: "2547****149", Detail: detail},
		{Time: clock.Add(time.Second), Kind: payment.KindTransition, TxnID: "PD75GWE5QK", Rail: payment.RailMPesa, Status: payment.StatusApproved},
	} {
		if _, err := bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	m := newModel(testConfig(), &fakeRail{}, bus)
	m = press(m, "j")
	v := m.View()
	if !strings.Contains(v, "2547****149") || strings.Contains(v, "2547***…") {
		t.Errorf("the journal list cuts the masked phone:\n%s", v)
	}
	if strings.Contains(v, " POS \n") || !strings.Contains(v, "Peer") {
		t.Errorf("the journal list's peer column is headed POS:\n%s", v)
	}
	m = keys(m, "enter")
	v = m.View()
	if flat := strings.Join(strings.Fields(v), " "); !strings.Contains(flat, detail) {
		t.Errorf("the history cuts a detail:\n%s", v)
	}
	for _, l := range strings.Split(v, "\n") {
		if w := len([]rune(l)); w > 80 {
			t.Errorf("line of %d columns: %q", w, l)
		}
	}
}

// The displays list says what its columns are.
func TestDisplaysListHasHeaders(t *testing.T) {
	cfg := testConfig()
	cfg.Displays = &fakeDisplays{list: []payment.Display{{ID: "a1", Label: "SN-0042", Connected: true, Screen: "PROCESSING",
		TxnID: "TXN1795340000777", Amount: payment.Money{Minor: 6000, Currency: "MYR"}, Method: "DEBIT_CARD"}}}
	m := press(newModel(cfg, &fakeRail{}, testBus(t)), "v")
	lines := strings.Split(m.View(), "\n")
	for i, l := range lines {
		if !strings.Contains(l, "SN-0042") {
			continue
		}
		head := strings.Fields(lines[i-1])
		want := []string{"Display", "State", "Screen", "Amount", "Method", "Payment"}
		if strings.Join(head, " ") != strings.Join(want, " ") {
			t.Errorf("the line above the first display is %q, want the headers %v:\n%s", lines[i-1], want, m.View())
		}
		// Each header starts where its column does.
		for _, h := range []string{"Screen", "Amount", "Method", "Payment"} {
			col := map[string]string{"Screen": "PROCESSING", "Amount": "RM60.00", "Method": "DEBIT_CARD", "Payment": "TXN1795340000777"}[h]
			if strings.Index(lines[i-1], h) != strings.Index(l, col) {
				t.Errorf("header %s is not above %s:\n%s\n%s", h, col, lines[i-1], l)
			}
		}
		return
	}
	t.Fatalf("no display listed:\n%s", m.View())
}

// The status screen's totals keep their columns for every rail's name.
func TestStatusTotalsAligned(t *testing.T) {
	bus := testBus(t)
	for i, r := range []payment.Rail{payment.RailPOS, payment.RailTerminal} {
		id := "TXN179534000000" + string(rune('0'+i))
		for _, ev := range []payment.Event{
			{Time: clock, Kind: payment.KindTransition, TxnID: id, Rail: r, Status: payment.StatusCreated, Mode: payment.ModeCard,
				Amount: payment.Money{Minor: 500, Currency: "MYR"}, Peer: "POS001"},
			{Time: clock, Kind: payment.KindTransition, TxnID: id, Rail: r, Status: payment.StatusApproved},
		} {
			if _, err := bus.Publish(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	v := press(newModel(testConfig(), &fakeRail{}, bus), "6").View()
	var cols []int
	for _, l := range strings.Split(v, "\n") {
		if strings.HasPrefix(l, "  pos ") || strings.HasPrefix(l, "  terminal ") {
			cols = append(cols, strings.Index(l, "approved"))
		}
	}
	if len(cols) != 2 || cols[0] != cols[1] {
		t.Errorf("the totals' status columns start at %v:\n%s", cols, v)
	}
}

// A transition whose detail is its status says it once in the event log.
func TestEventLogSaysApprovedOnce(t *testing.T) {
	l := newEventLog(nil)
	l.add(payment.Event{Time: clock, Kind: payment.KindTransition, TxnID: "TXN1", Peer: "POS001", Status: payment.StatusApproved, Detail: "approved"})
	if got := l.lines[0]; strings.Contains(got, "approved approved") || !strings.HasSuffix(got, "TXN1 POS001 → approved") {
		t.Errorf("event log line %q", got)
	}
}

// The full help (?) on the menu at 80×24 keeps the header on screen: the
// demo's notes give up the lines the help takes.
func TestFullHelpKeepsHeader(t *testing.T) {
	cfg := testConfig()
	cfg.Displays = &fakeDisplays{} // a second header line and item v, as in the demo
	// 23 rows leave no line for the notes: the demo's menu has one item
	// more (m) than this one.
	for _, rows := range []int{24, 23} {
		m := newModel(cfg, &fakeRail{}, testBus(t))
		next, _ := m.Update(tea.WindowSizeMsg{Width: 80, Height: rows})
		m = press(next.(Model), "?")
		if !m.help.ShowAll {
			t.Fatal("? did not open the full help")
		}
		lines := strings.Split(m.View(), "\n")
		if len(lines) > rows || !strings.Contains(lines[0], "paydesk KIOSK001") {
			t.Errorf("%d lines at %d rows, the first %q:\n%s", len(lines), rows, lines[0], m.View())
		}
	}
}

// A plan without instalments is not listed as "(-, 0)".
func TestPayInFullPlanLabel(t *testing.T) {
	m := newModel(testConfig(), &fakeRail{}, testBus(t))
	m.screen, m.pay.phase, m.pay.amount = scrPay, phasePlans, payment.Money{Minor: 10000, Currency: "MYR"}
	m.pay.plans = []payment.Plan{{ID: "IPP_3M", Frequency: "Monthly", TotalInstallments: 3}, {ID: "pay-in-full"}}
	v := m.View()
	if strings.Contains(v, "(-, 0)") || !strings.Contains(v, "pay-in-full (one payment)") || !strings.Contains(v, "IPP_3M (Monthly, 3)") {
		t.Errorf("plan labels:\n%s", v)
	}
}
