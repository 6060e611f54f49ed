package payment

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTestJournal(t testing.TB) (*Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.db")
	j, _, err := OpenJournal(path, JournalOptions{})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j, path
}

func mustAppend(t testing.TB, j *Journal, ev Event) Event {
	t.Helper()
	ev, err := j.Append(context.Background(), ev)
	if err != nil {
		t.Fatalf("append %+v: %v", ev, err)
	}
	return ev
}

func created(id string, minor int64) Event {
	return Event{Kind: KindTransition, Rail: RailPOS, TxnID: id, Status: StatusCreated,
		Mode: ModeCard, Amount: Money{Minor: minor, Currency: "MYR"}, Peer: "POS001"}
}

func to(id string, s Status) Event {
	return Event{Kind: KindTransition, Rail: RailPOS, TxnID: id, Status: s}
}

func TestJournal(t *testing.T) {
	ctx := context.Background()

	t.Run("a transaction is the sum of its events", func(t *testing.T) {
		j, _ := openTestJournal(t)
		e1 := mustAppend(t, j, created("T1", 2550))
		mustAppend(t, j, to("T1", StatusSent))
		mustAppend(t, j, Event{Kind: KindStep, Rail: RailPOS, TxnID: "T1", Detail: "ack processing"})
		mustAppend(t, j, to("T1", StatusAcknowledged))
		fin := to("T1", StatusApproved)
		fin.Result = &Result{AuthCode: "AUTH123", Card: "4242", RemoteID: "000410"}
		mustAppend(t, j, fin)
		if e1.Seq == 0 {
			t.Errorf("appended event has no sequence number")
		}
		tx, err := j.Txn(ctx, "T1")
		if err != nil {
			t.Fatal(err)
		}
		if tx.Status != StatusApproved || tx.Amount.Minor != 2550 || tx.Mode != ModeCard || tx.Peer != "POS001" {
			t.Errorf("txn = %+v", tx)
		}
		if tx.Result.AuthCode != "AUTH123" || tx.Result.Card != "4242" || tx.Result.RemoteID != "000410" {
			t.Errorf("result = %+v", tx.Result)
		}
		hist, err := j.History(ctx, "T1")
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 5 {
			t.Fatalf("history has %d events, want 5", len(hist))
		}
		if hist[2].Kind != KindStep || hist[2].Status != StatusSent {
			t.Errorf("step event = %+v; want the status it happened in (sent)", hist[2])
		}
		if hist[4].Result == nil || hist[4].Result.AuthCode != "AUTH123" {
			t.Errorf("final event lost its result: %+v", hist[4])
		}
	})

	t.Run("an illegal transition is refused and not written", func(t *testing.T) {
		j, _ := openTestJournal(t)
		mustAppend(t, j, created("T2", 100))
		mustAppend(t, j, to("T2", StatusSent))
		mustAppend(t, j, to("T2", StatusDeclined))
		_, err := j.Append(ctx, to("T2", StatusApproved))
		var te *TransitionError
		if !errors.As(err, &te) || !errors.Is(err, ErrIllegalTransition) {
			t.Fatalf("declined → approved: err = %v, want *TransitionError", err)
		}
		if te.From != StatusDeclined || te.To != StatusApproved {
			t.Errorf("error = %+v", te)
		}
		tx, _ := j.Txn(ctx, "T2")
		if tx.Status != StatusDeclined {
			t.Errorf("status = %s after refused transition", tx.Status)
		}
		hist, _ := j.History(ctx, "T2")
		if len(hist) != 3 {
			t.Errorf("refused transition was written: %d events", len(hist))
		}
		if _, err := j.Append(ctx, to("NOPE", StatusSent)); !errors.Is(err, ErrIllegalTransition) {
			t.Errorf("a transition of an unknown transaction: err = %v", err)
		}
		if _, err := j.Append(ctx, created("T2", 5)); !errors.Is(err, ErrIllegalTransition) {
			t.Errorf("creating an existing transaction again: err = %v", err)
		}
	})

	t.Run("a late result is kept and flags the transaction", func(t *testing.T) {
		j, _ := openTestJournal(t)
		mustAppend(t, j, created("T3", 100))
		mustAppend(t, j, to("T3", StatusSent))
		mustAppend(t, j, to("T3", StatusTimedOut))
		late := mustAppend(t, j, Event{Kind: KindLate, Rail: RailPOS, TxnID: "T3", Detail: "result success after timeout",
			Raw: []byte(`{"payload":{}}`), Result: &Result{AuthCode: "X1"}})
		if late.Flag != FlagLateResult || late.Status != StatusTimedOut {
			t.Errorf("late event = %+v", late)
		}
		tx, _ := j.Txn(ctx, "T3")
		if tx.Status != StatusTimedOut || !tx.HasFlag(FlagLateResult) {
			t.Errorf("txn = %+v", tx)
		}
		mustAppend(t, j, Event{Kind: KindLate, Rail: RailPOS, TxnID: "T3"})
		tx, _ = j.Txn(ctx, "T3")
		if len(tx.Flags) != 1 {
			t.Errorf("flags duplicated: %v", tx.Flags)
		}
	})

	t.Run("reopening marks in-flight transactions unknown and reports them", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "j.db")
		j, rec, err := OpenJournal(path, JournalOptions{})
		if err != nil || len(rec.Recovered) != 0 {
			t.Fatalf("fresh journal: %v %+v", err, rec)
		}
		mustAppend(t, j, created("DONE", 100))
		mustAppend(t, j, to("DONE", StatusSent))
		mustAppend(t, j, to("DONE", StatusApproved))
		mustAppend(t, j, created("FLY", 2550))
		mustAppend(t, j, to("FLY", StatusSent))
		mustAppend(t, j, to("FLY", StatusAcknowledged))
		j.Close()

		j, rec, err = OpenJournal(path, JournalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if len(rec.Recovered) != 1 || rec.Recovered[0].ID != "FLY" || rec.Recovered[0].Status != StatusUnknown {
			t.Fatalf("recovered = %+v", rec.Recovered)
		}
		if len(rec.Unresolved) != 1 || !rec.Unresolved[0].HasFlag(FlagRecovered) {
			t.Fatalf("unresolved = %+v", rec.Unresolved)
		}
		hist, _ := j.History(ctx, "FLY")
		last := hist[len(hist)-1]
		if last.Status != StatusUnknown || last.Detail != "was acknowledged when paydesk stopped: check the POS and resolve" {
			t.Errorf("recovery event = %+v", last)
		}
		// The operator resolves it; the journal keeps who did what.
		res := to("FLY", StatusApproved)
		res.Flag = FlagResolved
		mustAppend(t, j, res)
		j.Close()

		j, rec, err = OpenJournal(path, JournalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if len(rec.Recovered)+len(rec.Unresolved) != 0 {
			t.Errorf("resolved transaction reported again: %+v", rec)
		}
		counts, _ := j.Counts(ctx)
		if counts[StatusApproved] != 2 {
			t.Errorf("counts = %v", counts)
		}
	})

	t.Run("an unknown transaction stays reported until resolved", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "j.db")
		j, _, _ := OpenJournal(path, JournalOptions{})
		mustAppend(t, j, created("A", 1))
		j.Close()
		for range 2 {
			j, rec, err := OpenJournal(path, JournalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Unresolved) != 1 {
				t.Errorf("unresolved = %+v", rec.Unresolved)
			}
			j.Close()
		}
	})

	t.Run("totals per rail and status for a day", func(t *testing.T) {
		j, _ := openTestJournal(t)
		day := time.Date(2026, 11, 22, 10, 0, 0, 0, time.Local)
		add := func(id string, minor int64, st Status, at time.Time) {
			c := created(id, minor)
			c.Time = at
			mustAppend(t, j, c)
			s := to(id, StatusSent)
			s.Time = at
			mustAppend(t, j, s)
			f := to(id, st)
			f.Time = at
			mustAppend(t, j, f)
		}
		add("a", 1000, StatusApproved, day)
		add("b", 550, StatusApproved, day.Add(time.Hour))
		add("c", 700, StatusDeclined, day)
		add("yesterday", 99, StatusApproved, day.AddDate(0, 0, -1))
		from, until := Day(day)
		tot, err := j.Totals(ctx, from, until)
		if err != nil {
			t.Fatal(err)
		}
		want := []Total{
			{Rail: RailPOS, Status: StatusApproved, Count: 2, Amount: Money{1550, "MYR"}},
			{Rail: RailPOS, Status: StatusDeclined, Count: 1, Amount: Money{700, "MYR"}},
		}
		if fmt.Sprint(tot) != fmt.Sprint(want) {
			t.Errorf("totals = %v, want %v", tot, want)
		}
	})

	t.Run("concurrent appends are all committed, each once", func(t *testing.T) {
		j, _ := openTestJournal(t)
		var wg sync.WaitGroup
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("C%d", g)
				for _, ev := range []Event{created(id, 100), to(id, StatusSent), to(id, StatusAcknowledged), to(id, StatusApproved)} {
					if _, err := j.Append(ctx, ev); err != nil {
						t.Errorf("append: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		evs, err := j.EventsSince(ctx, 0, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 128 {
			t.Errorf("%d events, want 128", len(evs))
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Seq <= evs[i-1].Seq {
				t.Fatalf("sequence not increasing at %d", i)
			}
		}
		counts, _ := j.Counts(ctx)
		if counts[StatusApproved] != 32 {
			t.Errorf("counts = %v", counts)
		}
	})

	t.Run("append after close is refused", func(t *testing.T) {
		j, _ := openTestJournal(t)
		j.Close()
		if _, err := j.Append(ctx, created("Z", 1)); !errors.Is(err, ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	})
}

// BenchmarkJournalTransitions measures durable transitions per second with
// group commit: many goroutines (as many rails and connections would)
// append transitions concurrently; every Append returns only once synced.
func BenchmarkJournalTransitions(b *testing.B) {
	j, _ := openTestJournal(b)
	ctx := context.Background()
	var n sync.Mutex
	next := 0
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		n.Lock()
		next++
		id := fmt.Sprintf("B%d", next)
		n.Unlock()
		i := 0
		for pb.Next() {
			var ev Event
			switch i % 4 {
			case 0:
				ev = created(fmt.Sprintf("%s-%d", id, i/4), 100)
			case 1:
				ev = to(fmt.Sprintf("%s-%d", id, i/4), StatusSent)
			case 2:
				ev = to(fmt.Sprintf("%s-%d", id, i/4), StatusAcknowledged)
			case 3:
				ev = to(fmt.Sprintf("%s-%d", id, i/4), StatusApproved)
			}
			if _, err := j.Append(ctx, ev); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transitions/s")
}

// Flagged finds one rail's events with one flag from a time on, through
// the partial index of flagged events rather than a scan of them all.
func TestFlagged(t *testing.T) {
	j, _ := openTestJournal(t)
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for i, ev := range []Event{
		{Time: t0, Kind: KindNotice, Rail: RailMPesa, Flag: "unmatched", Detail: "too old"},
		{Time: t0.Add(time.Hour), Kind: KindNotice, Rail: RailMPesa, Flag: "unmatched", Detail: "want 1"},
		{Time: t0.Add(time.Hour), Kind: KindNotice, Rail: RailMPesa, Flag: "assigned", Detail: "other flag"},
		{Time: t0.Add(time.Hour), Kind: KindNotice, Rail: RailTerminal, Flag: "unmatched", Detail: "other rail"},
		{Time: t0.Add(time.Hour), Kind: KindNotice, Rail: RailMPesa, Detail: "no flag"},
		{Time: t0.Add(2 * time.Hour), Kind: KindNotice, Rail: RailMPesa, Flag: "unmatched", Detail: "want 2"},
	} {
		if _, err := j.Append(context.Background(), ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	got, err := j.Flagged(context.Background(), RailMPesa, "unmatched", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Detail != "want 1" || got[1].Detail != "want 2" {
		t.Fatalf("Flagged: %+v, want the two 'want' events in order", got)
	}
	var plan string
	rows, err := j.db.Query(`EXPLAIN QUERY PLAN SELECT seq FROM events `+flaggedWhere, "unmatched", RailMPesa, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "\n"
	}
	if !strings.Contains(plan, "INDEX events_flagged") {
		t.Errorf("Flagged's query does not use the flagged-events index:\n%s", plan)
	}
}

// The read hook sees every kind of read, so a test can count them.
func TestReadHookSeesEveryRead(t *testing.T) {
	j, _ := openTestJournal(t)
	mustAppend(t, j, created("TXN1", 100))
	var seen []string
	j.SetReadHook(func(what string) { seen = append(seen, what) })
	ctx := context.Background()
	j.Recent(ctx, 5)
	j.History(ctx, "TXN1")
	j.Counts(ctx)
	from, to := Day(time.Now())
	j.Totals(ctx, from, to)
	if got := strings.Join(seen, " "); got != "txns events counts totals" {
		t.Fatalf("reads seen: %q", got)
	}
	j.SetReadHook(nil)
	j.Txn(ctx, "TXN1")
	if len(seen) != 4 {
		t.Fatalf("a removed hook still counts: %v", seen)
	}
}
