// Package tui is paydesk's full-screen console, built with Bubble Tea. It
// holds no payment logic: it asks a rail for payments and shows the
// journaled events the bus delivers.
package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"paydesk/payment"
)

// Rail is what the console needs of the POS link (*protocol.Server).
type Rail interface {
	Start(ctx context.Context, req payment.Request) (string, error)
	Cancel(id string) error
	SelectPlan(id, planID string) error
	Peers() []payment.Peer
	DefaultTarget() string
	InFlight() []payment.Flight
}

// Config is what the console shows and how it reads amounts.
type Config struct {
	KioskID  string
	Listen   string
	Currency string
	MaxMinor int64
	// Demo marks simulated peers; DemoNotes explains their behaviour.
	Demo      bool
	DemoNotes string
	// DemoBrief is the notes in a few lines, for windows too short for
	// DemoNotes; empty means the POS simulator's brief.
	DemoBrief string
	// DevSecret is set while the POS link uses the public development
	// secret: the header and the status screen warn until a real one is
	// set.
	DevSecret bool
	// Rails are the other rails (terminal, M-Pesa); nil ones are off.
	Rails Rails
	// Displays is the customer-display server; nil when it is off.
	Displays Displays
	// Unresolved are transactions an earlier run left unknown.
	Unresolved []payment.Txn
	// Hub, when set (a hub is configured), says how far the hub has this
	// kiosk's journal in a few words ("up to date", "42 events behind",
	// "not connected (retrying)"); read on each refresh, it must not block.
	Hub func() string
	// Now is the clock; View never reads the time any other way.
	Now func() time.Time
	// StillSpinner draws a fixed spinner frame (for golden tests).
	StillSpinner bool
}

type screen int

const (
	scrMenu screen = iota
	scrAmount
	scrWaiting
	scrPlans
	scrResult
	scrStatus
	scrJournal
	scrLog
	scrConnect
	scrDisplays
	scrTill
	scrNotes
)

// Model is the root model; it owns the screen state and delegates drawing
// to one view function per screen.
type Model struct {
	cfg    Config
	rail   Rail
	bus    *payment.Bus
	sub    *payment.Subscription
	keys   *KeyMap
	styles *Styles
	help   help.Model

	width, height int
	screen        screen
	// payScreen is the screen of the payment shown (waiting, plans or
	// its result), scrMenu when there is none; the operator may look at
	// another screen meanwhile and come back with the Payment key.
	payScreen screen
	cursor    int
	mode      payment.Mode
	railName  string // the rail of the payment being entered or shown
	amount    textinput.Model
	// phone is asked before the amount on rails that prompt a phone.
	phone    textinput.Model
	askPhone bool
	// sentPlaceholder is set while steps[0] is the console's own "request
	// sent", shown until the rail's sent transition says it in its words.
	sentPlaceholder bool
	amountErr       string
	spin            spinner.Model

	txn       string // the payment shown in waiting/plans/result
	txnAmount payment.Money
	started   time.Time
	steps     []string
	// early holds the latest events of payments the console has not yet
	// learnt the id of: a rail journals and publishes a payment's first
	// steps, even its outcome, before Start returns that id.
	early      []payment.Event
	plans      []payment.Plan
	planCursor int
	result     payment.Event
	errLine    string

	health      []namedHealth
	peers       []payment.Peer
	flights     []payment.Flight
	hub         string // the hub link's state, from Config.Hub
	counts      map[payment.Status]int
	totals      []payment.Total
	confirmQuit bool
	confirmCanc bool
	connState   string

	log     eventLog
	journal journalView
	tillv   tillView
	// target is the POS the operator chose with tab; "" means the rail's
	// default (the POS that last completed a payment, else the earliest).
	target string

	// unrecorded are the payments with a journal write that failed and
	// has not landed yet (the latest notice of each, in the order they
	// failed); journalFault is the journal's own word that writes fail,
	// and notice a passing note (a retried write landed).
	unrecorded   []payment.Event
	journalFault string
	notice       string

	displays      []payment.Display
	displayCursor int
	// tills are the M-Pesa till payments, newest first.
	tills []payment.TillPayment
	// notes shows the demo's notes, scrolled.
	notes viewport.Model
}

