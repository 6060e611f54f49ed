package tui

import (
	"context"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/desk"
	"paydesk/payment"
)

// formModel is the payment form: the customer's phone first on a rail
// that takes one (desk.Rail.Phone), then the amount, checked as it is
// typed by the desk's rules for the rail; on a rail with several peers,
// the POS the payment goes to.
type formModel struct {
	c    *common
	item desk.Item
	rail desk.Rail
	// amount and phone are the fields; askPhone is set while the phone
	// is asked.
	amount, phone textinput.Model
	askPhone      bool
	// err is the refusal under the field: of what was typed, or of the
	// rail when the payment would not start.
	err string
	// target is the POS the operator chose with tab; "" means the rail's
	// default (the POS that last completed a payment, else the earliest).
	target string
	peers  []payment.Peer
	def    string
	width  int
}

func newForm(c *common) formModel {
	ti := textinput.New()
	ti.Placeholder = "e.g. 25.50"
	ti.CharLimit = 16
	ti.Width = 16
	ph := textinput.New()
	ph.Placeholder = "e.g. 0712 345 678"
	ph.CharLimit = 20
	ph.Width = 20
	return formModel{c: c, amount: ti, phone: ph}
}

// startedMsg reports the outcome of asking the rail for a payment, with
// the snapshot taken once it started (its countdown).
type startedMsg struct {
	id     string
	amount payment.Money
	err    error
	snap   *snapshotMsg
}

// open empties the form for item it and focuses its first field.
func (f *formModel) open(it desk.Item) tea.Cmd {
	f.item, f.err = it, ""
	f.rail, _ = f.c.desk.Rail(it.Rail)
	f.amount.SetValue("")
	// The example says what the rail takes (M-Pesa: whole shillings).
	f.amount.Placeholder = f.rail.Example
	if f.rail.Phone {
		f.askPhone = true
		f.phone.SetValue("")
		return f.phone.Focus()
	}
	f.askPhone = false
	return f.amount.Focus()
}

// refused shows why the rail would not start the payment: the form stays
// as typed, the refusal under it, so nothing is typed twice.
func (f *formModel) refused(err error) tea.Cmd {
	f.err = err.Error()
	if !f.askPhone {
		return f.amount.Focus()
	}
	return nil
}

func (f *formModel) setSize(l layout) { f.width = l.width }

func (f *formModel) update(msg tea.Msg) (intent, tea.Cmd) {
	switch msg := msg.(type) {
	case snapshotMsg:
		f.peers, f.def = msg.snap.Peers, msg.snap.Default
	case tea.KeyMsg:
		if f.askPhone {
			return f.phoneKey(msg)
		}
		return f.amountKey(msg)
	}
	return intent{}, nil
}

// targets is set when the payment may go to one of several POS.
func (f *formModel) targets() bool { return f.rail.Peers && len(f.peers) > 1 }

func (f *formModel) amountKey(k tea.KeyMsg) (intent, tea.Cmd) {
	km := f.c.keys
	switch {
	case key.Matches(k, km.Back) && f.rail.Phone:
		// One field back: the phone, as typed.
		f.amount.Blur()
		f.askPhone, f.err = true, ""
		return intent{}, f.phone.Focus()
	case key.Matches(k, km.Back):
		f.amount.Blur()
		return intent{back: true}, nil
	case key.Matches(k, km.Target) && f.targets():
		f.target = f.nextTarget()
		return intent{}, nil
	case key.Matches(k, km.Enter):
		amt, err := f.c.desk.ParseAmount(f.item.Rail, f.amount.Value())
		if err != nil {
			f.err = err.Error()
			return intent{}, nil
		}
		f.amount.Blur()
		return intent{}, f.start(amt)
	}
	var cmd tea.Cmd
	f.amount, cmd = f.amount.Update(k)
	f.err = ""
	if v := f.amount.Value(); v != "" {
		if _, err := f.c.desk.ParseAmount(f.item.Rail, v); err != nil {
			f.err = err.Error()
		}
	}
	return intent{}, cmd
}

// start asks the desk for the payment; once it started, the Cmd takes a
// snapshot too, so the payment's countdown shows at once.
func (f *formModel) start(amt payment.Money) tea.Cmd {
	c, it, target := f.c, f.item, f.target
	req := payment.Request{Amount: amt, Phone: f.phone.Value()}
	return func() tea.Msg {
		ctx := context.Background()
		id, err := c.desk.Start(ctx, it, req, target)
		msg := startedMsg{id: id, amount: amt, err: err}
		if err == nil {
			snap := c.snapshot(ctx, 0, it.Rail, id)
			msg.snap = &snap
		}
		return msg
	}
}

// phoneKey takes the customer's phone number before the amount. A rail
// that checks numbers refuses a bad one here; otherwise its refusal shows
// when the payment starts.
func (f *formModel) phoneKey(k tea.KeyMsg) (intent, tea.Cmd) {
	km := f.c.keys
	switch {
	case key.Matches(k, km.Back):
		f.phone.Blur()
		return intent{back: true}, nil
	case key.Matches(k, km.Enter):
		if err := f.c.desk.CheckPhone(f.item.Rail, f.phone.Value()); err != nil {
			f.err = err.Error()
			return intent{}, nil
		}
		f.phone.Blur()
		f.askPhone, f.err = false, ""
		return intent{}, f.amount.Focus()
	}
	var cmd tea.Cmd
	f.phone, cmd = f.phone.Update(k)
	f.err = ""
	return intent{}, cmd
}

// targetLabel is the POS the next payment goes to.
func (f *formModel) targetLabel() string {
	if f.target != "" {
		return f.target
	}
	return f.def
}

// nextTarget is the connected POS after the current target.
func (f *formModel) nextTarget() string {
	cur := f.targetLabel()
	for i, p := range f.peers {
		if p.Label() == cur {
			return f.peers[(i+1)%len(f.peers)].Label()
		}
	}
	return f.peers[0].Label()
}

func (f *formModel) view() string {
	s := f.c.styles
	cur := f.c.desk.Currency(f.item.Rail)
	if cur == "MYR" {
		cur = "RM"
	}
	v := s.Title.Render(f.item.Form) + "\n\n"
	if f.rail.Phone {
		v += "Customer's phone: " + inputView(s, f.phone) + "\n"
		if f.askPhone {
			if f.err != "" {
				v += s.ErrorText.Render(wrap("! "+f.err, f.width)) + "\n"
			}
			return strings.TrimRight(v, "\n")
		}
	}
	v += "Amount (" + cur + "): " + inputView(s, f.amount)
	if f.err != "" {
		// "!" marks the refusal where colour does not show.
		v += "\n" + s.ErrorText.Render(wrap("! "+f.err, f.width))
	}
	if f.targets() {
		v += "\n\nPOS: " + s.Selected.Render(f.targetLabel()) + s.Muted.Render(fmt.Sprintf("  (%d connected; tab: next)", len(f.peers)))
	}
	return v
}

func (f *formModel) shortHelp() []key.Binding {
	km := f.c.keys
	if f.targets() {
		return []key.Binding{km.Enter, km.Target, km.Back}
	}
	return []key.Binding{km.Enter, km.Back}
}
