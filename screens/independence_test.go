package screens

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
)

// handRail is a payment.Starter whose payments end when the test says:
// Start journals the created transition and reports the id on started;
// with block set, Start then waits for it to close (a rail whose Start
// hangs on its peer).
type handRail struct {
	bus     *payment.Bus
	prefix  string // of its payments' ids
	n       int
	mu      sync.Mutex
	started chan string
	block   chan struct{}
}

func (h *handRail) Start(ctx context.Context, req payment.Request) (string, error) {
	h.mu.Lock()
	h.n++
	id := fmt.Sprintf("%s%04d", h.prefix, h.n)
	h.mu.Unlock()
	if _, err := h.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: payment.RailTerminal, TxnID: id,
		Status: payment.StatusCreated, Mode: req.Mode, Amount: req.Amount, Peer: "hand"}); err != nil {
		return "", err
	}
	h.started <- id
	if h.block != nil {
		<-h.block
	}
	return id, nil
}

func (h *handRail) Cancel(string) error { return nil }

// approve journals the approval of id, as the rail would.
func approve(t *testing.T, bus *payment.Bus, id string) {
	t.Helper()
	if _, err := bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: payment.RailTerminal,
		TxnID: id, Status: payment.StatusApproved, Result: &payment.Result{AuthCode: "A1"}}); err != nil {
		t.Fatal(err)
	}
}

// waitID reads the id of the payment a rail's Start has just begun.
func waitID(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case id := <-ch:
		return id
	case <-time.After(5 * time.Second): // generous: two -race runs at once on 2 cores
		t.Fatal("the rail's Start was not called within 5 s")
	}
	return ""
}

// promptly runs f and fails if it has not returned within 5 s (generous:
// it takes no I/O but a lock, and the test waits on another display's).
func promptly(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s waited more than 5 s for another display's I/O", what)
	}
}

// A display whose journal write hangs (the SUCCESS screen of its payment)
// holds up no other display: the outcome of another display's payment
// reaches it, and the console can list the displays.
func TestSlowJournalWriteOfOneDisplayDoesNotDelayOthers(t *testing.T) {
	bus := newBus(t)
	rail := &handRail{bus: bus, prefix: "H", started: make(chan string, 4)}
	s, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the server's cleanup
	t.Cleanup(func() { bus.Journal().SetAppendHook(nil) })

	a := dial(t, url+"?device=A", nil)
	a.screen(ScreenAmountSelect)
	a.pay(20, "CARD")
	idA := waitID(t, rail.started)
	b := dial(t, url+"?device=B", nil)
	b.screen(ScreenAmountSelect)
	b.pay(40, "CARD")
	idB := waitID(t, rail.started)

	entered := make(chan struct{}, 1)
	bus.Journal().SetAppendHook(func(ev payment.Event) {
		if ev.Peer == "A" && ev.Kind == payment.KindMessage {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
	})
	approve(t, bus, idA)
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("display A's SUCCESS screen was never journaled")
	}
	// A's write now hangs. B's payment ends: B is shown it.
	began := time.Now()
	approve(t, bus, idB)
	b.screen(ScreenSuccess)
	t.Logf("B's SUCCESS %s after its approval was published, while A's journal write hung", time.Since(began).Round(time.Millisecond))
	promptly(t, "Displays", func() { s.Displays() })
	unblock()
	a.screen(ScreenSuccess)
}

// A display whose rail's Start hangs (up to 30 s on a real rail) holds up
// no other display: the console lists the displays, a new display is
// shown its first screen, and another display's payment runs to its end.
func TestSlowRailStartOfOneDisplayDoesNotDelayOthers(t *testing.T) {
	bus := newBus(t)
	slow := &handRail{bus: bus, prefix: "S", started: make(chan string, 4), block: make(chan struct{})}
	fast := &handRail{bus: bus, prefix: "F", started: make(chan string, 4)}
	var once sync.Once
	unblock := func() { once.Do(func() { close(slow.block) }) }
	s, url := startServer(t, bus, quick(Options{Methods: []Method{
		{Name: "SLOW", Rail: slow, RailName: payment.RailTerminal, Mode: payment.ModeCard},
		{Name: "FAST", Rail: fast, RailName: payment.RailTerminal, Mode: payment.ModeCard},
	}}))
	t.Cleanup(unblock) // runs before the server's cleanup

	a := dial(t, url+"?device=A", nil)
	a.screen(ScreenAmountSelect)
	a.pay(20, "SLOW")
	idA := waitID(t, slow.started) // A's Start now hangs

	began := time.Now()
	promptly(t, "Displays", func() { s.Displays() })
	t.Logf("Displays answered in %s while A's Start hung", time.Since(began).Round(time.Microsecond))
	c := dial(t, url, nil) // a display that names nothing: found by its address first
	c.screen(ScreenAmountSelect)
	b := dial(t, url+"?device=B", nil)
	b.screen(ScreenAmountSelect)
	b.pay(40, "FAST")
	idB := waitID(t, fast.started)
	approve(t, bus, idB)
	b.screen(ScreenSuccess)

	unblock()
	approve(t, bus, idA)
	a.screen(ScreenSuccess)
}
