package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/viewport"

	"paydesk/payment"
)

// maxLogLines bounds the event log's memory; the journal keeps everything.
const maxLogLines = 1000

// eventLog is the scrolling pane of connection events, messages,
// rejections and transitions. Lines are formatted once, when the event
// arrives, so drawing never depends on how many events there were.
type eventLog struct {
	lines []string
	vp    viewport.Model
	dirty bool
}

func newEventLog() eventLog { return eventLog{vp: viewport.New(80, 16)} }

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

// view draws the pane at the given size, following the newest line
// unless the operator has scrolled up.
func (l *eventLog) view(width, height int) string {
	if l.vp.Width != width || l.vp.Height != height {
		l.vp.Width, l.vp.Height = width, height
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
	return l.vp.View()
}
