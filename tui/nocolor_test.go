package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"
)

// lineWith is the first line of view that contains text.
func lineWith(view, text string) string {
	for _, l := range strings.Split(view, "\n") {
		if strings.Contains(l, text) {
			return l
		}
	}
	return ""
}

// Without colour (the ASCII profile these tests pin, as NO_COLOR gives)
// the journal's selected row is marked, and the marker moves with it.
func TestNoColourJournalSelection(t *testing.T) {
	bus := testBus(t)
	seed(t, bus)
	m := keys(newModel(testConfig(), &fakeRail{}, bus), "j")
	if l := lineWith(m.View(), "TXN1795340000001"); !strings.HasPrefix(strings.TrimSpace(l), ">") {
		t.Errorf("the selected row is not marked: %q", l)
	}
	if l := lineWith(m.View(), "TXN1795340000000"); strings.HasPrefix(strings.TrimSpace(l), ">") {
		t.Errorf("a row not selected is marked: %q", l)
	}
	next, _ := m.Update(tea.KeyMsg{Type: tea.KeyDown})
	m = next.(Model)
	if l := lineWith(m.View(), "TXN1795340000000"); !strings.HasPrefix(strings.TrimSpace(l), ">") {
		t.Errorf("the marker did not follow the selection down: %q", l)
	}
	if l := lineWith(m.View(), "TXN1795340000001"); strings.HasPrefix(strings.TrimSpace(l), ">") {
		t.Errorf("the marker stayed on the row above: %q", l)
	}
}

// Without colour a placeholder does not read as typed text, and the
// cursor of a field being typed in shows where it is.
func TestNoColourPlaceholderAndCursor(t *testing.T) {
	m := keys(newModel(testConfig(), &fakeRail{}, testBus(t)), "1")
	if l := lineWith(m.View(), "Amount (RM)"); !strings.Contains(l, "e.g. 25.50") || !strings.Contains(l, "|") {
		t.Errorf("empty amount: want an example that reads as one and a cursor, got %q", l)
	}
	m = keys(m, "1", "2")
	if l := lineWith(m.View(), "Amount (RM)"); !strings.Contains(l, "12|") || strings.Contains(l, "e.g.") {
		t.Errorf("amount 12: want the cursor after it and no example, got %q", l)
	}
	next, _ := m.Update(tea.KeyMsg{Type: tea.KeyLeft})
	if l := lineWith(next.(Model).View(), "Amount (RM)"); !strings.Contains(l, "1|2") {
		t.Errorf("cursor moved left: want 1|2, got %q", l)
	}
}

// Goldens of the views whose marks must survive without colour.
func TestNoColourGoldens(t *testing.T) {
	t.Run("journal list", func(t *testing.T) {
		bus := testBus(t)
		seed(t, bus)
		tm := startTest(t, &fakeRail{}, bus)
		tm.Type("j")
		waitText(t, tm, "UNKNOWN")
		tm.Send(tea.KeyMsg{Type: tea.KeyDown})
		golden.RequireEqual(t, []byte(final(t, tm)))
	})
	t.Run("amount typed", func(t *testing.T) {
		tm := startTest(t, &fakeRail{}, testBus(t))
		tm.Type("125")
		golden.RequireEqual(t, []byte(final(t, tm)))
	})
	t.Run("phone empty", func(t *testing.T) {
		bus := testBus(t)
		tm := startWithRails(t, testRails{MPesa: &scriptRail{bus: bus, rail: "mpesa"}}, bus)
		tm.Type("9")
		waitText(t, tm, "phone")
		golden.RequireEqual(t, []byte(final(t, tm)))
	})
}

// With colour the selected journal row is both marked and coloured; the
// golden keeps the escape codes (quoted).
func TestColourJournalGolden(t *testing.T) {
	lipgloss.SetColorProfile(termenv.TrueColor)
	lipgloss.SetHasDarkBackground(true)
	t.Cleanup(func() { lipgloss.SetColorProfile(termenv.Ascii) })
	bus := testBus(t)
	seed(t, bus)
	m := keys(newModel(testConfig(), &fakeRail{}, bus), "j")
	golden.RequireEqual(t, []byte(m.View()))
}
