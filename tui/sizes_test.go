package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"paydesk/payment"
)

// sized is m after the window takes w×h.
func sized(m Model, w, h int) Model {
	return update(m, tea.WindowSizeMsg{Width: w, Height: h})
}

func send(m Model, msg tea.Msg) Model { return update(m, msg) }

// fits checks that a view is no taller and no wider than the window and
// keeps the header's first line.
func fits(t *testing.T, v string, w, h int) {
	t.Helper()
	lines := strings.Split(v, "\n")
	if len(lines) > h {
		t.Errorf("%d lines in a %d-row window:\n%s", len(lines), h, v)
	}
	for _, l := range lines {
		if ansi.StringWidth(l) > w {
			t.Errorf("line wider than %d: %q", w, l)
		}
	}
	if !strings.Contains(lines[0], "paydesk") {
		t.Errorf("the header scrolled off:\n%s", v)
	}
}

// flat is a view's words on one line, so text wrapped over lines is
// found whole.
func flat(v string) string { return strings.Join(strings.Fields(v), " ") }

// At 80×24 the menu's footer keeps "? help" and "q quit".
func TestFooterKeepsHelpAndQuit(t *testing.T) {
	for _, m := range []Model{sized(fullModel(t), 80, 24), sized(newModel(testConfig(), &fakeRail{}, testBus(t)), 80, 24)} {
		v := m.View()
		lines := strings.Split(v, "\n")
		last := lines[len(lines)-1]
		if !strings.Contains(last, "? help") || !strings.Contains(last, "q quit") {
			t.Errorf("the footer %q lacks ? help or q quit", last)
		}
	}
}

const longReason = "the issuer declined the card: the customer's bank reports that the account is closed and asks the cashier to keep the card"

// A long reason, the RESULT line and the journal's detail wrap whole.
func TestLongLinesWrap(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {60, 15}} {
		w, h := size[0], size[1]
		m := sized(newModel(testConfig(), &fakeRail{}, testBus(t)), w, h)
		m = send(keys(m, "1"), startedMsg{id: "TXN1795340000000", amount: payment.Money{Minor: 2550, Currency: "MYR"}})
		m = send(m, eventMsg{Kind: payment.KindTransition, TxnID: "TXN1795340000000", Status: payment.StatusDeclined,
			Result: &payment.Result{Reason: longReason, RemoteID: "000410"}})
		v := m.View()
		fits(t, v, w, h)
		line := payment.ResultLine(m.pay.txn, payment.StatusDeclined, m.pay.amount, m.pay.result.Result)
		for _, want := range []string{longReason, flat(line)} {
			if !strings.Contains(flat(v), want) {
				t.Errorf("%dx%d: the result screen cuts %q:\n%s", w, h, want, v)
			}
		}
	}
	bus := testBus(t)
	for _, ev := range []payment.Event{
		{Time: clock, Kind: payment.KindTransition, TxnID: "TXN1795340000009", Rail: payment.RailPOS, Status: payment.StatusCreated,
			Mode: payment.ModeCard, Amount: payment.Money{Minor: 2550, Currency: "MYR"}, Peer: "POS001", Detail: "card RM25.50 to POS001"},
		{Time: clock, Kind: payment.KindTransition, TxnID: "TXN1795340000009", Rail: payment.RailPOS, Status: payment.StatusDeclined, Detail: longReason},
	} {
		if _, err := bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	m := keys(sized(newModel(testConfig(), &fakeRail{}, bus), 60, 15), "j", "enter")
	v := m.View()
	fits(t, v, 60, 15)
	for _, want := range []string{longReason, "TXN1795340000009 pos card RM25.50 on POS001: declined"} {
		if !strings.Contains(flat(v), want) {
			t.Errorf("the journal's detail cuts %q:\n%s", want, v)
		}
	}
}

// At 60×15 the header and the selected item stay in view: the body
// scrolls under the header.
func TestSmallWindowKeepsHeaderAndSelection(t *testing.T) {
	m := sized(fullModel(t), 60, 15)
	for _, move := range []tea.KeyMsg{{Type: tea.KeyUp}, {Type: tea.KeyUp}, {Type: tea.KeyUp}} {
		m = send(m, move)
		v := m.View()
		fits(t, v, 60, 15)
		it := m.menu.items[m.menu.cursor]
		if !strings.Contains(v, "> "+label(m.menu.binding(it))+". ") {
			t.Errorf("the selected item %q is not in view:\n%s", it.label, v)
		}
		if !strings.Contains(v, "POS connected") {
			t.Errorf("the header lost the POS state:\n%s", v)
		}
	}
}

