package journaltest

import (
	"errors"
	"sync/atomic"

	"paydesk/payment"
)

// ErrDiskFull stands for what SQLite says when the disk fills.
var ErrDiskFull = errors.New("database or disk is full")

// FillAfterSent fills j's disk as soon as a request has gone out: the
// sent transition is written, nothing after it is (each write fails with
// ErrDiskFull, as the journal's retries do), until spaceBack is called.
// The consoles' tests use it to show what the operator sees when a
// payment's outcome cannot be recorded.
func FillAfterSent(j *payment.Journal) (spaceBack func()) {
	var full, back atomic.Bool
	j.SetWriteFault(func(evs []payment.Event) error {
		if full.Load() && !back.Load() {
			return ErrDiskFull
		}
		for _, ev := range evs {
			if ev.Kind == payment.KindTransition && ev.Status == payment.StatusSent {
				full.Store(true)
			}
		}
		return nil
	})
	return func() { back.Store(true) }
}
