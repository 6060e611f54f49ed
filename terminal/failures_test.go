package terminal

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal/concert"
)

// The Concert link's failure cases (NAK, bad LRC, silence, noise, missing
// EOT, collision, unplug, …) against a scripted byte
// stream: the test plays the terminal byte by byte on a fake port and
// checks every byte the driver writes. The same cases run over a real
// pseudo-terminal against the simulator in termsim/sim_test.go.

// corrupt returns the frame of data with a wrong LRC.
func corrupt(data []byte) []byte {
	f := concert.Frame(data)
	f[len(f)-1] ^= 0x01
	return f
}

// accept plays the terminal taking a payment and returns its request.
func accept(h *harness, minor int64) (string, concert.Request) {
	h.t.Helper()
	id := h.start(payment.ModeCard, minor)
	return id, h.term().request()
}

func TestCase1NAK(t *testing.T) {
	t.Run("once", func(t *testing.T) {
		h := newHarness(t, nil)
		id := h.start(payment.ModeCard, 1250)
		m := h.term()
		m.expect(concert.ENQ)
		m.send(concert.ACK)
		first := m.frame()
		m.send(concert.NAK)
		again := m.frame()
		if !bytes.Equal(first, again) {
			t.Fatalf("resent frame %q differs from the first %q", again, first)
		}
		m.send(concert.ACK)
		m.expect(concert.EOT)
		q, _ := concert.ParseRequest(again)
		m.answer(reply(t, q, '0', true), true)
		if tx := h.final(id); tx.Status != payment.StatusApproved {
			t.Fatalf("status %s, want approved", tx.Status)
		}
		if !hasDetail(h.history(id), payment.KindStep, "NAKed the request (1/3)") {
			t.Errorf("no step says the request was NAKed once")
		}
	})
	t.Run("three times", func(t *testing.T) {
		h := newHarness(t, nil)
		id := h.start(payment.ModeCard, 1250)
		m := h.term()
		m.expect(concert.ENQ)
		m.send(concert.ACK)
		for range 3 {
			m.frame()
			m.send(concert.NAK)
		}
		m.expect(concert.EOT)
		tx := h.final(id)
		if tx.Status != payment.StatusFailed || !strings.Contains(tx.Result.Reason, "NAK 3 times") {
			t.Fatalf("status %s (%s), want failed after 3 NAKs", tx.Status, tx.Result.Reason)
		}
		m.quiet(200 * time.Millisecond)
	})
}

func TestCase2NoACKToENQ(t *testing.T) {
	h := newHarness(t, nil)
	id := h.start(payment.ModeCard, 1250)
	m := h.term()
	for range 3 {
		m.expect(concert.ENQ)
		m.expect(concert.EOT) // after the ACK timeout
	}
	tx := h.final(id)
	if tx.Status != payment.StatusFailed || !strings.Contains(tx.Result.Reason, "not ready") {
		t.Fatalf("status %s (%s), want failed: not ready", tx.Status, tx.Result.Reason)
	}
	wantStatuses(t, h.history(id), payment.StatusCreated, payment.StatusFailed)
	if h.d.Health().State != HealthNoAnswer {
		t.Errorf("health %s, want %s", h.d.Health().State, HealthNoAnswer)
	}
}

func TestCase3NoACKToFrame(t *testing.T) {
	h := newHarness(t, nil)
	id := h.start(payment.ModeCard, 1250)
	m := h.term()
	m.expect(concert.ENQ)
	m.send(concert.ACK)
	var data []byte
	for range 3 {
		data = m.frame() // and say nothing
	}
	m.expect(concert.EOT)
	h.status(id, payment.StatusUnknown)
	// The terminal had taken it after all: its answer resolves the payment.
	q, _ := concert.ParseRequest(data)
	m.answer(reply(t, q, '0', true), true)
	tx := h.final(id)
	if tx.Status != payment.StatusApproved {
		t.Fatalf("status %s, want approved by the answer that came", tx.Status)
	}
	wantStatuses(t, h.history(id), payment.StatusCreated, payment.StatusSent, payment.StatusUnknown, payment.StatusApproved)
}

