package mpesa

import (
	"strings"
	"testing"

	"paydesk/mpesa/daraja"
)

func TestReferences(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		r := NewReference()
		if len(r) != 10 || !strings.HasPrefix(r, "PD") || !daraja.ValidAccountReference(r) || strings.ContainsAny(r[2:], "ILOU") {
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
		if daraja.ValidAccountReference(bad) {
			t.Errorf("%q accepted as AccountReference", bad)
		}
	}
	if s := NewPathSecret(); len(s) != 26 || daraja.CheckCallbackURL("https://x/"+s) != nil {
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