// New returns the console. Run it with tea.NewProgram(m, tea.WithAltScreen()).
func New(cfg Config, rail Rail, bus *payment.Bus) Model {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Currency == "" {
		cfg.Currency = payment.DefaultCurrency
	}
	ti := textinput.New()
	ti.Placeholder = "e.g. 25.50"
	ti.CharLimit = 16
	ti.Width = 16
	ph := textinput.New()
	ph.Placeholder = "e.g. 0712 345 678"
	ph.CharLimit = 20
	ph.Width = 20
	hm := help.New()
	hm.FullSeparator = "   " // four columns of keys fit 80 columns
	sp := spinner.New()
	sp.Spinner = spinner.Line
	m := Model{cfg: cfg, rail: rail, bus: bus, sub: bus.Subscribe(0), keys: DefaultKeyMap(), styles: DefaultStyles(),
		help: hm, amount: ti, phone: ph, spin: sp, width: 80, height: 24, log: newEventLog(), journal: newJournalView(), tillv: newTillView()}
	m.notes = viewport.New(80, 10)
	m.notes.SetContent(cfg.DemoNotes)
	m.refresh()
	m.resize()
	return m
}

// resize fits the scrolled lists to the window: the journal's table and
// the notes take the rows the header and the footer leave.
func (m *Model) resize() {
	rows := m.height - lipgloss.Height(m.headerView()) - 4 // blank, title, blank, footer
	m.journal.tbl.SetHeight(max(rows, 3))
	m.journal.tbl.SetWidth(m.width)
	m.notes.Width, m.notes.Height = m.width, max(rows, 1)
}

// eventMsg carries one journaled event from the bus.
type eventMsg payment.Event

// tickMsg refreshes countdowns and the POS list once a second.
type tickMsg time.Time

// startedMsg reports the outcome of asking the rail for a payment.
type startedMsg struct {
	id     string
	amount payment.Money
	err    error
}

// errMsg reports a failed operation in the error line.
type errMsg struct{ err error }

// waitForEvent reads one event from the subscription; Update re-arms it
// after each one, so rails never call Program.Send.
func waitForEvent(ch <-chan payment.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return nil
		}
		return eventMsg(ev)
	}
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts listening to the bus and the clock.
func (m Model) Init() tea.Cmd {
	cmds := []tea.Cmd{waitForEvent(m.sub.C()), tick()}
	if !m.cfg.StillSpinner {
		cmds = append(cmds, m.spin.Tick)
	}
	return tea.Batch(cmds...)
}