func TestCase4BadLRC(t *testing.T) {
	t.Run("once", func(t *testing.T) {
		h := newHarness(t, nil)
		id, q := accept(h, 1250)
		m := h.term()
		ans := reply(t, q, '0', true)
		m.send(concert.ENQ)
		m.expect(concert.ACK)
		m.send(corrupt(ans)...)
		m.expect(concert.NAK)
		m.send(concert.Frame(ans)...)
		m.expect(concert.ACK)
		m.send(concert.EOT)
		if tx := h.final(id); tx.Status != payment.StatusApproved {
			t.Fatalf("status %s, want approved", tx.Status)
		}
	})
	t.Run("three bad copies", func(t *testing.T) {
		h := newHarness(t, nil)
		id, q := accept(h, 1250)
		m := h.term()
		ans := reply(t, q, '0', true)
		m.send(concert.ENQ)
		m.expect(concert.ACK)
		// The Concert link rule: every bad copy is
		// NAKed, three NAKs in all, and then EOT ends the session.
		m.send(corrupt(ans)...)
		m.expect(concert.NAK)
		m.send(corrupt(ans)...)
		m.expect(concert.NAK)
		m.send(corrupt(ans)...)
		m.expect(concert.NAK, concert.EOT)
		tx := h.status(id, payment.StatusUnknown)
		if !strings.Contains(tx.Result.Reason, "bad too many times") {
			t.Fatalf("status %s (%s), want unknown: gave up", tx.Status, tx.Result.Reason)
		}
		if n := kinds(h.history(id))[payment.KindRejected]; n != 3 {
			t.Errorf("%d rejections journaled, want 3", n)
		}
		// A terminal following the same rule ends its side with EOT too:
		// the end of a session, not noise.
		m.send(concert.EOT)
		h.waitFor("the terminal's EOT taken while idle", func(payment.Event) bool {
			return strings.Contains(h.logs.String(), "EOT from the terminal while idle")
		})
		if strings.Contains(h.logs.String(), "unexpected byte(s) on the line while idle") {
			t.Errorf("the terminal's EOT was rejected as noise")
		}
	})
}

func TestCase5ControlByteLRC(t *testing.T) {
	// A fixed clock makes the private references known in advance
	// (base 36 of the time in ms), so the test can pick, for each control
	// byte, a clock and an amount whose request frame has it as LRC, and a
	// card report whose answer frame has it too.
	var mu sync.Mutex
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	h := newHarness(t, func(o *Options) {
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
	})
	for _, lrc := range []byte{concert.STX, concert.ETX, concert.EOT, concert.ENQ, concert.ACK} {
		// Move the clock on until an amount gives the LRC wanted for the
		// request, and a card report gives it for the answer.
		var minor int64
		var ans []byte
		mu.Lock()
		for k := 0; k < 2000 && ans == nil; k++ {
			at = at.Add(1297 * time.Millisecond) // moves several characters of the reference
			ref := strings.ToUpper(strconv.FormatInt(at.UnixMilli(), 36))
			ref = strings.Repeat("0", 10-len(ref)) + ref
			for a := int64(100); a < 2000 && ans == nil; a++ {
				q := concert.Request{POS: 1, Amount: a, FullAnswer: true, Type: concert.Debit, Currency: "978", Private: ref}
				if data, err := q.Encode(); err != nil || concert.LRC(data) != lrc {
					continue
				}
				minor, ans = a, controlAnswer(q, lrc)
			}
		}
		mu.Unlock()
		if ans == nil {
			t.Fatalf("no clock and amount give a request and an answer LRC of 0x%02X", lrc)
		}
		id := h.start(payment.ModeCard, minor)
		m := h.term()
		m.expect(concert.ENQ)
		m.send(concert.ACK)
		data := m.frame() // checks the byte after ETX is the LRC
		if got := concert.LRC(data); got != lrc {
			t.Fatalf("%d: request LRC 0x%02X, want 0x%02X", minor, got, lrc)
		}
		m.send(concert.ACK)
		m.expect(concert.EOT)
		m.answer(ans, true)
		if tx := h.final(id); tx.Status != payment.StatusApproved {
			t.Fatalf("%d: status %s, want approved", minor, tx.Status)
		}
		h.idle()
	}
}

