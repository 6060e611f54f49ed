package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/payment/journaltest"
)

// benchJournals runs f against an empty journal and one of a million
// transactions (PAYDESK_BENCH_TXNS to change it), generated before the
// timed loop and started once.
func benchJournals(b *testing.B, f func(b *testing.B, path string)) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("PAYDESK_BENCH_TXNS")); err == nil && v > 0 {
		n = v
	}
	for _, size := range []int{0, n} {
		b.Run("txns="+strconv.Itoa(size), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "journal.db")
			if size == 0 {
				j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
				if err != nil {
					b.Fatal(err)
				}
				j.Close()
			} else if err := journaltest.Generate(context.Background(), path, size, time.Now()); err != nil {
				b.Fatal(err)
			} else {
				// The first start recovers the two payments left in
				// flight, once; the loop measures the starts after it.
				j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
				if err != nil {
					b.Fatal(err)
				}
				j.Close()
			}
			f(b, path)
		})
	}
}

// BenchmarkStartToExit is paydesk's plain console from start to its first
// prompt and out again ("7"): open and recover the journal, listen for
// POS terminals, print the menu (and every payment left unknown), exit.
func BenchmarkStartToExit(b *testing.B) {
	benchJournals(b, func(b *testing.B, path string) {
		log := filepath.Join(b.TempDir(), "paydesk.log")
		args := []string{"--plain", "--journal", path, "--log", log, "--listen", "127.0.0.1:0", "--config", "/dev/null"}
		for b.Loop() {
			var out strings.Builder
			if err := run(context.Background(), args, strings.NewReader("7\n"), &out, io.Discard); err != nil {
				b.Fatal(err)
			}
			if !strings.Contains(out.String(), "Bye.") {
				b.Fatalf("no exit:\n%s", out.String())
			}
		}
	})
}

// BenchmarkJournalCommand is 'paydesk journal' (the latest 20) and
// 'paydesk journal totals --day' (yesterday, a full day).
func BenchmarkJournalCommand(b *testing.B) {
	day := time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	for _, c := range []struct{ name, args string }{{"list", ""}, {"totals-day", "totals --day " + day}} {
		b.Run(c.name, func(b *testing.B) {
			benchJournals(b, func(b *testing.B, path string) {
				args := append([]string{"journal", "--journal", path}, strings.Fields(c.args)...)
				for b.Loop() {
					if err := run(context.Background(), args, nil, io.Discard, io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
