package mpesa_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// Eleven reliability cases of an M-Pesa integration (numbered 1 to 11
// below), each end to end: the
// client talks to the fake Daraja, which calls the rail's callback
// server over HTTP, and every outcome is read back from the journal.

// Case 1: five copies of the success callback at once give one approved
// transition and one receipt; the four others are journaled as
// duplicates. A C2B confirmation sent five times at once, and a C2B
// confirmation carrying a receipt the STK callback already brought, are
// deduplicated the same way.
func TestCase1DuplicateCallbacks(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	h.fake.Next(sandbox.Outcome{Code: "0", Duplicates: 4})
	id := h.start("0708374149", 100)
	tx := h.waitStatus(id, payment.StatusApproved)
	h.waitFor("4 duplicates journaled", func() bool { return h.count(id, hasFlag(mpesa.FlagDuplicate)) == 4 })
	if n := h.count(id, isTransition(payment.StatusApproved)); n != 1 {
		t.Errorf("%d approved transitions, want 1:%s", n, h.history(id))
	}
	if n := h.count(id, func(e payment.Event) bool { return len(e.Raw) > 0 }); n != 5 {
		t.Errorf("%d raw callback bodies journaled, want 5", n)
	}

	// The same receipt as a C2B confirmation (an STK payment to a paybill
	// with registered URLs): a duplicate, not a second payment.
	if _, st, err := h.fake.SimulateC2B(context.Background(), sandbox.C2B{TransID: tx.Result.RemoteID, Amount: "100.00", BillRef: id}); err != nil || st != 200 {
		t.Fatalf("C2B: status %d, %v", st, err)
	}
	h.waitFor("the C2B copy journaled as a duplicate", func() bool { return h.count(id, hasFlag(mpesa.FlagDuplicate)) == 5 })
	if n := h.count(id, isTransition(payment.StatusApproved)); n != 1 {
		t.Errorf("%d approved transitions after the C2B copy, want 1", n)
	}

	// A paybill payment delivered five times at once.
	sale := h.start("0708374149", 50)
	h.fake.Next(sandbox.Outcome{Code: "1037", Drop: true, Delay: time.Minute})
	h.waitStatus(sale, payment.StatusAcknowledged)
	if _, _, err := h.fake.SimulateC2B(context.Background(), sandbox.C2B{TransID: "TST0000C2B", Amount: "50", BillRef: strings.ToLower(sale), Duplicates: 4}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(sale, payment.StatusApproved)
	h.waitFor("4 C2B duplicates", func() bool {
		n := 0
		for _, e := range h.allEvents() {
			if e.Flag == mpesa.FlagDuplicate && strings.Contains(e.Detail, "TST0000C2B") {
				n++
			}
		}
		return n == 4
	})
	if n := h.count(sale, isTransition(payment.StatusApproved)); n != 1 {
		t.Errorf("%d approved transitions for the C2B sale, want 1", n)
	}
	if got := len(h.rail.TillPayments()); got != 1 {
		t.Errorf("%d till payments listed, want 1", got)
	}
}

// Case 2: the callback arrives before the push's answer; it is kept and
// applied once the CheckoutRequestID is known.
func TestCase2CallbackBeforePushAnswer(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	h.fake.Next(sandbox.Outcome{Code: "0", ReorderBeforeAck: true})
	id := h.start("0708374149", 75)
	h.waitStatus(id, payment.StatusApproved)
	evs := h.events(id)
	var order []string
	for _, e := range evs {
		if e.Kind == payment.KindTransition {
			order = append(order, string(e.Status))
		}
	}
	if got := strings.Join(order, ","); got != "created,sent,acknowledged,approved" {
		t.Errorf("transitions %s, want created,sent,acknowledged,approved", got)
	}
	found := false
	for _, e := range h.allEvents() {
		if e.Kind == payment.KindMessage && strings.Contains(e.Detail, "push not known yet") && len(e.Raw) > 0 {
			found = true
		}
	}
	if !found {
		t.Error("the early callback's body was not journaled before its push was known")
	}
}

// Case 3: a confirmation for an unknown reference, a till payment without
// one, and one for a sale already closed are answered ResultCode 0,
// journaled unmatched and listed for the operator, who assigns one.
func TestCase3Unmatched(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	closed := h.start("0712341032", 40) // the customer cancels
	h.waitStatus(closed, payment.StatusCancelled)
	for _, p := range []sandbox.C2B{{Amount: "10", BillRef: "NOSUCHREF"}, {Amount: "20", Till: true}, {Amount: "40", BillRef: closed}} {
		if _, st, err := h.fake.SimulateC2B(context.Background(), p); err != nil || st != 200 {
			t.Fatalf("C2B %+v: status %d, %v", p, st, err)
		}
	}
	till := h.rail.TillPayments()
	if len(till) != 3 {
		t.Fatalf("%d till payments, want 3", len(till))
	}
	// A reference one slip from an open sale names it for the operator.
	h.fake.Next(sandbox.Outcome{Code: "1037", Drop: true, Delay: time.Minute})
	typo := h.start("0708374149", 12)
	h.waitStatus(typo, payment.StatusAcknowledged)
	slip := typo[:9] + string("0123456789"[(strings.IndexByte("0123456789ABCDEFGHJKMNPQRSTVWXYZ", typo[9])+1)%10])
	h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "12", BillRef: slip})
	h.waitFor("near miss listed", func() bool { return len(h.rail.TillPayments()) == 4 })
	if note := h.rail.TillPayments()[0].Note; !strings.Contains(note, "did the customer mean "+typo+"?") {
		t.Errorf("near miss note %q", note)
	}
	if err := h.rail.Cancel(typo); err != nil {
		t.Fatal(err)
	}
	for _, p := range till {
		if !p.Unmatched() {
			t.Errorf("till payment %+v matched, want unmatched", p)
		}
		if strings.Contains(p.Payer, "708374") {
			t.Errorf("payer %q shows the phone number", p.Payer)
		}
	}
	n := 0
	for _, e := range h.allEvents() {
		if e.Flag == mpesa.FlagUnmatched {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d unmatched events journaled, want 4", n)
	}
	// The operator assigns the 20-shilling till payment to an open sale.
	h.fake.Next(sandbox.Outcome{Code: "1037", Drop: true, Delay: time.Minute})
	open := h.start("0708374149", 20)
	h.waitStatus(open, payment.StatusAcknowledged)
	if err := h.rail.AssignTill(till[1].ID, open); err != nil { // the 20-shilling till payment
		t.Fatal(err)
	}
	tx := h.waitStatus(open, payment.StatusApproved)
	if tx.Result.RemoteID != till[1].ID || !tx.HasFlag(payment.FlagResolved) {
		t.Errorf("assigned sale = %+v, want the till receipt and resolved_by_operator", tx)
	}
	if err := h.rail.AssignTill(till[1].ID, open); err == nil {
		t.Error("a till payment was assigned twice")
	}
}

