package tui

import (
	"context"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// displaysModel lists the customer displays from the latest snapshot:
// where each is connected from, its screen, the customer's amount and
// method, and the payment's id. Enter shows that payment, r resets the
// display.
type displaysModel struct {
	c        *common
	displays []payment.Display
	health   int // how many rails report their health (the header's line)
	cursor   int
	lay      layout
}

// shownMsg is a payment the console did not start, read from the journal
// to be shown as the payment (a display's).
type shownMsg struct {
	txn     payment.Txn
	history []payment.Event
	err     error
}

func (m *displaysModel) setSize(l layout) { m.lay = l }

func (m *displaysModel) update(msg tea.Msg) (intent, tea.Cmd) {
	switch msg := msg.(type) {
	case snapshotMsg:
		m.displays, m.health = msg.snap.Displays, len(msg.snap.Health)
	case tea.KeyMsg:
		return m.key(msg)
	}
	return intent{}, nil
}

// key moves in the list, opens a display's payment and resets a display.
func (m *displaysModel) key(k tea.KeyMsg) (intent, tea.Cmd) {
	km := m.c.keys
	n := len(m.displays)
	switch {
	case key.Matches(k, km.Back):
		return intent{back: true}, nil
	case key.Matches(k, km.Up, km.Down) && n > 0:
		m.cursor = cycle(m.cursor, n, km, k)
	case key.Matches(k, km.ResetDisplay) && n > 0:
		d, dk := m.displays[min(m.cursor, n-1)], m.c.desk
		return intent{}, act(func() error { return dk.ResetDisplay(d.ID) })
	case key.Matches(k, km.Enter) && n > 0:
		d := m.displays[min(m.cursor, n-1)]
		if d.TxnID == "" {
			return intent{err: d.Label + " has no payment yet (" + orDash(d.Screen) + ")"}, nil
		}
		return intent{}, showCmd(m.c, d.TxnID)
	case key.Matches(k, km.Quit):
		return intent{quit: true}, nil
	}
	return intent{}, nil
}

// showCmd reads payment id and its history, to show it as the payment.
func showCmd(c *common, id string) tea.Cmd {
	return c.read(func(ctx context.Context) tea.Msg {
		t, hist, err := history(ctx, c, id)
		if err != nil {
			return shownMsg{err: err}
		}
		return shownMsg{txn: *t, history: hist}
	})
}

func (m *displaysModel) view() string {
	s := m.c.styles
	var b strings.Builder
	b.WriteString(s.Title.Render("Customer displays") + "\n")
	if len(m.displays) == 0 {
		b.WriteString("  none connected\n")
	} else {
		b.WriteString(s.Muted.Render(fmt.Sprintf("  %-12s %-9s %-14s %-10s %-11s %s", "Display", "State", "Screen", "Amount", "Method", "Payment")) + "\n")
	}
	// Show the rows that fit (below the headers), keeping the cursor in
	// view.
	rows := max(m.lay.height-9-m.health-m.lay.warn, 3)
	first := 0
	if m.cursor >= rows {
		first = m.cursor - rows + 1
	}
	last := min(len(m.displays), first+rows)
	for i := first; i < last; i++ {
		d := m.displays[i]
		state := s.Approved.Render("connected")
		if !d.Connected {
			state = s.Pending.Render("away     ")
		}
		amount := "-"
		if d.Amount.Minor > 0 {
			amount = d.Amount.String()
		}
		line := fmt.Sprintf("%-12s %s %-14s %-10s %-11s %s", trimTo(d.Label, 12), state, orDash(d.Screen), amount, orDash(d.Method), orDash(d.TxnID))
		if i == m.cursor {
			b.WriteString(s.Selected.Render("> ") + line + "\n")
		} else {
			b.WriteString("  " + line + "\n")
		}
	}
	more := ""
	if len(m.displays) > rows {
		more = fmt.Sprintf("%d-%d of %d  ", first+1, last, len(m.displays))
	}
	b.WriteString("\n" + s.Muted.Render(more+"enter: the display's payment  r: reset to the amounts (not while paying)"))
	return b.String()
}

func (m *displaysModel) shortHelp() []key.Binding {
	km := m.c.keys
	return []key.Binding{km.Up, km.Down, km.Enter, km.ResetDisplay, km.Back, km.Payment}
}

// displaysHeader counts the connected displays for the header.
func displaysHeader(s *Styles, displays []payment.Display) string {
	n := 0
	for _, d := range displays {
		if d.Connected {
			n++
		}
	}
	if n == 0 {
		return s.Muted.Render("none")
	}
	return s.Approved.Render(fmt.Sprintf("%d connected", n))
}

// trimTo cuts s to n characters (the width fmt pads to), the last one an
// ellipsis.
func trimTo(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
