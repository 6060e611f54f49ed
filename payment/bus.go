package payment

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// DefaultSubscriptionBuffer is the buffer of a subscription when none is
// given: enough for a burst of a few hundred events while the console draws.
const DefaultSubscriptionBuffer = 1024

// Bus is how rails report events and how the console and the customer
// screen see them. Publish writes the event to the journal first; only
// once it is on disk is it handed to subscribers, in journal order. A
// subscriber that falls behind loses events from its buffer (it is told
// how many in Event.Missed and can re-read them from the journal); it
// never blocks a rail.
type Bus struct {
	j   *Journal
	log *slog.Logger

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// NewBus returns the bus in front of j. There is one bus per journal.
func NewBus(j *Journal, log *slog.Logger) *Bus {
	if log == nil {
		log = slog.Default()
	}
	b := &Bus{j: j, log: log, subs: make(map[*Subscription]struct{})}
	j.notify = b.fanout
	return b
}

// Journal returns the journal behind the bus, for queries.
func (b *Bus) Journal() *Journal { return b.j }

// Publish journals ev and then delivers it to every subscriber. It returns
// the event as committed (with Seq). An illegal transition is logged and
// returned as an error; it is neither written nor shown. A write the disk
// refused returns ErrNotRecorded: subscribers are told at once (a
// KindUnrecorded event, not the event itself) and receive the event, with
// Retried set, once the journal's retry writes it.
func (b *Bus) Publish(ctx context.Context, ev Event) (Event, error) {
	ev, err := b.j.Append(ctx, ev)
	switch {
	case errors.Is(err, ErrNotRecorded):
		b.log.Error("journal could not write event", "txn", ev.TxnID, "kind", ev.Kind, "status", ev.Status, "err", err)
	case err != nil:
		b.log.Error("journal refused event", "txn", ev.TxnID, "kind", ev.Kind, "status", ev.Status, "err", err)
	}
	return ev, err
}

// fanout runs on the journal's writer goroutine after each commit.
func (b *Bus) fanout(evs []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		for _, ev := range evs {
			s.offer(ev)
		}
	}
}

// Subscription is a buffered feed of committed events.
type Subscription struct {
	b       *Bus
	c       chan Event
	dropped int
	once    sync.Once
}

// Subscribe returns a new subscription with a buffer of n events (n <= 0
// means DefaultSubscriptionBuffer). Call Close when done.
func (b *Bus) Subscribe(n int) *Subscription {
	if n <= 0 {
		n = DefaultSubscriptionBuffer
	}
	s := &Subscription{b: b, c: make(chan Event, n)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.c)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// C is the channel of events; it is closed by Close or when the bus closes.
func (s *Subscription) C() <-chan Event { return s.c }

// offer delivers ev without blocking; called with b.mu held.
func (s *Subscription) offer(ev Event) {
	ev.Missed = s.dropped
	select {
	case s.c <- ev:
		s.dropped = 0
	default:
		s.dropped++
	}
}

// Close ends the subscription and closes its channel.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		if _, ok := s.b.subs[s]; ok {
			delete(s.b.subs, s)
			close(s.c)
		}
	})
}

// Close ends every subscription. The journal is closed separately, after
// the rails have stopped publishing.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.c)
	}
}
