package hub

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"paydesk/hub/wire"
	"paydesk/mpesa"
	"paydesk/payment"
)

// BenchmarkIngest stores batches of 500 journal events (a sale is three
// transitions) in PostgreSQL, as the hub does for each batch a kiosk
// sends. The throwaway cluster runs with fsync off: the figure is the
// hub's and PostgreSQL's work, not a disk's.
//
//	go test -run '^$' -bench Ingest -benchtime 200x ./hub/
func BenchmarkIngest(b *testing.B) {
	s, _ := openStoreTB(b)
	ctx := context.Background()
	if _, err := s.AddKiosk(ctx, "K1"); err != nil {
		b.Fatal(err)
	}
	const batch = 500
	at := time.Now()
	var seq int64
	next := func() []wire.Event {
		evs := make([]wire.Event, 0, batch)
		for len(evs) < batch {
			seq++
			id := fmt.Sprintf("T%d", (seq-1)/3)
			e := wire.Event{Seq: seq, Time: at, Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Peer: "POS001"}
			switch (seq - 1) % 3 {
			case 0:
				e.Status, e.Mode, e.Minor, e.Currency = payment.StatusCreated, payment.ModeCard, 2550, "MYR"
			case 1:
				e.Status = payment.StatusSent
			case 2:
				e.Status, e.Result = payment.StatusApproved, &payment.Result{AuthCode: "123456", Card: "4242"}
			}
			evs = append(evs, e)
		}
		return evs
	}
	b.ResetTimer()
	for b.Loop() {
		evs := next()
		if _, added, err := s.Ingest(ctx, "K1", evs); err != nil || added != batch {
			b.Fatalf("added %d, %v", added, err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDarajaCallback posts STK results to the hub over HTTP, one at
// a time, as Daraja does: each is stored in PostgreSQL, routed by its
// CheckoutRequestID among 20 000 journaled pushes to its kiosk's message
// queue and notified, before the hub answers. The figure is the time
// Daraja waits for the hub's answer (fsync off in the throwaway cluster).
//
//	go test -run '^$' -bench DarajaCallback -benchtime 2000x ./hub/
func BenchmarkDarajaCallback(b *testing.B) {
	s, _ := openStoreTB(b)
	ctx := context.Background()
	if _, err := s.AddKiosk(ctx, "K1"); err != nil {
		b.Fatal(err)
	}
	const pushes = 20000
	at := time.Now()
	var evs []wire.Event
	for i := range pushes {
		evs = append(evs, wire.Event{Seq: int64(i + 1), Time: at, Kind: payment.KindTransition, Rail: payment.RailMPesa,
			TxnID: fmt.Sprintf("PD%08d", i), Status: payment.StatusAcknowledged, Result: &payment.Result{RemoteID: fmt.Sprintf("ws_CO_%d", i)}})
		if len(evs) == wire.MaxBatch || i == pushes-1 {
			if _, _, err := s.Ingest(ctx, "K1", evs); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	allow, _ := mpesa.ParsePrefixes("127.0.0.0/8")
	srv := NewServer(s, Options{MpesaAllow: allow})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	defer func() { cancel(); <-done }()
	url := "http://" + ln.Addr().String() + PathSTK
	i := 0
	b.ResetTimer()
	for b.Loop() {
		body := fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_%d","ResultCode":0,"ResultDesc":"ok","CallbackMetadata":{"Item":[{"Name":"Amount","Value":1},{"Name":"MpesaReceiptNumber","Value":"R%08d"},{"Name":"PhoneNumber","Value":254708374149}]}}}}`, i%pushes, i)
		i++
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("answered %d", resp.StatusCode)
		}
	}
}
