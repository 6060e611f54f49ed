package screens

import "regexp"

// digitRun finds runs of 13 to 19 digits: the length of a card number.
var digitRun = regexp.MustCompile(`\d{13,19}`)

// cardToken finds a cardToken's value in a frame.
var cardToken = regexp.MustCompile(`("cardToken"\s*:\s*")[^"]*(")`)

// redact prepares an inbound frame for the log and the journal: a run of
// digits that could be a card number (13-19 digits passing the Luhn check)
// keeps only its last four, and a cardToken's value is dropped. A frame
// from a display is never trusted to be free of card data.
func redact(frame []byte) []byte {
	out := cardToken.ReplaceAll(frame, []byte(`${1}REDACTED${2}`))
	return digitRun.ReplaceAllFunc(out, func(run []byte) []byte {
		if !luhn(run) {
			return run
		}
		masked := make([]byte, len(run))
		for i := range masked {
			masked[i] = '*'
		}
		copy(masked[len(run)-4:], run[len(run)-4:])
		return masked
	})
}

// luhn reports whether digits pass the Luhn check of card numbers.
func luhn(digits []byte) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
