package daraja

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func addGolden(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeSTKCallback: any body is decoded or refused with
// ErrMalformed, never a panic; a decoded success has a receipt and an
// amount that is not negative.
func FuzzDecodeSTKCallback(f *testing.F) {
	addGolden(f, "stk-callback-success.json", "stk-callback-cancelled.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeSTKCallback(b)
		if err != nil {
			return
		}
		if r.CheckoutRequestID == "" || r.Code == "" {
			t.Fatalf("decoded without id or code: %+v", r)
		}
		if r.Success() && r.Receipt == "" {
			t.Fatalf("success without receipt: %+v", r)
		}
		if r.Amount != nil && (r.Amount.Shillings < 0 || r.Amount.Cents < 0 || r.Amount.Cents > 99) {
			t.Fatalf("amount %+v", r.Amount)
		}
	})
}

// FuzzDecodeC2B: a decoded payment has a TransID and an exact amount.
func FuzzDecodeC2B(f *testing.F) {
	addGolden(f, "c2b-confirmation.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeC2B(b)
		if err != nil {
			return
		}
		if p.TransID == "" || p.Amount.Minor() < 0 || p.Amount.Cents > 99 {
			t.Fatalf("decoded %+v", p)
		}
	})
}

// FuzzDecodeError: any answer becomes an *APIError whose message names
// the status, and a body that is not Daraja's envelope (a gateway page)
// is quoted only in part.
func FuzzDecodeError(f *testing.F) {
	addGolden(f, "error-envelope.json", "query-pending.json")
	f.Add([]byte("<html>503</html>"))
	f.Add([]byte(strings.Repeat("<p>Service Unavailable</p>", 100)))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := DecodeError("fuzz", 500, b)
		msg := e.Error()
		if e.Status != 500 || !strings.Contains(msg, "HTTP 500") {
			t.Fatalf("%+v: %q", e, msg)
		}
		// 80 bytes of body, each quoted in at most 4 characters.
		if e.Code == "" && len(msg) > 400 {
			t.Fatalf("%d-byte body quoted in a %d-character error", len(b), len(msg))
		}
	})
}

// FuzzNormalizePhone: what is accepted is 254 and a Kenyan mobile NSN,
// and normalising is idempotent.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"0712345678", "+254 712-345-678", "00254110345678", "712345678", "0812345678", "", "+", "254"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizePhone(s)
		if err != nil {
			return
		}
		if len(got) != 12 || !strings.HasPrefix(got, "254") || !allDigits(got) || !kenyanMobile(got[3:]) {
			t.Fatalf("NormalizePhone(%q) = %q", s, got)
		}
		if again, err := NormalizePhone(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, got, again, err)
		}
	})
}

// FuzzParseWireAmount: an accepted amount reads back exactly.
func FuzzParseWireAmount(f *testing.F) {
	for _, s := range []string{"1", "1.00", `"5.00"`, "10500.00", "12.5", "-1", "1e3", ".5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseWireAmount(s)
		if err != nil {
			return
		}
		if a.Shillings < 0 || a.Cents < 0 || a.Cents > 99 {
			t.Fatalf("%q → %+v", s, a)
		}
		b, err := ParseWireAmount(strings.TrimRight(strings.TrimRight(strings.Trim(strings.TrimSpace(s), `"`), "0"), "."))
		if strings.Contains(s, ".") && err == nil && b.Minor() != a.Minor() {
			t.Fatalf("%q and its trimmed form differ: %+v %+v", s, a, b)
		}
	})
}
