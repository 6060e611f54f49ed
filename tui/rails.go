package tui

import (
	"paydesk/payment"
)

// Rails are the rails the console drives beside the MobyPay POS link. A
// nil one is not configured: its menu item is listed, disabled, with the
// reason. A rail that also implements payment.HealthReporter has its state
// in the header; one that implements payment.Deadliner gets a countdown
// in the waiting view.
type Rails struct {
	// Terminal is the unattended card terminal on a serial port (menu 8).
	Terminal payment.Starter
	// MPesa takes M-Pesa STK Push payments (menu 9): phone, then amount.
	MPesa payment.Starter
}

// Rail names, as the menu and the header know them.
const (
	railPOS      = "pos"
	railTerminal = "terminal"
	railMPesa    = "mpesa"
)

// starter returns the rail behind a menu item's rail name; nil when it is
// not configured.
func (m Model) starter(name string) payment.Starter {
	switch name {
	case railTerminal:
		return m.cfg.Rails.Terminal
	case railMPesa:
		return m.cfg.Rails.MPesa
	}
	return m.rail
}

// notConfigured is why a rail's item is disabled, with the setting to use.
var notConfigured = map[string]string{
	railTerminal: "not configured (set --terminal-port)",
	railMPesa:    "not configured (set the M-Pesa settings)",
}

// checker is the rail that can be asked for payment t's outcome, nil when
// its rail cannot be asked (or is not configured).
func (m Model) checker(t payment.Txn) payment.Checker {
	var r payment.Starter
	switch t.Rail {
	case payment.RailTerminal:
		r = m.cfg.Rails.Terminal
	case payment.RailMPesa:
		r = m.cfg.Rails.MPesa
	}
	if c, ok := r.(payment.Checker); ok && r != nil {
		return c
	}
	return nil
}

// railHealth lists the configured rails that report their health, in a
// fixed order, for the header.
func (m Model) railHealth() []namedHealth {
	var out []namedHealth
	for _, name := range []string{railTerminal, railMPesa} {
		if h, ok := m.starter(name).(payment.HealthReporter); ok && m.starter(name) != nil {
			out = append(out, namedHealth{name, h.Health()})
		}
	}
	return out
}

type namedHealth struct {
	name string
	payment.Health
}

// railCurrency is the currency amounts are typed in for a rail.
func (m Model) railCurrency(name string) string {
	var r payment.Starter
	switch name {
	case railTerminal:
		r = m.cfg.Rails.Terminal
	case railMPesa:
		r = m.cfg.Rails.MPesa
	}
	if c, ok := r.(payment.Currencier); ok && c.Currency() != "" {
		return c.Currency()
	}
	if name == railMPesa {
		return "KES"
	}
	return m.cfg.Currency
}

// cancelNote is what the cancel confirmation says will happen.
func cancelNote(rail string) string {
	switch rail {
	case railMPesa:
		return "Stop waiting for this M-Pesa payment? Daraja cannot withdraw the prompt; a late payment is still recorded. y/n"
	case railTerminal:
		return "Cancel this payment? The terminal must confirm once it has the card. y/n"
	}
	return "Cancel this payment? The POS must confirm. y/n"
}

// remoteLabel names a rail's own reference on the result screen.
func remoteLabel(rail string) string {
	switch rail {
	case railTerminal:
		return "Terminal ref"
	case railMPesa:
		return "M-Pesa receipt"
	}
	return "POS transaction"
}