// refresh takes a snapshot of the rail and the journal for the views.
func (m *Model) refresh() {
	m.peers = m.rail.Peers()
	m.health = m.railHealth()
	if m.cfg.Hub != nil {
		m.hub = m.cfg.Hub()
	}
	m.flights = m.rail.InFlight()
	if m.cfg.Displays != nil {
		m.displays = m.cfg.Displays.Displays()
	}
	m.tills = m.tillPayments()
	if c, err := m.bus.Journal().Counts(context.Background()); err == nil {
		m.counts = c
	}
	from, to := payment.Day(m.cfg.Now())
	if t, err := m.bus.Journal().Totals(context.Background(), from, to); err == nil {
		m.totals = t
	}
}

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.resize()
		return m, nil
	case tickMsg:
		m.refresh()
		m.resize() // the header's height follows the hub's state
		return m, tick()
	case spinner.TickMsg:
		if m.cfg.StillSpinner {
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	case eventMsg:
		m.event(payment.Event(msg))
		return m, waitForEvent(m.sub.C())
	case startedMsg:
		if msg.err != nil {
			// The form stays as typed, the refusal under it: the
			// operator corrects it or goes back, nothing is retyped.
			m.amountErr = msg.err.Error()
			if m.screen == scrAmount && !m.askPhone {
				return m, m.amount.Focus()
			}
			return m, nil
		}
		m.txn, m.txnAmount, m.started = msg.id, msg.amount, m.cfg.Now()
		m.steps, m.sentPlaceholder = []string{"request sent"}, true
		m.screen, m.payScreen = scrWaiting, scrWaiting
		early := m.early
		m.early = nil
		for _, ev := range early {
			if ev.TxnID == m.txn {
				m.apply(ev)
			}
		}
		m.refresh()
		return m, nil
	case errMsg:
		m.errLine = msg.err.Error()
		return m, nil
	case assignedMsg:
		if msg.err != nil {
			m.errLine = msg.err.Error()
		} else {
			m.errLine = ""
		}
		m.refresh()
		return m, nil
	case askedMsg:
		j := &m.journal
		if j.open == nil || j.open.ID != msg.id {
			return m, nil // the operator moved on
		}
		j.asking = false
		j.answer, j.answerErr = msg.words, msg.err != nil
		if msg.err != nil {
			j.answer = "could not ask: " + msg.err.Error()
		}
		// What the rail learnt is journaled: show the payment as it is now.
		if err := j.load(m.bus.Journal()); err != nil {
			m.errLine = err.Error()
		}
		if t, err := m.bus.Journal().Txn(context.Background(), msg.id); err == nil {
			j.open = &t
		}
		if hist, err := m.bus.Journal().History(context.Background(), msg.id); err == nil {
			j.history = hist
		}
		m.refresh()
		return m, nil
	case resolvedMsg:
		if err := m.journal.load(m.bus.Journal()); err != nil {
			m.errLine = err.Error()
		}
		for i, t := range m.journal.txns {
			if t.ID == msg.id {
				m.journal.tbl.SetCursor(i)
				m.journal.mark()
				m.journal.openSelected(m.bus.Journal())
			}
		}
		m.refresh()
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

// event applies a bus event to the screens.
func (m *Model) event(ev payment.Event) {
	m.log.add(ev)
	if ev.Retried {
		m.landed(ev)
	}
	switch ev.Kind {
	case payment.KindUnrecorded:
		m.notRecorded(ev)
	case payment.KindRecorded:
		// The outcomes it wrote (just before it) say more; else this.
		m.journalFault = ""
		if m.notice == "" {
			m.notice = ev.Detail
		}
		return
	case payment.KindConnection, payment.KindRejected:
		m.refresh()
		if ev.Kind == payment.KindConnection {
			m.connState = ev.Peer + " " + ev.Detail
		}
		return
	}
	if ev.TxnID == "" {
		return
	}
	if ev.TxnID != m.txn {
		m.keepEarly(ev)
		return
	}
	m.apply(ev)
}

// notRecorded keeps a failed journal write in view until it lands.
func (m *Model) notRecorded(ev payment.Event) {
	if ev.TxnID == "" {
		m.journalFault = ev.Detail
		return
	}
	m.unrecorded = slices.DeleteFunc(m.unrecorded, func(e payment.Event) bool { return e.TxnID == ev.TxnID })
	m.unrecorded = append(m.unrecorded, ev)
}

// landed forgets a payment's failed write once the journal's retry wrote
// it, and says which outcome was written.
func (m *Model) landed(ev payment.Event) {
	m.unrecorded = slices.DeleteFunc(m.unrecorded, func(e payment.Event) bool { return e.TxnID == ev.TxnID })
	if ev.Kind == payment.KindTransition && (ev.Status.Final() || ev.Status == payment.StatusUnknown) {
		m.notice = ev.TxnID + " recorded after the retry: " + string(ev.Status)
	}
}

// maxEarly bounds the events kept for payments not yet shown.
const maxEarly = 64

// keepEarly remembers an event of a payment that is not the one shown, in
// case it is the one whose start has not returned yet.
func (m *Model) keepEarly(ev payment.Event) {
	if len(m.early) >= maxEarly {
		m.early = append([]payment.Event(nil), m.early[len(m.early)-maxEarly/2:]...)
	}
	m.early = append(m.early, ev)
}

// apply shows an event of the payment on screen.
func (m *Model) apply(ev payment.Event) {
	if ev.Kind == payment.KindUnrecorded {
		m.applyUnrecorded(ev)
		return
	}
	// The rail's own words for the sent transition ("prompt sent to
	// 2547****678", "request sent to POS001") replace the console's
	// placeholder first step.
	if ev.Kind == payment.KindTransition && ev.Status == payment.StatusSent && ev.Detail != "" && m.sentPlaceholder {
		m.steps[0], m.sentPlaceholder = ev.Detail, false
	}
	if ev.Kind == payment.KindStep || (ev.Kind == payment.KindTransition && ev.Status != payment.StatusCreated && ev.Status != payment.StatusSent) {
		m.steps = append(m.steps, ev.Detail)
	}
	if ev.Kind != payment.KindTransition {
		return
	}
	switch {
	case ev.Status == payment.StatusPlansOffered:
		m.plans, m.planCursor = ev.Plans, 0
		m.showPay(scrPlans)
	case ev.Status.Final() || ev.Status == payment.StatusUnknown:
		m.result, m.confirmCanc = ev, false
		m.showPay(scrResult)
		m.refresh()
	}
}

// showPay moves the payment to screen s; the operator sees it at once
// when they are on the payment, else when they come back to it.
func (m *Model) showPay(s screen) {
	if m.screen == m.payScreen {
		m.screen = s
	}
	m.payScreen = s
}

// away is set while a payment is shown on a screen the operator left.
func (m Model) away() bool {
	return m.payScreen != scrMenu && m.screen != m.payScreen
}

// paying is set while the payment shown has not ended.
func (m Model) paying() bool {
	return m.payScreen == scrWaiting || m.payScreen == scrPlans
}

// applyUnrecorded shows on the payment's screen that one of its writes
// failed. When it was the outcome, the rail is done with the payment but
// the journal does not know how it ended: the result screen says so, as
// unknown, never as what the peer said.
func (m *Model) applyUnrecorded(ev payment.Event) {
	m.steps = append(m.steps, "journal write failed: not recorded (see below)")
	u := ev.Unwritten
	if u == nil || u.Kind != payment.KindTransition || !(u.Status.Final() || u.Status == payment.StatusUnknown) {
		return
	}
	m.result = payment.Event{Kind: payment.KindUnrecorded, TxnID: ev.TxnID, Rail: ev.Rail, Status: payment.StatusUnknown,
		Detail: ev.Detail, Result: &payment.Result{Reason: "outcome not recorded in the journal"}}
	m.confirmCanc = false
	m.showPay(scrResult)
	m.refresh()
}

func (m Model) inFlight() bool {
	return len(m.flights) > 0 || m.paying()
}

// key handles a key press on the current screen.
func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	km := m.keys
	if m.confirmQuit {
		switch {
		case key.Matches(k, km.Yes):
			return m, tea.Quit
		case key.Matches(k, km.No):
			m.confirmQuit = false
		}
		return m, nil
	}
	typing := m.screen == scrAmount || (m.screen == scrTill && m.tillv.assigning)
	if key.Matches(k, km.Help) && !typing {
		m.help.ShowAll = !m.help.ShowAll
		return m, nil
	}
	if m.help.ShowAll && key.Matches(k, km.Back) {
		m.help.ShowAll = false
		return m, nil
	}
	if k.Type == tea.KeyCtrlC {
		return m.quit()
	}
	if m.away() && !typing && key.Matches(k, km.Payment) {
		m.screen, m.errLine = m.payScreen, ""
		return m, nil
	}
	switch m.screen {
	case scrMenu:
		return m.menuKey(k)
	case scrAmount:
		return m.amountKey(k)
	case scrWaiting:
		return m.waitingKey(k)
	case scrPlans:
		return m.plansKey(k)
	case scrResult:
		m.screen, m.payScreen, m.txn, m.notice = scrMenu, scrMenu, "", ""
		return m, nil
	case scrStatus:
		if key.Matches(k, km.Back, km.Status, km.Enter) {
			m.screen = scrMenu
		} else if key.Matches(k, km.Quit) {
			return m.quit()
		}
		return m, nil
	case scrConnect:
		m.screen = scrMenu
		return m, nil
	case scrJournal:
		return m.journalKey(k)
	case scrDisplays:
		return m.displaysKey(k)
	case scrTill:
		return m.tillKey(k)
	case scrNotes:
		switch {
		case key.Matches(k, km.Back, km.Notes):
			m.screen = scrMenu
		case key.Matches(k, km.Up):
			m.notes.ScrollUp(1)
		case key.Matches(k, km.Down):
			m.notes.ScrollDown(1)
		case key.Matches(k, km.PageUp):
			m.notes.PageUp()
		case key.Matches(k, km.PageDown):
			m.notes.PageDown()
		}
		return m, nil
	case scrLog:
		if key.Matches(k, km.Back, km.Log) {
			m.screen = scrMenu
			return m, nil
		}
		// The keymap's keys, which the help lists, not the viewport's own.
		switch {
		case key.Matches(k, km.Up):
			m.log.vp.ScrollUp(1)
		case key.Matches(k, km.Down):
			m.log.vp.ScrollDown(1)
		case key.Matches(k, km.PageUp):
			m.log.vp.PageUp()
		case key.Matches(k, km.PageDown):
			m.log.vp.PageDown()
		}
		return m, nil
	}
	return m, nil
}

