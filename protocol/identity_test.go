package protocol_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/wire"
)

// dialFrom connects to addr from the loopback address local (127.0.0.2…),
// so a test can play POS terminals on different hosts.
func dialFrom(t *testing.T, addr, local string) raw {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return raw{c}
}

// request reads the next kiosk message on r and returns it verified.
func (r raw) request(t *testing.T) *wire.Message {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(10 * time.Second)) // generous: a loaded machine
	defer r.SetReadDeadline(time.Time{})
	fr := wire.NewFrameReader(r, wire.MaxFrame)
	frame, err := fr.Next()
	if err != nil {
		t.Fatalf("read the kiosk's request: %v", err)
	}
	m, err := wire.NewVerifier(secret, nil, wire.VerifierOptions{}).Check(frame)
	if err != nil {
		t.Fatalf("kiosk's request refused: %v", err)
	}
	return m
}

// waitConn waits for the connection event of the n-th connection.
func (h *harness) waitConn() {
	h.t.Helper()
	h.wait(5*time.Second, "a connection", func(ev payment.Event) bool {
		return ev.Kind == payment.KindConnection && strings.HasPrefix(ev.Detail, "connected")
	})
}

// waitTxnEvent waits for the first event of txn id among kinds and returns
// it. Transitions count only when final: the earlier ones of the payment may
// still be in the subscription.
func (h *harness) waitTxnEvent(id string, kinds ...payment.Kind) payment.Event {
	h.t.Helper()
	return h.wait(15*time.Second, "an event of "+id, func(ev payment.Event) bool {
		if ev.TxnID != id || (ev.Kind == payment.KindTransition && !ev.Status.Final()) {
			return false
		}
		for _, k := range kinds {
			if ev.Kind == k {
				return true
			}
		}
		return false
	})
}

