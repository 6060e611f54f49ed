package link_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"paydesk/hub/link"
	"paydesk/hub/pgtemp/pgtest"
	"paydesk/payment"
)

// TestPostgreSQLRestartMidStream: the hub keeps running while its
// PostgreSQL stops (a fast shutdown, then a crash) and starts again under
// kiosks taking payments. The kiosks keep paying (their journals grow),
// no kiosk holds an acknowledgement for an event PostgreSQL does not have
// once it is back, and afterwards every journal is at the hub once each,
// in order.
func TestPostgreSQLRestartMidStream(t *testing.T) {
	cl := pgtest.Own(t) // a cluster of its own: it is stopped mid-test
	ctx := context.Background()
	dsn, err := cl.NewDatabase(ctx, "restart")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureOn(t, dsn)
	f.startHub()

	const kiosks = 3
	type kiosk struct {
		id string
		j  *payment.Journal
		l  *link.Link
	}
	var ks []kiosk
	for i := range kiosks {
		id := fmt.Sprintf("K%d", i)
		tok := f.addKiosk(id)
		j := openJournal(t)
		// Backoff of 1 to 2 s once PostgreSQL has been away a while: the
		// check after its restart runs before the kiosks are back.
		l := f.runLink(j, id, tok, func(o *link.Options) {
			o.Batch, o.MinBackoff, o.MaxBackoff = 20, 50*time.Millisecond, 2*time.Second
		})
		ks = append(ks, kiosk{id, j, l})
	}
	salesCtx, stopSales := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, k := range ks {
		wg.Go(func() {
			for i := 0; salesCtx.Err() == nil; i++ {
				sales(t, k.j, fmt.Sprintf("p%d", i), 4)
			}
		})
	}
	defer func() { stopSales(); wg.Wait() }()

	for round, crash := range []bool{false, true} {
		for _, k := range ks {
			waitAcked(t, k.l, k.l.Status().AckedSeq+30)
		}
		cl.Stop(crash)
		// Every link fails at its next batch (the kiosks keep paying,
		// so each has one): once all are down, no ack is on its way.
		deadline := time.Now().Add(wait)
		for _, k := range ks {
			for k.l.Status().Connected {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: %s still connected with PostgreSQL stopped", round, k.id)
				}
				time.Sleep(5 * time.Millisecond) // polling the link's status for its disconnection
			}
		}
		acked := make([]int64, kiosks)
		for i, k := range ks {
			acked[i] = k.l.Status().AckedSeq
		}
		// The kiosks keep taking payments with the hub's store away.
		for i, k := range ks {
			target := acked[i] + 40
			for {
				last, err := k.j.LastSeq(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if last >= target {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: %s's journal stuck at %d while PostgreSQL was away", round, k.id, last)
				}
				time.Sleep(5 * time.Millisecond) // polling the journal while the sales goroutine appends
			}
		}
		if err := cl.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		// What each kiosk holds as acknowledged is in PostgreSQL: every
		// sequence up to it, once.
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range ks {
			var n, hubAcked int64
			if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM events WHERE kiosk_id = $1 AND seq <= $2),
				(SELECT acked_seq FROM kiosks WHERE id = $1)`, k.id, acked[i]).Scan(&n, &hubAcked); err != nil {
				t.Fatal(err)
			}
			if n != acked[i] || hubAcked < acked[i] {
				t.Errorf("round %d (crash %v): %s was acknowledged up to %d; PostgreSQL holds %d of those events and says acked %d",
					round, crash, k.id, acked[i], n, hubAcked)
			}
		}
		conn.Close(ctx)
	}
	stopSales()
	wg.Wait()
	for _, k := range ks {
		last, err := k.j.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitAcked(t, k.l, last)
		f.checkReplica(k.j, k.id)
	}
}
