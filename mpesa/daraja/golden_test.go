package daraja

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The portal's Password sample: base64(174379 + sandbox passkey +
// 20210628092408), pinned in testdata/password.txt.
func TestPasswordGoldenVector(t *testing.T) {
	v := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(golden(t, "password.txt")))
	for sc.Scan() {
		if k, val, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(k, "#") {
			v[k] = val
		}
	}
	if got := Password(v["shortcode"], v["passkey"], v["timestamp"]); got != v["password"] {
		t.Errorf("Password = %s, want %s", got, v["password"])
	}
}

// The push sends the Timestamp it built the Password from, in Nairobi
// time, whatever the machine's zone.
func TestPushTimestampIsNairobiAndMatchesPassword(t *testing.T) {
	var body pushBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/oauth") {
			w.Write(golden(t, "oauth.json"))
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if err := jsonDecode(r, &body); err != nil {
			t.Error(err)
		}
		w.Write([]byte(`{"MerchantRequestID":"1","CheckoutRequestID":"ws_CO_1","ResponseCode":"0","ResponseDescription":"Success. Request accepted for processing","CustomerMessage":"x"}`))
	}))
	defer srv.Close()
	utc := time.Date(2021, 6, 28, 6, 24, 8, 0, time.UTC) // 09:24:08 in Nairobi
	c, err := NewClient(Config{BaseURL: srv.URL, ConsumerKey: "k", ConsumerSecret: "s", ShortCode: "174379",
		Passkey: "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919", Now: func() time.Time { return utc }})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.STKPush(context.Background(), PushRequest{Phone: "+254 708-374-149", Amount: 1, Reference: "PD7K3M9QXA",
		Desc: "Kiosk sale", CallbackURL: "https://kiosk.example/cb"})
	if err != nil || resp.CheckoutRequestID != "ws_CO_1" {
		t.Fatalf("push: %+v, %v", resp, err)
	}
	if body.Timestamp != "20210628092408" || body.Password != string(bytes.TrimSpace(goldenField(t, "password"))) {
		t.Errorf("sent Timestamp %s Password %s; want the golden pair", body.Timestamp, body.Password)
	}
	if body.PartyA != "254708374149" || body.PhoneNumber != "254708374149" || body.PartyB != "174379" ||
		body.TransactionType != PayBillOnline || body.Amount != 1 {
		t.Errorf("body %+v", body)
	}
}

func goldenField(t *testing.T, key string) []byte {
	for _, l := range strings.Split(string(golden(t, "password.txt")), "\n") {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			return []byte(v)
		}
	}
	t.Fatalf("no %s in password.txt", key)
	return nil
}

