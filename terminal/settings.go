package terminal

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"paydesk/payment"
	"paydesk/terminal/concert"
)

// Settings are the card terminal as an operator configures it (flags,
// PAYDESK_TERMINAL_* variables, the config file's [terminal] table);
// errors name each setting by its flag. Validate checks them; Open builds
// the driver from them.
type Settings struct {
	// Port is the serial port (--terminal-port); empty, the terminal is
	// off.
	Port string
	// Baud, Format (8N1, 7E1…) and POS, the cash register number 1-99
	// (--terminal-baud, --terminal-format, --terminal-pos).
	Baud   int
	Format string
	POS    int
	// Currency is the ISO 4217 code the terminal is set up for
	// (--terminal-currency).
	Currency string
	// Protocol is E+ or E (--terminal-protocol); Answer full or short
	// (--terminal-answer).
	Protocol, Answer string
	// ForceOnline asks online authorisation for every payment
	// (--terminal-force-online).
	ForceOnline bool
	// Probe is how often an idle terminal is checked, 0 never
	// (--terminal-probe); ResultTimeout the wait for a result once the
	// terminal has the request (--terminal-result-timeout).
	Probe, ResultTimeout time.Duration
	// MaxMinor is the kiosk's --max-amount, in minor units.
	MaxMinor int64
}

// Validate checks s: the line format and speed, the register number, the
// currency, the protocol and answer offered, and the result's wait.
func (s Settings) Validate() error {
	_, err := s.options()
	return err
}

// options are the settings as the driver takes them.
func (s Settings) options() (Options, error) {
	var o Options
	if _, err := ParseFormat(s.Format); err != nil {
		return o, fmt.Errorf("--terminal-format: %w", err)
	}
	if s.Baud <= 0 {
		return o, fmt.Errorf("--terminal-baud must be positive, got %d", s.Baud)
	}
	if s.POS < 1 || s.POS > 99 {
		return o, fmt.Errorf("--terminal-pos must be 1-99, got %d", s.POS)
	}
	cur, err := concert.LookupCurrency(s.Currency)
	if err != nil {
		return o, fmt.Errorf("--terminal-currency: %w", err)
	}
	switch strings.ToUpper(s.Protocol) {
	case "E+", "EPLUS", "E_PLUS":
	case "E":
		o.ProtocolE = true
	default:
		return o, fmt.Errorf("--terminal-protocol must be E+ or E, not %q", s.Protocol)
	}
	switch strings.ToLower(s.Answer) {
	case "full":
	case "short":
		o.ShortAnswer = true
	default:
		return o, fmt.Errorf("--terminal-answer must be full or short, not %q", s.Answer)
	}
	if s.ResultTimeout <= 0 {
		return o, fmt.Errorf("--terminal-result-timeout must be positive, got %s", s.ResultTimeout)
	}
	o.Port = PortOptions{Path: s.Port, Baud: s.Baud, Format: strings.ToUpper(s.Format)}
	o.POS, o.Currency, o.ForceOnline, o.MaxMinor = s.POS, cur.Alpha, s.ForceOnline, s.MaxMinor
	o.Timers.Result = s.ResultTimeout
	o.ProbeInterval = s.Probe
	if s.Probe == 0 {
		o.ProbeInterval = -1
	}
	return o, nil
}

// Open validates s and returns the driver, which opens the port when it
// runs (Run).
func (s Settings) Open(bus *payment.Bus, log *slog.Logger) (*Driver, error) {
	o, err := s.options()
	if err != nil {
		return nil, err
	}
	o.Logger = log
	d, err := NewDriver(bus, o)
	if err != nil {
		return nil, fmt.Errorf("card terminal: %w", err)
	}
	return d, nil
}

// Currency is what the terminal's amounts are in.
func (d *Driver) Currency() string { return d.opts.Currency }

// DisplayMode is what a customer display may pay on the terminal: card
// only.
func (*Driver) DisplayMode(m payment.DisplayMethod) (payment.Mode, error) {
	if m.Mode != "" && m.Mode != payment.ModeCard {
		return "", fmt.Errorf("%s: the terminal takes only card", m.Name)
	}
	return payment.ModeCard, nil
}
