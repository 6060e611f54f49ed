package daraja

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{
		"0712345678": "254712345678", "0712 345 678": "254712345678", "0712-345-678": "254712345678",
		"+254712345678": "254712345678", "+254 (712) 345.678": "254712345678", "254712345678": "254712345678",
		"00254712345678": "254712345678", "712345678": "254712345678", "0110345678": "254110345678",
		"0100123456": "254100123456", "+254 130 123 456": "254130123456", " 0708374149 ": "254708374149",
	} {
		got, err := NormalizePhone(in)
		if err != nil || got != want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"":                 "enter the customer's phone number",
		"0812345678":       "not a Kenyan mobile number",
		"0201234567":       "not a Kenyan mobile number",
		"0191234567":       "not a Kenyan mobile number",
		"071234567":        "9 digits",
		"07123456789":      "9 digits",
		"+255712345678":    "not a Kenyan number",
		"0044712345678":    "not a Kenyan number",
		"0712abc678":       "only digits",
		"2547123456789":    "not a Kenyan mobile number",
		"+2547123456":      "9 digits",
		"12345":            "5 digits",
		"0712345678+":      "only digits",
		"0712\u0660345678": "only digits",
	} {
		got, err := NormalizePhone(in)
		if !errors.Is(err, ErrBadPhone) || !strings.Contains(err.Error(), why) {
			t.Errorf("NormalizePhone(%q) = %q, %v; want a refusal saying %q", in, got, err, why)
		}
		if err != nil && len(in) > 6 && strings.Contains(err.Error(), in) {
			t.Errorf("the refusal repeats the number: %v", err)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{"254708374149": "2547****149", "2547 ***** 126": "2547 ***** 126",
		"": "", "12": "***", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855": "…855"} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
	if !LikelySafaricom("254708374149") || LikelySafaricom("254733123456") {
		t.Error("Safaricom ranges")
	}
}

func TestParseWireAmount(t *testing.T) {
	for in, want := range map[string][2]int64{"1": {1, 0}, "1.0": {1, 0}, "1.00": {1, 0}, `"5.00"`: {5, 0},
		"10500.00": {10500, 0}, "12.5": {12, 50}, "0.01": {0, 1}, "1.000": {1, 0}, " 7 ": {7, 0}} {
		a, err := ParseWireAmount(in)
		if err != nil || a.Shillings != want[0] || a.Cents != want[1] {
			t.Errorf("ParseWireAmount(%q) = %+v, %v; want %v", in, a, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1e3", "1.001", "abc", ".5", "1.2.3", "+1", "99999999999999999", `""`, "1,000"} {
		if _, err := ParseWireAmount(in); !errors.Is(err, ErrBadAmount) {
			t.Errorf("ParseWireAmount(%q): %v, want ErrBadAmount", in, err)
		}
	}
}

func TestCheckPushAmount(t *testing.T) {
	for minor, ok := range map[int64]bool{100: true, 25_000_000: true, 0: false, 50: false, 150: false, 25_000_100: false, -100: false} {
		_, err := CheckPushAmount(minor)
		if (err == nil) != ok {
			t.Errorf("CheckPushAmount(%d): %v", minor, err)
		}
	}
}