func TestAnswerOnlyFromItsPOS(t *testing.T) {
	t.Run("a late result without pos_id on another POS's connection is refused against the transaction", func(t *testing.T) {
		h := newHarness(t, protocol.Options{ResultTimeout: 300 * time.Millisecond})
		a := dialRaw(t, h.addr)
		h.waitConn()
		id := h.start(payment.ModeCard, 500, "")
		a.request(t)
		a.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POSA"})
		h.waitStatus(id, payment.StatusTimedOut)

		b := dialRaw(t, h.addr)
		h.waitConn()
		b.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "authorization_code": "X1"})
		ev := h.waitTxnEvent(id, payment.KindLate, payment.KindRejected)
		if ev.Kind != payment.KindRejected || !strings.Contains(ev.Detail, "POSA") {
			t.Fatalf("answer from another connection was %s: %q", ev.Kind, ev.Detail)
		}
		tx, _ := h.j.Txn(context.Background(), id)
		if tx.HasFlag(payment.FlagLateResult) {
			t.Errorf("the timed-out payment was flagged %v by another POS's answer", tx.Flags)
		}
		// Its own POS's late result is still kept and flagged.
		a.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA"})
		if ev := h.waitTxnEvent(id, payment.KindLate, payment.KindRejected); ev.Kind != payment.KindLate {
			t.Errorf("POSA's own late result was %s: %q", ev.Kind, ev.Detail)
		}
	})

	t.Run("an answer without pos_id on another connection is refused against the payment in flight", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		a := dialRaw(t, h.addr)
		h.waitConn()
		b := dialRaw(t, h.addr)
		h.waitConn()
		id := h.start(payment.ModeCard, 500, "")
		a.request(t)
		a.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POSA"})
		h.waitStatus(id, payment.StatusAcknowledged)
		b.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success"})
		ev := h.waitTxnEvent(id, payment.KindRejected, payment.KindTransition)
		if ev.Kind != payment.KindRejected {
			t.Fatalf("answer from another connection was %s %s: %q", ev.Kind, ev.Status, ev.Detail)
		}
		a.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA"})
		if ev := h.waitStatus(id, payment.StatusApproved); ev.Peer != "POSA" {
			t.Errorf("approved by %q", ev.Peer)
		}
	})

	// unknownTxn journals a payment of POSA left unknown, as a crash leaves it.
	unknownTxn := func(h *harness) string {
		id := "TXN1700000000000"
		for _, st := range []payment.Status{payment.StatusCreated, payment.StatusSent, payment.StatusUnknown} {
			_, err := h.bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id,
				Status: st, Peer: "POSA", Mode: payment.ModeCard, Amount: payment.Money{Minor: 500, Currency: "MYR"}})
			if err != nil {
				h.t.Fatal(err)
			}
		}
		return id
	}

	for _, named := range []bool{false, true} {
		name := "an unnamed connection"
		if named {
			name = "POSB's connection"
		}
		t.Run("a result without pos_id on "+name+" does not resolve POSA's unknown payment", func(t *testing.T) {
			h := newHarness(t, protocol.Options{})
			id := unknownTxn(h)
			b := dialRaw(t, h.addr)
			h.waitConn()
			if named {
				b.send(t, wire.Payload{"type": "ack", "txn_id": "TXN1", "status": "processing", "pos_id": "POSB"})
				h.wait(5*time.Second, "POSB's ack refused", func(ev payment.Event) bool { return ev.Kind == payment.KindRejected })
			}
			b.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "authorization_code": "X1"})
			ev := h.waitTxnEvent(id, payment.KindRejected, payment.KindTransition, payment.KindLate)
			if ev.Kind != payment.KindRejected {
				t.Fatalf("answer from another POS was %s %s (peer %s): %q", ev.Kind, ev.Status, ev.Peer, ev.Detail)
			}
			if tx, _ := h.j.Txn(context.Background(), id); tx.Status != payment.StatusUnknown || tx.Peer != "POSA" {
				t.Errorf("journal has %s from %s", tx.Status, tx.Peer)
			}
		})
	}

	t.Run("POSA's own result still resolves its unknown payment", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		id := unknownTxn(h)
		a := dialRaw(t, h.addr)
		h.waitConn()
		a.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA"})
		if ev := h.waitStatus(id, payment.StatusApproved); ev.Peer != "POSA" || ev.Flag != payment.FlagLateResult {
			t.Errorf("resolved by %q, flag %q", ev.Peer, ev.Flag)
		}
	})

	t.Run("a connection that named itself POSB cannot answer as POSA", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		id := unknownTxn(h)
		b := dialRaw(t, h.addr)
		h.waitConn()
		b.send(t, wire.Payload{"type": "ack", "txn_id": "TXN1", "status": "processing", "pos_id": "POSB"})
		h.wait(5*time.Second, "POSB's ack refused", func(ev payment.Event) bool { return ev.Kind == payment.KindRejected })
		b.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA"})
		ev := h.waitTxnEvent(id, payment.KindRejected, payment.KindTransition, payment.KindLate)
		if ev.Kind != payment.KindRejected {
			t.Fatalf("answer was %s %s (peer %s): %q", ev.Kind, ev.Status, ev.Peer, ev.Detail)
		}
	})
}

