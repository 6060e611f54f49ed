package mpesa_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paydesk/mpesa"
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
