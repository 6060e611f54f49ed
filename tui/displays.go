package tui

import (
	"context"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// Displays is what the console needs of the customer-display server
// (*screens.Server): the displays it knows and a way to reset one. tui
// does not import screens; the server satisfies this interface.
type Displays interface {
	Displays() []payment.Display
	ResetDisplay(id string) error
}

// displayItem is the menu item of the displays screen, listed only when a
// display server runs.
var displayItem = menuItem{act: actDisplays, label: "Customer displays"}

// items are the menu's items: the fixed ones, then the M-Pesa till
// payments when the rail lists them, and the displays when their server
// runs.
func (m Model) items() []menuItem {
	items := menuItems[:len(menuItems):len(menuItems)]
	if m.till() != nil {
		items = append(items, tillItem)
	}
	if m.cfg.Displays != nil {
		items = append(items, displayItem)
	}
	return items
}

// displaysView lists each display: where it is connected from, its
// screen, the customer's amount and method, and the payment's id.
func (m Model) displaysView() string {
	s := m.styles
	var b strings.Builder
	b.WriteString(s.Title.Render("Customer displays") + "\n")
	if len(m.displays) == 0 {
		b.WriteString("  none connected\n")
	} else {
		b.WriteString(s.Muted.Render(fmt.Sprintf("  %-12s %-9s %-14s %-10s %-11s %s", "Display", "State", "Screen", "Amount", "Method", "Payment")) + "\n")
	}
	// Show the rows that fit (below the headers), keeping the cursor in
	// view.
	rows := max(m.height-9-len(m.health)-m.warnLines(), 3)
	first := 0
	if m.displayCursor >= rows {
		first = m.displayCursor - rows + 1
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
		if i == m.displayCursor {
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

// displaysHeader counts the connected displays for the header.
func (m Model) displaysHeader() string {
	n := 0
	for _, d := range m.displays {
		if d.Connected {
			n++
		}
	}
	if n == 0 {
		return m.styles.Muted.Render("none")
	}
	return m.styles.Approved.Render(fmt.Sprintf("%d connected", n))
}

// trimTo cuts s to n characters (the width fmt pads to), the last one an
// ellipsis.
func trimTo(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// displaysKey moves in the list, opens a display's payment in the
// waiting (or result) view, and resets a display.
func (m Model) displaysKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	km := m.keys
	n := len(m.displays)
	switch {
	case key.Matches(k, km.Back):
		m.screen = scrMenu
	case key.Matches(k, km.Up) && n > 0:
		m.displayCursor = (m.displayCursor + n - 1) % n
	case key.Matches(k, km.Down) && n > 0:
		m.displayCursor = (m.displayCursor + 1) % n
	case key.Matches(k, km.ResetDisplay) && n > 0:
		d, disp := m.displays[min(m.displayCursor, n-1)], m.cfg.Displays
		return m, func() tea.Msg {
			if err := disp.ResetDisplay(d.ID); err != nil {
				return errMsg{err}
			}
			return nil
		}
	case key.Matches(k, km.Enter) && n > 0:
		d := m.displays[min(m.displayCursor, n-1)]
		if d.TxnID == "" {
			m.errLine = d.Label + " has no payment yet (" + orDash(d.Screen) + ")"
			return m, nil
		}
		m.openTxn(d.TxnID)
	case key.Matches(k, km.Quit):
		return m.quit()
	}
	return m, nil
}

// openTxn shows a payment the console did not start (a display's) the way
// it shows its own: the waiting view with its steps so far, or its result.
func (m *Model) openTxn(id string) {
	j := m.bus.Journal()
	t, err := j.Txn(context.Background(), id)
	if err != nil {
		m.errLine = err.Error()
		return
	}
	hist, err := j.History(context.Background(), id)
	if err != nil {
		m.errLine = err.Error()
		return
	}
	m.txn, m.txnAmount, m.mode, m.railName, m.started = t.ID, t.Amount, t.Mode, string(t.Rail), t.CreatedAt
	m.steps, m.sentPlaceholder, m.confirmCanc = []string{"request sent"}, true, false
	m.screen, m.payScreen = scrWaiting, scrWaiting
	for _, ev := range hist {
		m.apply(ev) // steps and transitions; the display's screens are not steps
	}
}
