package hub

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"paydesk/mpesa"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// newClient is an operator's browser on the hub at base.
func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// unmatchedID returns the hub's id of the unmatched payment with receipt
// key.
func (f *darajaFixture) unmatchedID(key string) int64 {
	f.t.Helper()
	un, err := f.store.UnmatchedCallbacks(context.Background(), 100)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, u := range un {
		if u.Key == key {
			return u.ID
		}
	}
	f.t.Fatalf("payment %s is not in the unmatched list %+v", key, un)
	return 0
}

// An operator assigns a payment no kiosk claimed to a kiosk's open sale
// from the dashboard: refused without the anti-CSRF token, for an
// unknown kiosk, an unknown sale, a sale already paid, and a second
// time; assigned, it is journaled at the hub, waits for the kiosk while
// it is offline, reaches it when it connects, pays the sale through the
// kiosk's M-Pesa rail (journaled there as an assignment), is
// acknowledged, and the dashboard shows it assigned and delivered. Sent
// again, it changes nothing.
func TestAssignUnmatchedPaymentFromTheDashboard(t *testing.T) {
	ctx := context.Background()
	f := newDarajaFixture(t)
	f.store.bcryptCost = bcrypt.MinCost
	if err := f.store.AddOperator(ctx, "ann", testPassword); err != nil {
		t.Fatal(err)
	}
	hubURL := f.replica(f.store)
	k1, k2 := f.kiosk("K1", hubURL), f.kiosk("K2", hubURL)
	k1.connect(hubURL)
	k2.connect(hubURL)
	k2.registerC2B()
	paid := k1.c2bSale(50)
	sale := k2.c2bSale(120)
	if _, status, err := f.fake.SimulateC2B(ctx, sandbox.C2B{Amount: "50", BillRef: paid}); err != nil || status != http.StatusOK {
		t.Fatalf("C2B payment: status %d, %v", status, err)
	}
	k1.waitStatus(paid, payment.StatusApproved)
	k1.replicated()
	k2.replicated()
	receipt, status, err := f.fake.SimulateC2B(ctx, sandbox.C2B{Amount: "120", BillRef: "NOSUCHSALE"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("C2B payment: status %d, %v", status, err)
	}
	id := f.unmatchedID(receipt)
	k2.disconnect() // the assignment waits for its link

	c := newClient(t, hubURL)
	csrf := c.mustLogin()
	_, page := c.get("/payments")
	assignPath := "/unmatched/" + strconv.FormatInt(id, 10)
	if !strings.Contains(page, `href="`+assignPath+`"`) {
		t.Fatalf("the payments page has no link to assign %s:\n%s", receipt, page)
	}
	_, page = c.get(assignPath)
	for _, want := range []string{receipt, "KES 120.00", sale, "K2"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the assign page lacks %q:\n%s", want, page)
		}
	}
	assign := func(kiosk, sale, token string) (*http.Response, string) {
		t.Helper()
		return c.post(assignPath+"/assign", url.Values{"csrf": {token}, "kiosk": {kiosk}, "sale": {sale}})
	}
	for _, tc := range []struct {
		kiosk, sale, csrf string
		code              int
		says              string
	}{
		{"K2", sale, "", http.StatusForbidden, "anti-CSRF"},
		{"K2", sale, "wrong", http.StatusForbidden, "anti-CSRF"},
		{"K9", sale, csrf, http.StatusNotFound, "no kiosk K9"},
		{"K2", "PD99999999", csrf, http.StatusNotFound, "K2 reported no M-Pesa sale PD99999999"},
		{"K1", paid, csrf, http.StatusConflict, "sale " + paid + " at K1 is already paid"},
		{"K2", "", csrf, http.StatusBadRequest, "pick a kiosk and a sale"},
	} {
		resp, body := assign(tc.kiosk, tc.sale, tc.csrf)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.says) {
			t.Fatalf("assign to %s %q (csrf %q): %s, want %d saying %q:\n%s", tc.kiosk, tc.sale, tc.csrf, resp.Status, tc.code, tc.says, body)
		}
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE kiosk_id IN ('K1', 'K2') AND kind = $1`, MessageMpesaAssign); n != 0 {
		t.Fatalf("%d assignments queued by refused requests", n)
	}
	// The operator types the reference as read off the kiosk's screen.
	resp, body := assign("K2", strings.ToLower(sale), csrf)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != assignPath {
		t.Fatalf("assign: %s %s", resp.Status, body)
	}
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks c JOIN messages m ON m.id = c.message_id
		WHERE c.id = $1 AND c.kiosk_id = 'K2' AND c.assigned_txn = $2 AND c.assigned_by = 'ann' AND c.assigned_at IS NOT NULL
		AND m.kind = $3 AND m.acked_at IS NULL`, id, sale, MessageMpesaAssign); n != 1 {
		t.Fatalf("the assignment is not journaled at the hub, pending for K2 (%d rows)", n)
	}
	resp, body = assign("K2", sale, csrf)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already assigned to K2 sale "+sale+" by ann") {
		t.Fatalf("assigned twice: %s %s", resp.Status, body)
	}
	un, err := f.store.UnmatchedCallbacks(ctx, 10)
	if err != nil || len(un) != 0 {
		t.Fatalf("still unmatched after the assignment: %+v %v", un, err)
	}
	_, page = c.get(assignPath)
	if !strings.Contains(page, "waiting for K2") {
		t.Fatalf("the page does not say the assignment waits for K2:\n%s", page)
	}
	if tx, _ := k2.j.Txn(ctx, sale); tx.Status != payment.StatusSent {
		t.Fatalf("offline, K2's sale is %s", tx.Status)
	}

	k2.connect(hubURL)
	tx := k2.waitStatus(sale, payment.StatusApproved)
	if tx.Result.RemoteID != receipt {
		t.Fatalf("K2's sale approved without receipt %s: %+v", receipt, tx.Result)
	}
	waitFor(t, "the assignment acknowledged", func() bool {
		return f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K2' AND acked_at IS NULL`) == 0
	})
	assigned, err := k2.j.Flagged(ctx, payment.RailMPesa, mpesa.FlagAssigned, time.Time{})
	if err != nil || len(assigned) != 1 || !strings.Contains(assigned[0].Detail, "ann") {
		t.Fatalf("K2's journal of the assignment: %+v %v", assigned, err)
	}
	_, page = c.get(assignPath)
	if !strings.Contains(page, "delivered to K2") {
		t.Fatalf("the page does not show the assignment delivered:\n%s", page)
	}
	_, page = c.get("/payments")
	if !strings.Contains(page, `id="assigned"`) || !strings.Contains(page, receipt) || !strings.Contains(page, sale) {
		t.Fatalf("the payments page does not list the assignment:\n%s", page)
	}
	// Delivered again (its acknowledgement lost): nothing changes.
	before, err := k2.j.History(ctx, sale)
	if err != nil {
		t.Fatal(err)
	}
	k2.mu.Lock()
	msg := k2.lastAssign
	k2.mu.Unlock()
	if msg.Kind != MessageMpesaAssign {
		t.Fatalf("K2's link received no assignment: %+v", msg)
	}
	if err := ApplyMessage(ctx, k2.rail, msg); err != nil {
		t.Fatalf("the assignment delivered again: %v", err)
	}
	after, err := k2.j.History(ctx, sale)
	if err != nil || len(after) != len(before) {
		t.Fatalf("delivered again, the sale's history went from %d to %d events (%v)", len(before), len(after), err)
	}
	if assigned, _ := k2.j.Flagged(ctx, payment.RailMPesa, mpesa.FlagAssigned, time.Time{}); len(assigned) != 1 {
		t.Fatalf("delivered again, %d assignments journaled", len(assigned))
	}
}