// controlAnswer is an approval of q whose LRC is lrc, or nil. Only the
// card report is free: two of its masked characters are chosen for the
// LRC (with digits, X and an odd number of padding spaces alone the XOR
// of the report can never reach a control byte).
func controlAnswer(q concert.Request, lrc byte) []byte {
	for c1 := byte(0x21); c1 < 0x7F; c1++ {
		for c2 := byte(0x21); c2 < 0x7F; c2++ {
			a := concert.Answer{POS: q.POS, Status: '0', Amount: q.Amount, Mode: '1', Currency: q.Currency, Private: q.Private,
				Report: "497010XXXX" + string([]byte{c1, c2}) + "1234"}
			if b, err := a.Encode(true); err == nil && concert.LRC(b) == lrc {
				return b
			}
		}
	}
	return nil
}

func TestCase6Noise(t *testing.T) {
	t.Run("noise and a split frame", func(t *testing.T) {
		h := newHarness(t, nil)
		id, q := accept(h, 1250)
		m := h.term()
		m.send(0x00, 0xFF, concert.ENQ) // noise and a control byte in one read
		m.expect(concert.ACK)
		m.send('z', 0x7F) // noise before STX
		for _, c := range concert.Frame(reply(t, q, '0', true)) {
			m.send(c) // one byte per read
		}
		m.expect(concert.ACK)
		m.send(concert.EOT)
		if tx := h.final(id); tx.Status != payment.StatusApproved {
			t.Fatalf("status %s, want approved", tx.Status)
		}
	})
	t.Run("partial frame then silence", func(t *testing.T) {
		h := newHarness(t, nil)
		id, q := accept(h, 1250)
		m := h.term()
		ans := concert.Frame(reply(t, q, '0', true))
		m.send(concert.ENQ)
		m.expect(concert.ACK)
		m.send(ans[:30]...)
		m.expect(concert.NAK)               // after the inter-byte timeout
		m.send(append(ans, concert.EOT)...) // the frame and the EOT in one read
		m.expect(concert.ACK)
		if tx := h.final(id); tx.Status != payment.StatusApproved {
			t.Fatalf("status %s, want approved", tx.Status)
		}
		if hasDetail(h.history(id), payment.KindNotice, "no EOT") {
			t.Errorf("the EOT in the frame's read was missed")
		}
	})
}

func TestCase7LateAnswer(t *testing.T) {
	h := newHarness(t, nil)
	id, q := accept(h, 1250)
	tx := h.final(id)
	if tx.Status != payment.StatusTimedOut {
		t.Fatalf("status %s, want timed out", tx.Status)
	}
	h.term().answer(reply(t, q, '0', true), true) // ACKed, not lost
	h.waitFor("the late answer", func(ev payment.Event) bool { return ev.TxnID == id && ev.Kind == payment.KindLate })
	if tx := h.txn(id); tx.Status != payment.StatusTimedOut {
		t.Errorf("a late answer turned a final %s into %s", payment.StatusTimedOut, tx.Status)
	}
}

func TestCase8MissingEOT(t *testing.T) {
	h := newHarness(t, nil)
	id, q := accept(h, 1250)
	h.term().answer(reply(t, q, '0', true), false)
	if tx := h.final(id); tx.Status != payment.StatusApproved {
		t.Fatalf("status %s, want approved", tx.Status)
	}
	h.waitFor("the missing-EOT notice", func(ev payment.Event) bool {
		return ev.TxnID == id && ev.Kind == payment.KindNotice && strings.Contains(ev.Detail, "no EOT")
	})
	if !strings.Contains(h.logs.String(), "no EOT from the terminal") {
		t.Errorf("no warning logged")
	}
}

