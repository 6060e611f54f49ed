package wire

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNonceStore(t *testing.T) {
	const w = time.Minute
	t0 := time.UnixMilli(1757482370549)
	t.Run("a nonce is refused again while its message is inside the window", func(t *testing.T) {
		s := NewNonceStore(w, 0)
		if err := s.Use("a", t0, t0); err != nil {
			t.Fatal(err)
		}
		// A replay with a fresh timestamp, just before the first expires.
		if err := s.Use("a", t0.Add(w-time.Nanosecond), t0.Add(w-time.Nanosecond)); !errors.Is(err, ErrReplay) {
			t.Fatalf("Use: %v, want ErrReplay", err)
		}
	})
	t.Run("a nonce is kept until its timestamp plus the window, then evicted", func(t *testing.T) {
		s := NewNonceStore(w, 0)
		ts := t0.Add(30 * time.Second) // a POS clock ahead: kept longer
		if err := s.Use("a", ts, t0); err != nil {
			t.Fatal(err)
		}
		for now := t0; now.Before(ts.Add(w)); now = now.Add(time.Second) {
			if err := s.Use("tick"+now.String(), now, now); err != nil {
				t.Fatal(err)
			}
			if err := s.Use("a", now, now); !errors.Is(err, ErrReplay) {
				t.Fatalf("at %s after its timestamp: %v, want ErrReplay", now.Sub(ts), err)
			}
		}
		later := ts.Add(w + w/nonceSlices)
		if err := s.Use("a", later, later); err != nil {
			t.Fatalf("after expiry: %v, want it accepted again", err)
		}
	})
	t.Run("eviction forgets expired nonces and nothing else", func(t *testing.T) {
		s := NewNonceStore(w, 0)
		for i := range 100 {
			if err := s.Use(strconv.Itoa(i), t0, t0); err != nil {
				t.Fatal(err)
			}
		}
		mid := t0.Add(w / 2)
		for i := range 50 {
			if err := s.Use("late"+strconv.Itoa(i), mid, mid); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.Len(); n != 150 {
			t.Fatalf("Len = %d, want 150", n)
		}
		after := t0.Add(w + w/nonceSlices)
		if err := s.Use("x", after, after); err != nil {
			t.Fatal(err)
		}
		if n := s.Len(); n != 51 {
			t.Fatalf("Len = %d after the first hundred expired, want 51", n)
		}
		if err := s.Use("late7", after, after); !errors.Is(err, ErrReplay) {
			t.Fatalf("a live nonce was evicted: %v", err)
		}
	})
	t.Run("a full store refuses new nonces and keeps the live ones", func(t *testing.T) {
		s := NewNonceStore(w, 3)
		for i := range 3 {
			if err := s.Use(strconv.Itoa(i), t0, t0); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Use("new", t0, t0); !errors.Is(err, ErrNonceStoreFull) {
			t.Fatalf("Use: %v, want ErrNonceStoreFull", err)
		}
		if err := s.Use("1", t0, t0); !errors.Is(err, ErrReplay) {
			t.Fatalf("Use of a live nonce when full: %v, want ErrReplay", err)
		}
		after := t0.Add(2 * w)
		if err := s.Use("new", after, after); err != nil {
			t.Fatalf("after expiry there is room again: %v", err)
		}
	})
	t.Run("a timestamp outside the window is refused as stale", func(t *testing.T) {
		s := NewNonceStore(w, 0)
		for _, ts := range []time.Time{t0.Add(-w), t0.Add(w), t0.Add(-time.Hour)} {
			if err := s.Use("a", ts, t0); !errors.Is(err, ErrStale) {
				t.Fatalf("Use at %s: %v, want ErrStale", ts.Sub(t0), err)
			}
		}
		if s.Len() != 0 {
			t.Fatal("a stale nonce was recorded")
		}
	})
	t.Run("a long jump of the clock evicts everything expired in one sweep", func(t *testing.T) {
		s := NewNonceStore(w, 0)
		for i := range 1000 {
			at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
			if err := s.Use(strconv.Itoa(i), at, at); err != nil {
				t.Fatal(err)
			}
		}
		later := t0.Add(24 * time.Hour)
		if err := s.Use("x", later, later); err != nil || s.Len() != 1 {
			t.Fatalf("Use: %v, Len %d, want 1", err, s.Len())
		}
	})
	t.Run("a clock stepping back keeps replay closed", func(t *testing.T) {
		s := NewNonceStore(w, 0)
		if err := s.Use("a", t0, t0); err != nil {
			t.Fatal(err)
		}
		back := t0.Add(-30 * time.Second)
		if err := s.Use("b", back.Add(-20*time.Second), back); err != nil {
			t.Fatal(err)
		}
		if err := s.Use("a", back, back); !errors.Is(err, ErrReplay) {
			t.Fatalf("Use: %v, want ErrReplay", err)
		}
		if err := s.Use("b", t0.Add(9*time.Second), t0.Add(9*time.Second)); !errors.Is(err, ErrReplay) {
			t.Fatalf("Use of b: %v, want ErrReplay", err)
		}
	})
	t.Run("clocks before 1970 work too", func(t *testing.T) {
		s := NewNonceStore(w, 0)
		old := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.Use("a", old, old); err != nil {
			t.Fatal(err)
		}
		if err := s.Use("a", old, old.Add(time.Second)); !errors.Is(err, ErrReplay) {
			t.Fatalf("Use: %v, want ErrReplay", err)
		}
	})
	t.Run("a tiny window still works", func(t *testing.T) {
		s := NewNonceStore(10*time.Nanosecond, 0)
		if err := s.Use("a", t0, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.Use("a", t0, t0.Add(5)); !errors.Is(err, ErrReplay) {
			t.Fatalf("Use: %v, want ErrReplay", err)
		}
	})
}

func TestNonceStoreConcurrentUse(t *testing.T) {
	s := NewNonceStore(0, 0)
	t0 := time.UnixMilli(1757482370549)
	var wins atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				if err := s.Use(fmt.Sprintf("g%d-%d", g, i), now, now); err != nil {
					t.Error(err)
					return
				}
				if err := s.Use("shared", now, now); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrReplay) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("the shared nonce was accepted %d times, want once", wins.Load())
	}
}

// BenchmarkNonceStoreSteady simulates 1,000 messages a second for 10
// minutes with a fake clock, timestamps up to 0.8 s either side of now, and
// reports the most entries held: it must stay near rate × window (the hard
// bound is rate × 2 × window), never growing with the run.
func BenchmarkNonceStoreSteady(b *testing.B) {
	const (
		rate   = 1000
		window = DefaultWindow
		msgs   = rate * 600
	)
	t0 := time.UnixMilli(1757482370549)
	nonces := make([]string, msgs)
	for i := range nonces {
		nonces[i] = "n" + strconv.Itoa(i)
	}
	maxHeld := 0
	b.ReportAllocs()
	for b.Loop() {
		s := NewNonceStore(window, 0)
		for i, n := range nonces {
			now := t0.Add(time.Duration(i) * time.Second / rate)
			skew := time.Duration(i%17-8) * 100 * time.Millisecond
			if err := s.Use(n, now.Add(skew), now); err != nil {
				b.Fatal(err)
			}
			if i%100 == 0 {
				maxHeld = max(maxHeld, len(s.seen))
			}
		}
	}
	if bound := int(rate * 2 * window / time.Second); maxHeld > bound {
		b.Fatalf("held %d nonces, over rate×2×window = %d", maxHeld, bound)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*msgs), "ns/msg")
	b.ReportMetric(float64(maxHeld), "max-entries")
}