// Case 4: paid less by C2B → underpaid, the sale stays open with the
// shortfall; the rest brings it over → approved, overpaid flagged; an STK
// callback whose Amount differs from the sale, and a fractional amount,
// are flagged.
func TestCase4WrongAmounts(t *testing.T) {
	// The first sale must stay open while two till payments arrive: a
	// wait budget of an hour, not fastPoll's 3 s, which a loaded machine
	// can spend before the second payment is in.
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.Poll.Budget = time.Hour })
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	h.fake.Next(sandbox.Outcome{Code: "1037", Drop: true, Delay: time.Minute})
	id := h.start("0708374149", 100)
	h.waitStatus(id, payment.StatusAcknowledged)
	h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "60.00", BillRef: id})
	h.waitFor("underpaid flagged", func() bool { return h.count(id, hasFlag(mpesa.FlagUnderpaid)) == 1 })
	if tx, _ := h.j.Txn(context.Background(), id); tx.Status != payment.StatusAcknowledged {
		t.Errorf("underpaid sale is %s, want it still open", tx.Status)
	}
	h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "50.50", BillRef: id})
	h.waitStatus(id, payment.StatusApproved)
	h.waitFor("overpaid flagged", func() bool { return h.count(id, hasFlag(mpesa.FlagOverpaid)) == 1 })
	tx, _ := h.j.Txn(context.Background(), id)
	for _, f := range []string{mpesa.FlagUnderpaid, mpesa.FlagOverpaid, mpesa.FlagFractional} {
		if !tx.HasFlag(f) {
			t.Errorf("flags %v lack %s", tx.Flags, f)
		}
	}

	stk := h.start("0712340099", 30) // the fake pays one shilling less
	h.waitStatus(stk, payment.StatusApproved)
	// The query may approve before the callback brings the amount and the
	// receipt: wait for the receipt (10 characters, where the query left
	// the ws_CO_ id).
	h.waitFor("the callback's receipt", func() bool {
		tx, _ = h.j.Txn(context.Background(), stk)
		return len(tx.Result.RemoteID) == 10
	})
	if !tx.HasFlag(payment.FlagAmountMismatch) {
		t.Errorf("STK callback Amount 29.00 for a KES 30 sale not flagged: %v%s", tx.Flags, h.history(stk))
	}
	h.fake.Next(sandbox.Outcome{Code: "0", PaidAmount: "12.5"})
	frac := h.start("0708374149", 12)
	h.waitStatus(frac, payment.StatusApproved)
	h.waitFor("fractional flagged", func() bool { return h.count(frac, hasFlag(mpesa.FlagFractional)) == 1 })
	tx, _ = h.j.Txn(context.Background(), frac)
	if !tx.HasFlag(mpesa.FlagFractional) || !tx.HasFlag(payment.FlagAmountMismatch) {
		t.Errorf("Amount 12.5 not flagged fractional and mismatched: %v%s", tx.Flags, h.history(frac))
	}
}

