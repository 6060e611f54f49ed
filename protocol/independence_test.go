package protocol_test

import (
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/wire"
)

// One payment whose journal append hangs (its POS's ack being journaled)
// holds up no other: the console's list of payments in flight answers,
// and another POS's payment runs from request to approval.
func TestSlowJournalAppendOfOneTxnDoesNotDelayAnother(t *testing.T) {
	h := newHarness(t, protocol.Options{})
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the kiosk's cleanup
	t.Cleanup(func() { h.j.SetAppendHook(nil) })

	a := dialRaw(t, h.addr)
	h.waitConn()
	b := dialRaw(t, h.addr)
	h.waitConn()
	idA := h.start(payment.ModeCard, 500, a.LocalAddr().String())
	a.request(t)

	entered := make(chan struct{}, 1)
	h.j.SetAppendHook(func(ev payment.Event) {
		if ev.TxnID == idA && ev.Status == payment.StatusAcknowledged {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
	})
	a.send(t, wire.Payload{"type": "ack", "txn_id": idA, "status": "processing", "pos_id": "POSA"})
	select {
	case <-entered:
	case <-time.After(10 * time.Second): // generous: a loaded machine
		t.Fatal("A's ack was never journaled")
	}

	// A's append now hangs.
	began := time.Now()
	listed := make(chan []payment.Flight, 1)
	go func() { listed <- h.srv.InFlight() }()
	select {
	case fs := <-listed:
		if len(fs) != 1 || fs[0].ID != idA {
			t.Fatalf("in flight: %+v, want only %s", fs, idA)
		}
		t.Logf("InFlight answered in %s while A's append hung", time.Since(began).Round(time.Microsecond))
	case <-time.After(5 * time.Second): // generous: it waits on no I/O
		t.Fatal("InFlight waited more than 5 s for another payment's journal append")
	}
	idB := h.start(payment.ModeCard, 700, b.LocalAddr().String())
	b.request(t)
	b.send(t, wire.Payload{"type": "ack", "txn_id": idB, "status": "processing", "pos_id": "POSB"})
	b.send(t, wire.Payload{"type": "transaction_result", "txn_id": idB, "status": "success", "pos_id": "POSB",
		"amount": "7.00", "auth_code": "B1"})
	h.waitStatus(idB, payment.StatusApproved)
	t.Logf("B requested, answered and approved in %s while A's append hung", time.Since(began).Round(time.Millisecond))

	unblock()
	h.waitStatus(idA, payment.StatusAcknowledged)
}
