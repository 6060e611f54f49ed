package screens

import (
	"context"
	"sync"
	"time"
)

// lifetime is the server's life as a context parent: done once Close has
// told the displays it is going away. It is not a Context kept in the
// server: it is made for each call (life) from the server's done channel.
//
// It implements AfterFunc, so context.WithCancel registers the child with
// it instead of starting a goroutine to watch Done: a display's reads,
// writes and jobs cost no goroutine each for their contexts.
type lifetime struct{ h *closeHooks }

func (l lifetime) Deadline() (time.Time, bool) { return time.Time{}, false }
func (l lifetime) Done() <-chan struct{}       { return l.h.done }
func (l lifetime) Value(any) any               { return nil }

func (l lifetime) Err() error {
	select {
	case <-l.h.done:
		return context.Canceled
	default:
		return nil
	}
}

// AfterFunc arranges for f to run once the server closes; stop undoes it.
// context.WithCancel calls it for each child context.
func (l lifetime) AfterFunc(f func()) (stop func() bool) { return l.h.add(f) }

// closeHooks are the functions to run when the server closes: the cancels
// of the contexts made by life that are still live.
type closeHooks struct {
	done chan struct{}

	mu     sync.Mutex // a leaf
	next   uint64
	hooks  map[uint64]func()
	closed bool
}

func newCloseHooks() *closeHooks {
	return &closeHooks{done: make(chan struct{}), hooks: map[uint64]func(){}}
}

func (h *closeHooks) add(f func()) (stop func() bool) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	id := h.next
	h.next++
	h.hooks[id] = f
	h.mu.Unlock()
	return func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.hooks[id]; !ok {
			return false
		}
		delete(h.hooks, id)
		return true
	}
}

// close closes done and runs every hook still registered, once.
func (h *closeHooks) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	hooks := h.hooks
	h.hooks = nil
	close(h.done)
	h.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

// live is how many contexts made by life are still registered (tests).
func (h *closeHooks) live() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hooks)
}