// Case 5: the console stops between the push and the callback. On restart
// on the same journal the payment is unknown; the reconciler's query, or
// the callback Daraja retries, resolves it. Nothing is lost.
func TestCase5CrashBetweenPushAndCallback(t *testing.T) {
	for _, retry := range []bool{false, true} {
		t.Run(fmt.Sprintf("callback retried %v", retry), func(t *testing.T) {
			h := newHarness(t, sandbox.Options{RetryOnNon200: retry}, nil)
			h.fake.Next(sandbox.Outcome{Code: "0", Delay: 1500 * time.Millisecond})
			id := h.start("0708374149", 90)
			h.waitStatus(id, payment.StatusAcknowledged)
			h.close() // the console dies; the journal stays on disk
			time.Sleep(1700 * time.Millisecond)
			h.open(nil)
			tx := h.waitStatus(id, payment.StatusApproved)
			if !tx.HasFlag(payment.FlagRecovered) {
				t.Errorf("flags %v, want recovered", tx.Flags)
			}
			if n := h.count(id, isTransition(payment.StatusUnknown)); n != 1 {
				t.Errorf("%d unknown transitions, want 1:%s", n, h.history(id))
			}
			if n := h.count(id, isTransition(payment.StatusApproved)); n != 1 {
				t.Errorf("%d approved transitions, want 1", n)
			}
		})
	}
}