func (m Model) journalKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	km, j := m.keys, &m.journal
	if j.open != nil {
		switch {
		case j.resolve != "" && key.Matches(k, km.Yes):
			st := j.resolve
			j.resolve = ""
			return m, resolveCmd(m.bus, *j.open, st, m.cfg.Now())
		case j.resolve != "" && key.Matches(k, km.No):
			j.resolve = ""
		case key.Matches(k, km.Back):
			j.open = nil
		case !j.open.Status.Final() && !j.asking && m.checker(*j.open) != nil && key.Matches(k, km.Ask):
			j.asking, j.answer, j.answerErr = true, "", false
			return m, askCmd(m.checker(*j.open), j.open.ID)
		case j.open.Status == payment.StatusUnknown && key.Matches(k, km.Approve):
			j.resolve = payment.StatusApproved
		case j.open.Status == payment.StatusUnknown && key.Matches(k, km.Decline):
			j.resolve = payment.StatusDeclined
		}
		return m, nil
	}
	switch {
	case key.Matches(k, km.Back, km.Journal):
		m.screen = scrMenu
	case key.Matches(k, km.Enter):
		if err := j.openSelected(m.bus.Journal()); err != nil {
			m.errLine = err.Error()
		}
	// The table moves with the keymap's keys, which the help lists, not
	// with its own (f, d, G…).
	case key.Matches(k, km.Up):
		j.tbl.MoveUp(1)
	case key.Matches(k, km.Down):
		j.tbl.MoveDown(1)
	case key.Matches(k, km.PageUp):
		j.tbl.MoveUp(j.tbl.Height())
	case key.Matches(k, km.PageDown):
		j.tbl.MoveDown(j.tbl.Height())
	}
	j.mark()
	return m, nil
}

