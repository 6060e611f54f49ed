package hub

import (
	"context"
	"net/http"
	"testing"

	"paydesk/mpesa"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// With a path secret, Daraja's callbacks are taken only under it
// (HUB/SECRET/v1/daraja/…): the bare paths and a wrong secret get 404 and
// store nothing; a kiosk given the hub's URL with the secret as its base
// gets its STK result and its C2B payment through the hub.
func TestCallbackPathSecret(t *testing.T) {
	f := newDarajaFixture(t)
	secret := mpesa.NewPathSecret()
	hubURL := f.replicaWith(f.store, Options{MpesaPathSecret: secret})
	body := `{"TransactionType":"Pay Bill","TransID":"SECRET0001","TransTime":"20261204120000","TransAmount":"75.00","BusinessShortCode":"174379","BillRefNumber":"WRONGREF","MSISDN":"2547 ***** 149"}`
	for _, u := range []string{hubURL + PathC2BConfirmation, hubURL + "/" + mpesa.NewPathSecret() + PathC2BConfirmation,
		hubURL + "/" + secret + "x" + PathC2BConfirmation, hubURL + PathSTK} {
		if code, answer := postBody(t, u, body); code != http.StatusNotFound {
			t.Fatalf("%s answered %d %s, want 404", u, code, answer)
		}
	}
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks`); n != 0 {
		t.Fatalf("%d callbacks stored from the wrong paths", n)
	}
	if code, answer := postBody(t, hubURL+"/"+secret+PathC2BConfirmation, body); code != http.StatusOK {
		t.Fatalf("under the secret: %d %s", code, answer)
	}
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks WHERE key = 'SECRET0001'`); n != 1 {
		t.Fatalf("%d callbacks stored under the secret", n)
	}

	k := f.kiosk("K1", hubURL+"/"+secret)
	k.connect(hubURL)
	k.registerC2B()
	id, err := k.rail.Start(context.Background(), payment.Request{Mode: payment.ModeSTKPush, Phone: sandbox.TestPhone,
		Amount: payment.Money{Minor: 10000, Currency: "KES"}})
	if err != nil {
		t.Fatal(err)
	}
	k.waitStatus(id, payment.StatusApproved)
	ref := k.c2bSale(60)
	k.replicated()
	if _, status, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "60", BillRef: ref}); err != nil || status != http.StatusOK {
		t.Fatalf("C2B payment: status %d, %v", status, err)
	}
	k.waitStatus(ref, payment.StatusApproved)
}
