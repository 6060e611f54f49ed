package wire

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxNonces is the NonceStore's hard cap when none is given: about
// 8,000 messages a second for two minutes, far above any kiosk's traffic,
// and about 40 MB at most.
const DefaultMaxNonces = 1_000_000

// nonceSlices is how many expiry buckets one window is cut into: a nonce is
// kept at most window/nonceSlices past its expiry.
const nonceSlices = 64

// NonceStore remembers nonces until their message's timestamp has left the
// window (expiry = timestamp + window; a nonce is kept at least until then),
// so replay is never re-opened while memory stays bounded by message rate ×
// 2 × window. It has a hard cap: when full it refuses new nonces
// (ErrNonceStoreFull) rather than forgetting live ones, unlike the reference
// kiosk, which cleared its whole set past 1,000 entries.
//
// One store is shared by all connections, so a nonce replayed on another
// connection is still caught; it is safe for concurrent use.
//
// Nonces are opaque strings (the real POS sends base64, the docs UUIDs).
// The store keeps a 128-bit keyed hash of each one instead of the string, so
// recording a nonce allocates nothing and every entry has the same small
// size; with a random per-process key, two distinct nonces collide with
// probability about 2⁻¹²⁸ per pair.
type NonceStore struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	// width is the time span of one bucket, in nanoseconds.
	width int64
	seeds [2]maphash.Seed
	// seen holds the hashes of the live nonces. Each is listed in exactly
	// one bucket, which deletes it when it expires.
	seen map[nonceKey]struct{}
	// ring holds the live buckets: index i lives in ring[i mod len(ring)].
	// Live indices span at most 2 windows, so the ring never wraps onto a
	// live bucket.
	ring []nonceBucket
	// swept is the last bucket index evicted; started reports whether the
	// store has seen a first clock reading.
	swept   int64
	started bool
}

type nonceKey [2]uint64

// nonceBucket lists the nonces that expire at the end of bucket idx: the
// store evicts them all at once, which keeps eviction amortised O(1) and
// never a full wipe.
type nonceBucket struct {
	idx  int64
	keys []nonceKey
}

// NewNonceStore returns a store for messages accepted within ±window of
// now; window <= 0 means DefaultWindow and maxEntries <= 0 means
// DefaultMaxNonces. Its window should be the verifiers' window: it refuses
// (ErrStale) a timestamp outside its own window, because it could not
// remember that nonce long enough.
func NewNonceStore(window time.Duration, maxEntries int) *NonceStore {
	if window <= 0 {
		window = DefaultWindow
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxNonces
	}
	width := int64(window) / nonceSlices
	if width < 1 {
		width = 1
	}
	// Live buckets end within (now, now+2·window+width]: 2·slices+2 slots
	// cover that span with one to spare.
	n := int64(2*window)/width + 3
	return &NonceStore{
		window: window,
		max:    maxEntries,
		width:  width,
		seeds:  [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		seen:   make(map[nonceKey]struct{}),
		ring:   make([]nonceBucket, n),
	}
}

// Use records nonce for a message stamped ts, received at now. It returns
// ErrReplay if the nonce was seen and has not expired, ErrStale if ts is not
// within the window of now (the store could not keep it long enough to
// protect it), ErrNonceStoreFull at the cap; otherwise the nonce is recorded
// until ts+window. Expired entries are evicted a bucket at a time.
func (s *NonceStore) Use(nonce string, ts, now time.Time) error {
	return s.use(nonceKey{maphash.String(s.seeds[0], nonce), maphash.String(s.seeds[1], nonce)}, ts, now)
}

func (s *NonceStore) use(key nonceKey, ts, now time.Time) error {
	if d := now.Sub(ts); d >= s.window || d <= -s.window {
		return fmt.Errorf("nonce timestamp %s is %s from now, window %s: %w",
			ts.UTC().Format(time.RFC3339Nano), d, s.window, ErrStale)
	}
	nowNs := now.UnixNano()
	expiry := ts.UnixNano() + int64(s.window)
	// The bucket whose end is the first boundary at or after the expiry.
	idx := floorDiv(expiry+s.width-1, s.width)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(floorDiv(nowNs, s.width))
	if n := len(s.seen); n < s.max {
		// Insert and look up in one map operation: a key already present
		// leaves the length unchanged.
		if s.seen[key] = struct{}{}; len(s.seen) == n {
			return fmt.Errorf("nonce seen within the last %s: %w", s.window, ErrReplay)
		}
	} else if _, ok := s.seen[key]; ok {
		return fmt.Errorf("nonce seen within the last %s: %w", s.window, ErrReplay)
	} else {
		return fmt.Errorf("%d live nonces: %w", n, ErrNonceStoreFull)
	}
	if idx <= s.swept {
		// The clock stepped back: keep it in the next bucket to be swept,
		// which ends after its expiry anyway.
		idx = s.swept + 1
	}
	b := s.slot(idx)
	if b.idx != idx {
		s.drop(b)
		b.idx = idx
	}
	b.keys = append(b.keys, key)
	return nil
}

// evict drops every bucket that ended at or before bucket cur's start.
func (s *NonceStore) evict(cur int64) {
	if !s.started {
		s.started, s.swept = true, cur
		return
	}
	if cur-s.swept > int64(len(s.ring)) {
		// A long gap: sweep each slot once instead of every index.
		for i := range s.ring {
			if s.ring[i].idx <= cur {
				s.drop(&s.ring[i])
			}
		}
		s.swept = cur
		return
	}
	for s.swept < cur {
		s.swept++
		if b := s.slot(s.swept); b.idx == s.swept {
			s.drop(b)
		}
	}
}

// slot returns the ring slot of bucket index idx (which may be negative
// for clocks before 1970).
func (s *NonceStore) slot(idx int64) *nonceBucket {
	n := int64(len(s.ring))
	return &s.ring[(idx%n+n)%n]
}

// drop forgets the bucket's nonces and keeps the slice for reuse. A nonce
// is only recorded while absent from seen, so no other bucket lists it.
func (s *NonceStore) drop(b *nonceBucket) {
	for _, k := range b.keys {
		delete(s.seen, k)
	}
	clear(b.keys)
	b.keys = b.keys[:0]
}

// Len returns how many nonces the store holds, expired ones not yet
// evicted included: for metrics and tests.
func (s *NonceStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
