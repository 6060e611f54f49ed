package screens

import (
	"runtime"
	"testing"

	"paydesk/payment"
)

// TestLifeCostsNoGoroutine: each display's reads, writes and jobs get a
// context from life; before, each one started a goroutine that waited for
// the server to close, so a thousand displays cost thousands of goroutines
// more than they needed. Every context still ends when the server closes.
func TestLifeCostsNoGoroutine(t *testing.T) {
	bus := newBus(t)
	s, err := NewServer(bus, Options{Methods: cardMethods(&fakeRail{bus: bus, rail: payment.RailTerminal})})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	const n = 500
	cancels := make([]func(), 0, n)
	dones := make([]<-chan struct{}, 0, n)
	for range n {
		ctx, cancel := s.life()
		cancels = append(cancels, cancel)
		dones = append(dones, ctx.Done())
	}
	if grew := runtime.NumGoroutine() - before; grew > n/10 {
		t.Fatalf("%d contexts from life started %d goroutines", n, grew)
	}
	if got := s.closing.live(); got != n {
		t.Fatalf("%d contexts registered, want %d", got, n)
	}
	// A cancelled one is forgotten at once, not at Close.
	cancels[0]()
	if got := s.closing.live(); got != n-1 {
		t.Fatalf("%d registered after one cancel, want %d", got, n-1)
	}
	s.Close()
	for i, d := range dones {
		select {
		case <-d:
		default:
			t.Fatalf("context %d not done after Close", i)
		}
	}
	ctx, cancel := s.life()
	defer cancel()
	<-ctx.Done() // one made after Close ends at once
	for _, c := range cancels {
		c()
	}
}