func TestCase9Duplicate(t *testing.T) {
	h := newHarness(t, nil)
	id, q := accept(h, 1250)
	m := h.term()
	ans := concert.Frame(reply(t, q, '0', true))
	m.send(concert.ENQ)
	m.expect(concert.ACK)
	m.send(ans...)
	m.expect(concert.ACK)
	m.send(ans...) // our ACK was "lost"
	m.expect(concert.ACK)
	m.send(concert.EOT)
	h.final(id)
	h.waitFor("the resend noted", func(ev payment.Event) bool {
		return ev.TxnID == id && ev.Kind == payment.KindStep && strings.Contains(ev.Detail, "resent its answer")
	})
	// And again in a session of its own: ACKed, logged, not delivered.
	m.answer(reply(t, q, '0', true), true)
	h.waitFor("the second resend logged", func(payment.Event) bool {
		return strings.Count(h.logs.String(), "resent its answer") >= 2
	})
	wantStatuses(t, h.history(id), payment.StatusCreated, payment.StatusSent, payment.StatusAcknowledged, payment.StatusApproved)
}

func TestCase10Collision(t *testing.T) {
	h := newHarness(t, nil)
	old, oq := accept(h, 700)
	h.final(old) // timed out
	id := h.start(payment.ModeCard, 1250)
	m := h.term()
	m.expect(concert.ENQ)
	m.send(concert.ENQ) // the terminal wants to send too
	m.expect(concert.ACK)
	m.send(concert.Frame(reply(t, oq, '0', true))...)
	m.expect(concert.ACK)
	m.send(concert.EOT)
	q := m.request() // the driver starts its own session again
	m.answer(reply(t, q, '0', true), true)
	if tx := h.final(id); tx.Status != payment.StatusApproved {
		t.Fatalf("status %s, want approved", tx.Status)
	}
	if !slicesHasKind(h.history(old), payment.KindLate) {
		t.Errorf("the answer received in the collision was not journaled on %s", old)
	}
	if !hasDetail(h.history(id), payment.KindStep, "collision") {
		t.Errorf("no step says there was a collision")
	}
}

func slicesHasKind(evs []payment.Event, k payment.Kind) bool { return kinds(evs)[k] > 0 }

func TestCase11Unplugged(t *testing.T) {
	h := newHarness(t, nil)
	id, _ := accept(h, 1250)
	gone := h.cur
	h.plug() // the cable comes back as a new port
	gone.unplug()
	tx := h.status(id, payment.StatusUnknown)
	if !strings.Contains(tx.Result.Reason, "port failed") {
		t.Fatalf("status %s (%s), want unknown: port failed", tx.Status, tx.Result.Reason)
	}
	h.probed() // reopened and probed
	id2, q := accept(h, 1300)
	h.term().answer(reply(t, q, '0', true), true)
	if tx := h.final(id2); tx.Status != payment.StatusApproved {
		t.Fatalf("after the reopen: status %s, want approved", tx.Status)
	}
}

func TestCase12EchoMismatch(t *testing.T) {
	for name, change := range map[string]func(*concert.Answer){
		"amount":   func(a *concert.Answer) { a.Amount++ },
		"POS":      func(a *concert.Answer) { a.POS = 7 },
		"currency": func(a *concert.Answer) { a.Currency = "840" },
		"private":  func(a *concert.Answer) { a.Private = "0000000000" },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			id, q := accept(h, 1250)
			a := concert.Answer{POS: q.POS, Status: '0', Amount: q.Amount, Mode: '1', Currency: q.Currency, Private: q.Private, Report: "497010XXXXXX1234"}
			change(&a)
			data, err := a.Encode(true)
			if err != nil {
				t.Fatal(err)
			}
			h.term().answer(data, true)
			tx := h.status(id, payment.StatusUnknown)
			if !strings.Contains(tx.Result.Reason, name) {
				t.Fatalf("status %s (%s), want unknown naming the %s", tx.Status, tx.Result.Reason, name)
			}
			if name == "amount" && !strings.Contains(strings.Join(tx.Flags, " "), payment.FlagAmountMismatch) {
				t.Errorf("flags %v lack %s", tx.Flags, payment.FlagAmountMismatch)
			}
		})
	}
}

