package daraja

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits of one STK Push, in whole shillings (Daraja FAQ 5).
const (
	MinAmount = 1
	MaxAmount = 250_000
)

// ErrBadAmount is wrapped by every wire amount ParseWireAmount refuses.
var ErrBadAmount = errors.New("bad M-Pesa amount")

// WireAmount is an amount as Daraja sent it, read exactly.
type WireAmount struct {
	// Shillings is the whole part.
	Shillings int64
	// Cents is the fractional part in hundredths; Daraja documents whole
	// shillings, so a non-zero value is flagged, never rounded away.
	Cents int64
	// Raw is the text as received.
	Raw string
}

// Fractional reports whether the amount has a non-zero fraction.
func (a WireAmount) Fractional() bool { return a.Cents != 0 }

// Minor is the amount in minor units (hundredths of a shilling).
func (a WireAmount) Minor() int64 { return a.Shillings*100 + a.Cents }

// ParseWireAmount reads an amount as Daraja writes it: a JSON number
// ("1", "1.0", "10500.00") or a decimal string ("5.00"), possibly quoted.
// More than two significant decimals, exponents, signs and anything that
// is not a number are refused.
func ParseWireAmount(s string) (WireAmount, error) {
	raw := s
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	bad := func(why string) (WireAmount, error) {
		return WireAmount{Raw: raw}, fmt.Errorf("amount %q: %s: %w", truncate(raw, 40), why, ErrBadAmount)
	}
	if s == "" {
		return bad("empty")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 15 || !allDigits(whole) {
		return bad("not a plain non-negative decimal")
	}
	if frac != "" && !allDigits(frac) {
		return bad("not a plain non-negative decimal")
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 2 {
		return bad("more than two decimals")
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return bad("out of range")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	c, _ := strconv.ParseInt(frac, 10, 64)
	return WireAmount{Shillings: w, Cents: c, Raw: raw}, nil
}

// CheckPushAmount checks an amount in minor units for one STK Push: whole
// shillings, 1 to 250,000. It returns the shillings.
func CheckPushAmount(minor int64) (int64, error) {
	if minor%100 != 0 {
		return 0, fmt.Errorf("M-Pesa takes whole shillings, not %d.%02d: %w", minor/100, minor%100, ErrBadAmount)
	}
	sh := minor / 100
	if sh < MinAmount || sh > MaxAmount {
		return 0, fmt.Errorf("an STK Push is KES %d to %d, not %d: %w", MinAmount, MaxAmount, sh, ErrBadAmount)
	}
	return sh, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
