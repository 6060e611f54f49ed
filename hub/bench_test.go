package hub

import (
	"context"
	"fmt"
	"testing"
	"time"

	"paydesk/hub/wire"
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
