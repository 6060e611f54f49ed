package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"paydesk/desk"
	"paydesk/payment"
)

// menuItem is one line of the menu: a way to pay (the desk's item) or
// another action.
type menuItem struct {
	act   action
	label string
	pay   desk.Item // for actPay
	// num is kiosk.py's menu number, which orders the numbered items.
	num string
}

// menuItems are the menu's lines: the desk's ways to pay and kiosk.py's
// cancel, status and exit under their numbers, then the console's own
// screens; the till payments when a rail lists them and the displays when
// their server runs.
func menuItems(d *desk.Desk) []menuItem {
	items := []menuItem{{act: actCancel, label: "Cancel Transaction", num: "5"}, {act: actStatus, label: "Show Status", num: "6"},
		{act: actQuit, label: "Exit", num: "7"}}
	for _, it := range d.Items() {
		items = append(items, menuItem{act: actPay, label: it.Label, pay: it, num: it.Key})
	}
	slices.SortStableFunc(items, func(a, b menuItem) int { return strings.Compare(a.num, b.num) })
	items = append(items, menuItem{act: actJournal, label: "Journal"}, menuItem{act: actLog, label: "Event log"},
		menuItem{act: actConnect, label: "Where POS terminals connect (QR code)"})
	if d.Till() != nil {
		items = append(items, menuItem{act: actTill, label: "Till payments (M-Pesa)"})
	}
	if d.Displays() != nil {
		items = append(items, menuItem{act: actDisplays, label: "Customer displays"})
	}
	return items
}

// menuModel is the menu: kiosk.py's items under their keys, the payments
// an earlier run left unknown, and the demo's notes when there is room.
type menuModel struct {
	c      *common
	items  []menuItem
	cursor int
	lay    layout
}

func newMenu(c *common) menuModel { return menuModel{c: c, items: menuItems(c.desk)} }

// binding is the key of item it.
func (m menuModel) binding(it menuItem) key.Binding {
	if it.act == actPay {
		return m.c.keys.item(it.pay)
	}
	return m.c.keys.menu(it.act)
}

// disabled says why an item cannot be used; "" when it can.
func (m menuModel) disabled(it menuItem) string {
	if it.act != actPay {
		return ""
	}
	return m.c.desk.Unavailable(it.pay)
}

func (m *menuModel) setSize(l layout) { m.lay = l }

// update moves the cursor and picks an item by its key or with enter.
func (m *menuModel) update(msg tea.Msg) (intent, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return intent{}, nil
	}
	km := m.c.keys
	pick := -1
	switch {
	case key.Matches(k, km.Up, km.Down):
		m.cursor = cycle(m.cursor, len(m.items), km, k)
	case key.Matches(k, km.Enter):
		pick = m.cursor
	default:
		for i, it := range m.items {
			if key.Matches(k, m.binding(it)) {
				pick = i
			}
		}
		if key.Matches(k, km.Quit) && pick < 0 {
			return intent{quit: true}, nil
		}
		if key.Matches(k, km.Notes) && m.c.cfg.DemoNotes != "" {
			return intent{choose: &menuItem{act: actNotes}}, nil
		}
	}
	if pick < 0 {
		return intent{}, nil
	}
	m.cursor = pick
	it := m.items[pick]
	return intent{choose: &it}, nil
}

// focus is the line that must stay in view: the selected item.
func (m *menuModel) focus() int { return m.cursor }

func (m *menuModel) view() string {
	s, cfg := m.c.styles, m.c.cfg
	var b strings.Builder
	for i, it := range m.items {
		line := fmt.Sprintf("%s. %s", label(m.binding(it)), it.label)
		why := m.disabled(it)
		switch {
		case why != "":
			// The reason is read whole: in a narrow window it wraps under
			// the item instead of running off the edge.
			text := line + " — " + why
			if m.lay.width > 0 && ansi.StringWidth(text)+2 > m.lay.width {
				text = strings.Join(wrapAtSpaces(text, m.lay.width-5), "\n     ")
			}
			line = "  " + s.Disabled.Render(text)
		case i == m.cursor:
			line = s.Selected.Render("> " + line)
		default:
			line = "  " + line
		}
		b.WriteString(line + "\n")
	}
	for _, t := range cfg.Unresolved {
		b.WriteString("\n" + s.Pending.Render(wrap(fmt.Sprintf("UNKNOWN %s %s %s on %s: %s; check %s",
			t.ID, t.Mode, t.Amount, t.Peer, payment.UnknownWhy(t), payment.WhereToCheck(t.Rail)), m.lay.width)))
	}
	if cfg.Demo && cfg.DemoNotes != "" {
		b.WriteString(m.notesView())
	}
	return strings.TrimRight(b.String(), "\n")
}

// notesView is the demo's notes under the menu, or their brief when the
// window is too short for them.
func (m *menuModel) notesView() string {
	s, cfg, l := m.c.styles, m.c.cfg, m.lay
	// Header, blank, menu, blank, footer: the notes get what is left.
	used := 3 + len(m.items) + 2*len(cfg.Unresolved) + l.warn + l.footer + l.rails
	notes := strings.Split(cfg.DemoNotes, "\n")
	if l.height-used-1 >= len(notes) {
		return "\n" + s.Muted.Render(cfg.DemoNotes)
	}
	brief := cfg.DemoBrief
	if brief == "" {
		brief = "Demo POS by cents: .51 declined  .61 no answer  .62 no result  .81 POS error\n" +
			"  .91 wrong amount  .92 reconnects  other: approved (every outcome: n)"
	}
	// The brief's first lines matter most: keep those that fit. None fits
	// when the window is full (the full help is open): the header must
	// not scroll off.
	lines := strings.Split(brief, "\n")
	if avail := l.height - used - 1; avail < len(lines) {
		lines = lines[:max(avail, 0)]
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n" + s.Muted.Render(strings.Join(lines, "\n"))
}

// shortHelp keeps help and quit first, so a narrow window does not cut
// them; the menu lists its own items.
func (m *menuModel) shortHelp() []key.Binding {
	km := m.c.keys
	return []key.Binding{km.Payment, km.Help, km.Quit, move(km), km.Enter, only(km.Notes, m.c.cfg.DemoNotes != "")}
}

// fullHelp lists every key of the console, with the other screens' keys
// under them.
func (m *menuModel) fullHelp() [][]key.Binding {
	km := m.c.keys
	return [][]key.Binding{
		{km.Card, km.BNPL, km.QR, km.IPP, km.Terminal, km.MPesa, km.Cancel, km.Status, km.Quit},
		{km.Journal, km.Log, km.Connect, only(km.Till, m.c.desk.Till() != nil), only(km.Displays, m.c.desk.Displays() != nil),
			only(km.Notes, m.c.cfg.DemoNotes != ""), km.Payment},
		{km.Up, km.Down, km.PageUp, km.PageDown, km.Enter, km.Back, km.Help, km.Target},
		{km.Yes, km.No, km.Ask, km.Approve, km.Decline, km.Assign, km.ResetDisplay},
	}
}
