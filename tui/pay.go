package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"paydesk/desk"
	"paydesk/payment"
)

// phase is where the payment shown stands.
type phase int

const (
	phaseNone    phase = iota // no payment shown
	phaseWaiting              // in flight
	phasePlans                // the customer chooses an instalment plan
	phaseResult               // ended
)

// payModel is the payment shown: in flight with its steps and countdown,
// its instalment plans, or its result. The operator may look at another
// view meanwhile; the payment goes on here and waits for them.
type payModel struct {
	c     *common
	phase phase
	txn   string
	mode  payment.Mode
	rail  desk.Rail
	// amount is the payment's, started when it was asked for.
	amount  payment.Money
	started time.Time
	steps   []string
	// sentPlaceholder is set while steps[0] is the console's own "request
	// sent", shown until the rail's sent transition says it in its words.
	sentPlaceholder bool
	// early holds the latest events of payments the console has not yet
	// learnt the id of: a rail journals and publishes a payment's first
	// steps, even its outcome, before Start returns that id.
	early       []payment.Event
	plans       []payment.Plan
	planCursor  int
	result      payment.Event
	confirmCanc bool
	spin        spinner.Model

	// flights are the POS payments in flight; due is the deadline of the
	// payment shown on another rail, from the last snapshot.
	flights []payment.Flight
	due     due
	width   int
}

func newPay(c *common) payModel {
	sp := spinner.New()
	sp.Spinner = spinner.Line
	return payModel{c: c, spin: sp}
}

// paying is set while the payment shown has not ended.
func (p *payModel) paying() bool { return p.phase == phaseWaiting || p.phase == phasePlans }

// begin shows the payment the operator just started with the form's item
// it, and the events of it that came before its id did.
func (p *payModel) begin(msg startedMsg, it desk.Item) {
	p.txn, p.amount, p.mode, p.started = msg.id, msg.amount, it.Mode, p.c.cfg.Now()
	p.rail = railOf(p.c.desk, it.Rail)
	p.steps, p.sentPlaceholder, p.confirmCanc = []string{"request sent"}, true, false
	p.phase = phaseWaiting
	early := p.early
	p.early = nil
	for _, ev := range early {
		if ev.TxnID == p.txn {
			p.apply(ev)
		}
	}
}

// show shows a payment the console did not start (a display's) the way
// it shows its own: in flight with its steps so far, or its result.
func (p *payModel) show(t payment.Txn, hist []payment.Event) {
	p.txn, p.amount, p.mode, p.started = t.ID, t.Amount, t.Mode, t.CreatedAt
	p.rail = railOf(p.c.desk, t.Rail)
	p.steps, p.sentPlaceholder, p.confirmCanc = []string{"request sent"}, true, false
	p.phase = phaseWaiting
	for _, ev := range hist {
		p.apply(ev) // steps and transitions; the display's screens are not steps
	}
}

// railOf is the desk's rail named name; the POS link's for a payment of
// a rail the desk does not offer.
func railOf(d *desk.Desk, name payment.Rail) desk.Rail {
	if r, ok := d.Rail(name); ok {
		return r
	}
	r, _ := d.Rail(payment.RailPOS)
	return r
}

// clear stops showing the payment (the operator read its result).
func (p *payModel) clear() { p.phase, p.txn = phaseNone, "" }

func (p *payModel) setSize(l layout) { p.width = l.width }

func (p *payModel) update(msg tea.Msg) (intent, tea.Cmd) {
	switch msg := msg.(type) {
	case snapshotMsg:
		p.flights = msg.snap.Flights
		if msg.due.id != "" {
			p.due = msg.due
		}
	case spinner.TickMsg:
		var cmd tea.Cmd
		p.spin, cmd = p.spin.Update(msg)
		return intent{}, cmd
	case eventMsg:
		ev := payment.Event(msg)
		if ev.TxnID != p.txn {
			p.keepEarly(ev)
			return intent{}, nil
		}
		return intent{refresh: p.apply(ev)}, nil
	case tea.KeyMsg:
		switch {
		case p.confirmCanc:
			return intent{}, p.confirmKey(msg)
		case p.phase == phasePlans:
			return p.plansKey(msg)
		}
		return p.waitingKey(msg)
	}
	return intent{}, nil
}

// maxEarly bounds the events kept for payments not yet shown.
const maxEarly = 64

// keepEarly remembers an event of a payment that is not the one shown, in
// case it is the one whose start has not returned yet.
func (p *payModel) keepEarly(ev payment.Event) {
	if len(p.early) >= maxEarly {
		p.early = append([]payment.Event(nil), p.early[len(p.early)-maxEarly/2:]...)
	}
	p.early = append(p.early, ev)
}

