// Package postest starts a kiosk for tests: a journal in a temporary
// directory, the event bus, and the POS link server on loopback, with
// simulated POS terminals on demand. Every package that tests against the
// POS link (protocol, the consoles) uses it, so they all test the same
// assembly that main builds.
package postest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
)

// Secret is the shared secret the kiosk and its simulators use.
var Secret = []byte(protocol.DevSecret)

// Kiosk is a running kiosk; the test's cleanup stops it.
type Kiosk struct {
	Journal *payment.Journal
	Bus     *payment.Bus
	Server  *protocol.Server
	// Addr is where POS terminals connect.
	Addr string
	// Ctx ends when the test ends; simulators run until then.
	Ctx context.Context
}

// New starts a kiosk with opts (Addr, Secret and a silent Logger are
// filled in unless set).
func New(t testing.TB, opts protocol.Options) *Kiosk {
	t.Helper()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, nil)
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Secret == nil {
		opts.Secret = Secret
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := protocol.NewServer(bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
		bus.Close()
		j.Close()
	})
	return &Kiosk{Journal: j, Bus: bus, Server: srv, Addr: ln.Addr().String(), Ctx: ctx}
}

// AddSim starts a simulated POS (Addr and Secret filled in, PosID POS001
// unless set) and waits until the kiosk has accepted its connection.
func (k *Kiosk) AddSim(t testing.TB, o possim.Options) *possim.Sim {
	t.Helper()
	o.Addr, o.Secret = k.Addr, Secret
	if o.PosID == "" {
		o.PosID = "POS001"
	}
	before := len(k.Server.Peers())
	s := possim.New(o)
	go s.Run(k.Ctx)
	deadline := time.Now().Add(10 * time.Second)
	for len(k.Server.Peers()) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("simulated %s did not connect", o.PosID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}
