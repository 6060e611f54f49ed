package mpesa_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
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

// BenchmarkCallbackServer measures the callback server on loopback with
// deduplication: b.N callbacks over HTTP from 64 concurrent senders, a
// quarter of them first deliveries of STK successes for open sales and
// three quarters duplicates of those; every body is journaled (SQLite,
// synchronous=FULL, group commit) before it is answered. It reports
// callbacks/s and checks that each sale was approved exactly once.
//
//	go test -run '^$' -bench BenchmarkCallbackServer -benchtime 20000x ./mpesa
func BenchmarkCallbackServer(b *testing.B) {
	h := newHarness(b, sandbox.Options{PromptDelay: time.Hour}, func(o *mpesa.Options) {
		o.Poll.First, o.Poll.Budget = time.Hour, 2*time.Hour
	})
	const copies, senders = 4, 128
	sales := max(1, b.N/copies)
	ids := make([]string, sales)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ids[i] = h.start("0712340404", int64(10+i%1000)) // 0404: the fake never calls back
		}()
	}
	wg.Wait()
	bodies := make([][]byte, 0, sales*copies)
	for i, id := range ids {
		tx := h.waitStatus(id, payment.StatusAcknowledged)
		body := fmt.Appendf(nil, `{"Body":{"stkCallback":{"MerchantRequestID":"m-%d","CheckoutRequestID":"%s","ResultCode":0,"ResultDesc":"The service request is processed successfully.","CallbackMetadata":{"Item":[{"Name":"Amount","Value":%d.00},{"Name":"MpesaReceiptNumber","Value":"BEN%07d"},{"Name":"Balance"},{"Name":"TransactionDate","Value":20251204101010},{"Name":"PhoneNumber","Value":254712340404}]}}}}`,
			i, tx.Result.RemoteID, tx.Amount.Minor/100, i)
		for range copies {
			bodies = append(bodies, body)
		}
	}
	url := h.rail.STKCallbackURL()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}
	var next, failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if n >= int64(b.N) {
					return
				}
				// Interleave: copy k of sale s goes out as the k-th round,
				// so duplicates arrive while first deliveries are in flight.
				body := bodies[(n%int64(sales))*copies+n/int64(sales)%copies]
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				io.Copy(io.Discard, resp.Body) // read to the end, so the connection is reused
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "callbacks/s")
	if failed.Load() > 0 {
		b.Fatalf("%d callbacks failed", failed.Load())
	}
	approved := 0
	for _, id := range ids {
		tx, err := h.j.Txn(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		if tx.Status == payment.StatusApproved {
			approved++
		}
	}
	if b.N >= sales*copies && approved != sales {
		b.Fatalf("%d of %d sales approved", approved, sales)
	}
}

// BenchmarkThirtyDays runs a kiosk's M-Pesa rail through 30 simulated
// days (its clock injected, moved 6 hours at a time) on one journal:
// each day 60 STK sales paid by callback (a quarter of them called back
// twice), 20 paybill sales paid by C2B confirmation, 10 till payments
// that match no sale, and 300 failure callbacks for pushes nobody made.
// After each day it collects garbage and reads the Go heap and what the
// rail holds; it reports them for days 1, 7 and 30, and fails if the
// heap or the holdings of day 30 exceed day 8's by half (memory flat once
// the retention window and the 7 days of unmatched payments are full).
//
//	go test -run '^$' -bench BenchmarkThirtyDays -benchtime 1x ./mpesa
func BenchmarkThirtyDays(b *testing.B) {
	for range b.N {
		thirtyDays(b)
	}
}

