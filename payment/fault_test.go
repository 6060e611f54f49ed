package payment

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// errDiskFull stands for what SQLite says when the disk fills.
var errDiskFull = errors.New("database or disk is full (SQLITE_FULL)")

func diskFull([]Event) error { return errDiskFull }

// next waits for the first event on sub that match accepts, failing the
// test after a generous limit (the retry runs every few milliseconds; the
// limit is for a loaded 2-core machine).
func next(t *testing.T, sub *Subscription, what string, match func(Event) bool) Event {
	t.Helper()
	limit := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				t.Fatalf("subscription closed waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-limit:
			t.Fatalf("no %s", what)
		}
	}
}

func TestWriteFailure(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T, path string) (*Journal, Recovery) {
		t.Helper()
		j, rec, err := OpenJournal(path, JournalOptions{RetryEvery: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return j, rec
	}

	t.Run("is told at once, retried, and the write lands when the disk recovers", func(t *testing.T) {
		j, _ := open(t, filepath.Join(t.TempDir(), "journal.db"))
		defer j.Close()
		bus := NewBus(j, nil)
		sub := bus.Subscribe(64)
		defer sub.Close()
		for _, ev := range []Event{created("T1", 1000), to("T1", StatusSent)} {
			if _, err := bus.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}

		j.SetWriteFault(diskFull)
		fin := to("T1", StatusApproved)
		fin.Result = &Result{AuthCode: "A1"}
		got, err := bus.Publish(ctx, fin)
		if !errors.Is(err, ErrNotRecorded) || !errors.Is(err, errDiskFull) {
			t.Fatalf("publish on a full disk: err = %v, want ErrNotRecorded wrapping the disk's error", err)
		}
		if got.Seq != 0 {
			t.Errorf("an event not written has sequence number %d (of its rolled-back insert)", got.Seq)
		}
		notice := next(t, sub, "notice of the failed write", func(ev Event) bool {
			if ev.Kind == KindTransition && ev.Status == StatusApproved {
				t.Fatalf("approval shown without being on disk: %+v", ev)
			}
			return ev.Kind == KindUnrecorded && ev.TxnID == "T1"
		})
		if notice.Unwritten == nil || notice.Unwritten.Status != StatusApproved || notice.Status != "" {
			t.Errorf("notice = %+v, want the unwritten approval in Unwritten and no status of its own", notice)
		}
		for _, s := range []string{"T1", "outcome not recorded: check the POS", "disk is full"} {
			if !strings.Contains(notice.Detail, s) {
				t.Errorf("notice %q does not say %q", notice.Detail, s)
			}
		}
		if strings.Contains(notice.Detail, "approved") {
			t.Errorf("notice %q names the outcome that is not on disk", notice.Detail)
		}
		if tx, err := j.Txn(ctx, "T1"); err != nil || tx.Status != StatusSent {
			t.Errorf("T1 in the journal = %v, %v; want still sent", tx.Status, err)
		}

		// Another rail's payment: the notice names its peer, not a POS.
		j.SetWriteFault(nil)
		if _, err := bus.Publish(ctx, Event{Kind: KindTransition, Rail: RailTerminal, TxnID: "T2", Status: StatusCreated,
			Amount: Money{Minor: 5, Currency: "EUR"}}); err != nil {
			t.Fatal(err)
		}
		// T1's approval was written with T2's creation (the disk came back):
		// wait for it, then fill the disk again.
		next(t, sub, "T1's approval", func(ev Event) bool { return ev.TxnID == "T1" && ev.Kind == KindTransition })
		j.SetWriteFault(diskFull)
		if _, err := bus.Publish(ctx, Event{Kind: KindTransition, Rail: RailTerminal, TxnID: "T2", Status: StatusSent}); err == nil {
			t.Fatal("write on a full disk succeeded")
		}
		n2 := next(t, sub, "notice for T2", func(ev Event) bool { return ev.Kind == KindUnrecorded && ev.TxnID == "T2" })
		if !strings.Contains(n2.Detail, "check the card terminal") || strings.Contains(n2.Detail, "POS") {
			t.Errorf("terminal notice %q: want 'check the card terminal' and no POS", n2.Detail)
		}

		// A payment created while the disk is full is refused for good: it
		// never started, so it must not appear later.
		if _, err := bus.Publish(ctx, created("T3", 700)); !errors.Is(err, ErrNotRecorded) {
			t.Fatalf("create on a full disk: %v", err)
		}

		j.SetWriteFault(nil) // space comes back: the retry writes what waited
		landed := next(t, sub, "T2's sent, written by the retry", func(ev Event) bool {
			return ev.TxnID == "T2" && ev.Kind == KindTransition && ev.Status == StatusSent
		})
		if !landed.Retried || landed.Seq == 0 {
			t.Errorf("retried event = %+v, want Retried and a sequence number", landed)
		}
		rec := next(t, sub, "the recovered notice", func(ev Event) bool { return ev.Kind == KindRecorded })
		if !strings.Contains(rec.Detail, "written") {
			t.Errorf("recovered notice = %q", rec.Detail)
		}
		if tx, err := j.Txn(ctx, "T1"); err != nil || tx.Status != StatusApproved || tx.Result.AuthCode != "A1" {
			t.Errorf("T1 = %+v, %v; want approved with its auth code", tx, err)
		}
		if tx, err := j.Txn(ctx, "T2"); err != nil || tx.Status != StatusSent {
			t.Errorf("T2 = %v, %v; want sent", tx.Status, err)
		}
		if _, err := j.Txn(ctx, "T3"); !errors.Is(err, ErrNotFound) {
			t.Errorf("T3, created on a full disk, is in the journal: %v", err)
		}
	})

	t.Run("a write that never lands leaves the payment unknown at the next start", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "journal.db")
		j, _ := open(t, path)
		for _, ev := range []Event{created("T1", 1000), to("T1", StatusSent)} {
			mustAppend(t, j, ev)
		}
		j.SetWriteFault(diskFull)
		if _, err := j.Append(ctx, to("T1", StatusApproved)); !errors.Is(err, ErrNotRecorded) {
			t.Fatalf("append on a full disk: %v", err)
		}
		if err := j.Close(); err == nil || !strings.Contains(err.Error(), "not recorded") {
			t.Errorf("Close with a write waiting = %v, want it to say what was not recorded", err)
		}
		j2, rec := open(t, path)
		defer j2.Close()
		if len(rec.Recovered) != 1 || rec.Recovered[0].ID != "T1" || rec.Recovered[0].Status != StatusUnknown {
			t.Errorf("recovered = %+v, want T1 unknown", rec.Recovered)
		}
	})
}

