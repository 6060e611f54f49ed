package tui

import "github.com/charmbracelet/bubbles/key"

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
	return km
}
