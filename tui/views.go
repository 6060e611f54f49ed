package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"paydesk/payment"
)

// menuItem is one line of the menu: a hot key, and either a payment mode
// on a rail or an action.
type menuItem struct {
	act   action
	label string
	mode  payment.Mode
	// rail runs the item's payments: railPOS, railTerminal or railMPesa.
	rail string
}

var menuItems = []menuItem{
	{actCard, "Card Payment", payment.ModeCard, railPOS},
	{actBNPL, "Buy Now Pay Later (BNPL)", payment.ModeBNPL, railPOS},
	{actQR, "DuitNow QR", payment.ModeDuitNowQR, railPOS},
	{actIPP, "Installment Payment (IPP)", payment.ModeIPP, railPOS},
	{actCancel, "Cancel Transaction", "", ""},
	{actStatus, "Show Status", "", ""},
	{actQuit, "Exit", "", ""},
	{actTerminal, "Card on unattended terminal", payment.ModeCard, railTerminal},
	{actMPesa, "M-Pesa STK Push", payment.ModeSTKPush, railMPesa},
	{actJournal, "Journal", "", ""},
	{actLog, "Event log", "", ""},
	{actConnect, "Where POS terminals connect (QR code)", "", ""},
}

// disabled says why an item cannot be used now; "" when it can.
func (m Model) disabled(it menuItem) string {
	if it.rail != "" && m.starter(it.rail) == nil {
		return notConfigured[it.rail]
	}
	return ""
}

var modeNames = map[payment.Mode]string{
	payment.ModeCard: "Card", payment.ModeBNPL: "BNPL", payment.ModeDuitNowQR: "DuitNow QR", payment.ModeIPP: "IPP",
	payment.ModeRefund: "Refund", payment.ModeSTKPush: "M-Pesa", payment.ModeC2B: "M-Pesa till",
}

// View draws the current screen between the header and the help line.
func (m Model) View() string {
	var body string
	switch m.screen {
	case scrMenu:
		body = m.menuView()
	case scrAmount:
		body = m.amountView()
	case scrWaiting:
		body = m.waitingView()
	case scrPlans:
		body = m.plansView()
	case scrResult:
		body = m.resultView()
	case scrStatus:
		body = m.statusView()
	case scrJournal:
		body = m.journalScreen()
	case scrConnect:
		addr := connectAddr(m.cfg.Listen)
		body = m.styles.Title.Render("Connect a POS terminal") + "\n" + "In the POS app: KIOSK, then scan this code or enter " +
			m.styles.Selected.Render(addr) + "\n\n" + qrBlock(addr)
	case scrDisplays:
		body = m.displaysView()
	case scrTill:
		body = m.tillScreen()
	case scrNotes:
		body = m.styles.Title.Render("Demo notes") + "\n" + m.notes.View()
	case scrLog:
		body = m.styles.Title.Render("Event log") + "\n" + m.log.view(m.width, max(m.height-6-m.warnLines(), 3))
	}
	footer := m.help.View(helpFor{m})
	if m.confirmQuit {
		footer = m.styles.Pending.Render("A payment is in flight (it stays in the journal). Quit? y/n")
	} else if m.errLine != "" {
		footer = m.styles.ErrorText.Render("! "+m.errLine) + "\n" + footer
	}
	if w := m.writesView(); w != "" && m.screen != scrStatus {
		footer = w + "\n" + footer
	}
	header := m.headerView()
	if m.height > 0 {
		body = fitBody(body, m.height-lipgloss.Height(header)-lipgloss.Height(footer)-2, m.bodyFocus())
	}
	return clip(lipgloss.JoinVertical(lipgloss.Left, header, "", body, "", footer), m.width)
}

