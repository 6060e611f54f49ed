package plain_test

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/desk"
	"paydesk/payment"
	"paydesk/payment/journaltest"
	"paydesk/plain"
	"paydesk/protocol"
)

// syncBuffer is the console's stdout, read by the test while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// live is a console running on a pipe, so the test can type a line, wait
// for what it prints, and change the disk between lines.
type live struct {
	t    *testing.T
	out  *syncBuffer
	in   *io.PipeWriter
	done chan error
}

func startLive(t *testing.T, k *kiosk) *live {
	t.Helper()
	pr, pw := io.Pipe()
	l := &live{t: t, out: &syncBuffer{}, in: pw, done: make(chan error, 1)}
	con := plain.New(plain.Config{}, k.desk(desk.Config{}), l.out)
	ctx, cancel := context.WithCancel(k.ctx)
	go func() { l.done <- con.Run(ctx, pr) }()
	t.Cleanup(func() { cancel(); pw.Close() })
	return l
}

// typeLine sends one line and returns where the output stood before it,
// so the test can look at what that line printed.
func (l *live) typeLine(s string) int {
	l.t.Helper()
	at := len(l.out.String())
	if _, err := io.WriteString(l.in, s+"\n"); err != nil {
		l.t.Fatalf("type %q: %v", s, err)
	}
	return at
}

// waitFor waits until the output after from matches re and returns the
// match. The limit is generous for a loaded machine: every step here is a
// loopback round trip or a journal retry (every second by default).
func (l *live) waitFor(from int, re string) []string {
	l.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := rx.FindStringSubmatch(l.out.String()[from:]); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("no %q in the output after %d:\n%s", re, from, l.out.String()[from:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *live) exited() {
	l.t.Helper()
	select {
	case err := <-l.done:
		if err != nil {
			l.t.Fatalf("console: %v\n%s", err, l.out.String())
		}
	case <-time.After(15 * time.Second):
		l.t.Fatalf("console did not exit:\n%s", l.out.String())
	}
}

func TestJournalWriteFails(t *testing.T) {
	t.Run("the outcome that cannot be written is shown at once, never as approved, and lands when space comes back", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		spaceBack := journaltest.FillAfterSent(k.bus.Journal())
		l := startLive(t, k)
		l.typeLine("1")
		at := l.typeLine("10.00")
		id := l.waitFor(at, `Transaction ID: (TXN\d+)`)[1]
		l.waitFor(at, `NOT RECORDED `+id+`: .*outcome not recorded: check the POS`)
		res := l.waitFor(at, `RESULT `+id+` (\w+) 10\.00`)
		if res[1] != "unknown" {
			t.Errorf("RESULT of an outcome not on disk = %q, want unknown", res[0])
		}
		if strings.Contains(l.out.String(), "Payment Successful") || regexp.MustCompile(`RESULT \S+ approved`).MatchString(l.out.String()) {
			t.Fatalf("approved shown without the durable record:\n%s", l.out.String())
		}

		// Status names the payment needing attention, not "none".
		st := l.typeLine("6")
		l.waitFor(st, `Journal: \d+ transactions?`)
		l.waitFor(st, `(?i)not recorded.*\n?.*`+id)

		// The next payment is taken (and refused: its start cannot be
		// written), not queued behind the one that finished.
		l.typeLine("1")
		next := l.typeLine("20.00")
		l.waitFor(next, `ERROR .*journal`)

		spaceBack()
		rec := l.waitFor(at, `RECORDED `+id+` (\w+)`)
		if rec[1] != "approved" {
			t.Errorf("recorded after the retry: %q, want approved", rec[0])
		}
		if tx, err := k.bus.Journal().Txn(context.Background(), id); err != nil || tx.Status != payment.StatusApproved {
			t.Errorf("%s in the journal = %v, %v; want approved", id, tx.Status, err)
		}

		l.typeLine("1")
		again := l.typeLine("30.00")
		l.waitFor(again, `RESULT TXN\d+ approved 30\.00`)
		bye := l.typeLine("7")
		l.waitFor(bye, `Bye\.`)
		l.exited()
	})

	t.Run("a payment in flight can still be cancelled, and the console quits with the disk still full", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		journaltest.FillAfterSent(k.bus.Journal())
		l := startLive(t, k)
		l.typeLine("1")
		at := l.typeLine("10.62") // the simulated POS acks and never answers
		id := l.waitFor(at, `Transaction ID: (TXN\d+)`)[1]
		l.waitFor(at, `NOT RECORDED `+id+`: .*check the POS`)
		st := l.typeLine("6")
		l.waitFor(st, `Current transaction: `+id)
		c := l.typeLine("5")
		l.waitFor(c, `Cancel requested for `+id)
		l.waitFor(c, `RESULT `+id+` unknown`)
		bye := l.typeLine("7")
		l.waitFor(bye, `Bye\.`)
		l.exited()
	})
}
