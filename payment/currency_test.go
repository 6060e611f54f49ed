package payment

import (
	"math"
	"testing"
)

func TestFormatIn(t *testing.T) {
	cases := []struct {
		minor    int64
		currency string
		want     string
	}{
		{2550, "EUR", "25.50"}, {5, "MYR", "0.05"}, {-5, "EUR", "-0.05"},
		{2000, "JPY", "2000"}, {2000, "jpy", "2000"}, {-7, "XOF", "-7"},
		{2550, "KWD", "2.550"}, {5, "BHD", "0.005"},
		{math.MinInt64, "EUR", "-92233720368547758.08"},
	}
	for _, c := range cases {
		if got := FormatIn(c.minor, c.currency); got != c.want {
			t.Errorf("FormatIn(%d, %s) = %q, want %q", c.minor, c.currency, got, c.want)
		}
	}
	if got := (Money{Minor: 2000, Currency: "JPY"}).String(); got != "2000 JPY" {
		t.Errorf("yen shown as %q", got)
	}
	if got := (Money{Minor: 2550}).Decimal(); got != "25.50" {
		t.Errorf("no currency shown as %q", got)
	}
}

func TestParseAmountInCurrency(t *testing.T) {
	good := []struct {
		in, currency string
		want         int64
	}{
		{"2000", "JPY", 2000}, {"2000.", "JPY", 2000}, {"2000.00", "JPY", 2000},
		{"2.5", "KWD", 2500}, {"2.505", "KWD", 2505}, {"25.5", "EUR", 2550},
	}
	for _, c := range good {
		m, err := ParseAmount(c.in, c.currency, 0)
		if err != nil || m.Minor != c.want || m.Currency != c.currency {
			t.Errorf("ParseAmount(%q, %s) = %+v, %v; want %d", c.in, c.currency, m, err, c.want)
		}
	}
	bad := []struct{ in, currency, reason string }{
		{"20.50", "JPY", "20.50 has no decimals in JPY: enter a whole amount, e.g. 20"},
		{"2.5055", "KWD", "2.5055 has more than three decimals"},
		{"0.0", "JPY", "amount must be more than zero"},
		{"6000000", "JPY", "6000000 is over the maximum of 5000000"},
	}
	for _, c := range bad {
		_, err := ParseAmount(c.in, c.currency, 0)
		if err == nil || err.Error() != c.reason {
			t.Errorf("ParseAmount(%q, %s): %v, want %q", c.in, c.currency, err, c.reason)
		}
	}
}

func TestMinorPerUnit(t *testing.T) {
	for code, want := range map[string]int64{"EUR": 100, "GBP": 100, "myr": 100, "JPY": 1, "KWD": 1000, "kes": 100} {
		if got := MinorPerUnit(code); got != want {
			t.Errorf("MinorPerUnit(%s) = %d, want %d", code, got, want)
		}
	}
}