// An STK result for a push no kiosk journaled (its answer lost) is a
// payment too: assigned, the kiosk's rail pays the sale with its receipt.
// A failed STK result is no payment and is refused. Without a session an
// assignment is refused.
func TestAssignAnUnmatchedSTKPayment(t *testing.T) {
	ctx := context.Background()
	f := newDarajaFixture(t)
	f.store.bcryptCost = bcrypt.MinCost
	if err := f.store.AddOperator(ctx, "ann", testPassword); err != nil {
		t.Fatal(err)
	}
	hubURL := f.replica(f.store)
	k := f.kiosk("K1", hubURL)
	k.connect(hubURL)
	k.registerC2B()
	sale := k.c2bSale(150)
	k.replicated()
	paid := `{"Body":{"stkCallback":{"MerchantRequestID":"m1","CheckoutRequestID":"ws_CO_LOST0001","ResultCode":0,` +
		`"ResultDesc":"ok","CallbackMetadata":{"Item":[{"Name":"Amount","Value":150.00},{"Name":"MpesaReceiptNumber","Value":"STKL0ST001"},` +
		`{"Name":"TransactionDate","Value":20261204120000},{"Name":"PhoneNumber","Value":254708374149}]}}}}`
	failed := `{"Body":{"stkCallback":{"MerchantRequestID":"m2","CheckoutRequestID":"ws_CO_LOST0002","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}`
	for _, b := range []string{paid, failed} {
		if code, answer := postBody(t, hubURL+PathSTK, b); code != http.StatusOK {
			t.Fatalf("STK result answered %d %s", code, answer)
		}
	}
	paidID, failedID := f.unmatchedID("ws_CO_LOST0001"), f.unmatchedID("ws_CO_LOST0002")

	anon := newClient(t, hubURL)
	if resp, body := anon.get(fmt.Sprintf("/unmatched/%d", paidID)); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" ||
		strings.Contains(body, "ws_CO_LOST0001") {
		t.Fatalf("the payment's page without a session: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := anon.post(fmt.Sprintf("/unmatched/%d/assign", paidID), url.Values{"kiosk": {"K1"}, "sale": {sale}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an assignment without a session: %s", resp.Status)
	}
	c := newClient(t, hubURL)
	csrf := c.mustLogin()
	resp, body := c.post(fmt.Sprintf("/unmatched/%d/assign", failedID), url.Values{"csrf": {csrf}, "kiosk": {"K1"}, "sale": {sale}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "is no payment (result code 1032)") {
		t.Fatalf("a failed STK result assigned: %s\n%s", resp.Status, body)
	}
	resp, body = c.post(fmt.Sprintf("/unmatched/%d/assign", paidID), url.Values{"csrf": {csrf}, "kiosk": {"K1"}, "sale": {sale}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("assign: %s\n%s", resp.Status, body)
	}
	tx := k.waitStatus(sale, payment.StatusApproved)
	if tx.Result.RemoteID != "STKL0ST001" {
		t.Fatalf("approved without the STK receipt: %+v", tx.Result)
	}
	waitFor(t, "the assignment acknowledged", func() bool {
		return f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K1' AND acked_at IS NULL`) == 0
	})
	// The kiosk's journal keeps no full phone number of it either.
	evs, err := k.j.ByRemoteID(ctx, payment.RailMPesa, "STKL0ST001")
	if err != nil || len(evs) == 0 {
		t.Fatalf("the receipt is not in the kiosk's journal: %v", err)
	}
	for _, e := range evs {
		if strings.Contains(string(e.Raw), "254708374149") {
			t.Fatalf("the kiosk journaled the payer's number: %s", e.Raw)
		}
	}
}
