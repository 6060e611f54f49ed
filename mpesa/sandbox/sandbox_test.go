package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
)

// fake serves a sandbox and returns a token for it.
func fake(t *testing.T, o sandbox.Options) (*sandbox.Server, string, string) {
	t.Helper()
	s := sandbox.New(o)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); srv.Close() })
	tok, expiresIn := oauth(t, srv.URL)
	if _, isString := expiresIn.(string); !isString || tok == "" {
		t.Fatalf("oauth answer %q, expires_in %#v: expires_in must be a string", tok, expiresIn)
	}
	return s, srv.URL, tok
}

// oauth asks the fake at url for a token with the demo credentials.
func oauth(t *testing.T, url string) (token string, expiresIn any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/oauth/v1/generate?grant_type=client_credentials", nil)
	req.SetBasicAuth(sandbox.DefaultKey, sandbox.DefaultSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   any    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	return tok.AccessToken, tok.ExpiresIn
}

func post(t *testing.T, url, token string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func validPush() map[string]any {
	ts := daraja.Timestamp(time.Now())
	return map[string]any{"BusinessShortCode": 174379, "Password": daraja.Password(sandbox.DefaultShortCode, sandbox.DefaultPasskey, ts),
		"Timestamp": ts, "TransactionType": "CustomerPayBillOnline", "Amount": "1", "PartyA": "254708374149", "PartyB": "174379",
		"PhoneNumber": 254708374149, "CallBackURL": "https://kiosk.example/cb", "AccountReference": "PD7K3M9QXA", "TransactionDesc": "Kiosk sale"}
}

// The fake refuses what Daraja refuses, with Daraja's envelope and status.
func TestPushValidation(t *testing.T) {
	_, url, tok := fake(t, sandbox.Options{})
	push := url + "/mpesa/stkpush/v1/processrequest"
	if st, out := post(t, push, tok, validPush()); st != 200 || out["ResponseCode"] != "0" || !strings.HasPrefix(out["CheckoutRequestID"].(string), "ws_CO_") {
		t.Fatalf("valid push: %d %v", st, out)
	}
	cases := map[string]struct {
		change     func(map[string]any)
		status     int
		code, text string
	}{
		"password from another timestamp": {func(p map[string]any) {
			p["Password"] = daraja.Password(sandbox.DefaultShortCode, sandbox.DefaultPasskey, daraja.Timestamp(time.Now().Add(time.Second)))
		}, 500, "500.001.1001", "Wrong credentials"},
		"UTC timestamp from an offshore server": {func(p map[string]any) {
			ts := time.Now().UTC().Add(-3 * time.Hour).Format(daraja.TimestampLayout)
			p["Timestamp"], p["Password"] = ts, daraja.Password(sandbox.DefaultShortCode, sandbox.DefaultPasskey, ts)
		}, 400, "400.002.02", "Invalid Timestamp"},
		"bad timestamp format":     {func(p map[string]any) { p["Timestamp"] = "2021-06-28" }, 400, "400.002.02", "Invalid Timestamp"},
		"unknown shortcode":        {func(p map[string]any) { p["BusinessShortCode"] = "600000" }, 500, "500.001.1001", "Merchant does not exist"},
		"amount zero":              {func(p map[string]any) { p["Amount"] = 0 }, 400, "400.002.02", "Invalid Amount"},
		"amount over 250,000":      {func(p map[string]any) { p["Amount"] = 250001 }, 400, "400.002.02", "Invalid Amount"},
		"fractional amount":        {func(p map[string]any) { p["Amount"] = "1.5" }, 400, "400.002.02", "Invalid Amount"},
		"phone not 2547/2541":      {func(p map[string]any) { p["PhoneNumber"] = "0708374149" }, 400, "400.002.02", "Invalid PhoneNumber"},
		"PartyA":                   {func(p map[string]any) { p["PartyA"] = "255708374149" }, 400, "400.002.02", "Invalid PartyA"},
		"till without till number": {func(p map[string]any) { p["TransactionType"] = "CustomerBuyGoodsOnline" }, 400, "400.002.02", "Invalid PartyB"},
		"AccountReference of 13":   {func(p map[string]any) { p["AccountReference"] = "PD7K3M9QXA123" }, 400, "400.002.02", "Invalid AccountReference"},
		"TransactionDesc of 14":    {func(p map[string]any) { p["TransactionDesc"] = "Kiosk sale 123" }, 400, "400.002.02", "Invalid TransactionDesc"},
		"no CallBackURL":           {func(p map[string]any) { p["CallBackURL"] = "" }, 400, "400.002.02", "Invalid CallBackURL"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := validPush()
			c.change(p)
			st, out := post(t, push, tok, p)
			if st != c.status || out["errorCode"] != c.code || !strings.Contains(out["errorMessage"].(string), c.text) || out["requestId"] == "" {
				t.Errorf("%d %v, want %d %s %q", st, out, c.status, c.code, c.text)
			}
		})
	}
	if st, out := post(t, push, "stale", validPush()); st != 404 || out["errorCode"] != "404.001.03" {
		t.Errorf("bad token: %d %v", st, out)
	}
	req, _ := http.NewRequest(http.MethodPost, push, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("no Content-Type: %d, want 400 (Invalid BusinessShortCode)", resp.StatusCode)
	}
}

// Tokens expire; the query says pending until the outcome, then the
// string ResultCode; registration checks the version and banned words,
// and production registration is one-shot.
func TestTokensQueryAndRegister(t *testing.T) {
	s, url, tok := fake(t, sandbox.Options{TokenTTL: time.Second, PromptDelay: 300 * time.Millisecond})
	s.Next(sandbox.Outcome{Code: "1032", Drop: true})
	_, out := post(t, url+"/mpesa/stkpush/v1/processrequest", tok, validPush())
	id := out["CheckoutRequestID"]
	ts := daraja.Timestamp(time.Now())
	q := map[string]any{"BusinessShortCode": "174379", "Password": daraja.Password(sandbox.DefaultShortCode, sandbox.DefaultPasskey, ts), "Timestamp": ts, "CheckoutRequestID": id}
	if st, out := post(t, url+"/mpesa/stkpushquery/v1/query", tok, q); st != 500 || out["errorMessage"] != "The transaction is being processed" {
		t.Errorf("query before the outcome: %d %v", st, out)
	}
	time.Sleep(400 * time.Millisecond)
	if st, out := post(t, url+"/mpesa/stkpushquery/v1/query", tok, q); st != 200 || out["ResultCode"] != "1032" {
		t.Errorf("query after: %d %v", st, out)
	}
	time.Sleep(700 * time.Millisecond)
	if st, out := post(t, url+"/mpesa/stkpushquery/v1/query", tok, q); st != 404 || out["errorCode"] != "404.001.03" {
		t.Errorf("expired token: %d %v", st, out)
	}

	_, url, tok = fake(t, sandbox.Options{Production: true})
	reg := map[string]any{"ShortCode": "600984", "ResponseType": "Completed", "ConfirmationURL": "https://kiosk.example/s/c2b/confirmation", "ValidationURL": "https://kiosk.example/s/c2b/validation"}
	if st, out := post(t, url+"/mpesa/c2b/v1/registerurl", tok, reg); st != 401 || out["errorCode"] != "401.003.01" {
		t.Errorf("v1 on a v2 app: %d %v", st, out)
	}
	bad := map[string]any{"ShortCode": "600984", "ResponseType": "Canceled", "ConfirmationURL": "https://kiosk.example/c", "ValidationURL": "https://kiosk.example/v"}
	if st, _ := post(t, url+"/mpesa/c2b/v2/registerurl", tok, bad); st != 400 {
		t.Errorf("ResponseType Canceled: %d, want 400", st)
	}
	banned := map[string]any{"ShortCode": "600984", "ResponseType": "Completed", "ConfirmationURL": "https://kiosk.example/mpesa/c2b", "ValidationURL": "https://kiosk.example/v"}
	if st, _ := post(t, url+"/mpesa/c2b/v2/registerurl", tok, banned); st != 400 {
		t.Errorf("URL with mpesa: %d, want 400", st)
	}
	if st, out := post(t, url+"/mpesa/c2b/v2/registerurl", tok, reg); st != 200 || out["OriginatorCoversationID"] == nil {
		t.Errorf("register: %d %v (the key is misspelt, as Daraja spells it)", st, out)
	}
	if st, out := post(t, url+"/mpesa/c2b/v2/registerurl", tok, reg); st != 500 || out["errorMessage"] != "Urls are already registered" {
		t.Errorf("second production registration: %d %v", st, out)
	}
	if _, _, err := s.SimulateC2B(context.Background(), sandbox.C2B{Amount: "1"}); err == nil {
		t.Error("C2B simulated with no URLs registered")
	}
}

// A till (Buy Goods) push names the till number as PartyB; the client
// builds it from its configuration and the fake accepts only that.
func TestTillPush(t *testing.T) {
	s := sandbox.New(sandbox.Options{TillNumber: "5123456"})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	defer s.Close()
	for _, till := range []string{"5123456", "5999999"} {
		c, err := daraja.NewClient(daraja.Config{BaseURL: srv.URL, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
			ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Till: true, TillNumber: till})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, err = c.STKPush(context.Background(), daraja.PushRequest{Phone: "0708374149", Amount: 5, Reference: "PD7K3M9QXA", CallbackURL: "https://kiosk.example/cb"})
		if till == "5123456" && err != nil {
			t.Errorf("till push: %v", err)
		}
		var ae *daraja.APIError
		if till == "5999999" && (!errors.As(err, &ae) || ae.Code != "400.002.02" || !strings.Contains(ae.Message, "PartyB")) {
			t.Errorf("wrong till: %v, want 400.002.02 Invalid PartyB", err)
		}
	}
	if _, err := daraja.NewClient(daraja.Config{BaseURL: srv.URL, ConsumerKey: "k", ConsumerSecret: "s", ShortCode: "1", Passkey: "p", Till: true}); !errors.Is(err, daraja.ErrConfig) {
		t.Errorf("till without a number: %v", err)
	}
	bad, _ := daraja.NewClient(daraja.Config{BaseURL: srv.URL, ConsumerKey: "k", ConsumerSecret: "wrong", ShortCode: "1", Passkey: "p"})
	var ae *daraja.APIError
	if err := bad.Ping(context.Background()); !errors.As(err, &ae) || ae.Status != 400 || bad.TokenError() == nil {
		t.Errorf("bad credentials: %v, want the empty 400 as *APIError", err)
	}
}

// With InvalidateOld each new token revokes the earlier ones, as the
// portal's FAQ says Daraja does.
func TestNewTokenInvalidatesOld(t *testing.T) {
	s := sandbox.New(sandbox.Options{InvalidateOld: true})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	defer s.Close()
	first, _ := oauth(t, srv.URL)
	second, _ := oauth(t, srv.URL)
	if st, out := post(t, srv.URL+"/mpesa/stkpush/v1/processrequest", first, validPush()); st != 404 || out["errorCode"] != "404.001.03" {
		t.Errorf("the first token after a second was issued: %d %v", st, out)
	}
	if st, _ := post(t, srv.URL+"/mpesa/stkpush/v1/processrequest", second, validPush()); st != 200 {
		t.Errorf("the second token: %d", st)
	}
}

// The fake has the one lifecycle: Listen, then Serve(ctx, ln) until ctx
// ends or Close; a Serve after Close returns at once.
func TestLifecycle(t *testing.T) {
	for _, how := range []string{"ctx", "close"} {
		s := sandbox.New(sandbox.Options{Addr: "127.0.0.1:0"})
		ln, err := s.Listen()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- s.Serve(ctx, ln) }()
		if tok, _ := oauth(t, "http://"+ln.Addr().String()); tok == "" {
			t.Fatalf("%s: no token from the served fake", how)
		}
		if how == "ctx" {
			cancel()
		} else {
			s.Close()
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("%s: Serve: %v", how, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Serve did not return", how)
		}
		cancel()
		if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			t.Errorf("%s: the fake still answers after Serve returned", how)
		}
		ln2, err := sandbox.New(sandbox.Options{Addr: "127.0.0.1:0"}).Listen()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Serve(context.Background(), ln2); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: Serve after Close: %v", how, err)
		}
	}
}