func TestDecodeSTKCallbackSamples(t *testing.T) {
	r, err := DecodeSTKCallback(golden(t, "stk-callback-success.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Success() || r.Receipt != "NLJ7RT61SV" || r.CheckoutRequestID != "ws_CO_191220191020363925" ||
		r.Amount == nil || r.Amount.Minor() != 100 || r.Amount.Fractional() || r.Phone != "254708374149" {
		t.Errorf("success sample decoded as %+v", r)
	}
	if want := time.Date(2019, 12, 19, 10, 21, 15, 0, Nairobi); !r.Paid.Equal(want) {
		t.Errorf("TransactionDate %v, want %v", r.Paid, want)
	}
	r, err = DecodeSTKCallback(golden(t, "stk-callback-cancelled.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Success() || r.Code != "1032" || r.Receipt != "" || r.Amount != nil || Meaning(r.Code, r.Desc).Status != "cancelled" {
		t.Errorf("cancelled sample decoded as %+v", r)
	}
	// ResultCode as a string, Amount as a string, Balance as an odd string.
	r, err = DecodeSTKCallback([]byte(`{"Body":{"stkCallback":{"CheckoutRequestID":"ws_1","ResultCode":"0","ResultDesc":"ok",
		"CallbackMetadata":{"Item":[{"Name":"Balance","Value":"{Amount={BasicAmount=46.00}}"},{"Name":"MpesaReceiptNumber","Value":"ABC"},{"Name":"Amount","Value":"5"}]}}}}`))
	if err != nil || r.Amount.Minor() != 500 || r.Receipt != "ABC" {
		t.Errorf("lenient sample: %+v, %v", r, err)
	}
	for _, bad := range []string{`{}`, `{"Body":{"stkCallback":{"ResultCode":0}}}`, `{"Body":{"stkCallback":{"CheckoutRequestID":"x"}}}`,
		`{"Body":{"stkCallback":{"CheckoutRequestID":"x","ResultCode":0}}}`, `not json`,
		`{"Body":{"stkCallback":{"CheckoutRequestID":"x","ResultCode":0,"CallbackMetadata":{"Item":[{"Name":"MpesaReceiptNumber","Value":"R"},{"Name":"Amount","Value":"1e3"}]}}}}`} {
		if _, err := DecodeSTKCallback([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", bad, err)
		}
	}
}

func TestDecodeC2BSample(t *testing.T) {
	p, err := DecodeC2B(golden(t, "c2b-confirmation.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p.TransID != "RKTQDM7W6S" || p.Amount.Minor() != 1000 || string(p.BillRefNumber) != "PD7K3M9QXA" ||
		string(p.MSISDN) != "2547 ***** 126" || p.Time.IsZero() {
		t.Errorf("decoded %+v", p)
	}
	// Numbers where strings were expected are accepted.
	p, err = DecodeC2B([]byte(`{"TransID":"X1","TransAmount":5.00,"BusinessShortCode":600984,"MSISDN":254708374149,"BillRefNumber":null}`))
	if err != nil || p.Amount.Minor() != 500 || string(p.BusinessShortCode) != "600984" || MaskPhone(string(p.MSISDN)) != "2547****149" {
		t.Errorf("numeric fields: %+v, %v", p, err)
	}
}

func TestDecodeQueryAndErrorSamples(t *testing.T) {
	var a queryAnswer
	if err := jsonUnmarshal(golden(t, "query-final.json"), &a); err != nil || a.ResultCode != "1032" || a.ResponseCode != "0" {
		t.Errorf("final query: %+v, %v", a, err)
	}
	pending := DecodeError("stk query", 500, golden(t, "query-pending.json"))
	if !pending.Pending() || pending.RequestID != "ws_CO_13012021093521236557" {
		t.Errorf("pending: %+v", pending)
	}
	e := DecodeError("stk push", 404, golden(t, "error-envelope.json"))
	if !e.InvalidToken() || e.Code != "404.001.03" || e.RequestID != "11728-2929992-1" || e.Status != 404 || e.Pending() {
		t.Errorf("envelope: %+v", e)
	}
	wrong := DecodeError("stk query", 500, []byte(`{"requestId":"r","errorCode":"500.001.1001","errorMessage":"Wrong credentials"}`))
	if wrong.Pending() {
		t.Error("'Wrong credentials' taken for pending")
	}
	for _, raw := range []string{"", "<html><body>503</body></html>"} {
		e := DecodeError("oauth", 400, []byte(raw))
		if e.Code != "" || e.Status != 400 || !strings.Contains(e.Error(), "HTTP 400") {
			t.Errorf("%q: %+v %q", raw, e, e.Error())
		}
	}
}

// The client maps the pending 500 to ErrPending, decodes the misspelt
// registration key, and refuses URLs Daraja would refuse.
func TestClientQueryAndRegister(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/oauth"):
			w.Write(golden(t, "oauth.json"))
		case strings.Contains(r.URL.Path, "stkpushquery"):
			calls++
			if calls == 1 {
				w.WriteHeader(500)
				w.Write(golden(t, "query-pending.json"))
				return
			}
			w.Write(golden(t, "query-final.json"))
		case r.URL.Path == "/mpesa/c2b/v1/registerurl":
			w.Write(golden(t, "register-response.json"))
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	c, _ := NewClient(Config{BaseURL: srv.URL, ConsumerKey: "k", ConsumerSecret: "s", ShortCode: "174379", Passkey: "p"})
	if _, err := c.STKQuery(context.Background(), "ws_CO_13012021093521236557"); !errors.Is(err, ErrPending) {
		t.Errorf("first query: %v, want ErrPending", err)
	}
	res, err := c.STKQuery(context.Background(), "ws_CO_13012021093521236557")
	if err != nil || res.Code != "1032" {
		t.Errorf("second query: %+v, %v", res, err)
	}
	reg, err := c.RegisterURLs(context.Background(), RegisterRequest{Version: "v1", ConfirmationURL: "https://kiosk.example/a/c2b/confirmation",
		ValidationURL: "https://kiosk.example/a/c2b/validation"})
	if err != nil || reg.ConversationID != "7619-37765134-1" {
		t.Errorf("register: %+v, %v", reg, err)
	}
	for _, u := range []string{"https://kiosk.example/mpesa/c2b", "https://kiosk.example/M-PESA", "https://x.ngrok.io/cb", "https://kiosk.example/query", "ftp://x"} {
		if _, err := c.RegisterURLs(context.Background(), RegisterRequest{ConfirmationURL: u, ValidationURL: u}); !errors.Is(err, ErrBadURL) {
			t.Errorf("%s: %v, want ErrBadURL", u, err)
		}
	}
	if _, err := c.RegisterURLs(context.Background(), RegisterRequest{Version: "v3"}); !errors.Is(err, ErrConfig) {
		t.Errorf("v3: %v", err)
	}
}

// The token is kept until 60 s before expires_in, then replaced.
func TestTokenMargin(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Write(golden(t, "oauth.json")) // expires_in "3599"
	}))
	defer srv.Close()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	c, _ := NewClient(Config{BaseURL: srv.URL, ConsumerKey: "k", ConsumerSecret: "s", ShortCode: "1", Passkey: "p", Now: func() time.Time { return now }})
	start := now
	for _, step := range []struct {
		at    time.Duration
		calls int
	}{{0, 1}, {time.Hour - 62*time.Second, 1}, {time.Hour - 60*time.Second, 2}, {time.Hour, 2}} {
		now = start.Add(step.at)
		if err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		if calls != step.calls {
			t.Errorf("at +%v: %d OAuth calls, want %d", step.at, calls, step.calls)
		}
	}
}

// Every ResultCode ends a payment in a final status the journal knows.
func TestResultCodesEndInFinalStatuses(t *testing.T) {
	for code := range resultCodes {
		if m := Meaning(code, ""); !m.Status.Valid() || !m.Status.Final() {
			t.Errorf("ResultCode %s means %q, not a final status", code, m.Status)
		}
	}
	if m := Meaning("424242", "odd"); m.Status != "failed" || !strings.Contains(m.Words, "odd") {
		t.Errorf("an unknown code means %+v, want failed with Daraja's words", m)
	}
}
