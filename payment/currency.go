package payment

import "strings"

// Decimals is the number of decimals of a currency's minor unit, by ISO
// 4217's exponent: 2 for most, 0 for currencies without a minor unit in
// use (JPY, KRW, XOF…), 3 for the dinars and rials that have three. Money
// is always integer minor units; Decimals says where the point goes when
// it is read or written.
func Decimals(code string) int {
	switch strings.ToUpper(code) {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}

// MinorPerUnit is how many minor units make one whole unit of a currency:
// 100 for most, 1 for JPY, 1000 for KWD.
func MinorPerUnit(code string) int64 {
	n := int64(1)
	for range Decimals(code) {
		n *= 10
	}
	return n
}

// FormatIn writes minor units with the decimals of currency: 2550 →
// "25.50" in EUR, 2550 → "2550" in JPY, 2550 → "2.550" in KWD.
func FormatIn(minor int64, currency string) string {
	return formatDecimals(minor, Decimals(currency))
}

func formatDecimals(minor int64, decimals int) string {
	sign := ""
	if minor < 0 {
		sign = "-"
	}
	// Digits of |minor| without overflow for the smallest int64.
	u := uint64(minor)
	if minor < 0 {
		u = -u
	}
	s := uintString(u)
	if decimals == 0 {
		return sign + s
	}
	for len(s) <= decimals {
		s = "0" + s
	}
	return sign + s[:len(s)-decimals] + "." + s[len(s)-decimals:]
}

func uintString(u uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			return string(b[i:])
		}
	}
}
