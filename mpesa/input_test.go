package mpesa

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

func TestReferences(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		r := NewReference()
		if len(r) != 10 || !strings.HasPrefix(r, "PD") || !ValidAccountReference(r) || strings.ContainsAny(r[2:], "ILOU") {
			t.Fatalf("reference %q", r)
		}
		if seen[r] {
			t.Fatalf("reference %q minted twice", r)
		}
		seen[r] = true
		if NormalizeReference(" "+strings.ToLower(r[:5])+"-"+r[5:]+" ") != r {
			t.Fatalf("typed %q not read back", r)
		}
	}
	if NormalizeReference("pd7k3m9qxo") != "PD7K3M9QX0" || NormalizeReference("PD1L0") != "PD110" {
		t.Error("O, I and L typed for 0 and 1")
	}
	for _, bad := range []string{"", "ABCDEFGHIJKLM", "PD 123", "PD-1"} {
		if ValidAccountReference(bad) {
			t.Errorf("%q accepted as AccountReference", bad)
		}
	}
	if s := NewPathSecret(); len(s) != 26 || CheckCallbackURL("https://x/"+s) != nil {
		t.Errorf("path secret %q", s)
	}
}

func TestOneSlip(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"PD7K3M9QXA", "PD7K3M9QXB", true}, {"PD7K3M9QXA", "PD7K3M9XQA", true}, {"PD7K3M9QA", "PD7K3M9QXA", true},
		{"PD7K3M9QXAA", "PD7K3M9QXA", true}, {"PD7K3M9QXA", "PD7K3M9QXA", false}, {"PD7K3M9QXA", "PD7K3M0QXB", false},
		{"PD7K3M9QXA", "PD7K3M9", false}, {"", "A", true}, {"AB", "BA", true}, {"ABC", "CBA", false},
	} {
		if got := oneSlip(c.a, c.b); got != c.want {
			t.Errorf("oneSlip(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

func TestMaskRaw(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"Item":[{"Value":254708374149,"Name":"PhoneNumber"},{"Name":"Amount","Value":10.00}]}`,
			`{"Item":[{"Value":"2547****149","Name":"PhoneNumber"},{"Name":"Amount","Value":10.00}]}`},
		{`{ "MSISDN" : "254708374149", "TransTime":"20261204102115", "CheckoutRequestID":"ws_CO_254708374149"}`,
			`{ "MSISDN" : "2547****149", "TransTime":"20261204102115", "CheckoutRequestID":"ws_CO_254708374149"}`},
		{`{"MSISDN":"2547 ***** 126","BusinessShortCode":600984}`, `{"MSISDN":"2547 ***** 126","BusinessShortCode":600984}`},
		{`{"PhoneNumber":null}`, `{"PhoneNumber":null}`},
		{`{"Body":{"PhoneNumber":254722334455,`, `{"Body":{"PhoneNumber":2547****455,`},
		{`not json +254722334455 and 0711223344 but not 20261204102115`, `not json 2547****455 and 0711****344 but not 20261204102115`},
	} {
		if got := string(MaskRaw([]byte(c.in))); got != c.want {
			t.Errorf("MaskRaw(%s)\n = %s\nwant %s", c.in, got, c.want)
		}
	}
}

// BenchmarkMaskRaw is the cost masking adds to each callback journaled:
// an STK success callback as Daraja writes it.
//
//	go test -run '^$' -bench BenchmarkMaskRaw ./mpesa
func BenchmarkMaskRaw(b *testing.B) {
	body := []byte(`{"Body":{"stkCallback":{"MerchantRequestID":"29115-34620561-1","CheckoutRequestID":"ws_CO_191220191020363925","ResultCode":0,"ResultDesc":"The service request is processed successfully.","CallbackMetadata":{"Item":[{"Name":"Amount","Value":1.00},{"Name":"MpesaReceiptNumber","Value":"NLJ7RT61SV"},{"Name":"Balance"},{"Name":"TransactionDate","Value":20191219102115},{"Name":"PhoneNumber","Value":254708374149}]}}}}`)
	b.ReportAllocs()
	for b.Loop() {
		MaskRaw(body)
	}
}
