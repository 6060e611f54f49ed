package hub

import (
	"context"
	"sync"
	"testing"
)

// TestFrameGateNeverCountsMoreThanItsTokens: the count of frames held (the
// figure TestFramesHeldAreBounded checks) never exceeds the tokens, even
// while one link gives its token back as another takes it. Before, a token
// was given back before it was uncounted, so the next link could be
// counted first: "the hub held 4 frames at once; the bound is 3", with
// three held.
func TestFrameGateNeverCountsMoreThanItsTokens(t *testing.T) {
	const bound = 2
	g := newFrameGate(bound)
	var worst int
	g.hook = func(held, _ int) { worst = max(worst, held) } // under g.mu
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5000 {
				if err := g.acquire(context.Background()); err != nil {
					t.Error(err)
					return
				}
				g.release()
			}
		}()
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if worst > bound || g.peak > bound {
		t.Fatalf("counted %d held at once (peak %d) with %d tokens", worst, g.peak, bound)
	}
	if g.held != 0 || g.waiting != 0 {
		t.Fatalf("after every release: held %d, waiting %d", g.held, g.waiting)
	}
}