// quit leaves at once unless a payment is in flight, then asks first.
func (m Model) quit() (tea.Model, tea.Cmd) {
	if m.inFlight() {
		m.confirmQuit = true
		return m, nil
	}
	return m, tea.Quit
}

func (m Model) menuKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	km := m.keys
	m.errLine, m.notice = "", ""
	items := m.items()
	pick := -1
	switch {
	case key.Matches(k, km.Up):
		m.cursor = (m.cursor + len(items) - 1) % len(items)
	case key.Matches(k, km.Down):
		m.cursor = (m.cursor + 1) % len(items)
	case key.Matches(k, km.Enter):
		pick = m.cursor
	default:
		for i, it := range items {
			if key.Matches(k, km.menu(it.act)) {
				pick = i
			}
		}
		if key.Matches(k, km.Quit) && pick < 0 {
			return m.quit()
		}
		if key.Matches(k, km.Notes) && m.cfg.DemoNotes != "" {
			m.resize()
			m.notes.GotoTop()
			m.screen = scrNotes
			return m, nil
		}
	}
	if pick < 0 {
		return m, nil
	}
	m.cursor = pick
	return m.choose(items[pick])
}

// choose does what a menu item does.
func (m Model) choose(it menuItem) (tea.Model, tea.Cmd) {
	switch {
	case m.disabled(it) != "":
		m.errLine = it.label + ": " + m.disabled(it)
	case it.mode != "" && m.paying():
		m.errLine = "a payment is in flight: " + label(m.keys.Payment) + " goes back to it"
	case it.mode != "":
		m.mode, m.railName, m.screen, m.amountErr = it.mode, it.rail, scrAmount, ""
		m.amount.SetValue("")
		// M-Pesa takes whole shillings: the example says so.
		m.amount.Placeholder = "e.g. 25.50"
		if it.rail == railMPesa {
			m.amount.Placeholder = "e.g. 150"
			m.askPhone = true
			m.phone.SetValue("")
			return m, m.phone.Focus()
		}
		m.askPhone = false
		return m, m.amount.Focus()
	case it.act == actCancel && m.paying():
		m.screen, m.confirmCanc = m.payScreen, true
	case it.act == actCancel:
		m.errLine = "no payment in flight to cancel"
	case it.act == actStatus:
		m.refresh()
		m.screen = scrStatus
	case it.act == actQuit:
		return m.quit()
	case it.act == actJournal:
		if err := m.journal.load(m.bus.Journal()); err != nil {
			m.errLine = err.Error()
			return m, nil
		}
		m.journal.open = nil
		m.screen = scrJournal
		m.resize()
	case it.act == actLog:
		m.screen = scrLog
	case it.act == actConnect:
		m.screen = scrConnect
	case it.act == actDisplays:
		m.refresh()
		m.displayCursor, m.screen = 0, scrDisplays
	case it.act == actTill:
		m.refresh()
		m.tillv.cursor, m.tillv.assigning = 0, false
		m.screen = scrTill
	}
	return m, nil
}

