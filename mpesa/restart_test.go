package mpesa_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/mpesa"
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

// No full phone number reaches the journal: the STK callback's
// PhoneNumber (a JSON number), a C2B MSISDN sent in full, and a number in
// a body too broken to decode are masked before they are stored.
func TestPhoneNumbersMaskedInJournal(t *testing.T) {
	// Only the callback settles the sale (the first query is an hour
	// away), so its body is journaled by the time the sale is approved.
	h := newHarness(t, sandbox.Options{PlainMSISDN: true}, func(o *mpesa.Options) { o.Poll.First, o.Poll.Budget = time.Hour, 2*time.Hour })
	if _, err := h.rail.RegisterC2B(t.Context(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	id := h.start("0708374149", 40)
	h.waitStatus(id, payment.StatusApproved)
	if _, _, err := h.fake.SimulateC2B(t.Context(), sandbox.C2B{Amount: "5", Till: true, MSISDN: "254711223344"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(h.rail.STKCallbackURL(), "application/json", strings.NewReader(`{"Body":{"PhoneNumber":254722334455,`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	raws := 0
	for _, e := range h.allEvents() {
		if len(e.Raw) == 0 {
			continue
		}
		raws++
		for _, full := range []string{"708374149", "711223344", "722334455"} {
			if strings.Contains(string(e.Raw), full) {
				t.Errorf("%s event keeps a full phone number: %s", e.Kind, e.Raw)
			}
		}
	}
	if raws < 3 {
		t.Errorf("%d events with a body, want the callback, the confirmation and the rejection", raws)
	}
	if !strings.Contains(string(h.rawOf(id)), `"2547****149"`) {
		t.Errorf("the callback's PhoneNumber is not stored masked: %s", h.rawOf(id))
	}
}

// rawOf is the last body journaled on payment id.
func (h *harness) rawOf(id string) []byte {
	var raw []byte
	for _, e := range h.events(id) {
		if len(e.Raw) > 0 {
			raw = e.Raw
		}
	}
	return raw
}

// The path secret is made once, kept with mode 0600, read back the same;
// a file others may read, or a secret too short, is refused.
func TestLoadPathSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", mpesa.PathSecretFile)
	a, created, err := mpesa.LoadPathSecret(file)
	if err != nil || !created || len(a) < 20 {
		t.Fatalf("first load: %q %v %v", a, created, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept as %v, %v; want mode 0600", fi.Mode(), err)
	}
	b, created, err := mpesa.LoadPathSecret(file)
	if err != nil || created || b != a {
		t.Errorf("second load: %q %v %v, want %q kept", b, created, err, a)
	}
	os.Chmod(file, 0o644)
	if _, _, err := mpesa.LoadPathSecret(file); err == nil || strings.Contains(err.Error(), a) {
		t.Errorf("a world-readable file: %v, want a refusal that does not repeat the secret", err)
	}
	os.WriteFile(file, []byte("short\n"), 0o600)
	os.Chmod(file, 0o600)
	if _, _, err := mpesa.LoadPathSecret(file); err == nil {
		t.Error("a 5-character secret was taken")
	}
}

// A request on an unknown path is answered 404 and logged without the
// path's first segment, at a bounded rate.
func TestUnknownPathLogged(t *testing.T) {
	var log syncBuffer
	// The rail's clock stands still: the five requests fall within the
	// limiter's second however slowly they are served.
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&log, nil))
		o.Now = func() time.Time { return at }
	})
	for range 5 {
		h.postStatus("/oldsecret4711/stk/result", http.StatusNotFound)
	}
	out := log.String()
	if strings.Count(out, "unknown path") != 1 || !strings.Contains(out, "path=/…/stk/result") || !strings.Contains(out, "path_secret=\"another secret\"") {
		t.Errorf("log, want one line for the five requests, without the secret:\n%s", out)
	}
	if strings.Contains(out, "oldsecret4711") {
		t.Errorf("the path's secret reached the log:\n%s", out)
	}
}

// postStatus posts an empty JSON object to path on the callback server
// and fails the test unless it is answered want.
func (h *harness) postStatus(path string, want int) {
	h.t.Helper()
	resp, err := http.Post(h.cbURL+path, "application/json", strings.NewReader(`{}`))
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		h.t.Errorf("POST %s: %d, want %d", path, resp.StatusCode, want)
	}
}

// syncBuffer is a bytes.Buffer the rail's goroutines may log to while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A sale the query approved before a restart, whose callback arrives
// after it, is that sale's receipt: journaled on the sale, the receipt on
// its row, never listed as an unmatched till payment. Its duplicate is a
// duplicate.
func TestReceiptAfterRestartIsTheSales(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.EarlyGrace = 50 * time.Millisecond })
	h.fake.Next(sandbox.Outcome{Code: "0", Drop: true})
	id := h.start("0708374149", 150)
	h.waitStatus(id, payment.StatusApproved) // by the query: no receipt yet
	checkout := h.checkoutOf(id)
	h.close()
	h.open(func(o *mpesa.Options) { o.EarlyGrace = 50 * time.Millisecond })

	body := stkCallback(checkout, "150.00", "RCPTAFTER1", "254708374149")
	h.postCallback(body) // answered once journaled
	if !strings.Contains(h.history(id), "RCPTAFTER1") {
		t.Errorf("the callback is not journaled on its sale:%s", h.history(id))
	}
	tx, _ := h.j.Txn(t.Context(), id)
	if tx.Result.RemoteID != "RCPTAFTER1" {
		t.Errorf("the row's remote id is %q, want the receipt", tx.Result.RemoteID)
	}
	h.postCallback(body)
	if n := h.count(id, hasFlag(mpesa.FlagDuplicate)); n != 1 {
		t.Errorf("%d duplicates on the sale, want 1:%s", n, h.history(id))
	}
	for _, e := range h.allEvents() {
		if e.Flag == mpesa.FlagUnmatched {
			t.Errorf("listed for the operator: %s", e.Detail)
		}
	}
	if p := h.rail.TillPayments(); len(p) != 0 {
		t.Errorf("till payments %+v, want none", p)
	}
}

// Without a restart too, the receipt that follows a query's approval
// reaches the transaction's row.
func TestReceiptAfterQueryApprovalOnRow(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	h.fake.Next(sandbox.Outcome{Code: "0", Drop: true})
	id := h.start("0708374149", 151)
	h.waitStatus(id, payment.StatusApproved)
	h.postCallback(stkCallback(h.checkoutOf(id), "151.00", "RCPTROW001", "254708374149"))
	if tx, _ := h.j.Txn(t.Context(), id); tx.Result.RemoteID != "RCPTROW001" {
		t.Errorf("the row's remote id is %q, want the receipt", tx.Result.RemoteID)
	}
}