func TestCase13AnswerShapes(t *testing.T) {
	h := newHarness(t, nil)
	id, q := accept(h, 1250)
	h.term().answer(reply(t, q, '0', false), true) // short although full was asked
	if tx := h.final(id); tx.Status != payment.StatusApproved || tx.Result.Card != "" {
		t.Fatalf("short answer: status %s card %q, want approved without a card", tx.Status, tx.Result.Card)
	}
	h.idle()
	id, q = accept(h, 1250)
	refused, _ := concert.Answer{POS: q.POS, Status: '7', Amount: 0, Mode: '1', Currency: q.Currency, Private: q.Private}.Encode(true)
	h.term().answer(refused, true) // refused with an empty report, no amount
	if tx := h.final(id); tx.Status != payment.StatusDeclined {
		t.Fatalf("refused: status %s, want declined", tx.Status)
	}
	h.idle()
	id, q = accept(h, 1250)
	cheque, _ := concert.Answer{POS: q.POS, Status: '0', Amount: q.Amount, Mode: 'C', Currency: q.Currency, Private: q.Private}.Encode(false)
	h.term().answer(cheque, true)
	if tx := h.final(id); tx.Status != payment.StatusApproved || !hasDetail(h.history(id), payment.KindTransition, "cheque") {
		t.Fatalf("cheque: status %s, want approved and said to be a cheque", tx.Status)
	}
}

func TestCase14Cancel(t *testing.T) {
	t.Run("before ACK", func(t *testing.T) {
		h := newHarness(t, nil)
		id := h.start(payment.ModeCard, 1250)
		m := h.term()
		m.expect(concert.ENQ)
		if err := h.d.Cancel(id); err != nil {
			t.Fatal(err)
		}
		m.expect(concert.EOT)
		tx := h.final(id)
		if tx.Status != payment.StatusCancelled || !strings.Contains(tx.Result.Reason, "EOT") {
			t.Fatalf("status %s (%s), want cancelled with EOT", tx.Status, tx.Result.Reason)
		}
		m.quiet(200 * time.Millisecond) // no request frame follows
	})
	t.Run("after ACK, refused", func(t *testing.T) {
		h := newHarness(t, nil)
		id, q := accept(h, 1250)
		if err := h.d.Cancel(id); err != nil {
			t.Fatal(err)
		}
		h.waitFor("cancel requested", func(ev payment.Event) bool {
			return ev.TxnID == id && ev.Kind == payment.KindStep && strings.Contains(ev.Detail, "cancel requested")
		})
		h.term().answer(reply(t, q, '7', false), true)
		if tx := h.final(id); tx.Status != payment.StatusCancelled {
			t.Fatalf("status %s, want cancelled", tx.Status)
		}
	})
	t.Run("after ACK, approved anyway", func(t *testing.T) {
		h := newHarness(t, nil)
		id, q := accept(h, 1250)
		if err := h.d.Cancel(id); err != nil {
			t.Fatal(err)
		}
		h.waitFor("cancel requested", func(ev payment.Event) bool {
			return ev.TxnID == id && ev.Kind == payment.KindStep && strings.Contains(ev.Detail, "cancel requested")
		})
		h.term().answer(reply(t, q, '0', true), true)
		if tx := h.final(id); tx.Status != payment.StatusApproved || !hasDetail(h.history(id), payment.KindTransition, "despite the cancel") {
			t.Fatalf("status %s, want approved despite the cancel", tx.Status)
		}
	})
}

func TestCase15Input(t *testing.T) {
	h := newHarness(t, nil)
	mark := h.mark()
	for _, m := range []payment.Money{{Minor: 0, Currency: "EUR"}, {Minor: -1, Currency: "EUR"}, {Minor: 100_000_000, Currency: "EUR"}, {Minor: 100, Currency: "XXX"}} {
		if id, err := h.d.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: m}); err == nil {
			t.Errorf("Start(%v) = %s, want an error", m, id)
		}
	}
	if _, err := h.d.Start(context.Background(), payment.Request{Mode: payment.ModeC2B, Amount: payment.Money{Minor: 100, Currency: "EUR"}}); err == nil {
		t.Errorf("the terminal took a C2B payment")
	}
	if _, err := (concert.Request{POS: 1, Amount: 100, Currency: "978", Private: "caf\u00e9 12345"}).Encode(); err == nil {
		t.Errorf("non-ASCII private data encoded")
	}
	h.term().quiet(200 * time.Millisecond)
	if got := h.since(mark); len(got) != 0 {
		t.Errorf("the driver wrote % x for refused input", got)
	}
}

