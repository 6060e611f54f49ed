package mpesa_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// Bad input never reaches Daraja: it is refused with a reason the
// operator can act on, and journaled as a rejection.
func TestStartRefusesBadInput(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	for _, c := range []struct {
		req  payment.Request
		want string
	}{
		{payment.Request{Phone: "0812345678", Amount: payment.Money{Minor: 1000, Currency: "KES"}}, "not a Kenyan mobile number"},
		{payment.Request{Phone: "0708374149", Amount: payment.Money{Minor: 1050, Currency: "KES"}}, "whole shillings"},
		{payment.Request{Phone: "0708374149", Amount: payment.Money{Minor: 25_000_100, Currency: "KES"}}, "KES 1 to 250000"},
		{payment.Request{Phone: "0708374149", Amount: payment.Money{Minor: 1000, Currency: "MYR"}}, "not MYR"},
		{payment.Request{Phone: "0708374149", Amount: payment.Money{Minor: 1000}, Reference: "TOO-LONG-REFERENCE"}, "letters and digits"},
		{payment.Request{Mode: payment.ModeCard, Phone: "0708374149", Amount: payment.Money{Minor: 1000}}, "not card"},
	} {
		if _, err := h.rail.Start(context.Background(), c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
	if n := h.fake.Counts().Push; n != 0 {
		t.Errorf("%d pushes reached Daraja", n)
	}
	rejected := 0
	for _, e := range h.allEvents() {
		if e.Kind == payment.KindRejected && e.Rail == payment.RailMPesa {
			rejected++
			if strings.Contains(e.Detail, "812345678") {
				t.Errorf("the rejection repeats the phone: %s", e.Detail)
			}
		}
	}
	if rejected != 6 {
		t.Errorf("%d rejections journaled, want 6", rejected)
	}
}

// Wrong credentials show in the rail's health and fail the payment with
// the reason; an unreachable Daraja fails it without leaving it unknown
// (nothing was sent).
func TestHealthAndUnreachable(t *testing.T) {
	h := newHarness(t, sandbox.Options{ConsumerKey: "other", ConsumerSecret: "other"}, nil)
	if err := h.client.Ping(context.Background()); err == nil {
		t.Fatal("wrong credentials accepted")
	}
	if hl := h.rail.Health(); hl.Up || hl.Detail != "token refused (HTTP 400)" {
		t.Errorf("health %+v", hl)
	}
	id := h.start("0708374149", 10)
	tx := h.waitStatus(id, payment.StatusFailed)
	if !strings.Contains(tx.Result.Reason, "HTTP 400") {
		t.Errorf("reason %q", tx.Result.Reason)
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c, _ := daraja.NewClient(daraja.Config{BaseURL: "http://" + addr, ConsumerKey: "k", ConsumerSecret: "s", ShortCode: "174379", Passkey: "p", Logger: quietLog()})
	r, err := mpesa.NewRail(mpesa.Options{Client: c, Bus: h.bus, PublicURL: "http://127.0.0.1:1", Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id, err = r.Start(context.Background(), payment.Request{Phone: "0708374149", Amount: payment.Money{Minor: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	tx = h.waitStatus(id, payment.StatusFailed)
	if tx.Result.Reason != "Daraja unreachable" || r.Health().Up {
		t.Errorf("unreachable: %+v, health %+v", tx, r.Health())
	}
	if _, err := mpesa.NewRail(mpesa.Options{Client: c, Bus: h.bus, PublicURL: "https://kiosk.example/mpesa"}); !errors.Is(err, daraja.ErrBadURL) {
		t.Errorf("a public URL with 'mpesa': %v", err)
	}
}

// A push Daraja refuses at once because the customer's phone is in
// another M-Pesa session ends declined with the words of ResultCode 1001,
// the same as when a callback reports it.
func TestPushRefusedSubscriberLocked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/oauth") {
			w.Write([]byte(`{"access_token":"tok","expires_in":"3599"}`))
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"requestId":"r-1","errorCode":"500.001.1001","errorMessage":"Unable to lock subscriber, a transaction is already in process for the current subscriber"}`))
	}))
	defer srv.Close()
	r, j := stubRail(t, srv.URL, nil, nil)
	id, err := r.Start(context.Background(), payment.Request{Phone: "0708374149", Amount: payment.Money{Minor: 100, Currency: "KES"}})
	if err != nil {
		t.Fatal(err)
	}
	want := daraja.Meaning("1001", "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		tx, err := j.Txn(context.Background(), id)
		if err == nil && tx.Status.Final() {
			if tx.Status != want.Status || !strings.Contains(tx.Result.Reason, want.Words) {
				t.Errorf("status %s, result %+v; want %s with %q", tx.Status, tx.Result, want.Status, want.Words)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("txn %s not final: %+v, %v", id, tx, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