func (m Model) amountKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if m.askPhone {
		return m.phoneKey(k)
	}
	switch {
	case key.Matches(k, m.keys.Back) && m.railName == railMPesa:
		// One field back: the phone, as typed.
		m.amount.Blur()
		m.askPhone, m.amountErr = true, ""
		return m, m.phone.Focus()
	case key.Matches(k, m.keys.Back):
		m.amount.Blur()
		m.screen = scrMenu
		return m, nil
	case key.Matches(k, m.keys.Target) && len(m.peers) > 1 && m.railName == railPOS:
		m.target = m.nextTarget()
		return m, nil
	case key.Matches(k, m.keys.Enter):
		amt, err := m.checkAmount(m.amount.Value())
		if err != nil {
			m.amountErr = err.Error()
			return m, nil
		}
		m.amount.Blur()
		rail := m.starter(m.railName)
		req := payment.Request{Mode: m.mode, Amount: amt, Phone: m.phone.Value()}
		if m.railName == railPOS {
			req.Target = m.target
		}
		return m, func() tea.Msg {
			id, err := rail.Start(context.Background(), req)
			return startedMsg{id: id, amount: amt, err: err}
		}
	}
	var cmd tea.Cmd
	m.amount, cmd = m.amount.Update(k)
	m.amountErr = ""
	if v := m.amount.Value(); v != "" {
		if _, err := m.checkAmount(v); err != nil {
			m.amountErr = err.Error()
		}
	}
	return m, cmd
}

// checkAmount reads an amount for the rail of the form. M-Pesa STK Push
// takes whole shillings, so a fraction is refused as it is typed.
func (m Model) checkAmount(v string) (payment.Money, error) {
	cur := m.railCurrency(m.railName)
	amt, err := payment.ParseAmount(v, cur, m.cfg.MaxMinor)
	if err != nil {
		return amt, err
	}
	if unit := payment.MinorPerUnit(cur); m.railName == railMPesa && amt.Minor%unit != 0 {
		return payment.Money{}, fmt.Errorf("M-Pesa takes whole shillings: enter %d, not %s", amt.Minor/unit, strings.TrimSpace(v))
	}
	return amt, nil
}