func TestWriteFailureKeepsABoundedBacklog(t *testing.T) {
	ctx := context.Background()
	j, _, err := OpenJournal(filepath.Join(t.TempDir(), "journal.db"),
		JournalOptions{RetryEvery: time.Hour, MaxBacklog: 3, MaxBacklogBytes: 1500})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	bus := NewBus(j, nil)
	sub := bus.Subscribe(64)
	defer sub.Close()
	mustAppend(t, j, created("T1", 100))
	j.SetWriteFault(diskFull)
	raw := []byte(strings.Repeat("x", 1000))
	for i, want := range []string{"paydesk retries the write", "paydesk retries the write", "paydesk retries the write", "it is lost"} {
		_, err := bus.Publish(ctx, Event{Kind: KindStep, Rail: RailPOS, TxnID: "T1", Detail: fmt.Sprintf("step %d", i), Raw: raw})
		if !errors.Is(err, ErrNotRecorded) {
			t.Fatalf("step %d: %v", i, err)
		}
		n := next(t, sub, "notice", func(ev Event) bool { return ev.Kind == KindUnrecorded && ev.TxnID == "T1" })
		if !strings.Contains(n.Detail, want) || !strings.Contains(n.Detail, fmt.Sprintf("step %d", i)) {
			t.Errorf("notice %d = %q, want %q", i, n.Detail, want)
		}
	}
	j.SetWriteFault(nil)
	mustAppend(t, j, Event{Kind: KindNotice, Rail: RailSystem, Detail: "the disk is back"})
	h, err := j.History(ctx, "T1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 4 {
		t.Fatalf("history has %d events, want created and the three steps kept", len(h))
	}
	if len(h[1].Raw) != 1000 || len(h[2].Raw) != 0 || !strings.Contains(h[2].Detail, "raw message not kept") {
		t.Errorf("kept raw: %d bytes then %d (%q); want the first within the bound, the next without",
			len(h[1].Raw), len(h[2].Raw), h[2].Detail)
	}
}

// TestRealFullDisk fills the database as a full disk does, from inside
// SQLite (max_page_count: SQLITE_FULL, "database or disk is full"), rather
// than through SetWriteFault: the write fails in the engine, is rolled
// back, and lands once there is room again.
func TestRealFullDisk(t *testing.T) {
	ctx := context.Background()
	j, _, err := OpenJournal(filepath.Join(t.TempDir(), "journal.db"), JournalOptions{RetryEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	bus := NewBus(j, nil)
	sub := bus.Subscribe(64)
	defer sub.Close()
	mustAppend(t, j, created("T1", 100))
	mustAppend(t, j, to("T1", StatusSent))

	// One connection, so the pragma holds for the writer's too.
	j.db.SetMaxOpenConns(1)
	limit := func(pages string) {
		t.Helper()
		if _, err := j.db.ExecContext(ctx, `PRAGMA max_page_count = `+pages); err != nil {
			t.Fatal(err)
		}
	}
	var pages int
	if err := j.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	limit(fmt.Sprint(pages))
	fin := to("T1", StatusApproved)
	fin.Raw = []byte(strings.Repeat("r", 50_000)) // needs pages the file may not have
	_, err = bus.Publish(ctx, fin)
	if !errors.Is(err, ErrNotRecorded) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("write past the limit: %v, want ErrNotRecorded with SQLite's 'database or disk is full'", err)
	}
	next(t, sub, "notice", func(ev Event) bool { return ev.Kind == KindUnrecorded && ev.TxnID == "T1" })
	if tx, err := j.Txn(ctx, "T1"); err != nil || tx.Status != StatusSent {
		t.Errorf("T1 = %v, %v; want still sent after the rollback", tx.Status, err)
	}
	limit("1073741823") // room again
	landed := next(t, sub, "the approval, retried", func(ev Event) bool { return ev.TxnID == "T1" && ev.Kind == KindTransition })
	if landed.Status != StatusApproved || !landed.Retried {
		t.Errorf("landed %+v", landed)
	}
	if tx, err := j.Txn(ctx, "T1"); err != nil || tx.Status != StatusApproved {
		t.Errorf("T1 = %v, %v; want approved", tx.Status, err)
	}
}
