package tui

import (
	"github.com/charmbracelet/bubbles/key"

	"paydesk/desk"
)

// KeyMap is the console's one set of key bindings; screens enable the ones
// that do something there, so help never lists a dead key.
type KeyMap struct {
	Card, BNPL, QR, IPP, Cancel, Status, Quit key.Binding
	Journal, Log, Approve, Decline, Target    key.Binding
	// Till opens the M-Pesa till payments; Assign gives one to a sale.
	Till, Assign                         key.Binding
	Up, Down, Enter, Back, Help, Yes, No key.Binding

	// ResetDisplay puts a customer display back on the amounts.
	ResetDisplay key.Binding
	// Ask asks the rail behind an unknown payment for its outcome.
	Ask key.Binding

	// Terminal and MPesa start payments on the other rails; Connect shows
	// where POS terminals connect; Displays lists the customer displays.
	Terminal, MPesa, Connect, Displays key.Binding
	// Payment returns to the payment in flight from another screen.
	Payment key.Binding
	// Notes shows the demo's notes; PageUp and PageDown scroll them.
	Notes, PageUp, PageDown key.Binding
}

// DefaultKeyMap keeps kiosk.py's menu numbers as hot keys.
func DefaultKeyMap() *KeyMap {
	km := &KeyMap{
		Card:   key.NewBinding(key.WithKeys("1"), key.WithHelp("1", "card")),
		BNPL:   key.NewBinding(key.WithKeys("2"), key.WithHelp("2", "BNPL")),
		QR:     key.NewBinding(key.WithKeys("3"), key.WithHelp("3", "DuitNow QR")),
		IPP:    key.NewBinding(key.WithKeys("4"), key.WithHelp("4", "IPP")),
		Cancel: key.NewBinding(key.WithKeys("5", "c"), key.WithHelp("5/c", "cancel payment")),
		// Journal and Log are letters: the digits belong to kiosk.py's menu.
		Journal: key.NewBinding(key.WithKeys("j"), key.WithHelp("j", "journal")),
		Log:     key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "event log")),
		Target:  key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next POS")),
		Till:    key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "till payments")),
		Assign:  key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "assign to a sale")),
		Approve: key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "resolve approved")),
		Decline: key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "resolve declined")),
		Status:  key.NewBinding(key.WithKeys("6", "s"), key.WithHelp("6/s", "status")),
		Quit:    key.NewBinding(key.WithKeys("7", "q", "ctrl+c"), key.WithHelp("7/q", "quit")),
		Up:      key.NewBinding(key.WithKeys("up"), key.WithHelp("↑", "up")),
		Down:    key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "down")),
		Enter:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "choose")),
		Back:    key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Help:    key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Yes:     key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		No:      key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n", "no")),
	}
	km.ResetDisplay = key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reset display"))
	km.Ask = key.NewBinding(key.WithKeys("k"), key.WithHelp("k", "ask the rail"))
	km.Terminal = key.NewBinding(key.WithKeys("8"), key.WithHelp("8", "terminal card"))
	km.MPesa = key.NewBinding(key.WithKeys("9"), key.WithHelp("9", "M-Pesa"))
	km.Connect = key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "connect a POS"))
	km.Displays = key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "displays"))
	km.Payment = key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "back to payment"))
	km.Notes = key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "demo notes"))
	km.PageUp = key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up"))
	km.PageDown = key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down"))
	return km
}

// item is the binding of a way to pay, by the desk's name for it
// (desk.Item.Name), so rebinding Card or MPesa changes what the key does,
// not only the help. An item the keymap has no field for (a rail added
// to the desk) is bound to its menu number.
func (km *KeyMap) item(it desk.Item) key.Binding {
	switch it.Name {
	case "card":
		return km.Card
	case "bnpl":
		return km.BNPL
	case "qr":
		return km.QR
	case "ipp":
		return km.IPP
	case "terminal":
		return km.Terminal
	case "mpesa":
		return km.MPesa
	}
	return key.NewBinding(key.WithKeys(it.Key), key.WithHelp(it.Key, it.Name))
}

// action is what a menu item other than a way to pay does.
type action int

const (
	actNone action = iota
	actPay         // a way to pay: the item's desk.Item
	actCancel
	actStatus
	actQuit
	actJournal
	actLog
	actConnect
	actTill
	actDisplays
	actNotes
)

// menu returns the binding of a menu item's action.
func (km *KeyMap) menu(a action) key.Binding {
	return [...]key.Binding{actCancel: km.Cancel, actStatus: km.Status, actQuit: km.Quit, actJournal: km.Journal,
		actLog: km.Log, actConnect: km.Connect, actTill: km.Till, actDisplays: km.Displays, actNotes: km.Notes}[a]
}

// label is the key a binding shows in the menu: its first key.
func label(b key.Binding) string {
	if ks := b.Keys(); len(ks) > 0 {
		return ks[0]
	}
	return "?"
}