// Case 6: tokens revoked mid-run: 20 concurrent pushes make exactly one
// extra OAuth call, each push retried once, all succeed. A token that
// expires by its clock is replaced by one call however many wait. A
// second invalid-token answer is a typed error, not a loop.
func TestCase6TokenExpiry(t *testing.T) {
	h := newHarness(t, sandbox.Options{TokenTTL: 6 * time.Second}, nil)
	first := h.start("0708374149", 10)
	h.waitStatus(first, payment.StatusApproved)
	// pushAll starts 20 pushes at once (KES base, base+1, ...) and waits
	// until each is approved.
	pushAll := func(base int64) {
		ids := make([]string, 20)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i] = h.start("0708374149", base+int64(i))
			}()
		}
		wg.Wait()
		for _, id := range ids {
			h.waitStatus(id, payment.StatusApproved)
		}
	}
	before := h.fake.Counts().OAuth
	h.fake.RevokeTokens()
	pushAll(100)
	if got := h.fake.Counts().OAuth - before; got != 1 {
		t.Errorf("%d OAuth calls after the revocation, want exactly 1", got)
	}

	// Expiry by the clock (TTL 6 s, replaced at half-life): 20 pushes at once, one OAuth call.
	time.Sleep(3100 * time.Millisecond)
	before = h.fake.Counts().OAuth
	pushAll(200)
	if got := h.fake.Counts().OAuth - before; got != 1 {
		t.Errorf("%d OAuth calls for an expired token, want exactly 1", got)
	}

	// A Daraja that refuses every token: one retry, then *APIError.
	fake := sandbox.New(sandbox.Options{})
	var pushes int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "stkpush") {
			mu.Lock()
			pushes++
			mu.Unlock()
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"requestId":"x-1","errorCode":"404.001.03","errorMessage":"Invalid Access Token"}`))
			return
		}
		fake.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, _ := daraja.NewClient(daraja.Config{BaseURL: srv.URL, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
		ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Logger: quietLog()})
	_, err := c.STKPush(context.Background(), daraja.PushRequest{Phone: "0708374149", Amount: 1, Reference: "PDTEST", CallbackURL: "https://x.example/cb"})
	var ae *daraja.APIError
	if !errors.As(err, &ae) || !ae.InvalidToken() || ae.Status != 404 || ae.RequestID != "x-1" {
		t.Errorf("err = %v, want *APIError 404.001.03 with its requestId", err)
	}
	if pushes != 2 || c.OAuthCalls() != 2 {
		t.Errorf("%d pushes and %d OAuth calls, want 2 and 2 (one retry)", pushes, c.OAuthCalls())
	}
}

// Case 7: with no callback the query finds the result (pending first);
// a query that disagrees after a success callback leaves the success
// standing; Spike Arrest makes the poller back off.
func TestCase7Query(t *testing.T) {
	// The fake's clock moves past the customer's answer only once the
	// rail's first query has been answered "still processing", so the
	// pending answer is seen however slowly the poller runs; the budget
	// is generous for the same reason.
	var ahead atomic.Int64
	h := newHarness(t, sandbox.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }},
		func(o *mpesa.Options) { o.Poll.Budget = time.Hour })
	h.fake.Next(sandbox.Outcome{Code: "2001", Drop: true, Delay: time.Minute})
	id := h.start("0708374149", 10)
	h.waitFor("a query answered pending", func() bool { return h.fake.Counts().Query >= 1 })
	ahead.Store(int64(2 * time.Minute))
	tx := h.waitStatus(id, payment.StatusDeclined)
	if tx.Result.Reason != "the customer entered a wrong PIN" {
		t.Errorf("reason %q", tx.Result.Reason)
	}
	if q := h.fake.Counts().Query; q < 2 {
		t.Errorf("%d queries, want a pending answer then the final one", q)
	}
	if !strings.Contains(h.history(id), "from query") {
		t.Errorf("the outcome did not come from the query:%s", h.history(id))
	}

	// The success callback must come first: no query runs by itself
	// (the first is an hour away), so the approval is the callback's and
	// the disagreeing query is the operator's check.
	h = newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.Poll.First, o.Poll.Budget = time.Hour, 2*time.Hour })
	h.fake.Next(sandbox.Outcome{Code: "0", QueryDisagrees: true})
	ok := h.start("0708374149", 11)
	h.waitStatus(ok, payment.StatusApproved)
	res, err := h.rail.Check(context.Background(), ok)
	if err != nil || res.Code != "1032" {
		t.Fatalf("check: %+v, %v; want the disagreeing 1032", res, err)
	}
	tx, _ = h.j.Txn(context.Background(), ok)
	if tx.Status != payment.StatusApproved || !tx.HasFlag(mpesa.FlagQueryDisagrees) {
		t.Errorf("after a disagreeing query: %s %v, want approved with %s", tx.Status, tx.Flags, mpesa.FlagQueryDisagrees)
	}
}

func TestCase7SpikeArrestBackoff(t *testing.T) {
	h := newHarness(t, sandbox.Options{QueryRate: 1}, nil)
	h.fake.Next(sandbox.Outcome{Code: "0", Drop: true, Delay: 1500 * time.Millisecond})
	id := h.start("0708374149", 10)
	h.waitStatus(id, payment.StatusApproved)
	// Without backoff the poller (every 50 ms) would ask about 30 times
	// in 1.5 s; doubling from 100 ms to 400 ms keeps it near 8.
	if q := h.fake.Counts().Query; q > 12 {
		t.Errorf("%d queries under Spike Arrest, want the poller to back off (≤ 12)", q)
	}
}

// Case 8: the push's answer is lost (the fake answers after the client's
// timeout, having sent the prompt). The payment is unknown, the push is
// not repeated, and the callback resolves it.
func TestCase8LostPushAnswer(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.PushTimeout = 300 * time.Millisecond })
	h.fake.Next(sandbox.Outcome{Code: "0", SlowAnswer: 3 * time.Second, Delay: 1500 * time.Millisecond})
	id := h.start("0708374149", 33)
	h.waitStatus(id, payment.StatusUnknown)
	tx := h.waitStatus(id, payment.StatusApproved)
	if !tx.HasFlag(mpesa.FlagPushUnanswered) {
		t.Errorf("flags %v, want %s", tx.Flags, mpesa.FlagPushUnanswered)
	}
	if n := h.fake.Counts().Push; n != 1 {
		t.Errorf("%d pushes, want 1: a lost answer is never re-pushed", n)
	}
}

// Case 9: a payment made after the console stopped waiting (cancel, or the
// wait ran out) is journaled and flagged late_success, not discarded.
func TestCase9LateResult(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	h.fake.Next(sandbox.Outcome{Code: "0", Delay: 400 * time.Millisecond})
	id := h.start("0708374149", 15)
	h.waitStatus(id, payment.StatusAcknowledged)
	if err := h.rail.Cancel(id); err != nil {
		t.Fatal(err)
	}
	h.waitFor("late success", func() bool { return h.count(id, hasFlag(mpesa.FlagLateSuccess)) == 1 })
	tx, _ := h.j.Txn(context.Background(), id)
	if tx.Status != payment.StatusCancelled || !tx.HasFlag(mpesa.FlagLateSuccess) {
		t.Errorf("%s %v, want cancelled flagged %s", tx.Status, tx.Flags, mpesa.FlagLateSuccess)
	}

	t.Run("after the wait ran out", func(t *testing.T) {
		h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) {
			o.Poll.Budget, o.Poll.Reconcile = 300*time.Millisecond, 600*time.Millisecond
		})
		h.fake.Next(sandbox.Outcome{Code: "0", Drop: true, Delay: 600 * time.Millisecond})
		id := h.start("0708374149", 16)
		h.waitStatus(id, payment.StatusTimedOut)
		h.waitFor("late success from the reconciling query", func() bool { return h.count(id, hasFlag(mpesa.FlagLateSuccess)) == 1 })
	})
}

// Case 10: malformed JSON is answered 400 with the body journaled; a
// source outside the allow-list is flagged (or refused when enforced),
// X-Forwarded-For counts only from a trusted proxy; bodies are capped.
func TestCase10CallbackHygiene(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) {
		o.AllowList = mustPrefixes(t, "196.201.214.200")
		o.TrustedProxies = mustPrefixes(t, "10.0.0.0/8")
		o.MaxBody = 2048
	})
	hd := h.rail.Handler()
	post := func(path, body, remote, xff string) int {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.RemoteAddr = remote
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		w := httptest.NewRecorder()
		hd.ServeHTTP(w, req)
		return w.Code
	}
	stk := "/k9x2test7path/stk/result"
	if c := post(stk, `{"Body":`, "196.201.214.200:443", ""); c != 400 {
		t.Errorf("malformed: %d, want 400", c)
	}
	good := `{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_x","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}`
	if c := post(stk, good, "203.0.113.9:5555", ""); c != 200 {
		t.Errorf("outside the allow-list, log-and-flag: %d, want 200", c)
	}
	if c := post(stk, good, "10.1.2.3:5555", "203.0.113.7, 196.201.214.200"); c != 200 {
		t.Errorf("via a trusted proxy: %d", c)
	}
	if c := post(stk, good, "203.0.113.9:5555", "196.201.214.200"); c != 200 {
		t.Errorf("spoofed X-Forwarded-For: %d", c)
	}
	if c := post(stk, `{"Body":"`+strings.Repeat("x", 4096)+`"}`, "196.201.214.200:443", ""); c != 413 {
		t.Errorf("oversized: %d, want 413", c)
	}
	if c := post("/wrongsecret/stk/result", good, "196.201.214.200:443", ""); c != 404 {
		t.Errorf("unguessable path: %d, want 404", c)
	}
	var rejected, flagged, malformedRaw int
	for _, e := range h.allEvents() {
		if e.Kind == payment.KindRejected {
			rejected++
			if bytes.Equal(e.Raw, []byte(`{"Body":`)) {
				malformedRaw++
			}
		}
		if e.Flag == mpesa.FlagSourceNotAllowed {
			flagged++
		}
	}
	if rejected != 2 || malformedRaw != 1 {
		t.Errorf("%d rejections (%d with the malformed body), want 2 (malformed, oversized) and 1", rejected, malformedRaw)
	}
	if flagged != 2 {
		t.Errorf("%d callbacks flagged %s, want 2 (the direct one and the spoofed X-Forwarded-For; the proxied one is allowed)", flagged, mpesa.FlagSourceNotAllowed)
	}

	enforced := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) {
		o.AllowList, o.EnforceAllowList = mustPrefixes(t, "196.201.214.200"), true
	})
	req := httptest.NewRequest(http.MethodPost, stk, strings.NewReader(good))
	req.RemoteAddr = "203.0.113.9:5555"
	w := httptest.NewRecorder()
	enforced.rail.Handler().ServeHTTP(w, req)
	if w.Code != 403 {
		t.Errorf("enforced allow-list: %d, want 403", w.Code)
	}
}

// Case 11: concurrent callbacks, queries and console reads, under -race.
func TestCase11Concurrency(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			h.rail.TillPayments()
			h.rail.Health()
			h.rail.Deadline("PD00000000")
		}
	}()
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.fake.Next(sandbox.Outcome{Code: "0", Duplicates: 2})
			ids[i] = h.start("0708374149", int64(300+i))
			h.rail.Deadline(ids[i])
			h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "5", Till: true, Duplicates: 1})
		}()
	}
	wg.Wait()
	for _, id := range ids {
		h.waitStatus(id, payment.StatusApproved)
		if _, err := h.rail.Check(context.Background(), id); err != nil {
			t.Error(err)
		}
		if n := h.count(id, isTransition(payment.StatusApproved)); n != 1 {
			t.Errorf("%s: %d approvals", id, n)
		}
	}
	close(stop)
	readers.Wait()
	if n := len(h.rail.TillPayments()); n != 10 {
		t.Errorf("%d till payments, want 10 (each sent twice)", n)
	}
}

// A till payment cannot be assigned to a sale that is already paid: it
// is a refund to make, and it stays unmatched.
func TestAssignToPaidSaleRefused(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	paid := h.start("0708374149", 10)
	h.waitStatus(paid, payment.StatusApproved)
	id, _, err := h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "10", Till: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rail.AssignTill(id, paid); err == nil || !strings.Contains(err.Error(), "already paid") {
		t.Errorf("assigning to a paid sale: %v", err)
	}
	if p := h.rail.TillPayments(); len(p) != 1 || !p[0].Unmatched() {
		t.Errorf("till payments %+v, want it still unmatched", p)
	}
}

// Till payments the operator assigns are compared with the sale like
// matched ones: short, the sale stays open and is flagged underpaid; the
// rest brings it over, approved and flagged overpaid and resolved.
func TestAssignTillPartsOfASale(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	h.fake.Next(sandbox.Outcome{Code: "1037", Drop: true, Delay: time.Minute})
	sale := h.start("0708374149", 30)
	h.waitStatus(sale, payment.StatusAcknowledged)
	part, _, err := h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "20", BillRef: "NOSUCHREF"})
	if err != nil {
		t.Fatal(err)
	}
	rest, _, err := h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "15", BillRef: "NOSUCHREF"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rail.AssignTill(part, sale); err != nil {
		t.Fatal(err)
	}
	if n := h.count(sale, hasFlag(mpesa.FlagUnderpaid)); n != 1 {
		t.Errorf("%d underpaid notes after KES 20 of 30, want 1:%s", n, h.history(sale))
	}
	if tx, _ := h.j.Txn(context.Background(), sale); tx.Status != payment.StatusAcknowledged {
		t.Errorf("sale paid KES 20 of 30 is %s, want it still open", tx.Status)
	}
	if err := h.rail.AssignTill(rest, sale); err != nil {
		t.Fatal(err)
	}
	tx := h.waitStatus(sale, payment.StatusApproved)
	if tx.Result.RemoteID != rest || !tx.HasFlag(payment.FlagResolved) || !tx.HasFlag(mpesa.FlagOverpaid) {
		t.Errorf("sale = %+v, want receipt %s, resolved and overpaid%s", tx, rest, h.history(sale))
	}
	if n := h.count(sale, isTransition(payment.StatusApproved)); n != 1 {
		t.Errorf("%d approved transitions, want 1", n)
	}
}

// Unmatched till payments are listed again after a restart, until the
// operator assigns them; a re-delivered confirmation is still a
// duplicate.
func TestUnmatchedSurviveRestart(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	a, _, _ := h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "70", BillRef: "TYPO123"})
	b, _, _ := h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "30", Till: true})
	h.close()
	h.open(nil)
	till := h.rail.TillPayments()
	if len(till) != 2 || !till[0].Unmatched() || !till[1].Unmatched() || till[1].ID != a || till[1].Amount.Minor != 7000 || till[1].Reference != "TYPO123" {
		t.Fatalf("after restart: %+v", till)
	}
	h.fake.Next(sandbox.Outcome{Code: "1037", Drop: true, Delay: time.Minute})
	sale := h.start("0708374149", 30)
	h.waitStatus(sale, payment.StatusAcknowledged)
	if err := h.rail.AssignTill(b, sale); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(sale, payment.StatusApproved)
	if _, _, err := h.fake.SimulateC2B(context.Background(), sandbox.C2B{TransID: a, Amount: "70", BillRef: "TYPO123"}); err != nil {
		t.Fatal(err)
	}
	h.close()
	h.open(nil)
	till = h.rail.TillPayments()
	if len(till) != 1 || till[0].ID != a {
		t.Errorf("after the second restart: %+v, want only %s", till, a)
	}
	dups := 0
	for _, e := range h.allEvents() {
		if e.Flag == mpesa.FlagDuplicate && strings.Contains(e.Detail, a) {
			dups++
		}
	}
	if dups != 1 {
		t.Errorf("%d duplicates of the re-delivered confirmation, want 1", dups)
	}
}

// Fault injection on the push: an HTML 503 or a dropped connection
// after Daraja took the push leave the payment unknown (never re-pushed)
// until the callback resolves it; an empty 400 fails it.
func TestPushFaults(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	for _, fault := range []string{"html503", "reset"} {
		h.fake.Next(sandbox.Outcome{Code: "0", Fault: fault, Delay: 300 * time.Millisecond})
		id := h.start("0708374149", 44)
		h.waitStatus(id, payment.StatusUnknown)
		tx := h.waitStatus(id, payment.StatusApproved)
		if !tx.HasFlag(mpesa.FlagPushUnanswered) || len(tx.Result.RemoteID) != 10 {
			t.Errorf("%s: %+v", fault, tx)
		}
	}
	if n := h.fake.Counts().Push; n != 2 {
		t.Errorf("%d pushes, want 2 (none repeated)", n)
	}
	h.fake.Next(sandbox.Outcome{Fault: "empty400"})
	id := h.start("0708374149", 45)
	tx := h.waitStatus(id, payment.StatusFailed)
	if !strings.Contains(tx.Result.Reason, "HTTP 400") {
		t.Errorf("empty 400: %+v", tx)
	}
}

// A paid STK callback for a push the rail never learnt of (another
// kiosk's, or one whose answer was lost before a restart) is listed as
// an unmatched till payment once the grace period passes, and again
// after a restart.
func TestOrphanCallbackListed(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.EarlyGrace = 100 * time.Millisecond })
	body := `{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_orphan","ResultCode":0,"ResultDesc":"ok","CallbackMetadata":{"Item":[{"Name":"Amount","Value":75.00},{"Name":"MpesaReceiptNumber","Value":"ORPHAN0001"},{"Name":"PhoneNumber","Value":254708374149}]}}}}`
	resp, err := http.Post(h.rail.STKCallbackURL(), "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("callback: %v %v", resp, err)
	}
	resp.Body.Close()
	h.waitFor("the orphan listed", func() bool { return len(h.rail.TillPayments()) == 1 })
	p := h.rail.TillPayments()[0]
	if p.ID != "ORPHAN0001" || p.Amount.Minor != 7500 || !p.Unmatched() || p.Payer != "2547****149" {
		t.Errorf("listed %+v", p)
	}
	h.close()
	h.open(func(o *mpesa.Options) { o.EarlyGrace = 100 * time.Millisecond })
	if p := h.rail.TillPayments(); len(p) != 1 || p[0].ID != "ORPHAN0001" || p[0].Amount.Minor != 7500 {
		t.Errorf("after restart: %+v", p)
	}
}

// Cancelling while the push is still on its way: the answer comes after
// the cancel, and the payment the customer makes is still recorded as a
// late success by the reconciling query.
func TestCancelDuringPush(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.Poll.Reconcile = 1500 * time.Millisecond })
	h.fake.Next(sandbox.Outcome{Code: "0", Drop: true, SlowAnswer: time.Second, Delay: 1200 * time.Millisecond})
	id := h.start("0708374149", 21)
	h.waitStatus(id, payment.StatusSent)
	if err := h.rail.Cancel(id); err != nil {
		t.Fatal(err)
	}
	h.waitFor("late success", func() bool { return h.count(id, hasFlag(mpesa.FlagLateSuccess)) == 1 })
	if n := h.count(id, isTransition(payment.StatusAcknowledged)); n != 0 {
		t.Errorf("acknowledged after the cancel:%s", h.history(id))
	}
}

