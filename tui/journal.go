package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// journalView lists recent transactions and opens one's history; an
// unknown transaction can be resolved by the operator.
type journalView struct {
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
}

func newJournalView() journalView {
	// The time column starts with the selection's mark ("> "), which
	// shows without colour.
	cols := []table.Column{{Title: "  Time", Width: 10}, {Title: "Txn", Width: 16}, {Title: "Mode", Width: 10},
		{Title: "Amount", Width: 11}, {Title: "Status", Width: 12}, {Title: "Peer", Width: 11}}
	// One space between columns, not two: six columns and the mark fit
	// 80 columns.
	st := table.DefaultStyles()
	st.Header, st.Cell = st.Header.Padding(0, 1, 0, 0), st.Cell.Padding(0, 1, 0, 0)
	t := table.New(table.WithColumns(cols), table.WithFocused(true), table.WithHeight(12), table.WithStyles(st))
	return journalView{tbl: t}
}

// load reads the latest transactions from the journal.
func (j *journalView) load(journal *payment.Journal) error {
	txns, err := journal.Recent(context.Background(), 100)
	if err != nil {
		return err
	}
	j.txns = txns
	j.mark()
	return nil
}

// mark sets the table's rows with the selected one marked "> ".
func (j *journalView) mark() {
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

func (j *journalView) openSelected(journal *payment.Journal) error {
	i := j.tbl.Cursor()
	if i < 0 || i >= len(j.txns) {
		return nil
	}
	t := j.txns[i]
	hist, err := journal.History(context.Background(), t.ID)
	if err != nil {
		return err
	}
	j.open, j.history, j.resolve = &t, hist, ""
	j.asking, j.answer, j.answerErr = false, "", false
	return nil
}

// askTimeout bounds the wait for a rail asked for an outcome.
const askTimeout = 30 * time.Second

// askCmd asks a rail for the outcome of payment id. The rail journals
// what it learns; the answer is shown as said.
func askCmd(c payment.Checker, id string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
		defer cancel()
		words, err := c.CheckOutcome(ctx, id)
		return askedMsg{id: id, words: words, err: err}
	}
}

// askedMsg is a rail's answer about a payment's outcome.
type askedMsg struct {
	id    string
	words string
	err   error
}

// resolveCmd journals the operator's verdict on an unknown transaction.
func resolveCmd(bus *payment.Bus, t payment.Txn, st payment.Status, now time.Time) tea.Cmd {
	return func() tea.Msg {
		_, err := bus.Publish(context.Background(), payment.Event{Time: now, Kind: payment.KindTransition, Rail: t.Rail, TxnID: t.ID,
			Status: st, Flag: payment.FlagResolved, Detail: "resolved by operator as " + string(st),
			Result: &payment.Result{Reason: "resolved by operator"}})
		if err != nil {
			return errMsg{err}
		}
		return resolvedMsg{id: t.ID}
	}
}

// resolvedMsg reports a journaled resolution.
type resolvedMsg struct{ id string }

func (m Model) journalScreen() string {
	s := m.styles
	j := m.journal
	if j.open == nil {
		if len(j.txns) == 0 {
			return s.Title.Render("Journal") + "\n\n  no transactions yet"
		}
		return s.Title.Render("Journal") + s.Muted.Render("  (newest first; enter opens)") + "\n" + j.tbl.View()
	}
	t := *j.open
	var b strings.Builder
	b.WriteString(s.Title.Render(t.ID) + fmt.Sprintf("  %s %s %s on %s: ", t.Rail, t.Mode, t.Amount, orDash(t.Peer)))
	if t.Status == payment.StatusUnknown {
		hint := "UNKNOWN: check " + payment.WhereToCheck(t.Rail) + ", then a (approved) or d (declined)"
		if m.checker(t) != nil {
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
		d = strings.ReplaceAll(wrap(d, max(m.width-indent, 20)), "\n", "\n"+strings.Repeat(" ", indent))
		b.WriteString(fmt.Sprintf("%s %-10s %-13s %s\n", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Status, d))
	}
	switch {
	case j.asking:
		b.WriteString("\n" + s.Pending.Render(fmt.Sprintf("asking %s about %s…", t.Rail, t.ID)))
	case j.answerErr:
		b.WriteString("\n" + s.ErrorText.Render(wrap(j.answer, m.width)))
	case j.answer != "":
		b.WriteString("\n" + wrap(j.answer, m.width))
	}
	if j.resolve != "" {
		b.WriteString("\n" + s.Pending.Render(fmt.Sprintf("Mark %s as %s? It is journaled as your decision. y/n", t.ID, j.resolve)))
	}
	return strings.TrimRight(b.String(), "\n")
}
