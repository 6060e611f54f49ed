package daraja

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadPhone is wrapped by every phone number NormalizePhone refuses.
var ErrBadPhone = errors.New("bad phone number")

// PhoneError says why a phone number was refused, in words for the
// person at the keyboard.
type PhoneError struct {
	Reason string
}

// Error is the reason.
func (e *PhoneError) Error() string { return e.Reason }

// Unwrap lets errors.Is(err, ErrBadPhone) match.
func (e *PhoneError) Unwrap() error { return ErrBadPhone }

// NormalizePhone turns a Kenyan mobile number as people write it (07…,
// 01…, +254…, 00254…, 254…, or the bare 9 digits, with spaces, dashes,
// dots or brackets) into the MSISDN Daraja wants: 254 and the 9-digit
// national number, no '+'. Anything that is not a Kenyan mobile number
// (7XXXXXXXX, or 1 followed by a mobile range) is refused with a message
// that says why; the number itself is never repeated in full.
func NormalizePhone(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' || r == '\t':
		case r == '+' && b.Len() == 0:
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return "", &PhoneError{Reason: "a phone number has only digits, spaces, dashes and a leading +"}
		}
	}
	d := b.String()
	if d == "" {
		return "", &PhoneError{Reason: "enter the customer's phone number, e.g. 0712 345 678"}
	}
	var nsn string
	switch {
	case strings.HasPrefix(d, "+"):
		if !strings.HasPrefix(d, "+254") {
			return "", &PhoneError{Reason: "not a Kenyan number: it must start +254"}
		}
		nsn = d[4:]
	case strings.HasPrefix(d, "00"):
		if !strings.HasPrefix(d, "00254") {
			return "", &PhoneError{Reason: "not a Kenyan number: it must start 00254"}
		}
		nsn = d[5:]
	case strings.HasPrefix(d, "254") && len(d) == 12:
		nsn = d[3:]
	case strings.HasPrefix(d, "0"):
		nsn = d[1:]
	case len(d) == 9:
		nsn = d
	default:
		return "", &PhoneError{Reason: fmt.Sprintf("%d digits is not a Kenyan mobile number: write 07XX XXX XXX, 01XX XXX XXX or +254…", len(d))}
	}
	if len(nsn) != 9 {
		return "", &PhoneError{Reason: fmt.Sprintf("a Kenyan mobile number has 9 digits after the 0 or 254, not %d", len(nsn))}
	}
	if !kenyanMobile(nsn) {
		return "", &PhoneError{Reason: "not a Kenyan mobile number: it must start 07 or 01 (a mobile range)"}
	}
	return "254" + nsn, nil
}

// kenyanMobile reports whether a 9-digit national number is in a Kenyan
// mobile range: 7XXXXXXXX or 1(0[0-8]|1[0-7]|2[014]|30)XXXXXX.
func kenyanMobile(nsn string) bool {
	switch nsn[0] {
	case '7':
		return true
	case '1':
		a, b := nsn[1], nsn[2]
		switch a {
		case '0':
			return b <= '8'
		case '1':
			return b <= '7'
		case '2':
			return b == '0' || b == '1' || b == '4'
		case '3':
			return b == '0'
		}
	}
	return false
}

// MaskPhone shows a phone number (or a C2B MSISDN, which may already be
// masked or hashed) the way the console and the logs may: the first four
// and the last three digits, "2547****149". Short or odd strings are
// reduced to their last three characters.
func MaskPhone(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if strings.Contains(s, "*") && len(s) <= 20 {
		return s // already masked by Daraja (C2B v2)
	}
	if len(s) >= 10 && allDigits(s) {
		return s[:4] + "****" + s[len(s)-3:]
	}
	if len(s) > 3 {
		return "…" + s[len(s)-3:]
	}
	return "***"
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// safaricomPrefixes are the 4-digit national prefixes (07XX, 011X)
// Safaricom was allocated. Numbers move between networks, so a number
// outside them is warned about, never refused.
var safaricomPrefixes = func() map[string]bool {
	m := map[string]bool{}
	add := func(from, to int) {
		for i := from; i <= to; i++ {
			m[fmt.Sprintf("%03d", i)] = true
		}
	}
	add(700, 729)
	add(740, 743)
	add(745, 746)
	add(748, 748)
	add(757, 759)
	add(768, 769)
	add(790, 799)
	add(110, 115)
	return m
}()

// LikelySafaricom reports whether a normalised MSISDN is in a range
// allocated to Safaricom. False is only a hint (number portability).
func LikelySafaricom(msisdn string) bool {
	return len(msisdn) == 12 && safaricomPrefixes[msisdn[3:6]]
}