// A C2B feed that hashes the MSISDN: the hash is an opaque display
// string, shortened, never a key.
func TestHashedMSISDN(t *testing.T) {
	h := newHarness(t, sandbox.Options{HashMSISDN: true}, nil)
	if _, err := h.rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "5", Till: true, FirstName: "Amina"}); err != nil {
		t.Fatal(err)
	}
	p := h.rail.TillPayments()
	if len(p) != 1 || !strings.HasPrefix(p[0].Payer, "Amina …") || len(p[0].Payer) > 20 {
		t.Errorf("payer %+v", p)
	}
}

// The operator's "ask the rail" says in words what Daraja answered: not
// yet while the prompt is open, then the result code's meaning.
func TestCheckOutcomeInWords(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, nil)
	h.fake.Next(sandbox.Outcome{Code: "1032", Drop: true, Delay: 1500 * time.Millisecond})
	id := h.start("0708374149", 12)
	h.waitStatus(id, payment.StatusAcknowledged)
	words, err := h.rail.CheckOutcome(context.Background(), id)
	if err != nil || words != "Daraja: the customer has not answered the prompt yet" {
		t.Errorf("while the prompt is open: %q, %v", words, err)
	}
	h.waitStatus(id, payment.StatusCancelled)
	words, err = h.rail.CheckOutcome(context.Background(), id)
	if err != nil || words != "Daraja: the customer cancelled the prompt (ResultCode 1032)" {
		t.Errorf("after the outcome: %q, %v", words, err)
	}
	if _, err := h.rail.CheckOutcome(context.Background(), "TXN-nope"); !errors.Is(err, payment.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
}