// apply shows an event of the payment; it reports whether the payment
// ended (the root then takes a new snapshot).
func (p *payModel) apply(ev payment.Event) (ended bool) {
	if ev.Kind == payment.KindUnrecorded {
		return p.applyUnrecorded(ev)
	}
	// The rail's own words for the sent transition ("prompt sent to
	// 2547****678", "request sent to POS001") replace the console's
	// placeholder first step.
	if ev.Kind == payment.KindTransition && ev.Status == payment.StatusSent && ev.Detail != "" && p.sentPlaceholder {
		p.steps[0], p.sentPlaceholder = ev.Detail, false
	}
	if ev.Kind == payment.KindStep || (ev.Kind == payment.KindTransition && ev.Status != payment.StatusCreated && ev.Status != payment.StatusSent) {
		p.steps = append(p.steps, ev.Detail)
	}
	if ev.Kind != payment.KindTransition {
		return false
	}
	switch {
	case ev.Status == payment.StatusPlansOffered:
		p.plans, p.planCursor = ev.Plans, 0
		p.phase = phasePlans
	case ev.Status.Final() || ev.Status == payment.StatusUnknown:
		p.result, p.confirmCanc = ev, false
		p.phase = phaseResult
		return true
	}
	return false
}

// applyUnrecorded shows that one of the payment's writes failed. When it
// was the outcome, the rail is done with the payment but the journal does
// not know how it ended: the result says so, as unknown, never as what
// the peer said.
func (p *payModel) applyUnrecorded(ev payment.Event) (ended bool) {
	p.steps = append(p.steps, "journal write failed: not recorded (see below)")
	u := ev.Unwritten
	if u == nil || u.Kind != payment.KindTransition || !(u.Status.Final() || u.Status == payment.StatusUnknown) {
		return false
	}
	p.result = payment.Event{Kind: payment.KindUnrecorded, TxnID: ev.TxnID, Rail: ev.Rail, Status: payment.StatusUnknown,
		Detail: ev.Detail, Result: &payment.Result{Reason: "outcome not recorded in the journal"}}
	p.confirmCanc = false
	p.phase = phaseResult
	return true
}

// cancel asks the desk to cancel the payment shown.
func (p *payModel) cancel() tea.Cmd {
	d, rail, id := p.c.desk, p.rail.Name, p.txn
	return act(func() error { return d.Cancel(rail, id) })
}

// confirmKey takes the answer to the question before a cancel: y cancels
// (a payment choosing its plan goes back to waiting), n does not.
func (p *payModel) confirmKey(k tea.KeyMsg) tea.Cmd {
	km := p.c.keys
	switch {
	case key.Matches(k, km.Yes):
		p.confirmCanc = false
		p.phase = phaseWaiting
		return p.cancel()
	case key.Matches(k, km.No):
		p.confirmCanc = false
	}
	return nil
}

func (p *payModel) waitingKey(k tea.KeyMsg) (intent, tea.Cmd) {
	km := p.c.keys
	switch {
	case key.Matches(k, km.Cancel):
		p.confirmCanc = true
	case key.Matches(k, km.Quit):
		return intent{quit: true}, nil
	case key.Matches(k, km.Back):
		// Look away; the payment runs on, and the Payment key comes back.
		return intent{back: true}, nil
	case key.Matches(k, km.Journal):
		return intent{choose: &menuItem{act: actJournal}}, nil
	case key.Matches(k, km.Log):
		return intent{choose: &menuItem{act: actLog}}, nil
	case key.Matches(k, km.Status):
		return intent{choose: &menuItem{act: actStatus}}, nil
	}
	return intent{}, nil
}

func (p *payModel) plansKey(k tea.KeyMsg) (intent, tea.Cmd) {
	km := p.c.keys
	switch {
	case key.Matches(k, km.Up, km.Down):
		p.planCursor = cycle(p.planCursor, len(p.plans), km, k)
	case key.Matches(k, km.Enter):
		d, id, plan := p.c.desk, p.txn, p.plans[p.planCursor].ID
		p.phase = phaseWaiting
		return intent{}, act(func() error { return d.SelectPlan(id, plan) })
	case key.Matches(k, km.Back, km.Quit, km.Cancel):
		// The customer's payment is cancelled only once the operator
		// says so, as on the waiting view.
		p.confirmCanc = true
	}
	return intent{}, nil
}

// focus is the line that must stay in view: the selected plan.
func (p *payModel) focus() int {
	if p.phase == phasePlans {
		return p.planCursor + 1
	}
	return 0
}

// countdown says what the payment waits for and how long is left.
func (p *payModel) countdown() (string, bool) {
	now := p.c.cfg.Now()
	for _, f := range p.flights {
		if f.ID == p.txn && !f.Deadline.IsZero() {
			return fmt.Sprintf("waiting for %s: %s left", f.Waiting, max(f.Deadline.Sub(now).Round(1e9), 0)), true
		}
	}
	if d := p.due; d.id == p.txn && d.ok {
		return fmt.Sprintf("waiting for %s: %s left", d.waiting, max(d.at.Sub(now).Round(1e9), 0)), true
	}
	return "", false
}

func (p *payModel) view() string {
	switch p.phase {
	case phasePlans:
		return p.plansView()
	case phaseResult:
		return p.resultView()
	}
	return p.waitingView()
}

