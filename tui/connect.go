package tui

import (
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
)

// connectModel shows where POS terminals connect, as text and as a QR
// code the POS app scans; any key goes back to the menu.
type connectModel struct{ c *common }

func (m *connectModel) setSize(layout) {}

func (m *connectModel) update(msg tea.Msg) (intent, tea.Cmd) {
	if _, ok := msg.(tea.KeyMsg); ok {
		return intent{back: true}, nil
	}
	return intent{}, nil
}

func (m *connectModel) view() string {
	s := m.c.styles
	addr := connectAddr(m.c.desk.Config().Listen)
	return s.Title.Render("Connect a POS terminal") + "\n" + "In the POS app: KIOSK, then scan this code or enter " +
		s.Selected.Render(addr) + "\n\n" + qrBlock(addr)
}

func (m *connectModel) shortHelp() []key.Binding { return []key.Binding{anyKey()} }

// notesModel is the demo's notes, scrolled: every outcome, the till and
// HTTP API commands, one key away in any window.
type notesModel struct {
	c  *common
	vp viewport.Model
}

func newNotes(c *common) notesModel {
	vp := viewport.New(80, 10)
	vp.SetContent(c.cfg.DemoNotes)
	return notesModel{c: c, vp: vp}
}

// setSize gives the notes the rows the header and the footer leave.
func (n *notesModel) setSize(l layout) {
	n.vp.Width, n.vp.Height = l.width, max(l.height-l.header-4, 1)
}

func (n *notesModel) update(msg tea.Msg) (intent, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return intent{}, nil
	}
	km := n.c.keys
	switch {
	case key.Matches(k, km.Back, km.Notes):
		return intent{back: true}, nil
	default:
		scroll(&n.vp, km, k)
	}
	return intent{}, nil
}

func (n *notesModel) view() string { return n.c.styles.Title.Render("Demo notes") + "\n" + n.vp.View() }

func (n *notesModel) shortHelp() []key.Binding {
	km := n.c.keys
	return []key.Binding{move(km), page(km), km.Back}
}
