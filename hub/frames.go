package hub

import (
	"context"
	"sync"
)

// frameGate bounds the kiosks' frames a replica holds at once: a link
// takes a token once a frame's first bytes have come and before it reads
// the rest, and gives it back once the frame is handled (a batch: once
// stored). The other links' frames wait unread, in the connections'
// buffers, not in the hub's memory.
type frameGate struct {
	tokens chan struct{}

	mu            sync.Mutex
	held, waiting int
	peak          int
	hook          func(held, waiting int) // tests: told every change, under mu
}

func newFrameGate(n int) *frameGate { return &frameGate{tokens: make(chan struct{}, n)} }

func (g *frameGate) count(held, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held += held
	g.waiting += waiting
	g.peak = max(g.peak, g.held)
	if g.hook != nil {
		g.hook(g.held, g.waiting)
	}
}

// acquire takes a token, waiting for one while ctx lasts.
func (g *frameGate) acquire(ctx context.Context) error {
	g.count(0, 1)
	select {
	case g.tokens <- struct{}{}:
		g.count(1, -1)
		return nil
	case <-ctx.Done():
		g.count(0, -1)
		return ctx.Err()
	}
}

// release gives a token back. It is uncounted first: a link that takes
// it at once is counted after, so the count never exceeds the tokens.
func (g *frameGate) release() {
	g.count(-1, 0)
	<-g.tokens
}
