package screens

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// The browser display in Chromium, on the real M-Pesa rail against the
// fake Daraja (imported by this test only; the server knows M-Pesa only
// as a payment.Instructor): the customer chooses KSh 100 and M-Pesa, the
// page shows the paybill, the account and the amount large, the
// customer pays that paybill from their phone, and the page shows
// SUCCESS.
func TestBrowserShowsMPesaInstructions(t *testing.T) {
	page := chromium(t)
	bus := newBus(t)
	log := slog.New(slog.DiscardHandler)
	fake := sandbox.New(sandbox.Options{Logger: log})
	fs := httptest.NewServer(fake.Handler())
	t.Cleanup(func() { fake.Close(); fs.Close() })
	client, err := daraja.NewClient(daraja.Config{BaseURL: fs.URL, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
		ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	allow, _ := mpesa.ParsePrefixes("127.0.0.0/8")
	rail, err := mpesa.NewRail(mpesa.Options{Client: client, Bus: bus, PublicURL: "http://" + ln.Addr().String(),
		AllowList: allow, C2BWait: time.Minute, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	go rail.Serve(context.Background(), ln)
	t.Cleanup(rail.Close)
	if _, err := rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	srv, _ := startServer(t, bus, Options{Currency: "KES", StepDelay: 300 * time.Millisecond,
		Methods: []Method{{Name: "MPESA", Rail: rail, RailName: payment.RailMPesa, Mode: payment.ModeC2B}}})
	shots := screenshotDir(t)

	page.Call("Page.navigate", map[string]any{"url": srv.URL() + "?device=tablet-ke"}, nil)
	page.waitScreen("AMOUNT_SELECT")
	page.click(`#amounts button[data-amount="100"]`)
	page.waitScreen("PAYMENT_METHOD")
	if got := page.text("method-amount"); got != "KSh100" {
		t.Errorf("method screen shows %q", got)
	}
	page.click(`#methods button[data-method="MPESA"]`)
	page.waitScreen("PROCESSING")
	var shown bool
	for deadline := time.Now().Add(10 * time.Second); !shown && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		page.Eval(`!document.getElementById("pay").hidden && document.getElementById("pay-account").textContent !== ""`, &shown)
	}
	if !shown {
		t.Fatal("the page never showed where to pay")
	}
	account := page.text("pay-account")
	if page.text("pay-number") != sandbox.DefaultShortCode || page.text("pay-amount") != "KSh 100" || page.text("pay-menu") != "Pay Bill" {
		t.Errorf("instructions: number %q account %q amount %q menu %q", page.text("pay-number"), account, page.text("pay-amount"), page.text("pay-menu"))
	}
	var spinnerHidden bool
	page.Eval(`document.getElementById("processing-wait").hidden`, &spinnerHidden)
	if !spinnerHidden {
		t.Error("the terminal's 'follow the instructions' text is shown beside M-Pesa's")
	}
	page.screenshot(shots, "mpesa_paybill.png")

	receipt, st, err := fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "100", BillRef: account})
	if err != nil || st != http.StatusOK {
		t.Fatalf("the customer's payment: %d %v", st, err)
	}
	page.waitScreen("SUCCESS")
	tx, err := bus.Journal().Txn(context.Background(), account)
	if err != nil || tx.Status != payment.StatusApproved || tx.Result.RemoteID != receipt {
		t.Fatalf("journal: %+v %v", tx, err)
	}
}
