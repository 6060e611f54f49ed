package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// tillItem opens the till payments view; it is listed only when the
// M-Pesa rail reports till payments (payment.Till).
var tillItem = menuItem{actTill, "Till payments (M-Pesa)", "", ""}

// tillView is the state of the till payments screen: the selected
// payment, and the sale reference typed to assign it.
type tillView struct {
	cursor    int
	assigning bool
	// assignID is the payment being assigned, fixed when the operator
	// asks to assign it: a payment arriving meanwhile (listed first)
	// moves the others under the cursor.
	assignID string
	input    textinput.Model
}

func newTillView() tillView {
	ti := textinput.New()
	ti.Placeholder = "e.g. PD7K3M9QXA"
	ti.CharLimit = 12
	ti.Width = 16
	return tillView{input: ti}
}

// assignedMsg reports the outcome of assigning a till payment.
type assignedMsg struct{ err error }

// till returns the rail that lists till payments, or nil.
func (m Model) till() payment.Till {
	if m.cfg.Rails.MPesa == nil {
		return nil
	}
	t, _ := m.cfg.Rails.MPesa.(payment.Till)
	return t
}

// tillPayments asks the rail for its till payments; refresh keeps them
// in m.tills for the view and its keys.
func (m Model) tillPayments() []payment.TillPayment {
	if t := m.till(); t != nil {
		return t.TillPayments()
	}
	return nil
}

func (m Model) tillKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	km, tv := m.keys, &m.tillv
	list := m.tills
	if tv.assigning {
		switch {
		case key.Matches(k, km.Back):
			tv.assigning = false
			tv.input.Blur()
			return m, nil
		case key.Matches(k, km.Enter):
			txn := strings.ToUpper(strings.TrimSpace(tv.input.Value()))
			tv.assigning = false
			tv.input.Blur()
			if txn == "" {
				return m, nil
			}
			id, t := tv.assignID, m.till()
			return m, func() tea.Msg { return assignedMsg{t.AssignTill(id, txn)} }
		}
		var cmd tea.Cmd
		tv.input, cmd = tv.input.Update(k)
		return m, cmd
	}
	switch {
	case key.Matches(k, km.Back, km.Till):
		m.screen = scrMenu
	case key.Matches(k, km.Up):
		tv.cursor = max(tv.cursor-1, 0)
	case key.Matches(k, km.Down):
		tv.cursor = min(tv.cursor+1, max(len(list)-1, 0))
	case key.Matches(k, km.Assign):
		if tv.cursor < len(list) && list[tv.cursor].Unmatched() {
			tv.assigning, tv.assignID = true, list[tv.cursor].ID
			tv.input.SetValue("")
			return m, tv.input.Focus()
		}
		m.errLine = "choose an unmatched payment to assign"
	case key.Matches(k, km.Quit):
		return m.quit()
	}
	return m, nil
}

// tillScreen lists the till/paybill payments as they arrive, newest
// first; unmatched ones are highlighted and can be assigned to a sale.
func (m Model) tillScreen() string {
	s, tv := m.styles, m.tillv
	list := m.tills
	var b strings.Builder
	b.WriteString(s.Title.Render("Till payments (M-Pesa C2B)") + "\n")
	if len(list) == 0 {
		b.WriteString(s.Muted.Render("No till or paybill payments yet this session.") + "\n")
		return b.String()
	}
	unmatched := 0
	rows := max((m.height-12-m.warnLines())/2, 2) // two lines per payment
	start := max(0, min(tv.cursor-rows+1, len(list)-rows))
	for i, p := range list {
		if p.Unmatched() {
			unmatched++
		}
		if i < start || i >= start+rows {
			continue
		}
		line := fmt.Sprintf("%s %-10s %11s  ref %-12s %s", p.Time.Local().Format("15:04"), p.ID, p.Amount, orDash(p.Reference), p.Payer)
		status := "    → " + p.TxnID + " " + p.Note
		if p.Unmatched() {
			status = "    UNMATCHED: " + p.Note
		}
		cursor := "  "
		if i == tv.cursor {
			cursor = "> "
		}
		switch {
		case p.Unmatched():
			b.WriteString(cursor + s.Unmatched.Render(line) + "\n  " + s.Unmatched.Render(status) + "\n")
		case i == tv.cursor:
			b.WriteString(cursor + s.Selected.Render(line) + "\n  " + status + "\n")
		default:
			b.WriteString(cursor + line + "\n  " + s.Muted.Render(status) + "\n")
		}
	}
	b.WriteString(s.Muted.Render(fmt.Sprintf("%s, %d unmatched", plural(len(list), "payment"), unmatched)) + "\n")
	if tv.assigning {
		b.WriteString("\nAssign " + tv.assignID + " to sale: " + m.inputView(tv.input) + "\n")
	}
	return b.String()
}