// phoneKey takes the customer's phone number before the amount. A rail
// that checks numbers (payment.PhoneChecker) refuses a bad one here;
// otherwise its refusal shows when the payment starts.
func (m Model) phoneKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch {
	case key.Matches(k, m.keys.Back):
		m.phone.Blur()
		m.screen = scrMenu
		return m, nil
	case key.Matches(k, m.keys.Enter):
		if len(strings.TrimSpace(m.phone.Value())) == 0 {
			m.amountErr = "enter the customer's phone number"
			return m, nil
		}
		if pc, ok := m.starter(m.railName).(payment.PhoneChecker); ok {
			if err := pc.CheckPhone(m.phone.Value()); err != nil {
				m.amountErr = "phone number refused: " + err.Error()
				return m, nil
			}
		}
		m.phone.Blur()
		m.askPhone, m.amountErr = false, ""
		return m, m.amount.Focus()
	}
	var cmd tea.Cmd
	m.phone, cmd = m.phone.Update(k)
	m.amountErr = ""
	return m, cmd
}

// targetLabel is the POS the next payment goes to.
func (m Model) targetLabel() string {
	if m.target != "" {
		return m.target
	}
	return m.rail.DefaultTarget()
}

// nextTarget is the connected POS after the current target.
func (m Model) nextTarget() string {
	cur := m.targetLabel()
	for i, p := range m.peers {
		if p.Label() == cur {
			return m.peers[(i+1)%len(m.peers)].Label()
		}
	}
	return m.peers[0].Label()
}

func (m Model) cancelCmd() tea.Cmd {
	rail, id := m.starter(m.railName), m.txn
	return func() tea.Msg {
		if err := rail.Cancel(id); err != nil {
			return errMsg{err}
		}
		return nil
	}
}

func (m Model) waitingKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	km := m.keys
	if m.confirmCanc {
		switch {
		case key.Matches(k, km.Yes):
			m.confirmCanc = false
			return m, m.cancelCmd()
		case key.Matches(k, km.No):
			m.confirmCanc = false
		}
		return m, nil
	}
	switch {
	case key.Matches(k, km.Cancel):
		m.confirmCanc = true
	case key.Matches(k, km.Quit):
		return m.quit()
	case key.Matches(k, km.Back):
		// Look away; the payment runs on, and the Payment key comes back.
		m.screen = scrMenu
	case key.Matches(k, km.Journal):
		return m.choose(menuItem{act: actJournal})
	case key.Matches(k, km.Log):
		return m.choose(menuItem{act: actLog})
	case key.Matches(k, km.Status):
		return m.choose(menuItem{act: actStatus})
	}
	return m, nil
}

func (m Model) plansKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	km := m.keys
	if m.confirmCanc {
		switch {
		case key.Matches(k, km.Yes):
			m.confirmCanc = false
			m.screen, m.payScreen = scrWaiting, scrWaiting
			return m, m.cancelCmd()
		case key.Matches(k, km.No):
			m.confirmCanc = false
		}
		return m, nil
	}
	switch {
	case key.Matches(k, km.Up):
		m.planCursor = (m.planCursor + len(m.plans) - 1) % len(m.plans)
	case key.Matches(k, km.Down):
		m.planCursor = (m.planCursor + 1) % len(m.plans)
	case key.Matches(k, km.Enter):
		rail, id, plan := m.rail, m.txn, m.plans[m.planCursor].ID
		m.screen, m.payScreen = scrWaiting, scrWaiting
		return m, func() tea.Msg {
			if err := rail.SelectPlan(id, plan); err != nil {
				return errMsg{err}
			}
			return nil
		}
	case key.Matches(k, km.Back, km.Quit, km.Cancel):
		// The customer's payment is cancelled only once the operator
		// says so, as on the waiting view.
		m.confirmCanc = true
	}
	return m, nil
}
