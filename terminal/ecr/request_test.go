package ecr

import (
	"encoding/json"
	"errors"
	"math/big"
	"paydesk/terminal/concert"
	"strings"
	"testing"
)

func TestAmountsConvertExactlyToMinorUnits(t *testing.T) {
	for _, tc := range []struct {
		in       string
		decimals int
		want     int64
		err      string
	}{
		{"8.99", 2, 899, ""},
		{"100", 2, 10000, ""},
		{"0.01", 2, 1, ""},
		{"8.990", 2, 899, ""},
		{"899e-2", 2, 899, ""},
		{"8.99E0", 2, 899, ""},
		{"1E2", 2, 10000, ""},
		{"0.1", 2, 10, ""},
		{"999999.99", 2, 99999999, ""},
		{"0.29", 2, 29, ""}, // 0.29 as a float64 is 0.28999…: a float conversion gives 28
		{"1.15", 2, 115, ""},
		{"4.35", 2, 435, ""},
		{"100", 0, 100, ""},
		{"1000000", 2, 0, "over the maximum of 999999.99"},
		{"99999999999999999999", 2, 0, "over the maximum"},
		{"1e18", 2, 0, "over the maximum"},
		{"1e1001", 2, 0, "exponent out of range"},
		{"8.999", 2, 0, "more than 2 decimals"},
		{"0.001", 2, 0, "more than 2 decimals"},
		{"1.5", 0, 0, "more than 0 decimals"},
		{"0", 2, 0, "more than zero"},
		{"0.00", 2, 0, "more than zero"},
		{"-0", 2, 0, "more than zero"},
		{"0e5", 2, 0, "more than zero"},
		{"-1", 2, 0, "must be positive"},
		{"-0.01", 2, 0, "must be positive"},
	} {
		got, err := parseMinor(tc.in, tc.decimals, DefaultMaxMinor)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %d, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestDecodeKeepsRawFieldsAndAllowsUnknownOnRequest(t *testing.T) {
	body := `{"amount": 12.5, "currency": "usd", "orderId": "O-1", "basket": [{"name": "a"}], "extra": 1}`
	if _, err := DecodePaymentRequest([]byte(body), DecodeOptions{}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unknown field accepted by default: %v", err)
	}
	pr, err := DecodePaymentRequest([]byte(body), DecodeOptions{AllowUnknown: true, NewID: func() string { return "gen" }})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Amount.Minor != 1250 || pr.Amount.Currency != "USD" || pr.Currency.Numeric != "840" || pr.OrderID != "O-1" ||
		pr.OrderIDGenerated || string(pr.Basket) != `[{"name":"a"}]` || len(pr.Ignored) != 1 || pr.AmountText != "12.5" {
		t.Errorf("%+v", pr)
	}
	pr, err = DecodePaymentRequest([]byte(`{"amount": 1, "orderId": "", "currency": null}`), DecodeOptions{NewID: func() string { return "gen" }})
	if err != nil || pr.OrderID != "gen" || !pr.OrderIDGenerated || pr.Currency.Alpha != "EUR" {
		t.Errorf("%+v %v", pr, err)
	}
	for _, bad := range []string{`{"amount": 1, "orderId": "a\u0000b"}`, `{"amount": 1, "orderId": "` + strings.Repeat("é", 65) + `"}`} {
		if _, err := DecodePaymentRequest([]byte(bad), DecodeOptions{}); err == nil || !strings.Contains(err.Error(), "orderId") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestMaskReportAndLabel(t *testing.T) {
	for _, tc := range []struct{ report, pan, label string }{
		{"497010XXXXXX1234", "497010XXXXXX1234", "Visa"},
		{"5131234567891234", "513123XXXXXX1234", "Mastercard"},
		{"371234567891234", "371234XXXXX1234", "American Express"},
		{"XXXXXXXXXXXX1234", "XXXXXXXXXXXX1234", "CARTE"},
		{"4970101234", "XXXXXX1234", "CARTE"},
		{"497010******1234", "497010XXXXXX1234", "Visa"},
		{"", "", "CARTE"},
	} {
		a := concert.Answer{Mode: '1', Report: tc.report}
		pan := maskReport(a)
		if pan != tc.pan || label(a, pan) != tc.label {
			t.Errorf("%q: %q %q, want %q %q", tc.report, pan, label(a, pan), tc.pan, tc.label)
		}
	}
	c := concert.Answer{Mode: 'C', Report: "0000000 000000000000 0000000000000"}
	if maskReport(c) != "" || label(c, "") != "CHEQUE" {
		t.Error("cheque")
	}
}

// FuzzDecodePaymentRequest checks that the decoder never panics, and that
// whatever it accepts has an amount that is exactly the decimal value the
// kiosk wrote (checked with math/big), within bounds, and customData of
// scalar values only.
func FuzzDecodePaymentRequest(f *testing.F) {
	for _, s := range []string{
		seedRequest("8.99"), seedRequest("100"), `{"amount": 1e1}`, `{"amount": 0.29, "currency": "JPY"}`,
		`{"amount": 9.999}`, `{"amount": -1}`, `{"amount": "9.99"}`, `{"amount": 1, "customData": {"a": {"b": 1}}}`,
		`{"amount": 1, "amount": 2}`, `{"amount": 1} x`, `[]`, `{`, ``, `{"amount": 1e-400}`, `{"amount": 99999999e-2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pr, err := DecodePaymentRequest(body, DecodeOptions{NewID: func() string { return "gen" }})
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error not a RequestError: %v", err)
			}
			return
		}
		if pr.Amount.Minor < 1 || pr.Amount.Minor > DefaultMaxMinor {
			t.Fatalf("amount %d out of bounds", pr.Amount.Minor)
		}
		r, ok := new(big.Rat).SetString(string(pr.AmountText))
		if !ok {
			t.Fatalf("accepted amount %q is not a number", pr.AmountText)
		}
		scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(pr.Currency.Decimals)), nil))
		r.Mul(r, scale)
		if !r.IsInt() || r.Num().Int64() != pr.Amount.Minor {
			t.Fatalf("amount %s → %d minor units, exact value %s", pr.AmountText, pr.Amount.Minor, r.RatString())
		}
		if pr.OrderID == "" {
			t.Fatal("no orderId")
		}
		if pr.CustomData != nil {
			var m map[string]any
			if err := json.Unmarshal(pr.CustomData, &m); err != nil {
				t.Fatalf("customData: %v", err)
			}
			for k, v := range m {
				switch v.(type) {
				case bool, float64, string:
				default:
					t.Fatalf("customData.%s is %T", k, v)
				}
			}
		}
	})
}

// BenchmarkDecodePaymentRequest measures decoding HiPay's sample
// request (the API's per-payment parsing cost).
func BenchmarkDecodePaymentRequest(b *testing.B) {
	body := []byte(seedRequest("8.99"))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodePaymentRequest(body, DecodeOptions{NewID: func() string { return "x" }}); err != nil {
			b.Fatal(err)
		}
	}
}
