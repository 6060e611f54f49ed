package protocol

import (
	"errors"
	"paydesk/protocol/wire"
	"sync"
	"time"
)

// Rejections (and refused connections) are journaled and logged at a
// bounded rate: the first RejectBurst of each kind (each sentinel error) on
// a connection in full, then one line per RejectInterval with how many
// more there were.
const (
	RejectBurst    = 3
	RejectInterval = 10 * time.Second
)

// limiter lets the first burst reports through in full and counts the
// rest, reporting the count once per interval (and when stopped). Both
// kinds of report run on their own goroutine, so the caller (a connection's
// reader, the accept loop) never waits for the journal.
type limiter struct {
	burst    int
	interval time.Duration
	// full reports one event in full; summary reports n more since the
	// time given, the last of them described by last.
	full    func(r report)
	summary func(n int, since time.Time, last report)

	mu      sync.Mutex
	sent    map[error]int // reports made in full, per kind
	n       int
	since   time.Time
	last    report
	timer   *time.Timer
	stopped bool
	wg      sync.WaitGroup
}

// report is one thing to report: a reason and what it concerns.
type report struct {
	kind   error // the sentinel error, for the burst of each kind
	reason string
	txnID  string
	raw    []byte
	at     time.Time
}

func newLimiter(burst int, interval time.Duration, full func(report), summary func(int, time.Time, report)) *limiter {
	return &limiter{burst: burst, interval: interval, full: full, summary: summary, sent: make(map[error]int)}
}

// add reports r in full while its kind is under the burst, else counts it.
func (l *limiter) add(r report) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	if l.sent[r.kind] < l.burst {
		l.sent[r.kind]++
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.full(r)
		}()
		return
	}
	if l.n == 0 {
		l.since = r.at
	}
	l.n++
	l.last = r
	if l.timer == nil {
		l.wg.Add(1)
		l.timer = time.AfterFunc(l.interval, l.tick)
	}
}

// tick reports the count of the interval that just ended.
func (l *limiter) tick() {
	defer l.wg.Done()
	l.mu.Lock()
	l.timer = nil
	n, since, last := l.n, l.since, l.last
	l.n, l.last = 0, report{}
	l.mu.Unlock()
	if n > 0 {
		l.summary(n, since, last)
	}
}

// stop reports what is still counted and waits for every report to be
// made; later adds are dropped.
func (l *limiter) stop() {
	l.mu.Lock()
	l.stopped = true
	if l.timer != nil && l.timer.Stop() {
		l.timer = nil
		l.wg.Done()
	}
	n, since, last := l.n, l.since, l.last
	l.n = 0
	l.mu.Unlock()
	if n > 0 {
		l.summary(n, since, last)
	}
	l.wg.Wait()
}

// sentinels are the kinds of refusal, each with its own burst.
var sentinels = []error{wire.ErrFrameTooLarge, wire.ErrMalformedJSON, wire.ErrBadEnvelope, wire.ErrBadSignature, wire.ErrStale, wire.ErrReplay,
	wire.ErrMissingField, wire.ErrBadAmount, wire.ErrNonceStoreFull, ErrWrongPOS, ErrPOSIDTaken, ErrUnknownTxn}

// kindOf returns the sentinel err wraps, or nil.
func kindOf(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}
