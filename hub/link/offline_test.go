package link_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"paydesk/hub/link"
	"paydesk/payment"
)

// TestAKioskOfflineForADayCatchesUpInOrder: the hub is unreachable for a
// simulated day, through which the kiosk takes a payment every two
// minutes (720 payments, 2,160 events, each stamped with its simulated
// time). When the hub comes up the kiosk sends them all, in order, in
// batches; the hub holds each once, with its own time, and the day's
// report counts the day's 720 payments.
func TestAKioskOfflineForADayCatchesUpInOrder(t *testing.T) {
	f := newFixture(t)
	tok := f.addKiosk("K1")
	j := openJournal(t)
	ctx := context.Background()
	l := f.runLink(j, "K1", tok, func(o *link.Options) { o.Batch = 100 })

	// The simulated day: yesterday, in UTC, a payment every 2 minutes.
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	const payments = 24 * 30
	var last int64
	for i := range payments {
		at := day.Add(time.Duration(i)*2*time.Minute + time.Second)
		id := fmt.Sprintf("day-%d", i)
		for step, ev := range []payment.Event{
			{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusCreated,
				Mode: payment.ModeCard, Amount: payment.Money{Minor: int64(100 + i), Currency: "MYR"}, Peer: "POS001"},
			{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusSent},
			{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusApproved,
				Result: &payment.Result{AuthCode: "A1", Card: "1111"}},
		} {
			ev.Time = at.Add(time.Duration(step) * 10 * time.Second)
			got, err := j.Append(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			last = got.Seq
		}
	}
	if st := l.Status(); st.Connected || st.AckedSeq != 0 {
		t.Fatalf("status with the hub away all day: %+v", st)
	}
	f.startHub()
	waitAcked(t, l, last)
	f.checkReplica(j, "K1") // every event once, in the journal's order

	conn, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Each event keeps the time it happened at the kiosk, in order.
	var n, outOfOrder int64
	var first, lastAt time.Time
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE at < prev), min(at), max(at) FROM
		(SELECT at, lag(at) OVER (ORDER BY id) AS prev FROM events WHERE kiosk_id = 'K1') e`).Scan(&n, &outOfOrder, &first, &lastAt); err != nil {
		t.Fatal(err)
	}
	if n != last || outOfOrder != 0 || !first.Equal(day.Add(time.Second)) || lastAt.Before(day.Add(23*time.Hour+58*time.Minute)) {
		t.Fatalf("events at the hub: %d (want %d), %d out of order, from %s to %s", n, last, outOfOrder, first, lastAt)
	}
	rows, err := f.store.Report(ctx, day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var count, minor int64
	for _, r := range rows {
		count += r.Count
		minor += r.Amount.Minor
	}
	// 100 + 101 + … + 819 minor units.
	if want := int64(payments*100 + payments*(payments-1)/2); count != payments || minor != want {
		t.Fatalf("the day's report: %d payments, %d minor units; want %d, %d (%+v)", count, minor, payments, want, rows)
	}
}