func TestLivePOSKeepsItsIdentity(t *testing.T) {
	h := newHarness(t, protocol.Options{})
	a := dialRaw(t, h.addr)
	h.waitConn()
	id := h.start(payment.ModeCard, 500, "")
	a.request(t)
	a.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POSA"})
	h.waitStatus(id, payment.StatusAcknowledged)

	t.Run("a second connection claiming a live POS's pos_id cannot answer for it", func(t *testing.T) {
		c := dialRaw(t, h.addr)
		h.waitConn()
		c.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA"})
		ev := h.waitTxnEvent(id, payment.KindRejected, payment.KindTransition)
		if ev.Kind != payment.KindRejected {
			t.Fatalf("the impostor's answer was %s %s: %q", ev.Kind, ev.Status, ev.Detail)
		}
		a.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA"})
		h.waitStatus(id, payment.StatusApproved)
	})

	t.Run("the next payment to POSA still goes to POSA's connection", func(t *testing.T) {
		next := h.start(payment.ModeCard, 600, "POSA")
		if m := a.request(t); m.TxnID != next {
			t.Fatalf("POSA got %s %s, want %s", m.Type, m.TxnID, next)
		}
		a.send(t, wire.Payload{"type": "transaction_result", "txn_id": next, "status": "success", "pos_id": "POSA"})
		h.waitStatus(next, payment.StatusApproved)
	})

	t.Run("once POSA's connection is gone, its new connection takes over", func(t *testing.T) {
		third := h.start(payment.ModeCard, 700, "POSA")
		a.request(t)
		a.send(t, wire.Payload{"type": "ack", "txn_id": third, "status": "processing", "pos_id": "POSA"})
		h.waitStatus(third, payment.StatusAcknowledged)
		a.Close()
		h.wait(5*time.Second, "POSA's disconnect", func(ev payment.Event) bool {
			return ev.Kind == payment.KindConnection && strings.HasPrefix(ev.Detail, "disconnected")
		})
		a2 := dialRaw(t, h.addr)
		h.waitConn()
		a2.send(t, wire.Payload{"type": "transaction_result", "txn_id": third, "status": "success", "pos_id": "POSA"})
		h.waitStatus(third, payment.StatusApproved)
	})
}

func TestContestedPaymentEndsUnknown(t *testing.T) {
	// A POS that reconnects while the kiosk still holds its old
	// connection open (half-open, not yet found dead by keep-alive) has
	// its answer refused like an impostor's. If the payment then gets no
	// answer the kiosk can accept, its outcome is not known: unknown, not
	// timed_out.
	// The second connection's answer must reach the kiosk before the
	// result timeout: 5 s is ample for one write on a loaded machine.
	h := newHarness(t, protocol.Options{ResultTimeout: 5 * time.Second})
	a := dialRaw(t, h.addr)
	h.waitConn()
	id := h.start(payment.ModeCard, 500, "")
	a.request(t)
	a.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POSA"})
	h.waitStatus(id, payment.StatusAcknowledged)
	c := dialRaw(t, h.addr)
	h.waitConn()
	c.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA"})
	ev := h.waitStatusFor(30*time.Second, id, payment.StatusUnknown)
	if !strings.Contains(ev.Detail, "second connection") || !strings.Contains(ev.Detail, "success") {
		t.Errorf("unknown transition says %q", ev.Detail)
	}
}

func TestAnAnswerBeforeItsPOSSaidWhoItIs(t *testing.T) {
	// A POS that reconnects mid-payment may have its result read on the
	// new connection before the kiosk has read, on the old one, the ack
	// that says which POS it is. The result cannot be tied to the payment
	// then and is refused; but an authentic answer was seen, so the
	// payment's outcome is not known: unknown, never timed_out.
	// 5 s: ample for the refused result to be read on a loaded machine.
	h := newHarness(t, protocol.Options{ResultTimeout: 5 * time.Second})
	a := dialRaw(t, h.addr)
	h.waitConn()
	id := h.start(payment.ModeCard, 500, "")
	a.request(t)
	c := dialRaw(t, h.addr)
	h.waitConn()
	c.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA",
		"authorization_code": "AUTH1", "card_last4": "4242", "transaction_id": "000411"})
	h.waitTxnEvent(id, payment.KindRejected)
	a.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POSA"})
	a.Close()
	// 30 s: the ack timeout (10 s) must pass first.
	ev := h.waitStatusFor(30*time.Second, id, payment.StatusUnknown)
	if ev.Flag != protocol.FlagContested || !strings.Contains(ev.Detail, "transaction_result success") {
		t.Errorf("unknown transition: flag %q, detail %q", ev.Flag, ev.Detail)
	}
}
