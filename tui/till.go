package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// tillModel lists the payments customers made on their own (an M-Pesa
// till), newest first, from the latest snapshot; an unmatched one is
// assigned to a sale by the sale's reference.
type tillModel struct {
	c     *common
	tills []payment.TillPayment
	// cursor is the selected payment; assigning is set while the sale's
	// reference is typed.
	cursor    int
	assigning bool
	// assignID is the payment being assigned, fixed when the operator
	// asks to assign it: a payment arriving meanwhile (listed first)
	// moves the others under the cursor.
	assignID string
	input    textinput.Model
	lay      layout
}

func newTill(c *common) tillModel {
	ti := textinput.New()
	ti.Placeholder = "e.g. PD7K3M9QXA"
	ti.CharLimit = 12
	ti.Width = 16
	return tillModel{c: c, input: ti}
}

// assignedMsg reports the outcome of assigning a till payment.
type assignedMsg struct{ err error }

// reset puts the cursor on the newest payment.
func (t *tillModel) reset() { t.cursor, t.assigning = 0, false }

// typing is set while the sale's reference is typed: keys are text.
func (t *tillModel) typing() bool { return t.assigning }

func (t *tillModel) setSize(l layout) { t.lay = l }

func (t *tillModel) update(msg tea.Msg) (intent, tea.Cmd) {
	switch msg := msg.(type) {
	case snapshotMsg:
		t.tills = msg.snap.Tills
	case tea.KeyMsg:
		return t.key(msg)
	}
	return intent{}, nil
}

func (t *tillModel) key(k tea.KeyMsg) (intent, tea.Cmd) {
	km := t.c.keys
	if t.assigning {
		switch {
		case key.Matches(k, km.Back):
			t.assigning = false
			t.input.Blur()
			return intent{}, nil
		case key.Matches(k, km.Enter):
			txn := strings.ToUpper(strings.TrimSpace(t.input.Value()))
			t.assigning = false
			t.input.Blur()
			if txn == "" {
				return intent{}, nil
			}
			id, d := t.assignID, t.c.desk
			return intent{}, func() tea.Msg { return assignedMsg{d.AssignTill(id, txn)} }
		}
		var cmd tea.Cmd
		t.input, cmd = t.input.Update(k)
		return intent{}, cmd
	}
	switch {
	case key.Matches(k, km.Back, km.Till):
		return intent{back: true}, nil
	case key.Matches(k, km.Up):
		t.cursor = max(t.cursor-1, 0)
	case key.Matches(k, km.Down):
		t.cursor = min(t.cursor+1, max(len(t.tills)-1, 0))
	case key.Matches(k, km.Assign):
		if t.cursor < len(t.tills) && t.tills[t.cursor].Unmatched() {
			t.assigning, t.assignID = true, t.tills[t.cursor].ID
			t.input.SetValue("")
			return intent{}, t.input.Focus()
		}
		return intent{err: "choose an unmatched payment to assign"}, nil
	case key.Matches(k, km.Quit):
		return intent{quit: true}, nil
	}
	return intent{}, nil
}

// view lists the till/paybill payments as they arrive, newest first;
// unmatched ones are highlighted and can be assigned to a sale.
func (t *tillModel) view() string {
	s := t.c.styles
	list := t.tills
	var b strings.Builder
	b.WriteString(s.Title.Render("Till payments (M-Pesa C2B)") + "\n")
	if len(list) == 0 {
		b.WriteString(s.Muted.Render("No till or paybill payments yet this session.") + "\n")
		return b.String()
	}
	unmatched := 0
	rows := max((t.lay.height-12-t.lay.warn)/2, 2) // two lines per payment
	start := max(0, min(t.cursor-rows+1, len(list)-rows))
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
		if i == t.cursor {
			cursor = "> "
		}
		switch {
		case p.Unmatched():
			b.WriteString(cursor + s.Unmatched.Render(line) + "\n  " + s.Unmatched.Render(status) + "\n")
		case i == t.cursor:
			b.WriteString(cursor + s.Selected.Render(line) + "\n  " + status + "\n")
		default:
			b.WriteString(cursor + line + "\n  " + s.Muted.Render(status) + "\n")
		}
	}
	b.WriteString(s.Muted.Render(fmt.Sprintf("%s, %d unmatched", plural(len(list), "payment"), unmatched)) + "\n")
	if t.assigning {
		b.WriteString("\nAssign " + t.assignID + " to sale: " + inputView(s, t.input) + "\n")
	}
	return b.String()
}

func (t *tillModel) shortHelp() []key.Binding {
	km := t.c.keys
	if t.assigning {
		return []key.Binding{km.Enter, km.Back}
	}
	return []key.Binding{km.Up, km.Down, km.Assign, km.Back, km.Payment}
}