// bodyFocus is the line of the body that must stay in view: the selected
// item.
func (m Model) bodyFocus() int {
	switch m.screen {
	case scrMenu:
		return m.cursor
	case scrPlans:
		return m.planCursor + 1
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
func (m Model) warnLines() int {
	n := 0
	if m.cfg.DevSecret {
		n++
	}
	if m.away() {
		n++
	}
	return n
}

// awayLine is the header's line while the operator looks away from a
// payment: which one, how it stands, and the key that goes back to it.
func (m Model) awayLine() string {
	state := "in flight"
	switch m.payScreen {
	case scrPlans:
		state = "plans offered"
	case scrResult:
		state = strings.ToUpper(strings.ReplaceAll(string(m.result.Status), "_", " "))
	}
	return fmt.Sprintf("%s: back to %s %s %s, %s", label(m.keys.Payment), m.txn, modeNames[m.mode], m.txnAmount, state)
}

func (m Model) headerView() string {
	s := m.styles
	n := len(m.peers)
	state := s.Approved.Render(fmt.Sprintf("%d POS connected", n))
	if n == 0 {
		state = s.Pending.Render("waiting for a POS")
	}
	h := s.Header.Render("paydesk "+m.cfg.KioskID) + s.Muted.Render("  listening on "+m.cfg.Listen)
	if m.cfg.Demo {
		h = s.Demo.Render("DEMO ") + h
	}
	// A narrow window puts the POS state on a line of its own rather
	// than cut it.
	// The hub's state follows the POS state on the same line when the
	// window is wide enough, else on a line of its own.
	if m.cfg.Hub != nil {
		hs := "hub: " + m.hub
		if m.hub == "up to date" {
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
	if m.cfg.DevSecret {
		h += "\n" + s.ErrorText.Render(devSecretWarning)
	}
	if m.away() {
		h += "\n" + s.Pending.Render(m.awayLine())
	}
	// The other rails' health goes on a line of its own, so the header
	// fits 80 columns however many rails there are.
	if len(m.health) > 0 || m.cfg.Displays != nil {
		h += "\n"
		if len(m.health) > 0 {
			h += s.Muted.Render("rails:")
		}
		for _, rh := range m.health {
			if rh.Up {
				h += "  " + s.Approved.Render(rh.name+" "+rh.Detail)
			} else {
				h += "  " + s.Pending.Render(rh.name+": "+rh.Detail)
			}
		}
		if m.cfg.Displays != nil {
			if len(m.health) > 0 {
				h += "  "
			}
			h += s.Muted.Render("customer displays: ") + m.displaysHeader()
		}
	}
	return h
}

func (m Model) menuView() string {
	s := m.styles
	var b strings.Builder
	for i, it := range m.items() {
		line := fmt.Sprintf("%s. %s", label(m.keys.menu(it.act)), it.label)
		why := m.disabled(it)
		switch {
		case why != "":
			// The reason is read whole: in a narrow window it wraps under
			// the item instead of running off the edge.
			text := line + " — " + why
			if m.width > 0 && ansi.StringWidth(text)+2 > m.width {
				text = strings.Join(wrapAtSpaces(text, m.width-5), "\n     ")
			}
			line = "  " + s.Disabled.Render(text)
		case i == m.cursor:
			line = s.Selected.Render("> " + line)
		default:
			line = "  " + line
		}
		b.WriteString(line + "\n")
	}
	for _, t := range m.cfg.Unresolved {
		b.WriteString("\n" + s.Pending.Render(wrap(fmt.Sprintf("UNKNOWN %s %s %s on %s: %s; check %s",
			t.ID, t.Mode, t.Amount, t.Peer, payment.UnknownWhy(t), payment.WhereToCheck(t.Rail)), m.width)))
	}
	if m.cfg.Demo && m.cfg.DemoNotes != "" {
		// Header, blank, menu, blank, footer: the notes get what is left.
		used := 4 + len(m.items()) + 2*len(m.cfg.Unresolved) + m.warnLines()
		// The full help (?) and an error line take more than the one
		// footer line counted above.
		used += lipgloss.Height(m.help.View(helpFor{m})) - 1
		if m.errLine != "" {
			used++
		}
		if len(m.health) > 0 || m.cfg.Displays != nil {
			used++
		}
		notes := strings.Split(m.cfg.DemoNotes, "\n")
		if m.height-used-1 >= len(notes) {
			b.WriteString("\n" + s.Muted.Render(m.cfg.DemoNotes))
		} else {
			brief := m.cfg.DemoBrief
			if brief == "" {
				brief = "Demo POS by cents: .51 declined  .61 no answer  .62 no result  .81 POS error\n" +
					"  .91 wrong amount  .92 reconnects  other: approved (every outcome: n)"
			}
			// The brief's first lines matter most: keep those that fit.
			// None fits when the window is full (the full help is
			// open): the header must not scroll off.
			lines := strings.Split(brief, "\n")
			if avail := m.height - used - 1; avail < len(lines) {
				lines = lines[:max(avail, 0)]
			}
			if len(lines) > 0 {
				b.WriteString("\n" + s.Muted.Render(strings.Join(lines, "\n")))
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (m Model) amountView() string {
	s := m.styles
	cur := m.railCurrency(m.railName)
	if cur == "MYR" {
		cur = "RM"
	}
	title := modeNames[m.mode] + " payment"
	if m.railName == railTerminal {
		title += " on the unattended terminal"
	}
	v := s.Title.Render(title) + "\n\n"
	if m.railName == railMPesa {
		v += "Customer's phone: " + m.inputView(m.phone) + "\n"
		if m.askPhone {
			if m.amountErr != "" {
				v += s.ErrorText.Render(wrap("! "+m.amountErr, m.width)) + "\n"
			}
			return strings.TrimRight(v, "\n")
		}
	}
	v += "Amount (" + cur + "): " + m.inputView(m.amount)
	if m.amountErr != "" {
		// "!" marks the refusal where colour does not show.
		v += "\n" + s.ErrorText.Render(wrap("! "+m.amountErr, m.width))
	}
	if len(m.peers) > 1 && m.railName == railPOS {
		v += "\n\nPOS: " + s.Selected.Render(m.targetLabel()) + s.Muted.Render(fmt.Sprintf("  (%d connected; tab: next)", len(m.peers)))
	}
	return v
}

func (m Model) flight() (deadline string, ok bool) {
	for _, f := range m.flights {
		if f.ID == m.txn && !f.Deadline.IsZero() {
			left := f.Deadline.Sub(m.cfg.Now()).Round(1e9)
			return fmt.Sprintf("waiting for %s: %s left", f.Waiting, max(left, 0)), true
		}
	}
	if d, ok := m.starter(m.railName).(payment.Deadliner); ok && m.railName != railPOS {
		if waiting, at, ok := d.Deadline(m.txn); ok {
			return fmt.Sprintf("waiting for %s: %s left", waiting, max(at.Sub(m.cfg.Now()).Round(1e9), 0)), true
		}
	}
	return "", false
}

func (m Model) waitingView() string {
	s := m.styles
	frame := m.spin.View()
	if m.cfg.StillSpinner {
		frame = "*"
	}
	v := fmt.Sprintf("%s %s %s %s\n", frame, s.Title.Render(m.txn), modeNames[m.mode], m.txnAmount)
	v += s.Muted.Render(fmt.Sprintf("elapsed %s", m.cfg.Now().Sub(m.started).Round(1e9)))
	if d, ok := m.flight(); ok {
		v += s.Muted.Render("  " + d)
	}
	v += "\n"
	for _, st := range m.steps {
		v += "  • " + st + "\n"
	}
	if m.confirmCanc {
		v += "\n" + s.Pending.Render(cancelNote(m.railName))
	}
	return strings.TrimRight(v, "\n")
}

func (m Model) plansView() string {
	s := m.styles
	var list strings.Builder
	list.WriteString(s.Title.Render("Instalment plans for "+m.txnAmount.String()) + "\n")
	for i, p := range m.plans {
		label := fmt.Sprintf("%s (%s, %d)", p.ID, orDash(p.Frequency), p.TotalInstallments)
		if p.TotalInstallments == 0 && p.Frequency == "" {
			label = p.ID + " (one payment)"
		}
		if i == m.planCursor {
			list.WriteString(s.Selected.Render("> "+label) + "\n")
		} else {
			list.WriteString("  " + label + "\n")
		}
	}
	p := m.plans[m.planCursor]
	var d strings.Builder
	d.WriteString(s.Header.Render(p.ID) + "\n")
	if len(p.Installments) == 0 {
		d.WriteString("pay in full, no instalments")
	}
	for _, in := range p.Installments {
		d.WriteString(fmt.Sprintf("#%d %s %s", in.Number, in.Date, in.Amount))
		if in.Fee.Minor > 0 {
			d.WriteString(fmt.Sprintf(" fee %s (%s%%)", in.Fee, in.FeePercent))
		}
		d.WriteString("\n")
	}
	v := lipgloss.JoinHorizontal(lipgloss.Top, list.String(), "  ", s.Box.Render(strings.TrimRight(d.String(), "\n")))
	if left, ok := m.flight(); ok {
		v = s.Muted.Render(left) + "\n" + v
	}
	if m.confirmCanc {
		v += "\n" + s.Pending.Render(wrap(cancelNote(m.railName), m.width))
	}
	return v
}

// maxUnrecordedShown is how many failed journal writes every screen lists
// above its help line; the status screen lists them all.
const maxUnrecordedShown = 2

// writesView says, on every screen, which payments have a journal write
// that failed and has not landed yet, and what landed since.
func (m Model) writesView() string {
	s := m.styles
	var lines []string
	if m.journalFault != "" && len(m.unrecorded) == 0 {
		lines = append(lines, s.ErrorText.Render(wrap("! "+m.journalFault, m.width)))
	}
	for i, ev := range m.unrecorded {
		if i == maxUnrecordedShown {
			lines = append(lines, s.ErrorText.Render(fmt.Sprintf("! and %d more not recorded (6: status)", len(m.unrecorded)-i)))
			break
		}
		lines = append(lines, s.ErrorText.Render(wrap("! NOT RECORDED "+ev.Detail, m.width)))
	}
	if m.notice != "" {
		lines = append(lines, s.Approved.Render(wrap(m.notice, m.width)))
	}
	return strings.Join(lines, "\n")
}

func (m Model) resultView() string {
	s := m.styles
	ev := m.result
	r := ev.Result
	if r == nil {
		r = &payment.Result{}
	}
	glyph, style, word := "✗", s.Declined, strings.ToUpper(strings.ReplaceAll(string(ev.Status), "_", " "))
	switch ev.Status {
	case payment.StatusApproved:
		glyph, style = "✓", s.Approved
		if len(r.Flags) > 0 {
			// Money came, but not simply: not a plain tick.
			glyph, style, word = "!", s.Pending, word+", CHECK"
		}
	case payment.StatusCancelled, payment.StatusTimedOut, payment.StatusUnknown:
		glyph, style = "!", s.Pending
	}
	if ev.Kind == payment.KindUnrecorded {
		glyph, style, word = "!", s.ErrorText, "NOT RECORDED (unknown)"
	}
	v := style.Render(fmt.Sprintf("%s %s", glyph, word)) +
		"  " + m.txn + " " + modeNames[m.mode] + " " + m.txnAmount.String() + "\n\n"
	paid := ""
	if r.Paid != nil {
		paid = r.Paid.String()
	}
	for _, kv := range [][2]string{{"Auth code", r.AuthCode}, {"Card", payment.CardDisplay(r.Card)},
		{remoteLabel(m.railName), r.RemoteID}, {"Plan", r.PlanID}, {"Reason", r.Reason},
		{"Paid", paid}, {"Check", strings.Join(r.Flags, ", ")}} {
		if kv[1] != "" {
			// A long value (a reason) wraps under itself, read whole.
			val := strings.ReplaceAll(wrap(kv[1], max(m.width-17, 20)), "\n", "\n"+strings.Repeat(" ", 17))
			v += fmt.Sprintf("%-16s %s\n", kv[0], val)
		}
	}
	line := payment.ResultLine(m.txn, ev.Status, m.txnAmount, ev.Result)
	return v + "\n" + s.Muted.Render(wrap(line, m.width))
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

func (m Model) statusView() string {
	s := m.styles
	var b strings.Builder
	if m.cfg.DevSecret {
		b.WriteString(s.ErrorText.Render("Secret: the public development secret; anyone can sign POS messages.") + "\n" +
			"  Set PAYDESK_SECRET or --secret-file (the POS needs the same secret).\n\n")
	}
	b.WriteString(s.Title.Render("Connected POS") + "\n")
	if len(m.peers) == 0 {
		b.WriteString("  none\n")
	}
	for _, p := range m.peers {
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
	b.WriteString("\n" + s.Title.Render("In flight") + "\n")
	if len(m.flights) == 0 {
		b.WriteString("  none\n")
	}
	for _, f := range m.flights {
		b.WriteString(fmt.Sprintf("  %s %s %s on %s: %s\n", f.ID, f.Mode, f.Amount, f.Peer, f.Status))
	}
	b.WriteString("\n" + s.Title.Render("Today") + "\n")
	if len(m.totals) == 0 {
		b.WriteString("  no transactions\n")
	}
	for _, t := range m.totals {
		b.WriteString(fmt.Sprintf("  %-8s %-12s %4d  %s\n", t.Rail, t.Status, t.Count, t.Amount))
	}
	total := 0
	var parts []string
	for _, st := range payment.Statuses {
		if n := m.counts[st]; n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	if len(m.unrecorded) > 0 {
		b.WriteString("\n" + s.Title.Render("Not recorded (a journal write failed; paydesk retries it)") + "\n")
	}
	for _, ev := range m.unrecorded {
		b.WriteString(wrap("  "+ev.Detail, m.width) + "\n")
	}
	b.WriteString("\nJournal: " + plural(total, "transaction"))
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	return b.String()
}

// helpFor adapts the model's screen to bubbles/help.
type helpFor struct{ m Model }

// payment is the Payment binding, listed only while the operator looks
// away from a payment.
func (h helpFor) payment() key.Binding {
	b := h.m.keys.Payment
	b.SetEnabled(h.m.away())
	return b
}

// ShortHelp lists the keys that do something on the current screen.
func (h helpFor) ShortHelp() []key.Binding {
	km := h.m.keys
	switch h.m.screen {
	case scrAmount:
		if len(h.m.peers) > 1 && h.m.railName == railPOS {
			return []key.Binding{km.Enter, km.Target, km.Back}
		}
		return []key.Binding{km.Enter, km.Back}
	case scrWaiting:
		return []key.Binding{km.Cancel, withHelp(km.Back, "look away"), km.Help, km.Quit}
	case scrPlans:
		return []key.Binding{km.Up, km.Down, km.Enter, withHelp(anyOf(km.Cancel, km.Quit, km.Back), "cancel payment")}
	case scrResult:
		return []key.Binding{key.NewBinding(key.WithKeys("any"), key.WithHelp("any key", "menu"))}
	case scrStatus:
		return []key.Binding{km.Back, h.payment(), km.Quit}
	case scrJournal:
		if j := h.m.journal; j.open != nil {
			var keys []key.Binding
			if !j.open.Status.Final() && h.m.checker(*j.open) != nil {
				keys = append(keys, km.Ask)
			}
			if j.open.Status == payment.StatusUnknown {
				keys = append(keys, km.Approve, km.Decline)
			}
			return append(keys, km.Back, h.payment())
		}
		return []key.Binding{h.move(), h.page(), km.Enter, km.Back, h.payment()}
	case scrLog:
		return []key.Binding{h.move(), h.page(), km.Back, h.payment()}
	case scrConnect:
		return []key.Binding{key.NewBinding(key.WithKeys("any"), key.WithHelp("any key", "menu"))}
	case scrDisplays:
		return []key.Binding{km.Up, km.Down, km.Enter, km.ResetDisplay, km.Back, h.payment()}
	case scrTill:
		if h.m.tillv.assigning {
			return []key.Binding{km.Enter, km.Back}
		}
		return []key.Binding{km.Up, km.Down, km.Assign, km.Back, h.payment()}
	case scrNotes:
		return []key.Binding{h.move(), h.page(), km.Back}
	}
	// The menu lists its own items: the footer keeps help and quit first,
	// so a narrow window does not cut them.
	return []key.Binding{h.payment(), km.Help, km.Quit, h.move(), km.Enter, h.notes()}
}

// move and page are the arrows and the page keys, in one entry each so
// a footer fits a narrow window.
func (h helpFor) move() key.Binding {
	return anyOfHelp(h.m.keys.Up.Help().Key+"/"+h.m.keys.Down.Help().Key, "move", h.m.keys.Up, h.m.keys.Down)
}

func (h helpFor) page() key.Binding {
	return anyOfHelp(h.m.keys.PageUp.Help().Key+"/"+h.m.keys.PageDown.Help().Key, "page", h.m.keys.PageUp, h.m.keys.PageDown)
}

// notes is the Notes binding, listed when there are demo notes.
func (h helpFor) notes() key.Binding {
	return h.only(h.m.keys.Notes, h.m.cfg.DemoNotes != "")
}

// anyOfHelp is anyOf bs shown as k and desc.
func anyOfHelp(k, desc string, bs ...key.Binding) key.Binding {
	b := anyOf(bs...)
	b.SetHelp(k, desc)
	return b
}

// only is b, listed only when on is set (its screen exists).
func (h helpFor) only(b key.Binding, on bool) key.Binding {
	b.SetEnabled(on)
	return b
}

// withHelp is b described as desc on one screen.
func withHelp(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// anyOf is a binding for the keys of bs, shown as "a/b/…".
func anyOf(bs ...key.Binding) key.Binding {
	var keys, help []string
	for _, b := range bs {
		keys, help = append(keys, b.Keys()...), append(help, b.Help().Key)
	}
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(strings.Join(help, "/"), ""))
}

// FullHelp lists every key of the screen, grouped; on the menu it lists
// every key of the console, with the other screens' keys under them.
func (h helpFor) FullHelp() [][]key.Binding {
	km := h.m.keys
	if h.m.screen == scrMenu {
		return [][]key.Binding{
			{km.Card, km.BNPL, km.QR, km.IPP, km.Terminal, km.MPesa, km.Cancel, km.Status, km.Quit},
			{km.Journal, km.Log, km.Connect, h.only(km.Till, h.m.till() != nil), h.only(km.Displays, h.m.cfg.Displays != nil), h.notes(), h.payment()},
			{km.Up, km.Down, km.PageUp, km.PageDown, km.Enter, km.Back, km.Help, km.Target},
			{km.Yes, km.No, km.Ask, km.Approve, km.Decline, km.Assign, km.ResetDisplay},
		}
	}
	return [][]key.Binding{h.ShortHelp()}
}
