package payment

import (
	"errors"
	"testing"
)

func TestParseAmount(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"25.50", 2550}, {"25.5", 2550}, {"25", 2500}, {" 0.01 ", 1}, {".5", 50},
		{"5.", 500}, {"+7", 700}, {"007.10", 710}, {"50000.00", 5_000_000},
	}
	for _, c := range good {
		m, err := ParseAmount(c.in, "", 0)
		if err != nil {
			t.Errorf("ParseAmount(%q): unexpected error %v", c.in, err)
			continue
		}
		if m.Minor != c.want || m.Currency != "MYR" {
			t.Errorf("ParseAmount(%q) = %+v, want %d MYR", c.in, m, c.want)
		}
	}
	bad := []struct{ in, reason string }{
		{"", "enter an amount, e.g. 25.50"},
		{"   ", "enter an amount, e.g. 25.50"},
		{"25.505", "25.505 has more than two decimals"},
		{"-5", "amount must be positive, not -5"},
		{"0", "amount must be more than zero"},
		{"0.00", "amount must be more than zero"},
		{"nan", `"nan" is not a number: use digits and one '.', e.g. 25.50`},
		{"inf", `"inf" is not a number: use digits and one '.', e.g. 25.50`},
		{"1e3", `"1e3" is not a number: use digits and one '.', e.g. 25.50`},
		{"abc", `"abc" is not a number: use digits and one '.', e.g. 25.50`},
		{"1,000", `"1,000" is not a number: use digits and one '.', e.g. 25.50`},
		{"1.2.3", `"1.2.3" is not a number: more than one decimal point`},
		{".", `"." is not a number`},
		{"50000.01", "50000.01 is over the maximum of 50000.00"},
		{"99999999999999999999", "99999999999999999999 is over the maximum of 50000.00"},
	}
	for _, c := range bad {
		_, err := ParseAmount(c.in, "", 0)
		if !errors.Is(err, ErrBadAmount) {
			t.Errorf("ParseAmount(%q): error %v, want ErrBadAmount", c.in, err)
			continue
		}
		if err.Error() != c.reason {
			t.Errorf("ParseAmount(%q): message %q, want %q", c.in, err.Error(), c.reason)
		}
	}
	if _, err := ParseAmount("100.00", "MYR", 9999); !errors.Is(err, ErrBadAmount) {
		t.Errorf("a configured maximum of 99.99 accepted 100.00")
	}
}

func TestMoneyString(t *testing.T) {
	cases := map[Money]string{
		{Minor: 2550, Currency: "MYR"}: "RM25.50",
		{Minor: 1, Currency: "MYR"}:    "RM0.01",
		{Minor: 100, Currency: "KES"}:  "KES 1.00",
		{Minor: 1999, Currency: "EUR"}: "19.99 EUR",
		{Minor: -250, Currency: "EUR"}: "-2.50 EUR",
	}
	for m, want := range cases {
		if got := m.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", m, got, want)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"25.50", "0.01", "-1", "nan", "1e9", "99999999999999999999.99", ".", "1..2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseAmount(s, "MYR", 0)
		if err != nil {
			if !errors.Is(err, ErrBadAmount) {
				t.Fatalf("error %v does not wrap ErrBadAmount", err)
			}
			return
		}
		if m.Minor <= 0 || m.Minor > DefaultMaxMinor {
			t.Fatalf("ParseAmount(%q) = %d outside (0, max]", s, m.Minor)
		}
		again, err := ParseAmount(m.Decimal(), "MYR", 0)
		if err != nil || again != m {
			t.Fatalf("round trip of %q via %q: %v %v", s, m.Decimal(), again, err)
		}
	})
}

func TestMaskCard(t *testing.T) {
	for in, want := range map[string]string{
		"4242": "4242", "4111111111111111": "1111", "4111 1111 1111 1234": "1234", "": "", "ab": "", "12": "12",
	} {
		if got := MaskCard(in); got != want {
			t.Errorf("MaskCard(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResultLine(t *testing.T) {
	m := Money{Minor: 2550, Currency: "MYR"}
	for _, c := range []struct {
		r    *Result
		want string
	}{
		{nil, "RESULT TXN1 approved 25.50"},
		{&Result{AuthCode: "AUTH1", Card: "4242", RemoteID: "000410"}, "RESULT TXN1 approved 25.50 auth=AUTH1 card=****4242 pos_txn=000410"},
		{&Result{Reason: "card reader not responding", PlanID: "IPP_3M"}, `RESULT TXN1 approved 25.50 plan=IPP_3M reason="card reader not responding"`},
		{&Result{Reason: `a"b=c`}, `RESULT TXN1 approved 25.50 reason="a\"b=c"`},
	} {
		if got := ResultLine("TXN1", StatusApproved, m, c.r); got != c.want {
			t.Errorf("ResultLine(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}