var modeNames = map[payment.Mode]string{
	payment.ModeCard: "Card", payment.ModeBNPL: "BNPL", payment.ModeDuitNowQR: "DuitNow QR", payment.ModeIPP: "IPP",
	payment.ModeRefund: "Refund", payment.ModeSTKPush: "M-Pesa", payment.ModeC2B: "M-Pesa till",
}

func (p *payModel) waitingView() string {
	s := p.c.styles
	frame := p.spin.View()
	if p.c.cfg.StillSpinner {
		frame = "*"
	}
	v := fmt.Sprintf("%s %s %s %s\n", frame, s.Title.Render(p.txn), modeNames[p.mode], p.amount)
	v += s.Muted.Render(fmt.Sprintf("elapsed %s", p.c.cfg.Now().Sub(p.started).Round(1e9)))
	if d, ok := p.countdown(); ok {
		v += s.Muted.Render("  " + d)
	}
	v += "\n"
	for _, st := range p.steps {
		v += "  • " + st + "\n"
	}
	if p.confirmCanc {
		v += "\n" + s.Pending.Render(p.rail.CancelNote)
	}
	return strings.TrimRight(v, "\n")
}

func (p *payModel) plansView() string {
	s := p.c.styles
	var list strings.Builder
	list.WriteString(s.Title.Render("Instalment plans for "+p.amount.String()) + "\n")
	for i, pl := range p.plans {
		label := fmt.Sprintf("%s (%s, %d)", pl.ID, orDash(pl.Frequency), pl.TotalInstallments)
		if pl.TotalInstallments == 0 && pl.Frequency == "" {
			label = pl.ID + " (one payment)"
		}
		if i == p.planCursor {
			list.WriteString(s.Selected.Render("> "+label) + "\n")
		} else {
			list.WriteString("  " + label + "\n")
		}
	}
	pl := p.plans[p.planCursor]
	var d strings.Builder
	d.WriteString(s.Header.Render(pl.ID) + "\n")
	if len(pl.Installments) == 0 {
		d.WriteString("pay in full, no instalments")
	}
	for _, in := range pl.Installments {
		d.WriteString(fmt.Sprintf("#%d %s %s", in.Number, in.Date, in.Amount))
		if in.Fee.Minor > 0 {
			d.WriteString(fmt.Sprintf(" fee %s (%s%%)", in.Fee, in.FeePercent))
		}
		d.WriteString("\n")
	}
	v := lipgloss.JoinHorizontal(lipgloss.Top, list.String(), "  ", s.Box.Render(strings.TrimRight(d.String(), "\n")))
	if left, ok := p.countdown(); ok {
		v = s.Muted.Render(left) + "\n" + v
	}
	if p.confirmCanc {
		v += "\n" + s.Pending.Render(wrap(p.rail.CancelNote, p.width))
	}
	return v
}

func (p *payModel) resultView() string {
	s := p.c.styles
	ev := p.result
	r := ev.Result
	if r == nil {
		r = &payment.Result{}
	}
	glyph, style, word := "✗", s.Declined, strings.ToUpper(strings.ReplaceAll(string(ev.Status), "_", " "))
	switch ev.Status {
	case payment.StatusApproved:
		glyph, style = "✓", s.Approved
		if len(r.Flags) > 0 {
			// Money came, but not simply: not a plain tick.
			glyph, style, word = "!", s.Pending, word+", CHECK"
		}
	case payment.StatusCancelled, payment.StatusTimedOut, payment.StatusUnknown:
		glyph, style = "!", s.Pending
	}
	if ev.Kind == payment.KindUnrecorded {
		glyph, style, word = "!", s.ErrorText, "NOT RECORDED (unknown)"
	}
	v := style.Render(fmt.Sprintf("%s %s", glyph, word)) +
		"  " + p.txn + " " + modeNames[p.mode] + " " + p.amount.String() + "\n\n"
	paid := ""
	if r.Paid != nil {
		paid = r.Paid.String()
	}
	for _, kv := range [][2]string{{"Auth code", r.AuthCode}, {"Card", payment.CardDisplay(r.Card)},
		{p.rail.RemoteLabel, r.RemoteID}, {"Plan", r.PlanID}, {"Reason", r.Reason},
		{"Paid", paid}, {"Check", strings.Join(r.Flags, ", ")}} {
		if kv[1] != "" {
			// A long value (a reason) wraps under itself, read whole.
			val := strings.ReplaceAll(wrap(kv[1], max(p.width-17, 20)), "\n", "\n"+strings.Repeat(" ", 17))
			v += fmt.Sprintf("%-16s %s\n", kv[0], val)
		}
	}
	line := payment.ResultLine(p.txn, ev.Status, p.amount, ev.Result)
	return v + "\n" + s.Muted.Render(wrap(line, p.width))
}

func (p *payModel) shortHelp() []key.Binding {
	km := p.c.keys
	switch p.phase {
	case phasePlans:
		return []key.Binding{km.Up, km.Down, km.Enter, withHelp(anyOf(km.Cancel, km.Quit, km.Back), "cancel payment")}
	case phaseResult:
		return []key.Binding{anyKey()}
	}
	return []key.Binding{km.Cancel, withHelp(km.Back, "look away"), km.Help, km.Quit}
}
