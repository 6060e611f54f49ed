package payment_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/payment/journaltest"
)

// bigTxns is the size of the large journal the benchmarks compare with an
// empty one: PAYDESK_BENCH_TXNS, else a million transactions.
func bigTxns() int {
	if n, err := strconv.Atoi(os.Getenv("PAYDESK_BENCH_TXNS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

var (
	bigOnce sync.Once
	bigDir  string
	bigPath string
	bigErr  error
)

// bigJournal is generated once per run (it takes seconds) and removed by
// TestMain.
func bigJournal(b *testing.B) string {
	bigOnce.Do(func() {
		if bigDir, bigErr = os.MkdirTemp("", "paydesk-bench-"); bigErr != nil {
			return
		}
		bigPath = filepath.Join(bigDir, "journal.db")
		start := time.Now()
		bigErr = journaltest.Generate(context.Background(), bigPath, bigTxns(), time.Now())
		if bigErr == nil {
			bigErr = firstStart(bigPath)
		}
		fmt.Fprintf(os.Stderr, "generated a journal of %d transactions in %s\n", bigTxns(), time.Since(start).Round(time.Millisecond))
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return bigPath
}

// firstStart opens and closes the journal once, as the first start after
// the generation does: it recovers the two payments left in flight, once.
func firstStart(path string) error {
	j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
	if err != nil {
		return err
	}
	return j.Close()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
	os.Exit(code)
}

// journals runs f against an empty journal and against the large one.
func journals(b *testing.B, f func(b *testing.B, path string)) {
	b.Run("empty", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "journal.db")
		j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
		if err != nil {
			b.Fatal(err)
		}
		j.Close()
		f(b, path)
	})
	b.Run(fmt.Sprintf("txns=%d", bigTxns()), func(b *testing.B) { f(b, bigJournal(b)) })
}

// BenchmarkStartup is what paydesk does before its first prompt: open the
// journal (recovering what was in flight), then read the counts and the
// day's totals the console shows.
func BenchmarkStartup(b *testing.B) {
	ctx := context.Background()
	journals(b, func(b *testing.B, path string) {
		for b.Loop() {
			j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := j.Counts(ctx); err != nil {
				b.Fatal(err)
			}
			from, to := payment.Day(time.Now())
			if _, err := j.Totals(ctx, from, to); err != nil {
				b.Fatal(err)
			}
			if err := j.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJournalList is 'paydesk journal': the latest 20 transactions.
func BenchmarkJournalList(b *testing.B) {
	ctx := context.Background()
	journals(b, func(b *testing.B, path string) {
		for b.Loop() {
			j, err := payment.OpenJournalReadOnly(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := j.Recent(ctx, 20); err != nil {
				b.Fatal(err)
			}
			j.Close()
		}
	})
}

// BenchmarkJournalTotalsDay is 'paydesk journal totals --day' for a day
// of the journal (yesterday: a full day of PerDay transactions).
func BenchmarkJournalTotalsDay(b *testing.B) {
	ctx := context.Background()
	journals(b, func(b *testing.B, path string) {
		from, to := payment.Day(time.Now().AddDate(0, 0, -1))
		for b.Loop() {
			j, err := payment.OpenJournalReadOnly(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := j.Totals(ctx, from, to); err != nil {
				b.Fatal(err)
			}
			j.Close()
		}
	})
}
