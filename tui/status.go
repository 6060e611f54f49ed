package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/desk"
	"paydesk/payment"
)

// statusModel is the status screen: the connected POS, the payments in
// flight, the day's totals, the payments whose journal write failed and
// the journal's counts, from the latest snapshot.
type statusModel struct {
	c    *common
	snap desk.Snapshot
	// unrecorded are the payments with a journal write that failed and
	// has not landed yet; the root keeps them.
	unrecorded []payment.Event
	width      int
}

func (s *statusModel) setSize(l layout) { s.width = l.width }

func (s *statusModel) update(msg tea.Msg) (intent, tea.Cmd) {
	km := s.c.keys
	switch msg := msg.(type) {
	case snapshotMsg:
		s.snap = msg.snap
	case tea.KeyMsg:
		if key.Matches(msg, km.Back, km.Status, km.Enter) {
			return intent{back: true}, nil
		} else if key.Matches(msg, km.Quit) {
			return intent{quit: true}, nil
		}
	}
	return intent{}, nil
}

// plural is "1 transaction", "2 transactions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (s *statusModel) view() string {
	st := s.c.styles
	var b strings.Builder
	if s.c.cfg.DevSecret {
		b.WriteString(st.ErrorText.Render("Secret: the public development secret; anyone can sign POS messages.") + "\n" +
			"  Set PAYDESK_SECRET or --secret-file (the POS needs the same secret).\n\n")
	}
	b.WriteString(st.Title.Render("Connected POS") + "\n")
	if len(s.snap.Peers) == 0 {
		b.WriteString("  none\n")
	}
	for _, p := range s.snap.Peers {
		last := "never"
		if !p.LastMsg.IsZero() {
			last = p.LastMsg.Format("15:04:05")
		}
		refused := ""
		if p.Rejected > 0 {
			refused = "  " + plural(int(p.Rejected), "frame") + " refused"
		}
		b.WriteString(fmt.Sprintf("  %-8s %-21s since %s  last %s%s\n", orDash(p.ID), p.Addr, p.Since.Format("15:04:05"), last, refused))
	}
	b.WriteString("\n" + st.Title.Render("In flight") + "\n")
	if len(s.snap.Flights) == 0 {
		b.WriteString("  none\n")
	}
	for _, f := range s.snap.Flights {
		b.WriteString(fmt.Sprintf("  %s %s %s on %s: %s\n", f.ID, f.Mode, f.Amount, f.Peer, f.Status))
	}
	b.WriteString("\n" + st.Title.Render("Today") + "\n")
	if len(s.snap.Totals) == 0 {
		b.WriteString("  no transactions\n")
	}
	for _, t := range s.snap.Totals {
		b.WriteString(fmt.Sprintf("  %-8s %-12s %4d  %s\n", t.Rail, t.Status, t.Count, t.Amount))
	}
	total := 0
	var parts []string
	for _, status := range payment.Statuses {
		if n := s.snap.Counts[status]; n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", status, n))
		}
	}
	if len(s.unrecorded) > 0 {
		b.WriteString("\n" + st.Title.Render("Not recorded (a journal write failed; paydesk retries it)") + "\n")
	}
	for _, ev := range s.unrecorded {
		b.WriteString(wrap("  "+ev.Detail, s.width) + "\n")
	}
	b.WriteString("\nJournal: " + plural(total, "transaction"))
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	return b.String()
}

func (s *statusModel) shortHelp() []key.Binding {
	km := s.c.keys
	return []key.Binding{km.Back, km.Payment, km.Quit}
}
