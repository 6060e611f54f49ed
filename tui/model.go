// Package tui is paydesk's full-screen console, built with Bubble Tea: a
// presenter over a *desk.Desk. It holds no payment logic and knows no
// rail: it asks the desk for payments, shows the journaled events the bus
// delivers, and reads the journal and the rails' state only in Cmds.
//
// The root Model draws the header and the footer (help, error line,
// failed journal writes) and routes messages: keys to the active view,
// the window's size to every view, snapshots to the views that show them.
// Each view is a component with its own update, view and setSize.
package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"paydesk/desk"
	"paydesk/payment"
)

// Config is how the console presents the desk; what it drives (the
// kiosk, the rails, the displays, the hub) is the desk's.
type Config struct {
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
	// Unresolved are transactions an earlier run left unknown.
	Unresolved []payment.Txn
	// Now is the clock; View never reads the time any other way.
	Now func() time.Time
	// StillSpinner draws a fixed spinner frame (for golden tests).
	StillSpinner bool
}

// screen is the view the operator sees.
type screen int

const (
	scrMenu screen = iota
	scrAmount
	scrPay // the payment: in flight, its plans or its result
	scrStatus
	scrJournal
	scrLog
	scrConnect
	scrDisplays
	scrTill
	scrNotes
)

// Model is the root model: the views, which one is active, and what is
// drawn around it.
type Model struct {
	c   *common
	sub *payment.Subscription
	// snap is the latest snapshot; seq counts the refreshes asked for
	// and applied the one snap is from.
	snap         desk.Snapshot
	seq, applied int

	help          help.Model
	width, height int
	screen        screen
	errLine       string
	confirmQuit   bool
	writes        writes

	menu     menuModel
	form     formModel
	pay      payModel
	status   statusModel
	journal  journalModel
	log      eventLog
	connect  connectModel
	displays displaysModel
	till     tillModel
	notes    notesModel
}

// New returns the console over d. It takes the rails' state at once (the
// first frame shows it) and the journal's figures in Init's Cmd. Run it
// with tea.NewProgram(m, tea.WithAltScreen()).
func New(cfg Config, d *desk.Desk) Model {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &common{desk: d, cfg: cfg, keys: DefaultKeyMap(), styles: DefaultStyles()}
	hm := help.New()
	hm.FullSeparator = "   " // four columns of keys fit 80 columns
	m := Model{c: c, sub: d.Bus().Subscribe(0), help: hm, width: 80, height: 24,
		menu: newMenu(c), form: newForm(c), pay: newPay(c), status: statusModel{c: c}, journal: newJournal(c),
		log: newEventLog(c), connect: connectModel{c: c}, displays: displaysModel{c: c}, till: newTill(c), notes: newNotes(c)}
	m.snapshot(snapshotMsg{snap: d.Live()})
	m.resize()
	return m
}

// eventMsg carries one journaled event from the bus.
type eventMsg payment.Event

// tickMsg refreshes countdowns and the snapshot once a second.
type tickMsg time.Time

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

// Init starts listening to the bus and the clock, and takes the first
// snapshot.
func (m Model) Init() tea.Cmd {
	cmds := []tea.Cmd{waitForEvent(m.sub.C()), tick(), m.c.read(m.snapshotRead(0))}
	if !m.c.cfg.StillSpinner {
		cmds = append(cmds, m.pay.spin.Tick)
	}
	return tea.Batch(cmds...)
}

// refresh returns the Cmd that takes a new snapshot.
func (m *Model) refresh() tea.Cmd {
	m.seq++
	return m.c.read(m.snapshotRead(m.seq))
}

// snapshotRead takes snapshot seq, with the deadline of the payment shown.
func (m *Model) snapshotRead(seq int) func(ctx context.Context) tea.Msg {
	c, rail, id := m.c, m.pay.rail.Name, ""
	if m.pay.paying() {
		id = m.pay.txn
	}
	return func(ctx context.Context) tea.Msg { return c.snapshot(ctx, seq, rail, id) }
}

// snapshot stores a snapshot and hands it to the views that show it.
func (m *Model) snapshot(msg snapshotMsg) {
	if msg.snap.Err != nil {
		// The journal's figures could not be read: the last ones stay.
		msg.snap.Counts, msg.snap.Totals = m.snap.Counts, m.snap.Totals
	}
	m.snap = msg.snap
	for _, v := range []component{&m.form, &m.pay, &m.status, &m.displays, &m.till} {
		v.update(msg)
	}
}

// active is the view the operator sees.
func (m *Model) active() component {
	switch m.screen {
	case scrAmount:
		return &m.form
	case scrPay:
		return &m.pay
	case scrStatus:
		return &m.status
	case scrJournal:
		return &m.journal
	case scrLog:
		return &m.log
	case scrConnect:
		return &m.connect
	case scrDisplays:
		return &m.displays
	case scrTill:
		return &m.till
	case scrNotes:
		return &m.notes
	}
	return &m.menu
}

// resize gives every view its room: the window less what the header and
// the footer take now.
func (m *Model) resize() {
	m.help.Width = m.width
	header := m.headerView()
	l := layout{width: m.width, height: m.height, header: lipgloss.Height(header), warn: m.warnLines()}
	if m.railsLine() {
		l.rails = 1
	}
	l.footer = lipgloss.Height(m.help.View(helpFor{m}))
	if m.errLine != "" {
		l.footer++
	}
	for _, v := range []component{&m.menu, &m.form, &m.pay, &m.status, &m.journal, &m.log, &m.connect, &m.displays, &m.till, &m.notes} {
		v.setSize(l)
	}
}