// After a crash (kill -9) the port may still hold the last session's
// bytes; the driver flushes its input when it opens the port, so a stale
// ENQ is not taken for the terminal opening a session.
func TestStaleBytesFlushedOnOpen(t *testing.T) {
	h := newHarness(t, nil)
	old := h.cur
	next := h.plug()
	next.in <- []byte{concert.ENQ} // left in the port by the previous run
	old.unplug()                   // the driver reopens: it gets next
	m := h.term()
	if b := m.next(); b != concert.ENQ {
		t.Fatalf("first byte on the reopened port 0x%02X, want the probe's ENQ (a stale ENQ was answered)", b)
	}
	m.send(concert.ACK)
	m.expect(concert.EOT)
	m.quiet(200 * time.Millisecond)
}

// The terminal may end its session with EOT where it would send its
// frame (it has nothing to send, or gave up): the driver ends the
// session there and then, and waits for the next one without NAKing.
func TestEOTEndsTheTerminalSessionBeforeItsFrame(t *testing.T) {
	h := newHarness(t, nil)
	id, q := accept(h, 1250)
	m := h.term()
	m.send(concert.ENQ)
	m.expect(concert.ACK)
	m.send(concert.EOT) // no frame after all
	// A new session at once: its ENQ must be ACKed, not read as noise
	// before a frame (which ends in a NAK after the inter-byte timeout).
	m.send(concert.ENQ)
	m.expect(concert.ACK)
	m.send(concert.Frame(reply(t, q, '0', true))...)
	m.expect(concert.ACK)
	m.send(concert.EOT)
	if tx := h.final(id); tx.Status != payment.StatusApproved {
		t.Fatalf("status %s, want approved", tx.Status)
	}
	if n := kinds(h.history(id))[payment.KindRejected]; n != 0 {
		t.Errorf("%d rejections journaled for a session the terminal closed with EOT", n)
	}
}

// An EOT in answer to our ENQ is the terminal declining the session: the
// driver closes its side and tries again, as after a NAK, without
// journaling the EOT as noise.
func TestEOTToOurENQIsADecline(t *testing.T) {
	h := newHarness(t, nil)
	id := h.start(payment.ModeCard, 1250)
	m := h.term()
	m.expect(concert.ENQ)
	m.send(concert.EOT)
	m.expect(concert.EOT) // our side closed at once, then the next attempt
	q := m.request()
	m.answer(reply(t, q, '0', true), true)
	if tx := h.final(id); tx.Status != payment.StatusApproved {
		t.Fatalf("status %s, want approved", tx.Status)
	}
	if n := kinds(h.history(id))[payment.KindRejected]; n != 0 {
		t.Errorf("%d rejections journaled for the terminal's EOT", n)
	}
}

// While the driver waits for the terminal's answer, an EOT (the end of a
// session the terminal gave up) is not noise.
func TestEOTWhileWaitingForTheAnswer(t *testing.T) {
	h := newHarness(t, nil)
	id, q := accept(h, 1250)
	m := h.term()
	m.send(concert.EOT)
	m.answer(reply(t, q, '0', true), true)
	if tx := h.final(id); tx.Status != payment.StatusApproved {
		t.Fatalf("status %s, want approved", tx.Status)
	}
	if n := kinds(h.history(id))[payment.KindRejected]; n != 0 {
		t.Errorf("%d rejections journaled for the terminal's EOT", n)
	}
}

// A cancel after the terminal accepted is only a request: when the
// terminal then says nothing, the payment times out as any silent one
// does (flagged: the cancel was not confirmed), never "cancelled".
func TestCancelRequestUnansweredTimesOut(t *testing.T) {
	h := newHarness(t, nil)
	id, _ := accept(h, 1250)
	if err := h.d.Cancel(id); err != nil {
		t.Fatal(err)
	}
	tx := h.final(id)
	if tx.Status != payment.StatusTimedOut {
		t.Fatalf("status %s (%s), want timed_out: the terminal never confirmed the cancel", tx.Status, tx.Result.Reason)
	}
	if !tx.HasFlag(payment.FlagCancelUnconf) || !strings.Contains(tx.Result.Reason, "cancel") {
		t.Errorf("flags %v, reason %q: want the unconfirmed cancel said", tx.Flags, tx.Result.Reason)
	}
}

