package termsim_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/termsim"
)

// sessionBytes is what one approved payment puts on the line, both ways:
// ENQ ACK, the 37-byte request frame, ACK EOT, then the terminal's ENQ
// ACK, its 83-byte answer frame, ACK EOT.
const sessionBytes = 1 + 1 + 37 + 1 + 1 + 1 + 1 + 83 + 1 + 1

// BenchmarkSession9600 measures a whole payment, Start to the approval in
// the journal, against the simulator paced as a 9600-baud line (each
// byte takes 10/9600 s to arrive, both ways) with no customer think time,
// over a real pseudo-terminal. The line alone needs sessionBytes×10/9600
// s; overhead-% is how much longer the session took: the driver's
// turnarounds, the journal writes (SQLite, synchronous) and the pty.
//
//	go test -run '^$' -bench Session9600 -benchtime 20x ./terminal/termsim
func BenchmarkSession9600(b *testing.B) {
	const baud = 9600
	dir := b.TempDir()
	sim := termsim.New(termsim.Options{Think: time.Nanosecond, Baud: baud})
	path, err := sim.Open()
	if err != nil {
		b.Skipf("no pseudo-terminal: %v", err)
	}
	j, _, err := payment.OpenJournal(filepath.Join(dir, "journal.db"), payment.JournalOptions{})
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := payment.NewBus(j, quiet)
	d, err := terminal.NewDriver(bus, terminal.Options{Port: terminal.PortOptions{Path: path, Baud: baud}, ProbeInterval: -1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sim.Run(ctx) }()
	go func() { defer wg.Done(); d.Run(ctx) }()
	defer func() { cancel(); wg.Wait(); bus.Close(); j.Close() }()
	for d.Health().State != terminal.HealthOK {
		time.Sleep(5 * time.Millisecond)
	}
	pay := func() {
		id, err := d.Start(ctx, payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: 1250, Currency: "EUR"}})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if f, busy := d.Current(); !busy || f.ID != id {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		if tx, err := j.Txn(ctx, id); err != nil || tx.Status != payment.StatusApproved {
			b.Fatalf("%s: %s %v", id, tx.Status, err)
		}
	}
	pay() // warm up: the first session pays for opening the journal's pages
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		pay()
	}
	per := time.Since(start) / time.Duration(b.N)
	wire := time.Duration(sessionBytes) * 10 * time.Second / baud
	b.ReportMetric(float64(wire.Microseconds())/1000, "wire-ms")
	b.ReportMetric(100*float64(per-wire)/float64(wire), "overhead-%")
}