// Update routes one message and then fits the views to the window.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.resize()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return nil
	case tickMsg:
		return tea.Batch(tick(), m.refresh())
	case spinner.TickMsg:
		if m.c.cfg.StillSpinner {
			return nil
		}
		_, cmd := m.pay.update(msg)
		return cmd
	case snapshotMsg:
		if msg.seq >= m.applied {
			m.applied = msg.seq
			m.snapshot(msg)
		}
		return nil
	case eventMsg:
		return tea.Batch(m.event(payment.Event(msg)), waitForEvent(m.sub.C()))
	case startedMsg:
		if msg.err != nil {
			if m.screen == scrAmount {
				return m.form.refused(msg.err)
			}
			m.form.err = msg.err.Error()
			return nil
		}
		m.pay.begin(msg, m.form.item)
		m.screen = scrPay
		if msg.snap != nil {
			// Newer than any refresh asked for before (Init's too).
			m.seq++
			m.applied = m.seq
			m.snapshot(*msg.snap)
		}
		return nil
	case errMsg:
		m.errLine = msg.err.Error()
		return nil
	case assignedMsg:
		m.errLine = ""
		if msg.err != nil {
			m.errLine = msg.err.Error()
		}
		return m.refresh()
	case journalMsg:
		return m.follow(m.journal.update(msg))
	case shownMsg:
		if msg.err != nil {
			m.errLine = msg.err.Error()
			return nil
		}
		m.pay.show(msg.txn, msg.history)
		m.screen = scrPay
		return nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

// event applies a bus event: to the log, to the failed writes shown on
// every screen, and to the payment it belongs to.
func (m *Model) event(ev payment.Event) tea.Cmd {
	m.log.update(eventMsg(ev))
	m.writes.event(ev)
	m.status.unrecorded = m.writes.unrecorded
	switch ev.Kind {
	case payment.KindRecorded:
		return nil
	case payment.KindConnection, payment.KindRejected:
		return m.refresh()
	}
	if ev.TxnID == "" {
		return nil
	}
	return m.follow(m.pay.update(eventMsg(ev)))
}

// follow does what a view asked: go back to the menu, do what a menu item
// does, show an error, take a snapshot, or quit.
func (m *Model) follow(in intent, cmd tea.Cmd) tea.Cmd {
	if in.err != "" {
		m.errLine = in.err
	}
	var more tea.Cmd
	switch {
	case in.quit:
		more = m.quit()
	case in.back:
		m.screen = scrMenu
	case in.choose != nil:
		more = m.choose(*in.choose)
	}
	if in.refresh {
		more = tea.Batch(more, m.refresh())
	}
	if more == nil {
		return cmd
	}
	return tea.Batch(cmd, more)
}

// away is set while a payment is shown on a screen the operator left.
func (m *Model) away() bool { return m.pay.phase != phaseNone && m.screen != scrPay }

func (m *Model) inFlight() bool { return len(m.snap.Flights) > 0 || m.pay.paying() }

// typing is set while the active view takes text: its keys are not the
// console's.
func (m *Model) typing() bool {
	return m.screen == scrAmount || (m.screen == scrTill && m.till.typing())
}

// key handles the console's own keys (quit, help, back to the payment)
// and routes the others to the active view.
func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	km := m.c.keys
	if m.confirmQuit {
		switch {
		case key.Matches(k, km.Yes):
			return tea.Quit
		case key.Matches(k, km.No):
			m.confirmQuit = false
		}
		return nil
	}
	typing := m.typing()
	if key.Matches(k, km.Help) && !typing {
		m.help.ShowAll = !m.help.ShowAll
		return nil
	}
	if m.help.ShowAll && key.Matches(k, km.Back) {
		m.help.ShowAll = false
		return nil
	}
	if k.Type == tea.KeyCtrlC {
		return m.quit()
	}
	if m.away() && !typing && key.Matches(k, km.Payment) {
		m.screen, m.errLine = scrPay, ""
		return nil
	}
	switch {
	case m.screen == scrMenu:
		m.errLine, m.writes.notice = "", ""
	case m.screen == scrPay && m.pay.phase == phaseResult:
		// Any key: the operator has read the result.
		m.pay.clear()
		m.screen, m.writes.notice = scrMenu, ""
		return nil
	}
	return m.follow(m.active().update(k))
}

// choose does what a menu item does.
func (m *Model) choose(it menuItem) tea.Cmd {
	switch {
	case it.act == actPay && m.c.desk.Unavailable(it.pay) != "":
		m.errLine = it.label + ": " + m.c.desk.Unavailable(it.pay)
	case it.act == actPay && m.pay.paying():
		m.errLine = "a payment is in flight: " + label(m.c.keys.Payment) + " goes back to it"
	case it.act == actPay:
		m.screen = scrAmount
		return m.form.open(it.pay)
	case it.act == actCancel && m.pay.paying():
		m.screen, m.pay.confirmCanc = scrPay, true
	case it.act == actCancel:
		m.errLine = "no payment in flight to cancel"
	case it.act == actStatus:
		m.screen = scrStatus
		return m.refresh()
	case it.act == actQuit:
		return m.quit()
	case it.act == actJournal:
		m.journal.reset()
		m.screen = scrJournal
		return m.journal.load("")
	case it.act == actLog:
		m.screen = scrLog
	case it.act == actConnect:
		m.screen = scrConnect
	case it.act == actDisplays:
		m.displays.cursor, m.screen = 0, scrDisplays
		return m.refresh()
	case it.act == actTill:
		m.till.reset()
		m.screen = scrTill
		return m.refresh()
	case it.act == actNotes:
		m.notes.vp.GotoTop()
		m.screen = scrNotes
	}
	return nil
}

// quit leaves at once unless a payment is in flight, then asks first.
func (m *Model) quit() tea.Cmd {
	if m.inFlight() {
		m.confirmQuit = true
		return nil
	}
	return tea.Quit
}
