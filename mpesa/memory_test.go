package mpesa_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// clock is a time the test moves by hand, read by the rail as its Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// junkFailures posts n failure callbacks for pushes nobody made, from 32
// senders at once, through the rail's handler.
func junkFailures(t testing.TB, h *harness, from, n int) {
	t.Helper()
	hd := h.rail.Handler()
	path := strings.TrimPrefix(h.rail.STKCallbackURL(), h.cbURL)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				body := fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":"j","CheckoutRequestID":"ws_CO_junk%07d","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}`, i)
				req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
				req.RemoteAddr = "127.0.0.1:4000"
				w := httptest.NewRecorder()
				hd.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					t.Errorf("junk callback %d: %d", i, w.Code)
				}
			}
		}()
	}
	for i := from; i < from+n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}

// 10,000 failure callbacks for pushes nobody made no longer fill the
// early-callback buffer for good: once they are older than the grace
// period they are forgotten (the journal keeps them), so a real callback
// that beats its push's answer is still kept and applied.
func TestEarlyBufferRecovers(t *testing.T) {
	clk := newClock()
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) { o.Now = clk.Now })
	junkFailures(t, h, 0, 10000)
	clk.Add(time.Minute) // past the 30 s grace
	h.fake.Next(sandbox.Outcome{Code: "0", ReorderBeforeAck: true})
	id := h.start("0708374149", 77)
	h.waitStatus(id, payment.StatusApproved)
	if !strings.Contains(h.history(id), "arrived before the push answer") {
		t.Errorf("the callback that beat its push was not kept:%s", h.history(id))
	}
}

// A finished sale is forgotten after the retention window (the journal
// keeps it); its duplicate callback and a C2B confirmation repeating its
// receipt are then judged from the journal: duplicates on that sale,
// never an unmatched payment.
func TestFinishedSalesForgotten(t *testing.T) {
	clk := newClock()
	// Only callbacks settle the sales (the first query is an hour away in
	// real time), so each approval carries its receipt.
	tune := func(o *mpesa.Options) {
		o.Now, o.Retention, o.Poll.First, o.Poll.Budget = clk.Now, time.Hour, time.Hour, 2*time.Hour
	}
	h := newHarness(t, sandbox.Options{}, tune)
	if _, err := h.rail.RegisterC2B(t.Context(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	a := h.start("0708374149", 60)
	tx := h.waitStatus(a, payment.StatusApproved)
	receipt, checkout := tx.Result.RemoteID, h.checkoutOf(a)
	// The approval is journaled before the rail's memory ends the sale
	// and stamps its end on the rail's clock: the clock moves once the
	// sale has ended there, or its end may be stamped two hours on and
	// the sale kept.
	h.waitFor("the first sale ended in the rail's memory", func() bool { return h.rail.Memory().Open == 0 })
	clk.Add(2 * time.Hour)
	b := h.start("0708374149", 61) // a start looks over what is held
	h.waitStatus(b, payment.StatusApproved)
	if m := h.rail.Memory(); m.Sales != 1 || m.Checkouts != 1 || m.Receipts != 1 {
		t.Errorf("held %+v, want only the second sale", m)
	}
	h.postCallback(stkCallback(checkout, "60.00", receipt, "254708374149"))
	if _, _, err := h.fake.SimulateC2B(t.Context(), sandbox.C2B{TransID: receipt, Amount: "60", Till: true}); err != nil {
		t.Fatal(err)
	}
	if n := h.count(a, hasFlag(mpesa.FlagDuplicate)); n != 2 {
		t.Errorf("%d duplicates journaled on the forgotten sale, want 2 (the callback, the confirmation):%s", n, h.history(a))
	}
	for _, e := range h.allEvents() {
		if e.Flag == mpesa.FlagUnmatched {
			t.Errorf("listed for the operator: %s", e.Detail)
		}
	}
}
