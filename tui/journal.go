package tui

import (
	"context"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// journalModel lists recent transactions and opens one's history; the
// rail of an unknown one can be asked for its outcome, or the operator
// resolves it. Every read of the journal is a Cmd whose journalMsg comes
// back here.
type journalModel struct {
	c       *common
	txns    []payment.Txn
	tbl     table.Model
	open    *payment.Txn
	history []payment.Event
	resolve payment.Status // asked for confirmation when set
	// asking is set while the rail is asked for the open payment's
	// outcome; answer is what it said last.
	asking    bool
	answer    string
	answerErr bool
	// loading is set from the journal's opening until its list comes.
	loading bool
	width   int
}

func newJournal(c *common) journalModel {
	// The time column starts with the selection's mark ("> "), which
	// shows without colour.
	cols := []table.Column{{Title: "  Time", Width: 10}, {Title: "Txn", Width: 16}, {Title: "Mode", Width: 10},
		{Title: "Amount", Width: 11}, {Title: "Status", Width: 12}, {Title: "Peer", Width: 11}}
	// One space between columns, not two: six columns and the mark fit
	// 80 columns.
	st := table.DefaultStyles()
	st.Header, st.Cell = st.Header.Padding(0, 1, 0, 0), st.Cell.Padding(0, 1, 0, 0)
	t := table.New(table.WithColumns(cols), table.WithFocused(true), table.WithHeight(12), table.WithStyles(st))
	return journalModel{c: c, tbl: t}
}

// journalMsg carries what the journal view asked for: the latest
// payments, and when one is open its history as the journal now has it;
// after an ask, the rail's words.
type journalMsg struct {
	txns []payment.Txn
	// open is the payment to show; nil for the list.
	open    *payment.Txn
	history []payment.Event
	// asked is set for the answer of a rail asked about open: its words,
	// or why it could not be asked (askErr).
	asked  bool
	words  string
	askErr bool
	// changed is set when the journal changed (an ask, a resolution);
	// list when only the list was asked for.
	changed, list bool
	err           error
}

// recentTxns is how many of the latest payments the list shows.
const recentTxns = 100

// load returns the Cmd that reads the latest payments, and opens id's
// history when id is set.
func (j *journalModel) load(id string) tea.Cmd {
	c := j.c
	return c.read(func(ctx context.Context) tea.Msg {
		msg := journalMsg{list: id == ""}
		msg.txns, msg.err = c.desk.Journal().Recent(ctx, recentTxns)
		if msg.err == nil && id != "" {
			msg.open, msg.history, msg.err = history(ctx, c, id)
		}
		return msg
	})
}

// history reads payment id and its events.
func history(ctx context.Context, c *common, id string) (*payment.Txn, []payment.Event, error) {
	t, err := c.desk.Journal().Txn(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	hist, err := c.desk.Journal().History(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return &t, hist, nil
}

// reset shows the list, to be loaded.
func (j *journalModel) reset() { j.open, j.resolve, j.loading = nil, "", true }

func (j *journalModel) setSize(l layout) {
	j.width = l.width
	rows := max(l.height-l.header-4, 3) // blank, title, blank, footer
	if j.tbl.Height() != rows {
		j.tbl.SetHeight(rows)
	}
	if j.tbl.Width() != l.width {
		j.tbl.SetWidth(l.width)
	}
}

// mark sets the table's rows with the selected one marked "> ".
func (j *journalModel) mark() {
	rows := make([]table.Row, 0, len(j.txns))
	cur := j.tbl.Cursor()
	for i, t := range j.txns {
		st := string(t.Status)
		if t.Status == payment.StatusUnknown {
			st = "! UNKNOWN"
		}
		mark := "  "
		if i == cur {
			mark = "> "
		}
		rows = append(rows, table.Row{mark + t.CreatedAt.Format("15:04:05"), t.ID, string(t.Mode), t.Amount.String(), st, t.Peer})
	}
	j.tbl.SetRows(rows)
}

func (j *journalModel) update(msg tea.Msg) (intent, tea.Cmd) {
	switch msg := msg.(type) {
	case journalMsg:
		return j.loaded(msg), nil
	case tea.KeyMsg:
		if j.open != nil {
			return j.openKey(msg)
		}
		return j.listKey(msg)
	}
	return intent{}, nil
}

// loaded takes what the journal said.
func (j *journalModel) loaded(msg journalMsg) intent {
	if msg.asked {
		if j.open == nil || j.open.ID != msg.open.ID {
			return intent{} // the operator moved on
		}
		j.asking = false
		j.answer, j.answerErr = msg.words, msg.askErr
	}
	j.loading = false
	if msg.err != nil {
		// A list that cannot be read is not shown.
		return intent{err: msg.err.Error(), back: msg.list, refresh: msg.changed}
	}
	j.txns = msg.txns
	if msg.open != nil && !msg.asked {
		for i, t := range j.txns {
			if t.ID == msg.open.ID {
				j.tbl.SetCursor(i)
			}
		}
		j.resolve, j.asking, j.answer, j.answerErr = "", false, "", false
	}
	if msg.open != nil {
		j.open, j.history = msg.open, msg.history
	}
	j.mark()
	return intent{refresh: msg.changed}
}

func (j *journalModel) listKey(k tea.KeyMsg) (intent, tea.Cmd) {
	km := j.c.keys
	var cmd tea.Cmd
	switch {
	case key.Matches(k, km.Back, km.Journal):
		return intent{back: true}, nil
	case key.Matches(k, km.Enter):
		if i := j.tbl.Cursor(); i >= 0 && i < len(j.txns) {
			cmd = j.load(j.txns[i].ID)
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
	return intent{}, cmd
}

func (j *journalModel) openKey(k tea.KeyMsg) (intent, tea.Cmd) {
	km := j.c.keys
	t := *j.open
	switch {
	case j.resolve != "" && key.Matches(k, km.Yes):
		st := j.resolve
		j.resolve = ""
		return intent{}, j.resolveCmd(t.ID, st)
	case j.resolve != "" && key.Matches(k, km.No):
		j.resolve = ""
	case key.Matches(k, km.Back):
		j.open = nil
	case !t.Status.Final() && !j.asking && j.c.desk.CanAsk(t.Rail) && key.Matches(k, km.Ask):
		j.asking, j.answer, j.answerErr = true, "", false
		return intent{}, j.askCmd(t)
	case t.Status == payment.StatusUnknown && key.Matches(k, km.Approve):
		j.resolve = payment.StatusApproved
	case t.Status == payment.StatusUnknown && key.Matches(k, km.Decline):
		j.resolve = payment.StatusDeclined
	}
	return intent{}, nil
}

// askCmd asks the rail of payment t for its outcome. The rail journals
// what it learns; the answer is shown as said, with the list and the
// payment as the journal now has them.
func (j *journalModel) askCmd(t payment.Txn) tea.Cmd {
	c := j.c
	return func() tea.Msg {
		ctx := context.Background()
		words, _, err := c.desk.Ask(ctx, t)
		msg := reread(ctx, c, t.ID)
		msg.asked, msg.words = true, words
		if err != nil {
			msg.words, msg.askErr = err.Error(), true
		}
		if msg.open == nil {
			msg.open = &t
		}
		return msg
	}
}

// resolveCmd journals the operator's decision on an unknown payment, then
// reads the list and the payment as they are now.
func (j *journalModel) resolveCmd(id string, st payment.Status) tea.Cmd {
	c := j.c
	return func() tea.Msg {
		ctx := context.Background()
		if _, err := c.desk.Resolve(ctx, id, st); err != nil {
			return errMsg{err}
		}
		return reread(ctx, c, id)
	}
}

// reread reads the list and payment id after the journal changed.
func reread(ctx context.Context, c *common, id string) journalMsg {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	msg := journalMsg{changed: true}
	msg.txns, msg.err = c.desk.Journal().Recent(ctx, recentTxns)
	if msg.err == nil {
		msg.open, msg.history, msg.err = history(ctx, c, id)
	}
	return msg
}

func (j *journalModel) view() string {
	s := j.c.styles
	if j.open == nil {
		switch {
		case j.loading && len(j.txns) == 0:
			return s.Title.Render("Journal") + "\n\n  reading the journal…"
		case len(j.txns) == 0:
			return s.Title.Render("Journal") + "\n\n  no transactions yet"
		}
		return s.Title.Render("Journal") + s.Muted.Render("  (newest first; enter opens)") + "\n" + j.tbl.View()
	}
	t := *j.open
	var b strings.Builder
	b.WriteString(s.Title.Render(t.ID) + fmt.Sprintf("  %s %s %s on %s: ", t.Rail, t.Mode, t.Amount, orDash(t.Peer)))
	if t.Status == payment.StatusUnknown {
		hint := "UNKNOWN: check " + payment.WhereToCheck(t.Rail) + ", then a (approved) or d (declined)"
		if j.c.desk.CanAsk(t.Rail) {
			hint = "UNKNOWN: k asks " + string(t.Rail) + "; or check, then a (approved) or d (declined)"
		}
		b.WriteString("\n" + s.Pending.Render(hint))
	} else {
		b.WriteString(string(t.Status))
	}
	if len(t.Flags) > 0 {
		b.WriteString(s.Muted.Render("  [" + strings.Join(t.Flags, ",") + "]"))
	}
	b.WriteString("\n\n")
	for _, ev := range j.history {
		d := ev.Detail
		if ev.Flag != "" {
			d += " [" + ev.Flag + "]"
		}
		// The detail wraps under itself, so it is read whole.
		const indent = 38 // time, kind and status
		d = strings.ReplaceAll(wrap(d, max(j.width-indent, 20)), "\n", "\n"+strings.Repeat(" ", indent))
		b.WriteString(fmt.Sprintf("%s %-10s %-13s %s\n", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Status, d))
	}
	switch {
	case j.asking:
		b.WriteString("\n" + s.Pending.Render(fmt.Sprintf("asking %s about %s…", t.Rail, t.ID)))
	case j.answerErr:
		b.WriteString("\n" + s.ErrorText.Render(wrap(j.answer, j.width)))
	case j.answer != "":
		b.WriteString("\n" + wrap(j.answer, j.width))
	}
	if j.resolve != "" {
		b.WriteString("\n" + s.Pending.Render(fmt.Sprintf("Mark %s as %s? It is journaled as your decision. y/n", t.ID, j.resolve)))
	}
	return strings.TrimRight(b.String(), "\n")
}

func (j *journalModel) shortHelp() []key.Binding {
	km := j.c.keys
	if j.open != nil {
		var keys []key.Binding
		if !j.open.Status.Final() && j.c.desk.CanAsk(j.open.Rail) {
			keys = append(keys, km.Ask)
		}
		if j.open.Status == payment.StatusUnknown {
			keys = append(keys, km.Approve, km.Decline)
		}
		return append(keys, km.Back, km.Payment)
	}
	return []key.Binding{move(km), page(km), km.Enter, km.Back, km.Payment}
}
