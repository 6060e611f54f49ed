package termsim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/termsim"
	"paydesk/terminal/termtest"
)

// The Concert link's failure cases, end to end: the driver on
// a real serial port (go.bug.st/serial opening the simulator's
// pseudo-terminal slave through a symbolic link, as /dev/serial/by-id
// names a USB terminal) and the simulator on the master, each case
// chosen by its amount. The same cases run against a scripted byte
// stream in terminal/failures_test.go.

// ptyTimers are short enough to keep the suite quick and long enough for
// a loaded two-core machine under -race.
var ptyTimers = terminal.Timers{Ack: 800 * time.Millisecond, InterByte: 800 * time.Millisecond,
	ENQPause: 50 * time.Millisecond, Result: 2500 * time.Millisecond, EOT: 800 * time.Millisecond}

// rig is termtest's rig on a pseudo-terminal, reporting to the running
// subtest.
type rig struct {
	*termtest.Rig
	t   *testing.T
	sim *termsim.Sim
	d   *terminal.Driver
	log *termtest.SyncBuffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	tr := termtest.New(t, termtest.Options{PTY: true, Timers: ptyTimers, Sim: termsim.Options{Think: 30 * time.Millisecond,
		Timeout: 2 * time.Second, SlowDelay: time.Second, LateDelay: 500 * time.Millisecond, BusyFor: 4 * time.Second,
		HangUpFor: 300 * time.Millisecond}})
	return &rig{Rig: tr, t: t, sim: tr.Sim, d: tr.Driver, log: tr.Log}
}

// run runs a subtest with the rig reporting to it.
func (r *rig) run(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(sub *testing.T) {
		r.t = sub
		defer func() { r.t = t }()
		f(sub)
	})
}

func (r *rig) waitHealthy() { r.t.Helper(); r.WaitHealthy(r.t) }

func (r *rig) until(what string, d time.Duration, ok func() bool) {
	r.t.Helper()
	termtest.WaitFor(r.t, d, what, ok)
}

func (r *rig) start(minor int64) string { r.t.Helper(); return r.Start(r.t, minor) }

// settle waits until the driver has let go of id and returns its record.
func (r *rig) settle(id string) payment.Txn { r.t.Helper(); return r.Settle(r.t, id) }

func (r *rig) txn(id string) payment.Txn { r.t.Helper(); return r.Txn(r.t, id) }

func (r *rig) history(id string) []payment.Event { r.t.Helper(); return r.History(r.t, id) }

func (r *rig) pay(minor int64) payment.Txn {
	r.t.Helper()
	return r.settle(r.start(minor))
}

func has(evs []payment.Event, kind payment.Kind, sub string) bool {
	for _, ev := range evs {
		if ev.Kind == kind && strings.Contains(ev.Detail, sub) {
			return true
		}
	}
	return false
}

