package payment

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Money is an amount in integer minor units (sen, cents) of a currency.
// Floats never hold money inside paydesk: wire formats that want a float
// convert at the edge.
type Money struct {
	// Minor is the amount in the currency's smallest unit: 2550 is 25.50.
	Minor int64
	// Currency is the ISO 4217 alphabetic code, e.g. "MYR".
	Currency string
}

// DefaultCurrency is the currency of the MobyPay POS link (Malaysian ringgit).
const DefaultCurrency = "MYR"

// DefaultMaxMinor is the largest amount accepted from an operator when no
// maximum is configured: 50,000.00, ten times the MobyPay QA "maximum".
const DefaultMaxMinor = 5_000_000

// ErrBadAmount is wrapped by every amount the parser refuses, so callers can
// tell bad input from other failures with errors.Is.
var ErrBadAmount = errors.New("bad amount")

// AmountError says why an amount typed by an operator was refused. Its
// message is written for the person at the keyboard.
type AmountError struct {
	Input  string
	Reason string
}

func (e *AmountError) Error() string { return e.Reason }

// Unwrap lets errors.Is(err, ErrBadAmount) match.
func (e *AmountError) Unwrap() error { return ErrBadAmount }

// ParseAmount reads an amount as an operator types it ("25.50", "25.5",
// "25", "1,000.00" is refused) in a currency with the decimals ISO 4217
// gives it (two for most, none for JPY), and refuses with a message
// anything that is not a positive amount of at most maxMinor minor units.
// maxMinor <= 0 means DefaultMaxMinor.
func ParseAmount(input, currency string, maxMinor int64) (Money, error) {
	if maxMinor <= 0 {
		maxMinor = DefaultMaxMinor
	}
	if currency == "" {
		currency = DefaultCurrency
	}
	s := strings.TrimSpace(input)
	bad := func(format string, args ...any) (Money, error) {
		return Money{}, &AmountError{Input: input, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return bad("enter an amount, e.g. 25.50")
	}
	if s[0] == '-' {
		return bad("amount must be positive, not %s", s)
	}
	if s[0] == '+' {
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if hasDot && strings.Contains(frac, ".") {
		return bad("%q is not a number: more than one decimal point", input)
	}
	if whole == "" && frac == "" {
		return bad("%q is not a number", input)
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return bad("%q is not a number: use digits and one '.', e.g. 25.50", input)
			}
		}
	}
	decimals := Decimals(currency)
	switch {
	case decimals == 0 && strings.Trim(frac, "0") != "":
		return bad("%s has no decimals in %s: enter a whole amount, e.g. %s", s, currency, whole)
	case decimals > 0 && len(frac) > decimals:
		return bad("%s has more than %s decimals", s, [...]string{"", "one", "two", "three"}[decimals])
	}
	if decimals == 0 {
		frac = ""
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 15 {
		return bad("%s is over the maximum of %s", s, FormatIn(maxMinor, currency))
	}
	var w int64
	if whole != "" {
		var err error
		if w, err = strconv.ParseInt(whole, 10, 64); err != nil {
			return bad("%q is not a number", input)
		}
	}
	for len(frac) < decimals {
		frac += "0"
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	minor := w*MinorPerUnit(currency) + f
	if minor == 0 {
		return bad("amount must be more than zero")
	}
	if minor > maxMinor {
		return bad("%s is over the maximum of %s", FormatIn(minor, currency), FormatIn(maxMinor, currency))
	}
	return Money{Minor: minor, Currency: currency}, nil
}

// FormatMinor writes minor units with two decimals: 2550 → "25.50". For a
// currency that may not have two, use FormatIn.
func FormatMinor(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
}

// Decimal is the amount with its currency's decimals and no currency,
// e.g. "25.50", or "2000" for yen.
func (m Money) Decimal() string {
	if m.Currency == "" {
		return FormatMinor(m.Minor)
	}
	return FormatIn(m.Minor, m.Currency)
}

// String is the amount as shown to people: "RM25.50" for ringgit, "25.50 EUR"
// for other currencies.
func (m Money) String() string {
	switch m.Currency {
	case "MYR", "":
		return "RM" + m.Decimal()
	case "KES":
		return "KES " + m.Decimal()
	}
	return m.Decimal() + " " + m.Currency
}

// IsZero reports whether m is the zero value (no amount at all).
func (m Money) IsZero() bool { return m.Minor == 0 && m.Currency == "" }
