package payment

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Pruning removes, past the retention window, the events the hub has
// acknowledged of payments that ended: never an event the hub has not
// acknowledged, never one of a payment unknown or in flight (or that
// changed within the window), never the journal's last event (its
// sequence is how far the journal goes); the payments' rows stay, so the
// counts per status and the day totals are what they were.
func TestPruneKeepsWhatTheHubLacksAndOpenPayments(t *testing.T) {
	ctx := context.Background()
	j, _ := openTestJournal(t)
	old := time.Now().Add(-40 * 24 * time.Hour)
	at := func(ev Event, t time.Time) Event { ev.Time = t; return ev }
	// Old and ended: prunable up to what the hub acknowledged.
	for i := range 3 {
		id := fmt.Sprintf("OLD%d", i)
		mustAppend(t, j, at(created(id, 1000), old))
		mustAppend(t, j, at(to(id, StatusSent), old))
		mustAppend(t, j, at(to(id, StatusApproved), old))
	}
	// Old but unknown: kept whatever its age.
	mustAppend(t, j, at(created("LOST", 500), old))
	mustAppend(t, j, at(to("LOST", StatusSent), old))
	mustAppend(t, j, at(to("LOST", StatusUnknown), old))
	// Old, in flight (a sale still waiting): kept.
	mustAppend(t, j, at(created("WAIT", 700), old))
	// Old, but ended within the window: kept.
	mustAppend(t, j, at(created("LATE", 900), old))
	mustAppend(t, j, to("LATE", StatusDeclined))
	// A notice of no payment, old.
	notice := mustAppend(t, j, at(Event{Kind: KindNotice, Rail: RailSystem, Detail: "old notice"}, old))
	// The hub has everything up to here, not what follows.
	acked := notice.Seq
	// Old and ended, but not acknowledged by the hub.
	mustAppend(t, j, at(created("NEW", 200), old))
	last := mustAppend(t, j, at(to("NEW", StatusCancelled), old))

	day := func() []Total {
		from, to := Day(old)
		tot, err := j.Totals(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		return tot
	}
	countsBefore, err := j.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	totalsBefore := day()

	n, err := j.Prune(ctx, acked, time.Now().Add(-30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Errorf("pruned %d events, want 10 (OLD0-2's nine and the notice)", n)
	}
	for _, id := range []string{"OLD0", "OLD1", "OLD2"} {
		if h, _ := j.History(ctx, id); len(h) != 0 {
			t.Errorf("%s keeps %d events", id, len(h))
		}
		if tx, err := j.Txn(ctx, id); err != nil || tx.Status != StatusApproved || tx.Amount.Minor != 1000 {
			t.Errorf("%s's row after pruning: %+v %v", id, tx, err)
		}
	}
	for id, want := range map[string]int{"LOST": 3, "WAIT": 1, "LATE": 2, "NEW": 2} {
		if h, _ := j.History(ctx, id); len(h) != want {
			t.Errorf("%s keeps %d events, want %d", id, len(h), want)
		}
	}
	if seq, err := j.LastSeq(ctx); err != nil || seq != last.Seq {
		t.Errorf("last sequence %d (%v), want %d", seq, err, last.Seq)
	}
	countsAfter, err := j.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(countsAfter) != fmt.Sprint(countsBefore) {
		t.Errorf("counts per status %v, were %v", countsAfter, countsBefore)
	}
	if got := day(); fmt.Sprint(got) != fmt.Sprint(totalsBefore) {
		t.Errorf("the day's totals %v, were %v", got, totalsBefore)
	}
	// Everything acknowledged and old: the journal's last event stays.
	if _, err := j.Prune(ctx, last.Seq, time.Now()); err != nil {
		t.Fatal(err)
	}
	if seq, err := j.LastSeq(ctx); err != nil || seq != last.Seq {
		t.Errorf("after pruning all, last sequence %d (%v), want %d", seq, err, last.Seq)
	}
	// Appending goes on from there.
	if ev := mustAppend(t, j, created("NEXT", 100)); ev.Seq != last.Seq+1 {
		t.Errorf("next event's sequence %d, want %d", ev.Seq, last.Seq+1)
	}
}

// BenchmarkPrune prunes a journal of 20,000 ended payments of five events
// each (100,000 events, 200 bytes of raw message each), all acknowledged
// and past the window: the time per event pruned, and per transaction of
// pruneChunk events (how long an append may wait for one).
func BenchmarkPrune(b *testing.B) {
	ctx := context.Background()
	const txns, per = 20000, 5
	old := time.Now().Add(-40 * 24 * time.Hour).UnixMilli()
	raw := make([]byte, 200)
	for b.Loop() {
		b.StopTimer()
		j, _ := openTestJournal(b)
		tx, err := j.db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range txns {
			id := fmt.Sprintf("T%06d", i)
			if _, err := tx.ExecContext(ctx, `INSERT INTO txns (id, rail, status, created_at, updated_at) VALUES (?, 'pos', 'approved', ?, ?)`, id, old, old); err != nil {
				b.Fatal(err)
			}
			for range per {
				if _, err := tx.ExecContext(ctx, `INSERT INTO events (at, kind, rail, txn_id, status, raw) VALUES (?, 'step', 'pos', ?, 'approved', ?)`, old, id, raw); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		last, _ := j.LastSeq(ctx)
		b.StartTimer()
		n, err := j.Prune(ctx, last, time.Now().Add(-30*24*time.Hour))
		if err != nil || n != txns*per-1 {
			b.Fatalf("pruned %d (%v), want %d", n, err, txns*per-1)
		}
		b.StopTimer()
		j.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(txns*per), "ns/event")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/float64((txns*per+pruneChunk-1)/pruneChunk), "ms/chunk")
}
