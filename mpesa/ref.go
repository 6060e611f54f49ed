package mpesa

import (
	"crypto/rand"
	"strings"
)

// crockford is Crockford's base32 alphabet: no I, L, O or U, so a
// reference read off a screen and typed on a phone keypad survives.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// RefPrefix starts every sale reference paydesk mints.
const RefPrefix = "PD"

// NewReference mints a sale reference: "PD" and 8 Crockford base32
// characters (40 random bits), 10 characters in all, so it fits
// AccountReference (≤12) and a paybill's BillRefNumber, and a customer
// can type it.
func NewReference() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("mpesa: crypto/rand failed: " + err.Error())
	}
	out := make([]byte, 0, 10)
	out = append(out, RefPrefix...)
	for _, c := range b {
		out = append(out, crockford[c&31])
	}
	return string(out)
}

// NormalizeReference reads a reference as a customer typed it into a
// paybill's account field: trimmed, upper-cased, spaces and dashes gone,
// and the letters Crockford base32 leaves out read as the digits they
// look like (O→0, I and L→1).
func NormalizeReference(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '_':
			continue
		case i >= len(RefPrefix) && r == 'O':
			r = '0'
		case i >= len(RefPrefix) && (r == 'I' || r == 'L'):
			r = '1'
		}
		b.WriteRune(r)
	}
	return b.String()
}
