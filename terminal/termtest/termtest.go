// Package termtest runs the card terminal driver against the simulator
// for tests: a journal in a temporary directory, the event bus, the
// driver, and termsim playing the terminal, either over an in-memory pipe
// or on a real pseudo-terminal opened through go.bug.st/serial (the way
// paydesk opens /dev/ttyACM0). The driver's tests over the simulator
// (terminal/termsim) and the HTTP API's (terminal/ecr) use it, so they
// test the same assembly. The driver's byte-by-byte tests script a fake
// port of their own, inside package terminal.
package termtest

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/termsim"
)

// SyncBuffer is a goroutine-safe log sink, so tests can read what was
// logged (and check that secrets and card numbers were not).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor polls cond every 5 ms until it holds, and fails the test when
// it does not within d. The d of a caller bounds a hang; it is not a
// timing the test relies on.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s)", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Options configures a Rig.
type Options struct {
	// Timers are the driver's.
	Timers terminal.Timers
	// Sim configures the simulator.
	Sim termsim.Options
	// PTY runs the simulator on a pseudo-terminal and the driver on its
	// slave, through a symbolic link (as /dev/serial/by-id names a USB
	// terminal), so a hang-up and the reopen are real. Without a
	// pseudo-terminal the test is skipped, except under CI=true where it
	// fails. The default is an in-memory pipe per open.
	PTY bool
	// Now is the driver's clock; nil is time.Now.
	Now func() time.Time
}

// Rig is the driver against the simulator, with the journal and bus it
// publishes on. The test's cleanup stops everything.
type Rig struct {
	Sim     *termsim.Sim
	Driver  *terminal.Driver
	Journal *payment.Journal
	Bus     *payment.Bus
	// Log is the driver's log (debug level), printed when the test fails.
	Log *SyncBuffer
	// Logger writes to Log.
	Logger *slog.Logger
}

// New starts a rig and waits until the driver has probed the terminal.
func New(t testing.TB, o Options) *Rig {
	t.Helper()
	dir := t.TempDir()
	r := &Rig{Log: &SyncBuffer{}}
	r.Logger = slog.New(slog.NewTextHandler(r.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	dopts := terminal.Options{Timers: o.Timers, ProbeInterval: -1, ReopenInterval: 50 * time.Millisecond,
		Logger: r.Logger, Now: o.Now}
	if o.PTY {
		o.Sim.Link = filepath.Join(dir, "terminal")
		r.Sim = termsim.New(o.Sim)
		if _, err := r.Sim.Open(); err != nil {
			cancel()
			if os.Getenv("CI") == "true" {
				t.Fatalf("no pseudo-terminal under CI: %v", err)
			}
			t.Skipf("no pseudo-terminal: %v", err)
		}
		dopts.Port = terminal.PortOptions{Path: o.Sim.Link}
		wg.Add(1)
		go func() { defer wg.Done(); r.Sim.Run(ctx) }()
	} else {
		r.Sim = termsim.New(o.Sim)
		dopts.Open = func() (terminal.Port, error) {
			a, b := net.Pipe()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.Sim.Serve(ctx, b)
				b.Close()
			}()
			return a, nil
		}
	}
	j, _, err := payment.OpenJournal(filepath.Join(dir, "journal.db"), payment.JournalOptions{})
	if err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	r.Journal = j
	r.Bus = payment.NewBus(j, r.Logger)
	r.Driver, err = terminal.NewDriver(r.Bus, dopts)
	if err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); r.Driver.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		wg.Wait()
		r.Bus.Close()
		r.Journal.Close()
		if t.Failed() {
			t.Logf("driver log:\n%s", r.Log.String())
		}
	})
	r.WaitHealthy(t)
	return r
}

// WaitHealthy waits until the driver's last probe was answered.
func (r *Rig) WaitHealthy(t testing.TB) {
	t.Helper()
	WaitFor(t, 5*time.Second, "the terminal healthy", func() bool { return r.Driver.Health().State == terminal.HealthOK })
}

// Start begins a card payment of minor units of EUR.
func (r *Rig) Start(t testing.TB, minor int64) string {
	t.Helper()
	id, err := r.Driver.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: minor, Currency: "EUR"}})
	if err != nil {
		t.Fatalf("start %d: %v", minor, err)
	}
	return id
}

// Settle waits until the driver has let go of id and returns its record.
func (r *Rig) Settle(t testing.TB, id string) payment.Txn {
	t.Helper()
	WaitFor(t, 10*time.Second, id+" settled", func() bool {
		f, busy := r.Driver.Current()
		return !busy || f.ID != id
	})
	return r.Txn(t, id)
}

// Txn is the journal's record of id.
func (r *Rig) Txn(t testing.TB, id string) payment.Txn {
	t.Helper()
	tx, err := r.Journal.Txn(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// History is id's events from the journal.
func (r *Rig) History(t testing.TB, id string) []payment.Event {
	t.Helper()
	evs, err := r.Journal.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// Events is every event journaled so far.
func (r *Rig) Events(t testing.TB) []payment.Event {
	t.Helper()
	evs, err := r.Journal.EventsSince(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
