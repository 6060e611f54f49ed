package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// View draws the active view between the header and the footer.
func (m Model) View() string {
	m.resize()
	body := m.active().view()
	footer := m.help.View(helpFor{&m})
	if m.confirmQuit {
		footer = m.c.styles.Pending.Render("A payment is in flight (it stays in the journal). Quit? y/n")
	} else if m.errLine != "" {
		footer = m.c.styles.ErrorText.Render("! "+m.errLine) + "\n" + footer
	}
	if w := m.writes.view(m.c.styles, m.width); w != "" && m.screen != scrStatus {
		footer = w + "\n" + footer
	}
	header := m.headerView()
	if m.height > 0 {
		body = fitBody(body, m.height-lipgloss.Height(header)-lipgloss.Height(footer)-2, m.bodyFocus())
	}
	return clip(lipgloss.JoinVertical(lipgloss.Left, header, "", body, "", footer), m.width)
}

// focuser is a view with a line that must stay in view.
type focuser interface{ focus() int }

// bodyFocus is the line of the body that must stay in view: the selected
// item.
func (m *Model) bodyFocus() int {
	if f, ok := m.active().(focuser); ok {
		return f.focus()
	}
	return 0
}

// fitBody cuts the body to rows lines around line focus, so a small
// window scrolls the body and keeps the header and the footer; an arrow
// marks where lines were left out.
func fitBody(body string, rows, focus int) string {
	lines := strings.Split(body, "\n")
	if len(lines) <= rows {
		return body
	}
	if rows <= 0 {
		return ""
	}
	// First the blank lines go, the focus moving up with the text.
	var dense []string
	f := focus
	for i, l := range lines {
		if strings.TrimSpace(l) != "" || i == focus {
			dense = append(dense, l)
		} else if i < focus {
			f--
		}
	}
	if len(dense) <= rows {
		return strings.Join(dense, "\n")
	}
	lines, focus = dense, f
	body = strings.Join(lines, "\n")
	start := 0
	if focus >= rows {
		start = focus - rows + 1
	}
	end := start + rows
	lines = lines[start:end:end]
	if start > 0 && focus != start && rows > 1 {
		lines[0] = "  ↑ more"
	}
	if end < len(strings.Split(body, "\n")) && focus != end-1 && rows > 1 {
		lines[rows-1] = "  ↓ more"
	}
	return strings.Join(lines, "\n")
}

// clip cuts every line to the window's width. A line that wrapped would
// throw off the renderer's line count and leave stale text on screen; the
// renderer only cuts lines once it has learnt the terminal's size, which
// is after the first frame.
func clip(view string, width int) string {
	if width <= 0 {
		return view
	}
	lines := strings.Split(view, "\n")
	for i, l := range lines {
		if ansi.StringWidth(l) > width {
			lines[i] = ansi.Truncate(l, width, "")
		}
	}
	return strings.Join(lines, "\n")
}

// wrap breaks text at spaces to fit the window, for messages that must be
// read whole (a peer's error) rather than cut by clip.
func wrap(text string, width int) string {
	if width <= 0 {
		return text
	}
	return ansi.Wrap(text, width, " ")
}

// wrapAtSpaces breaks text into lines of at most width cells at spaces
// only, so a flag such as --terminal-port is never split at its hyphen; a
// word longer than width has a line of its own.
func wrapAtSpaces(text string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(text) {
		switch {
		case cur == "":
			cur = w
		case ansi.StringWidth(cur)+1+ansi.StringWidth(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	return append(lines, cur)
}

// devSecretWarning is the header's line while the POS link uses the
// public development secret, which anyone can sign POS messages with.
const devSecretWarning = "! public development secret: set PAYDESK_SECRET or --secret-file"

// warnLines is how many lines the development secret's warning takes in
// the header, for the screens that fit a list to the window.
func (m *Model) warnLines() int {
	n := 0
	if m.c.cfg.DevSecret {
		n++
	}
	if m.away() {
		n++
	}
	return n
}

// awayLine is the header's line while the operator looks away from a
// payment: which one, how it stands, and the key that goes back to it.
func (m *Model) awayLine() string {
	p := &m.pay
	state := "in flight"
	switch p.phase {
	case phasePlans:
		state = "plans offered"
	case phaseResult:
		state = strings.ToUpper(strings.ReplaceAll(string(p.result.Status), "_", " "))
	}
	return fmt.Sprintf("%s: back to %s %s %s, %s", label(m.c.keys.Payment), p.txn, modeNames[p.mode], p.amount, state)
}

// railsLine is set when the header has a line of the rails' health and
// the customer displays.
func (m *Model) railsLine() bool { return len(m.snap.Health) > 0 || m.c.desk.Displays() != nil }

func (m *Model) headerView() string {
	s, snap, dc := m.c.styles, &m.snap, m.c.desk.Config()
	n := len(snap.Peers)
	state := s.Approved.Render(fmt.Sprintf("%d POS connected", n))
	if n == 0 {
		state = s.Pending.Render("waiting for a POS")
	}
	h := s.Header.Render("paydesk "+dc.KioskID) + s.Muted.Render("  listening on "+dc.Listen)
	if m.c.cfg.Demo {
		h = s.Demo.Render("DEMO ") + h
	}
	// A narrow window puts the POS state on a line of its own rather
	// than cut it.
	// The hub's state follows the POS state on the same line when the
	// window is wide enough, else on a line of its own.
	if dc.Hub != nil {
		hs := "hub: " + snap.Hub
		if snap.Hub == "up to date" {
			hs = s.Approved.Render(hs)
		} else {
			hs = s.Pending.Render(hs)
		}
		if m.width > 0 && lipgloss.Width(h)+2+lipgloss.Width(state)+2+lipgloss.Width(hs) > m.width {
			state += "\n" + hs
		} else {
			state += "  " + hs
		}
	}
	first, _, _ := strings.Cut(state, "\n")
	if m.width > 0 && lipgloss.Width(h)+2+lipgloss.Width(first) > m.width {
		h = wrap(h, m.width) + "\n" + state
	} else {
		h += "  " + state
	}
	if m.c.cfg.DevSecret {
		h += "\n" + s.ErrorText.Render(devSecretWarning)
	}
	if m.away() {
		h += "\n" + s.Pending.Render(m.awayLine())
	}
	// The other rails' health goes on a line of its own, so the header
	// fits 80 columns however many rails there are.
	if m.railsLine() {
		h += "\n"
		if len(snap.Health) > 0 {
			h += s.Muted.Render("rails:")
		}
		for _, rh := range snap.Health {
			if rh.Up {
				h += "  " + s.Approved.Render(string(rh.Rail)+" "+rh.Detail)
			} else {
				h += "  " + s.Pending.Render(string(rh.Rail)+": "+rh.Detail)
			}
		}
		if m.c.desk.Displays() != nil {
			if len(snap.Health) > 0 {
				h += "  "
			}
			h += s.Muted.Render("customer displays: ") + displaysHeader(s, snap.Displays)
		}
	}
	return h
}
