package termsim_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/concert"
	"paydesk/terminal/termsim"
	"paydesk/terminal/termtest"
)

// refOf is the driver's private reference for a clock at t: the time in
// milliseconds in base 36, ten characters.
func refOf(t time.Time) string {
	ref := strings.ToUpper(strconv.FormatInt(t.UnixMilli(), 36))
	return strings.Repeat("0", 10-len(ref)) + ref
}

// requestWithLRC moves at on, a millisecond at a time, until the
// driver's request for minor (the reference minted from at) has lrc as
// its LRC, and returns that request.
func requestWithLRC(t *testing.T, at *time.Time, minor int64, lrc byte) concert.Request {
	t.Helper()
	for range 100000 {
		q := concert.Request{POS: 1, Amount: minor, FullAnswer: true, Type: concert.Debit, Currency: "978", Private: refOf(*at)}
		if data, err := q.Encode(); err == nil && concert.LRC(data) == lrc {
			return q
		}
		*at = at.Add(time.Millisecond)
	}
	t.Fatalf("no clock gives a request of %d with the LRC 0x%02X", minor, lrc)
	return concert.Request{}
}

// The terminal that never ACKs the request frame ignores every copy the
// ECR resends, whatever the copy's LRC, until the ECR's EOT: a copy
// whose LRC is EOT (0x04) ended the ignoring at that byte, so the
// simulator sent its answer while the driver was still resending, and
// the answer was dropped (TestOutcomesBeyondApproveAndRefuse stayed
// unknown, once in ~130 runs: the reference is the clock's).
func TestNoAckFrameIgnoresResentCopiesWhoseLRCIsEOT(t *testing.T) {
	at := time.Date(2026, 12, 5, 0, 30, 0, 0, time.UTC)
	q := requestWithLRC(t, &at, 606, concert.EOT)
	if termsim.BehaviourFor(q.Amount) != termsim.NoAckFrame {
		t.Fatalf("%d is not the no-ack amount", q.Amount)
	}
	var mu sync.Mutex
	r := termtest.New(t, termtest.Options{
		// The result timeout only bounds a hang: the answer comes once
		// the driver's EOT has ended the resends.
		Timers: terminal.Timers{Ack: 150 * time.Millisecond, InterByte: 300 * time.Millisecond, ENQPause: 300 * time.Millisecond,
			Result: 8 * time.Second, EOT: 300 * time.Millisecond},
		Sim: termsim.Options{Think: 30 * time.Millisecond, Timeout: 2 * time.Second},
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return at },
	})
	id := r.Start(t, q.Amount)
	if id != terminal.TxnID(q.Private) {
		t.Fatalf("transaction %s, want the reference %s the clock gives", id, q.Private)
	}
	tx := r.Settle(t, id)
	if tx.Status != payment.StatusApproved {
		t.Fatalf("%s is %s (%s), want approved by the answer after the resends", id, tx.Status, tx.Result.Reason)
	}
}

// ecr plays the ECR's side of the line by hand against a simulator.
type ecr struct {
	t    *testing.T
	conn net.Conn
}

func newECR(t *testing.T, so termsim.Options) *ecr {
	t.Helper()
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); termsim.New(so).Serve(ctx, b) }()
	t.Cleanup(func() { cancel(); a.Close(); b.Close(); <-done })
	return &ecr{t: t, conn: a}
}

func (e *ecr) send(b ...byte) {
	e.t.Helper()
	if _, err := e.conn.Write(b); err != nil {
		e.t.Fatal(err)
	}
}

// expect reads the simulator's next byte and fails unless it is want.
// The deadline only bounds a hang.
func (e *ecr) expect(want byte) {
	e.t.Helper()
	e.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := e.conn.Read(b); err != nil {
		e.t.Fatalf("waiting for 0x%02X: %v", want, err)
	}
	if b[0] != want {
		e.t.Fatalf("the terminal sent 0x%02X, want 0x%02X", b[0], want)
	}
}

// After the terminal ACKed the request, it waits for the ECR's EOT; a
// copy of the request resent meanwhile (its ACK came after the ECR's
// timeout) is skipped whole: its LRC, EOT here, is not the ECR's EOT.
// Before, the terminal took that LRC as the EOT and opened its answer's
// session while the ECR's EOT was still to come, then took that EOT as
// the refusal of its ENQ.
func TestResentRequestWhoseLRCIsEOTIsNotTheECRsEOT(t *testing.T) {
	at := time.Date(2026, 12, 5, 0, 30, 0, 0, time.UTC)
	q := requestWithLRC(t, &at, 1250, concert.EOT)
	data, _ := q.Encode()
	e := newECR(t, termsim.Options{Think: 10 * time.Millisecond, Timeout: 10 * time.Second})
	e.send(concert.ENQ)
	e.expect(concert.ACK)
	e.send(concert.Frame(data)...)
	e.expect(concert.ACK)
	e.send(append(concert.Frame(data), concert.EOT)...)
	// The answer's session: ENQ, our ACK, then its frame.
	e.expect(concert.ENQ)
	e.send(concert.ACK)
	e.expect(concert.STX)
}

// A copy of the request that reaches an idle terminal (its session ended
// before the copy came) is dropped whole: its LRC, ENQ here, does not
// open a session. Before, the terminal ACKed that LRC and took the ECR's
// next health probe for the request it waited for, so the probe after it
// went unanswered.
func TestRequestCopyWhoseLRCIsENQDoesNotOpenASession(t *testing.T) {
	at := time.Date(2026, 12, 5, 0, 30, 0, 0, time.UTC)
	q := requestWithLRC(t, &at, 1250, concert.ENQ)
	data, _ := q.Encode()
	e := newECR(t, termsim.Options{Timeout: 10 * time.Second})
	e.send(concert.Frame(data)...)
	for range 2 { // two health probes: each ENQ is ACKed
		e.send(concert.ENQ)
		e.expect(concert.ACK)
		e.send(concert.EOT)
	}
}