// The journal list takes the window's height, not a fixed 11 rows.
func TestJournalListUsesTheHeight(t *testing.T) {
	bus := testBus(t)
	for i := range 40 {
		id := fmt.Sprintf("TXN17953400000%02d", i)
		if _, err := bus.Publish(context.Background(), payment.Event{Time: clock.Add(time.Duration(i) * time.Second), Kind: payment.KindTransition,
			TxnID: id, Rail: payment.RailPOS, Status: payment.StatusCreated, Mode: payment.ModeCard,
			Amount: payment.Money{Minor: 100, Currency: "MYR"}, Peer: "POS001"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range [][2]int{{200, 60}, {80, 24}, {60, 15}} {
		w, h := size[0], size[1]
		m := keys(sized(newModel(testConfig(), &fakeRail{}, bus), w, h), "j")
		v := m.View()
		fits(t, v, w, h)
		rows := strings.Count(v, "TXN17953400000")
		// Header, blank, title, column heads, blank, footer: the rest.
		if want := min(h-6, 40); rows < want-1 || rows > want {
			t.Errorf("%dx%d: %d journal rows, want about %d:\n%s", w, h, rows, want, v)
		}
	}
}

// The demo's notes (every outcome, the till and HTTP API commands) are
// one key away in any window, scrolled, rather than shown only in a
// window tall enough for all of them.
func TestDemoNotesScreen(t *testing.T) {
	cfg := testConfig()
	var notes []string
	for i := range 70 {
		notes = append(notes, fmt.Sprintf("note line %02d", i))
	}
	notes = append(notes, "A customer paying the till: curl -d amount=100 http://127.0.0.1:1/sandbox/c2b")
	cfg.DemoNotes = strings.Join(notes, "\n")
	m := sized(newModel(cfg, &fakeRail{}, testBus(t)), 80, 24)
	if v := m.View(); !strings.Contains(v, "n demo notes") {
		t.Errorf("the menu does not offer the notes:\n%s", v)
	}
	m = keys(m, "n")
	v := m.View()
	fits(t, v, 80, 24)
	if !strings.Contains(v, "note line 00") {
		t.Fatalf("n does not show the notes:\n%s", v)
	}
	for range 10 { // 71 lines, at least 10 a page
		m = send(m, tea.KeyMsg{Type: tea.KeyPgDown})
	}
	if v := m.View(); !strings.Contains(v, "sandbox/c2b") {
		t.Errorf("the end of the notes is not reachable:\n%s", v)
	}
	if m = keys(m, "esc"); at(m) != scrMenu {
		t.Errorf("esc on the notes: screen %d, want the menu", at(m))
	}
}

// Goldens of the main views at 80×24, 60×15 and 200×60 (ASCII profile).
func TestSizeGoldens(t *testing.T) {
	views := []struct {
		name  string
		drive func(t *testing.T, m Model) Model
	}{
		{"menu", func(t *testing.T, m Model) Model { return m }},
		{"help", func(t *testing.T, m Model) Model { return keys(m, "?") }},
		{"amount", func(t *testing.T, m Model) Model { return typed(keys(m, "1"), "25.5") }},
		{"waiting", func(t *testing.T, m Model) Model {
			return send(keys(m, "1"), startedMsg{id: "TXN1795340000000", amount: payment.Money{Minor: 2550, Currency: "MYR"}})
		}},
		{"result", func(t *testing.T, m Model) Model {
			m = send(keys(m, "1"), startedMsg{id: "TXN1795340000000", amount: payment.Money{Minor: 2550, Currency: "MYR"}})
			return send(m, eventMsg{Kind: payment.KindTransition, TxnID: "TXN1795340000000", Status: payment.StatusDeclined,
				Result: &payment.Result{Reason: longReason, RemoteID: "000410"}})
		}},
		{"journal", func(t *testing.T, m Model) Model { seed(t, m.c.desk.Bus()); return keys(m, "j") }},
		{"journal detail", func(t *testing.T, m Model) Model { seed(t, m.c.desk.Bus()); return keys(m, "j", "enter") }},
		{"status", func(t *testing.T, m Model) Model { return keys(m, "6") }},
		{"notes", func(t *testing.T, m Model) Model { return keys(m, "n") }},
	}
	// Without colour (the tests' ASCII profile, as NO_COLOR gives) and
	// with it: neither may lose what the other shows.
	for _, colour := range []bool{false, true} {
		suffix := ""
		if colour {
			suffix = " colour"
		}
		for _, size := range [][2]int{{80, 24}, {60, 15}, {200, 60}} {
			for _, vw := range views {
				t.Run(fmt.Sprintf("%s %dx%d%s", vw.name, size[0], size[1], suffix), func(t *testing.T) {
					if colour {
						lipgloss.SetColorProfile(termenv.TrueColor)
						lipgloss.SetHasDarkBackground(true)
						t.Cleanup(func() { lipgloss.SetColorProfile(termenv.Ascii) })
					}
					m := vw.drive(t, sized(newModel(testConfig(), &fakeRail{}, testBus(t)), size[0], size[1]))
					v := m.View()
					fits(t, v, size[0], size[1])
					if colour && ansi.Strip(v) == v {
						t.Errorf("no colour in the coloured view:\n%s", v)
					}
					golden.RequireEqual(t, []byte(v))
				})
			}
		}
	}
}

func TestDisabledReasonsWrapInANarrowWindow(t *testing.T) {
	// At 60 columns a disabled item's reason ran off the edge ("set
	// --ter"): the operator must read it whole, flag unbroken.
	m := sized(newModel(testConfig(), &fakeRail{}, testBus(t)), 60, 40)
	v := m.View()
	fits(t, v, 60, 40)
	for _, want := range []string{"(set", "--terminal-port)", "the M-Pesa", "settings)"} {
		if !strings.Contains(v, want) {
			t.Errorf("the menu at 60 columns lacks %q:\n%s", want, v)
		}
	}
}