// The terminal is set up for one currency and the kiosk for a largest
// amount: the driver refuses anything else, whoever starts the payment
// (console, customer display, HTTP API), before a byte is sent.
func TestStartRefusesAnotherCurrencyAndOverTheMaximum(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxMinor = 5_000_000 })
	for _, m := range []payment.Money{{Minor: 1250, Currency: "USD"}, {Minor: 6_000_000, Currency: "EUR"}} {
		_, err := h.d.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: m})
		if !errors.Is(err, concert.ErrBadRequest) {
			t.Errorf("Start(%v): %v, want ErrBadRequest", m, err)
		}
	}
	if _, err := h.d.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: 5_000_000, Currency: "EUR"}}); err != nil {
		t.Errorf("Start(50000.00 EUR), the maximum: %v", err)
	}
	q := h.term().request() // the first request on the line: nothing was sent for the refused ones
	if q.Currency != "978" || q.Amount != 5_000_000 {
		t.Errorf("request %+v", q)
	}
}

// Stopping the driver (paydesk quitting) never waits for the terminal:
// Run returns at once, and the payment stays in the journal as it stands,
// for the next start to recover as unknown.
func TestStopWithAPaymentOnTheTerminal(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Timers.Result = time.Minute })
	id, _ := accept(h, 1250)
	h.status(id, payment.StatusAcknowledged)
	begin := time.Now()
	h.stop()
	select {
	case <-h.done:
	case <-time.After(scriptWait):
		t.Fatalf("Run still running %s after its context ended", scriptWait)
	}
	// Generous for a loaded machine: the stop itself does no I/O.
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Run took %s to stop, want well under a second", took)
	}
	if tx := h.txn(id); tx.Status != payment.StatusAcknowledged {
		t.Errorf("status %s after the stop, want acknowledged as it stood", tx.Status)
	}
}

// Ready tells a console when the driver takes payments: not before Run
// has tried the port, and then whether or not the port opened (a Start
// then says why it cannot run).
func TestReadyOnceThePortWasTried(t *testing.T) {
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	bus := payment.NewBus(j, nil)
	defer bus.Close()
	d, err := NewDriver(bus, Options{Timers: fastTimers, ProbeInterval: -1, ReopenInterval: time.Hour,
		Open: func() (Port, error) { return nil, &PortError{Path: "fake", Kind: ErrPortMissing} }})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Ready():
		t.Fatal("ready before Run")
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-d.Ready():
	case <-time.After(scriptWait):
		t.Fatal("not ready after the port failed to open")
	}
	_, err = d.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: 100, Currency: "EUR"}})
	if !errors.Is(err, payment.ErrUnavailable) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Start on a missing port: %v, want unavailable saying why", err)
	}
}

// Stopping while the terminal is sending its answer leaves the session
// too: nothing more on the line, nothing journaled.
func TestStopWhileTheTerminalSendsItsAnswer(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Timers.Result = time.Minute; o.Timers.InterByte = time.Minute })
	id, q := accept(h, 1250)
	m := h.term()
	m.send(concert.ENQ)
	m.expect(concert.ACK)
	m.send(concert.Frame(reply(t, q, '0', true))[:20]...) // and the rest never comes
	h.waitFor("the frame begun", func(payment.Event) bool {
		return strings.Contains(h.logs.String(), "the terminal is sending its answer")
	})
	mark := h.mark()
	h.stop()
	select {
	case <-h.done:
	case <-time.After(scriptWait):
		t.Fatalf("Run still running %s after its context ended", scriptWait)
	}
	if got := h.since(mark); len(got) != 0 {
		t.Errorf("the driver wrote % x while stopping", got)
	}
	if tx := h.txn(id); tx.Status != payment.StatusAcknowledged {
		t.Errorf("status %s after the stop, want acknowledged as it stood", tx.Status)
	}
}
