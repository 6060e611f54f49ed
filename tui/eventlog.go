package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"paydesk/payment"
)

// maxLogLines bounds the event log's memory; the journal keeps everything.
const maxLogLines = 1000

// eventLog is the scrolling pane of connection events, messages,
// rejections and transitions. Lines are formatted once, when the event
// arrives, so drawing never depends on how many events there were.
type eventLog struct {
	c     *common
	lines []string
	vp    viewport.Model
	dirty bool
	// width and height are the pane's, set by setSize.
	width, height int
}

func newEventLog(c *common) eventLog { return eventLog{c: c, vp: viewport.New(80, 16)} }

// add formats ev as one line and keeps the newest maxLogLines.
func (l *eventLog) add(ev payment.Event) {
	who := ev.Peer
	if ev.TxnID != "" {
		who = strings.TrimSpace(ev.TxnID + " " + ev.Peer)
	}
	line := fmt.Sprintf("%s %-10s %s %s", ev.Time.Format("15:04:05"), ev.Kind, who, ev.Detail)
	if ev.Kind == payment.KindTransition {
		detail := ev.Detail
		if detail == string(ev.Status) { // "→ approved approved"
			detail = ""
		}
		line = strings.TrimSpace(fmt.Sprintf("%s %-10s %s → %s %s", ev.Time.Format("15:04:05"), ev.Kind, who, ev.Status, detail))
	}
	if ev.Flag != "" {
		line += " [" + ev.Flag + "]"
	}
	l.lines = append(l.lines, line)
	if len(l.lines) > 2*maxLogLines {
		l.lines = append(l.lines[:0:0], l.lines[len(l.lines)-maxLogLines:]...)
	}
	l.dirty = true
}

// setSize gives the pane the window's width and the rows the header, the
// title and the footer leave.
func (l *eventLog) setSize(lay layout) {
	l.width, l.height = lay.width, max(lay.height-6-lay.warn, 3)
}

// update adds each event and scrolls with the keymap's keys, which the
// help lists, not the viewport's own.
func (l *eventLog) update(msg tea.Msg) (intent, tea.Cmd) {
	km := l.c.keys
	switch msg := msg.(type) {
	case eventMsg:
		l.add(payment.Event(msg))
	case tea.KeyMsg:
		l.layout()
		switch {
		case key.Matches(msg, km.Back, km.Log):
			return intent{back: true}, nil
		default:
			scroll(&l.vp, km, msg)
		}
	}
	return intent{}, nil
}

// layout fits the viewport to the pane, following the newest line unless
// the operator has scrolled up.
func (l *eventLog) layout() {
	if l.vp.Width != l.width || l.vp.Height != l.height {
		l.vp.Width, l.vp.Height = l.width, l.height
		l.dirty = true
	}
	if l.dirty {
		follow := l.vp.AtBottom()
		lines := l.lines
		if len(lines) > maxLogLines {
			lines = lines[len(lines)-maxLogLines:]
		}
		l.vp.SetContent(strings.Join(lines, "\n"))
		if follow {
			l.vp.GotoBottom()
		}
		l.dirty = false
	}
}

func (l *eventLog) view() string {
	l.layout()
	return l.c.styles.Title.Render("Event log") + "\n" + l.vp.View()
}

func (l *eventLog) shortHelp() []key.Binding {
	km := l.c.keys
	return []key.Binding{move(km), page(km), km.Back, km.Payment}
}
