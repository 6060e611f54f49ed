package mpesa_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// checkoutOf is the CheckoutRequestID Daraja gave payment id's push, read
// from the journal (the acknowledged transition carries it).
func (h *harness) checkoutOf(id string) string {
	h.t.Helper()
	for _, e := range h.events(id) {
		if e.Kind == payment.KindTransition && e.Status == payment.StatusAcknowledged && e.Result != nil {
			return e.Result.RemoteID
		}
	}
	h.t.Fatalf("txn %s has no CheckoutRequestID:%s", id, h.history(id))
	return ""
}

// stkCallback is a success callback for checkout as Daraja writes it.
func stkCallback(checkout, amount, receipt, phone string) string {
	return fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"%s","ResultCode":0,"ResultDesc":"The service request is processed successfully.","CallbackMetadata":{"Item":[{"Name":"Amount","Value":%s},{"Name":"MpesaReceiptNumber","Value":"%s"},{"Name":"Balance"},{"Name":"TransactionDate","Value":20261204102115},{"Name":"PhoneNumber","Value":%s}]}}}}`,
		checkout, amount, receipt, phone)
}

// postCallback posts body to the rail's STK callback URL and fails the
// test unless it is answered 200.
func (h *harness) postCallback(body string) {
	h.t.Helper()
	resp, err := http.Post(h.rail.STKCallbackURL(), "application/json", strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("callback answered %d", resp.StatusCode)
	}
}

// The query approves first (it carries no amount), then the callback
// brings the receipt and an amount one shilling short: the shortfall is
// still flagged, whichever source came first.
func TestCallbackAmountCheckedAfterQueryApproval(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	h.fake.Next(sandbox.Outcome{Code: "0", Drop: true})
	id := h.start("0708374149", 30)
	h.waitStatus(id, payment.StatusApproved) // from the query: no callback was sent
	h.postCallback(stkCallback(h.checkoutOf(id), "29.00", "RCPTSHORT1", "254708374149"))
	h.waitFor("the receipt journaled", func() bool { return strings.Contains(h.history(id), "RCPTSHORT1") })
	tx, _ := h.j.Txn(t.Context(), id)
	if !tx.HasFlag(payment.FlagAmountMismatch) {
		t.Errorf("Amount 29.00 for a KES 30 sale approved by the query not flagged: %v%s", tx.Flags, h.history(id))
	}
}