func hasFlag(tx payment.Txn, flag string) bool {
	for _, f := range tx.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

func want(t *testing.T, tx payment.Txn, st payment.Status) {
	t.Helper()
	if tx.Status != st {
		t.Fatalf("%s is %s (%s), want %s", tx.ID, tx.Status, tx.Result.Reason, st)
	}
}

func TestFailureCasesOverPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("pty suite takes ~40 s")
	}
	r := newRig(t)

	r.run(t, "approved", func(t *testing.T) {
		tx := r.pay(1250)
		want(t, tx, payment.StatusApproved)
		if tx.Result.Card != "1234" {
			t.Errorf("card %q, want the last four 1234", tx.Result.Card)
		}
	})
	// 1. NAK once → resend → success; NAK every time → link error.
	r.run(t, "1 NAK once", func(t *testing.T) {
		before := r.sim.Stats().Requests
		want(t, r.pay(604), payment.StatusApproved)
		if n := r.sim.Stats().Requests - before; n != 2 {
			t.Errorf("the terminal got %d copies of the request, want 2 (one NAKed, one resent)", n)
		}
	})
	r.run(t, "1 NAK always", func(t *testing.T) {
		tx := r.pay(605)
		want(t, tx, payment.StatusFailed)
		if !strings.Contains(tx.Result.Reason, "NAK 3 times") {
			t.Errorf("reason %q does not say the request was NAKed 3 times", tx.Result.Reason)
		}
	})
	// 3. No ACK after the request frame: unknown, still listening; the
	// terminal's later answer resolves it.
	r.run(t, "3 no ACK to the frame", func(t *testing.T) {
		id := r.start(606)
		tx := r.settle(id)
		want(t, tx, payment.StatusApproved)
		evs := r.history(id)
		if !has(evs, payment.KindTransition, "may have started the payment") {
			t.Errorf("no unknown transition saying the terminal may have started: %v", evs)
		}
		if !has(evs, payment.KindTransition, "after the request went unacknowledged") {
			t.Errorf("the approval does not say it came after an unacknowledged request")
		}
	})
	// 4. Bad LRC: NAK and accept the resend; bad every time: give up, unknown.
	r.run(t, "4 corrupt LRC once", func(t *testing.T) {
		before := r.sim.Stats().NAKsRecv
		want(t, r.pay(607), payment.StatusApproved)
		if n := r.sim.Stats().NAKsRecv - before; n != 1 {
			t.Errorf("the terminal got %d NAKs, want 1", n)
		}
	})
	r.run(t, "4 corrupt LRC always", func(t *testing.T) {
		tx := r.pay(608)
		want(t, tx, payment.StatusUnknown)
		if !strings.Contains(tx.Result.Reason, "bad too many times") {
			t.Errorf("reason %q", tx.Result.Reason)
		}
	})
	// 5. Requests whose LRC is a control byte round-trip.
	for _, minor := range []int64{100, 102, 103, 104, 105} {
		r.run(t, fmt.Sprintf("5 LRC edge %d", minor), func(t *testing.T) {
			want(t, r.pay(minor), payment.StatusApproved)
		})
	}
	// 6. Noise before STX and between control bytes; a split frame; a
	// partial frame then silence.
	r.run(t, "6 garbage", func(t *testing.T) { want(t, r.pay(609), payment.StatusApproved) })
	r.run(t, "6 one byte per write", func(t *testing.T) { want(t, r.pay(621), payment.StatusApproved) })
	r.run(t, "6 partial then silence", func(t *testing.T) {
		before := r.sim.Stats().NAKsRecv
		want(t, r.pay(622), payment.StatusApproved)
		if n := r.sim.Stats().NAKsRecv - before; n != 1 {
			t.Errorf("the terminal got %d NAKs for its cut frame, want 1", n)
		}
	})
	// 7. No answer: timed out; a late answer is ACKed and journaled.
	r.run(t, "7 never answers", func(t *testing.T) { want(t, r.pay(602), payment.StatusTimedOut) })
	r.run(t, "7 late answer", func(t *testing.T) {
		// The answer is held until the driver has timed out: a delay
		// alone raced the driver's result timeout on a loaded machine.
		r.sim.HoldAnswers(true)
		id := r.start(614)
		want(t, r.settle(id), payment.StatusTimedOut)
		r.sim.HoldAnswers(false)
		r.until("the late answer journaled", 5*time.Second, func() bool {
			return hasFlag(r.txn(id), payment.FlagLateResult) || has(r.history(id), payment.KindLate, "late answer")
		})
		if tx := r.txn(id); tx.Status != payment.StatusTimedOut {
			t.Errorf("a late answer changed a final status to %s", tx.Status)
		}
	})
	// 8. Missing final EOT: result kept, warning.
	r.run(t, "8 missing EOT", func(t *testing.T) {
		id := r.start(610)
		want(t, r.settle(id), payment.StatusApproved)
		r.until("the missing-EOT notice", 3*time.Second, func() bool { return has(r.history(id), payment.KindNotice, "no EOT") })
	})
	// 9. Duplicate answer: ACKed again, recorded once.
	r.run(t, "9 duplicate", func(t *testing.T) {
		id := r.start(611)
		want(t, r.settle(id), payment.StatusApproved)
		r.until("the duplicate noted", 3*time.Second, func() bool {
			evs := r.history(id)
			return has(evs, payment.KindMessage, "duplicate answer") || has(evs, payment.KindStep, "resent its answer")
		})
		n := 0
		for _, ev := range r.history(id) {
			if ev.Kind == payment.KindTransition && ev.Status == payment.StatusApproved {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d approvals journaled, want 1", n)
		}
	})
	// 10. Collision: the terminal's held answer arrives on our next ENQ;
	// we yield, take it, then send our request.
	r.run(t, "10 collision", func(t *testing.T) {
		held := r.start(615)
		want(t, r.settle(held), payment.StatusTimedOut)
		next := r.pay(1250)
		want(t, next, payment.StatusApproved)
		r.until("the held answer journaled", 3*time.Second, func() bool { return has(r.history(held), payment.KindLate, "late answer") })
		if !has(r.history(next.ID), payment.KindStep, "collision") {
			t.Errorf("the next payment's steps do not mention the collision")
		}
	})
	// 12. Echo mismatch: flagged, not approved.
	r.run(t, "12 wrong amount", func(t *testing.T) {
		tx := r.pay(619)
		want(t, tx, payment.StatusUnknown)
		if !hasFlag(tx, payment.FlagAmountMismatch) {
			t.Errorf("flags %v lack %s", tx.Flags, payment.FlagAmountMismatch)
		}
	})
	r.run(t, "12 wrong private data", func(t *testing.T) {
		tx := r.pay(620)
		want(t, tx, payment.StatusUnknown)
		if !strings.Contains(tx.Result.Reason, "private data") {
			t.Errorf("reason %q does not name the private data", tx.Result.Reason)
		}
	})
	// 13. Short answer, refused with an empty report, cheque.
	r.run(t, "13 short answer", func(t *testing.T) {
		tx := r.pay(616)
		want(t, tx, payment.StatusApproved)
		if tx.Result.Card != "" {
			t.Errorf("card %q from a short answer", tx.Result.Card)
		}
	})
	r.run(t, "13 refused", func(t *testing.T) { want(t, r.pay(601), payment.StatusDeclined) })
	r.run(t, "13 abandoned, empty report", func(t *testing.T) { want(t, r.pay(617), payment.StatusDeclined) })
	r.run(t, "13 cheque", func(t *testing.T) {
		tx := r.pay(618)
		want(t, tx, payment.StatusApproved)
		if !has(r.history(tx.ID), payment.KindTransition, "cheque") {
			t.Errorf("the approval does not say it was a cheque")
		}
	})
	// 14. Cancel after the terminal accepted: requested, then the
	// terminal's answer decides.
	r.run(t, "14 cancel after ACK", func(t *testing.T) {
		// The terminal's answer (abandoned) is held until the cancel was
		// requested: a think delay alone raced the cancel under load.
		r.sim.HoldAnswers(true)
		id := r.start(624)
		r.until("the terminal accepting", 5*time.Second, func() bool { f, _ := r.d.Current(); return f.ID == id && f.Accepted })
		if err := r.d.Cancel(id); err != nil {
			t.Fatal(err)
		}
		r.until("the cancel requested", 5*time.Second, func() bool { return has(r.history(id), payment.KindStep, "cancel requested") })
		r.sim.HoldAnswers(false)
		tx := r.settle(id)
		want(t, tx, payment.StatusCancelled)
		if !has(r.history(id), payment.KindStep, "cancel requested") {
			t.Errorf("no 'cancel requested' step")
		}
	})
	// A card number the terminal sends in full never reaches the log or
	// the journal.
	r.run(t, "unmasked PAN", func(t *testing.T) {
		tx := r.pay(623)
		want(t, tx, payment.StatusApproved)
		if strings.Contains(r.log.String(), termsim.UnmaskedPAN) {
			t.Errorf("the log holds the full card number")
		}
		for _, ev := range r.history(tx.ID) {
			if bytes.Contains(ev.Raw, []byte(termsim.UnmaskedPAN)) || strings.Contains(ev.Detail, termsim.UnmaskedPAN) {
				t.Errorf("journal event %s holds the full card number", ev.Kind)
			}
		}
	})
	// 2 and 14: a busy terminal ignores ENQ: a cancel before it answers
	// ends the session; without a cancel, "not ready".
	r.run(t, "2 busy terminal, 14 cancel before ACK", func(t *testing.T) {
		want(t, r.pay(613), payment.StatusApproved) // then busy for 4 s
		r.until("the terminal busy", 5*time.Second, r.sim.Busy)
		// Busy for as long as the test needs, not the 4 s a loaded
		// machine may spend before the last ENQ: the end is set below.
		r.sim.SetBusy(time.Minute)
		ignored := r.sim.Stats().ENQIgnore
		id := r.start(1250)
		r.until("the driver's ENQ ignored", 5*time.Second, func() bool { return r.sim.Stats().ENQIgnore > ignored })
		if err := r.d.Cancel(id); err != nil {
			t.Fatal(err)
		}
		tx := r.settle(id)
		want(t, tx, payment.StatusCancelled)
		if !strings.Contains(tx.Result.Reason, "EOT") {
			t.Errorf("reason %q does not say the session ended with EOT", tx.Result.Reason)
		}
		tx = r.pay(1250)
		want(t, tx, payment.StatusFailed)
		if !strings.Contains(tx.Result.Reason, "not ready") {
			t.Errorf("reason %q does not say the terminal is not ready", tx.Result.Reason)
		}
		r.sim.SetBusy(0)
		r.until("the terminal free again", 10*time.Second, func() bool {
			h, err := r.d.Probe(context.Background())
			return err == nil && h.State == terminal.HealthOK
		})
	})
	// 11. Cable unplugged mid-transaction: unknown, port reopened, the
	// next payment goes through.
	r.run(t, "11 hang-up", func(t *testing.T) {
		tx := r.pay(612)
		want(t, tx, payment.StatusUnknown)
		if !strings.Contains(tx.Result.Reason, "port failed") {
			t.Errorf("reason %q", tx.Result.Reason)
		}
		r.waitHealthy()
		var id string
		r.until("a payment accepted after the reopen", 10*time.Second, func() bool {
			var err error
			id, err = r.d.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: 1250, Currency: "EUR"}})
			if err != nil && !errors.Is(err, payment.ErrUnavailable) {
				t.Fatalf("start after the reopen: %v", err)
			}
			return err == nil
		})
		want(t, r.settle(id), payment.StatusApproved)
	})
	// 15. Input validation happens before anything is sent.
	r.run(t, "15 input", func(t *testing.T) {
		for _, m := range []payment.Money{{Minor: 0, Currency: "EUR"}, {Minor: 100_000_000, Currency: "EUR"}, {Minor: 100, Currency: "XXX"}, {Minor: -5, Currency: "EUR"}} {
			if id, err := r.d.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: m}); err == nil {
				t.Errorf("Start(%v) = %s, want an error", m, id)
			}
		}
		if _, err := r.d.Start(context.Background(), payment.Request{Mode: payment.ModeSTKPush, Amount: payment.Money{Minor: 100, Currency: "EUR"}}); err == nil {
			t.Errorf("the terminal took an M-Pesa payment")
		}
	})
}
