package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/desk"
	"paydesk/payment"
)

// common is what every view shares, built once by New: the desk, the
// presentation settings, the keymap and the styles. Views read it and
// never change it (a caller may rebind the keymap's keys).
type common struct {
	desk   *desk.Desk
	cfg    Config
	keys   *KeyMap
	styles *Styles
	// onRead, when set (by tests that drive Update by hand), is given
	// every Cmd that reads the journal or the rails' state as it is made,
	// so they can run it as the program would.
	onRead func(tea.Cmd)
}

// component is one view of the console, drawn between the header and
// the footer: the menu, the payment form, the payment, the status, the
// journal, the event log, the connect screen, the displays, the till
// payments and the notes. The root routes keys to the active view and
// the messages a view asked for (or needs) to it; what the view asks of
// the root in return is an intent.
type component interface {
	update(msg tea.Msg) (intent, tea.Cmd)
	view() string
	setSize(l layout)
	// shortHelp lists the keys that do something in the view now.
	shortHelp() []key.Binding
}

// layout is the room the views share: the window, and what the root
// draws around them.
type layout struct {
	width, height int
	// header is the header's height in lines; warn counts its warnings
	// (the development secret, the payment looked away from) and rails
	// its line of the rails' health and displays.
	header, warn, rails int
	// footer counts the lines of the help and of the error line.
	footer int
}

// intent is what a view asks of the root after a message: to go back to
// the menu, to do what a menu item does, to say why a key did nothing, to
// take a new snapshot, or to quit.
type intent struct {
	back    bool
	choose  *menuItem
	err     string
	refresh bool
	quit    bool
}

// readTimeout bounds a read of the journal: the console does not wait on
// a stuck disk for ever.
const readTimeout = 10 * time.Second

// read returns a Cmd that runs f outside Update: every read of the
// journal or of the rails' state goes through it.
func (c *common) read(f func(ctx context.Context) tea.Msg) tea.Cmd {
	cmd := func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		return f(ctx)
	}
	if c.onRead != nil {
		c.onRead(cmd)
	}
	return cmd
}

// snapshotMsg is the desk's snapshot taken by a refresh, with the
// deadline of the payment shown when there was one. seq orders the
// refreshes: the root drops one older than the snapshot it has.
type snapshotMsg struct {
	seq  int
	snap desk.Snapshot
	due  due
}

// due is what payment id waits for and until when, for the countdown.
type due struct {
	id, waiting string
	at          time.Time
	ok          bool
}

// snapshot takes the desk's snapshot, and the deadline of payment id on
// rail when id is set. It reads the journal: call it from a Cmd.
func (c *common) snapshot(ctx context.Context, seq int, rail payment.Rail, id string) snapshotMsg {
	msg := snapshotMsg{seq: seq, snap: c.desk.Snapshot(ctx)}
	if id != "" {
		w, at, ok := c.desk.Deadline(rail, id)
		msg.due = due{id: id, waiting: w, at: at, ok: ok}
	}
	return msg
}

// errMsg reports a failed operation in the error line.
type errMsg struct{ err error }

// act returns a Cmd that asks the desk to do f (cancel, choose a plan,
// reset a display), reporting its failure in the error line.
func act(f func() error) tea.Cmd {
	return func() tea.Msg {
		if err := f(); err != nil {
			return errMsg{err}
		}
		return nil
	}
}

// cycle moves cursor i of a list of n up or down with k, round the ends.
func cycle(i, n int, km *KeyMap, k tea.KeyMsg) int {
	if key.Matches(k, km.Up) {
		return (i + n - 1) % n
	}
	return (i + 1) % n
}

// scroll moves a viewport with the keymap's keys, which the help lists,
// not with the viewport's own.
func scroll(vp *viewport.Model, km *KeyMap, k tea.KeyMsg) {
	switch {
	case key.Matches(k, km.Up):
		vp.ScrollUp(1)
	case key.Matches(k, km.Down):
		vp.ScrollDown(1)
	case key.Matches(k, km.PageUp):
		vp.PageUp()
	case key.Matches(k, km.PageDown):
		vp.PageDown()
	}
}