func thirtyDays(b *testing.B) {
	const days, stk, c2b, till, junk = 30, 60, 20, 10, 300
	clk := newClock()
	h := newHarness(b, sandbox.Options{PromptDelay: time.Hour, Now: clk.Now}, func(o *mpesa.Options) {
		// No query runs (the first would be an hour away in real time):
		// every outcome comes from a callback or a confirmation.
		o.Now, o.Poll.First, o.Poll.Budget = clk.Now, time.Hour, 2*time.Hour
	})
	// The client on the same clock as the fake and the rail (timestamps,
	// token lifetimes).
	c, err := daraja.NewClient(daraja.Config{BaseURL: h.fakeURL, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
		ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Logger: quietLog(), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	h.close()
	h.open(func(o *mpesa.Options) {
		o.Client, o.Now, o.Poll.First, o.Poll.Budget = c, clk.Now, time.Hour, 2*time.Hour
	})
	hd := h.rail.Handler()
	base := strings.TrimSuffix(h.rail.STKCallbackURL(), "/stk/result")
	base = strings.TrimPrefix(base, h.cbURL)
	post := func(path, body string) {
		req := httptest.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:4000"
		w := httptest.NewRecorder()
		hd.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	confirmation := func(transID, ref string, shillings int) string {
		return fmt.Sprintf(`{"TransactionType":"Pay Bill","TransID":"%s","TransTime":"20261201120000","TransAmount":"%d.00","BusinessShortCode":"174379","BillRefNumber":"%s","InvoiceNumber":"","OrgAccountBalance":"","ThirdPartyTransID":"","MSISDN":"2547 ***** 149","FirstName":"A","MiddleName":"","LastName":""}`,
			transID, shillings, ref)
	}
	parallel := func(n int, f func(i int)) {
		var wg sync.WaitGroup
		work := make(chan int)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					f(i)
				}
			}()
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	type sample struct {
		heap uint64
		mem  mpesa.Memory
		gor  int
	}
	var samples []sample
	var mu sync.Mutex
	seq := 0
	b.ResetTimer()
	for day := range days {
		for quarter := range 4 {
			clk.Add(6 * time.Hour)
			n := day*4 + quarter
			parallel(stk/4, func(i int) {
				id := h.start("0712340404", int64(10+i)) // 0404: the fake never calls back
				tx := h.waitStatus(id, payment.StatusAcknowledged)
				body := stkCallback(tx.Result.RemoteID, fmt.Sprintf("%d.00", 10+i), fmt.Sprintf("S%02d%02d%05d", n/100, n%100, i), "254712340404")
				post("/stk/result", body)
				if i%4 == 0 {
					post("/stk/result", body)
				}
			})
			parallel(c2b/4, func(i int) {
				id := h.begin(payment.Request{Mode: payment.ModeC2B}, int64(20+i))
				post("/c2b/confirmation", confirmation(fmt.Sprintf("C%03d%06d", n, i), id, 20+i))
			})
			parallel(till/2, func(i int) {
				if quarter%2 == 0 {
					post("/c2b/confirmation", confirmation(fmt.Sprintf("U%03d%06d", n, i), "NOSALE", 5))
				}
			})
			parallel(junk/4, func(int) {
				mu.Lock()
				seq++
				k := seq
				mu.Unlock()
				post("/stk/result", fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":"j","CheckoutRequestID":"ws_CO_junk%08d","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}`, k))
			})
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, sample{heap: ms.HeapAlloc, mem: h.rail.Memory(), gor: runtime.NumGoroutine()})
	}
	b.StopTimer()
	for _, d := range []int{1, 7, 30} {
		s := samples[d-1]
		b.ReportMetric(float64(s.heap)/(1<<20), fmt.Sprintf("heapMB/day%d", d))
		b.ReportMetric(float64(s.mem.Sales+s.mem.Receipts+s.mem.Early+s.mem.Till), fmt.Sprintf("held/day%d", d))
	}
	for d, s := range samples {
		b.Logf("day %2d: heap %6.2f MB, goroutines %d, held %+v", d+1, float64(s.heap)/(1<<20), s.gor, s.mem)
	}
	// A single day's heap is noisy (what the last GC left): compare the
	// means of the second week and the last one.
	mean := func(from, to int) (heap uint64) {
		for _, s := range samples[from-1 : to] {
			heap += s.heap
		}
		return heap / uint64(to-from+1)
	}
	held := func(m mpesa.Memory) int { return m.Sales + m.Receipts + m.Early + m.Till }
	d8, d30 := samples[7], samples[days-1]
	b.ReportMetric(float64(mean(8, 14))/(1<<20), "heapMB/days8-14")
	b.ReportMetric(float64(mean(24, 30))/(1<<20), "heapMB/days24-30")
	if mean(24, 30) > mean(8, 14)*3/2 || held(d30.mem) > held(d8.mem)*3/2 || d30.gor > d8.gor+20 {
		b.Errorf("memory grows: days 8-14 heap %d B, day 8 held %+v, %d goroutines; days 24-30 heap %d B, day 30 held %+v, %d goroutines",
			mean(8, 14), d8.mem, d8.gor, mean(24, 30), d30.mem, d30.gor)
	}
}
