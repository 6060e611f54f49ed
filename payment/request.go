package payment

import (
	"errors"
	"strings"
)

// Request asks a rail for a payment. The console, plain mode and the
// customer screen all build the same Request.
type Request struct {
	Mode   Mode
	Amount Money
	// Target names the terminal to use (a POS id or address); empty means
	// the rail's default.
	Target string
}

// ErrBusy is wrapped when a rail or terminal already has a payment in
// flight and cannot take another.
var ErrBusy = errors.New("busy")

// ErrNoPeer is wrapped when no terminal is connected to take the payment.
var ErrNoPeer = errors.New("no terminal connected")

// MaskCard reduces anything a peer sends as a card number to its last four
// digits, so a full PAN never reaches the journal's fields, logs or screen.
// It returns "" when there are no digits.
func MaskCard(s string) string {
	var digits []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	if len(digits) > 4 {
		digits = digits[len(digits)-4:]
	}
	return string(digits)
}

// CardDisplay formats last four digits for people: "**** 4242".
func CardDisplay(last4 string) string {
	if last4 == "" {
		return ""
	}
	return "**** " + strings.TrimSpace(last4)
}
