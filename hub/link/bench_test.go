package link_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"paydesk/hub/link"
)

// BenchmarkCatchUp measures a kiosk catching up with the hub: a journal
// of 30,000 events (10,000 sales) replicated from the start over the link
// (WebSocket on loopback) into PostgreSQL (the throwaway cluster, fsync
// off), batches of 500. Each iteration is a new kiosk id on the same
// journal, so the hub starts empty for it.
//
//	go test -run '^$' -bench CatchUp -benchtime 3x ./hub/link/
func BenchmarkCatchUp(b *testing.B) {
	f := newFixtureTB(b)
	f.startHub()
	j := openJournal(b)
	last := sales(b, j, "s", 10000)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("K%d", i)
		tok := f.addKiosk(id)
		l, err := link.New(link.Options{URL: f.url(), Token: tok, KioskID: id, Journal: j, Poll: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); l.Run(ctx) }()
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
		err = l.WaitAcked(wctx, last)
		wcancel()
		cancel()
		<-done
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(int64(b.N)*last)/b.Elapsed().Seconds(), "events/s")
}
