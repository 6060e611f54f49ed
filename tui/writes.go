package tui

import (
	"fmt"
	"slices"
	"strings"

	"paydesk/payment"
)

// writes are the journal writes that failed, shown on every screen until
// they land: the payments with one (the latest notice of each, in the
// order they failed), the journal's own word that writes fail, and a
// passing note (a retried write landed).
type writes struct {
	unrecorded []payment.Event
	fault      string
	notice     string
}

// event takes what a bus event says of the journal's writes.
func (w *writes) event(ev payment.Event) {
	if ev.Retried {
		// The journal's retry wrote it: say which outcome was written.
		w.unrecorded = slices.DeleteFunc(slices.Clone(w.unrecorded), func(e payment.Event) bool { return e.TxnID == ev.TxnID })
		if ev.Kind == payment.KindTransition && (ev.Status.Final() || ev.Status == payment.StatusUnknown) {
			w.notice = ev.TxnID + " recorded after the retry: " + string(ev.Status)
		}
	}
	switch ev.Kind {
	case payment.KindUnrecorded:
		if ev.TxnID == "" {
			w.fault = ev.Detail
			return
		}
		w.unrecorded = slices.DeleteFunc(slices.Clone(w.unrecorded), func(e payment.Event) bool { return e.TxnID == ev.TxnID })
		w.unrecorded = append(w.unrecorded, ev)
	case payment.KindRecorded:
		// The outcomes it wrote (just before it) say more; else this.
		w.fault = ""
		if w.notice == "" {
			w.notice = ev.Detail
		}
	}
}

// maxUnrecordedShown is how many failed journal writes every screen lists
// above its help line; the status screen lists them all.
const maxUnrecordedShown = 2

// writesView says, on every screen, which payments have a journal write
// that failed and has not landed yet, and what landed since.
func (w *writes) view(s *Styles, width int) string {
	var lines []string
	if w.fault != "" && len(w.unrecorded) == 0 {
		lines = append(lines, s.ErrorText.Render(wrap("! "+w.fault, width)))
	}
	for i, ev := range w.unrecorded {
		if i == maxUnrecordedShown {
			lines = append(lines, s.ErrorText.Render(fmt.Sprintf("! and %d more not recorded (6: status)", len(w.unrecorded)-i)))
			break
		}
		lines = append(lines, s.ErrorText.Render(wrap("! NOT RECORDED "+ev.Detail, width)))
	}
	if w.notice != "" {
		lines = append(lines, s.Approved.Render(wrap(w.notice, width)))
	}
	return strings.Join(lines, "\n")
}
