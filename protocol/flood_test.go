package protocol_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/wire"
)

// answer plays an honest POS on r in the background: it reads the next
// request and approves it, as MobyPay's client does (it sends nothing
// before a request). The channel gives the txn_id answered, or "" after
// an error, which the test is told of.
func (r raw) answer(t *testing.T, posID string) <-chan string {
	out := make(chan string, 1)
	go func() {
		id, err := r.approveNext(posID)
		if err != nil {
			t.Errorf("honest POS %s: %v", posID, err)
		}
		out <- id
	}()
	return out
}

func (r raw) approveNext(posID string) (string, error) {
	r.SetReadDeadline(time.Now().Add(20 * time.Second)) // generous: a loaded machine
	defer r.SetReadDeadline(time.Time{})
	frame, err := wire.NewFrameReader(r, wire.MaxFrame).Next()
	if err != nil {
		return "", err
	}
	m, err := wire.NewVerifier(secret, nil, wire.VerifierOptions{}).Check(frame)
	if err != nil {
		return "", err
	}
	for _, p := range []wire.Payload{
		{"type": "ack", "txn_id": m.TxnID, "status": "processing", "pos_id": posID},
		{"type": "transaction_result", "txn_id": m.TxnID, "status": "success", "pos_id": posID,
			"authorization_code": "AUTH1", "card_last4": "4242", "transaction_id": "000411"},
	} {
		p["timestamp"] = strconv.FormatInt(time.Now().UnixMilli(), 10)
		p["nonce"] = nonce()
		env, err := wire.Sign(p, secret)
		if err != nil {
			return "", err
		}
		if _, err := r.Write(env.Line()); err != nil {
			return "", err
		}
	}
	return m.TxnID, nil
}

// countConnected waits until n connections have been accepted.
func (h *harness) countConnected(n int) {
	h.t.Helper()
	seen := 0
	h.wait(30*time.Second, "the connections to be accepted", func(ev payment.Event) bool {
		if ev.Kind == payment.KindConnection && strings.HasPrefix(ev.Detail, "connected") {
			seen++
		}
		return seen >= n
	})
}

func peerFrom(peers []payment.Peer, addr string) bool {
	for _, p := range peers {
		if p.Addr == addr {
			return true
		}
	}
	return false
}

func TestFloodNeverDisconnectsAnHonestPOS(t *testing.T) {
	t.Run("at the cap, room is made from the address holding the most silent connections", func(t *testing.T) {
		const max = 20
		h := newHarness(t, protocol.Options{MaxConns: max})
		honest := dialFrom(t, h.addr, "127.0.0.2") // silent until its first request
		h.countConnected(1)
		const flood = 3 * max
		for range flood {
			dialFrom(t, h.addr, "127.0.0.1")
		}
		h.countConnected(flood)
		peers := h.srv.Peers()
		if !peerFrom(peers, honest.LocalAddr().String()) {
			t.Fatalf("the honest POS was closed by the flood (%d connections open)", len(peers))
		}
		if len(peers) > max {
			t.Errorf("%d connections open, cap %d", len(peers), max)
		}
		done := honest.answer(t, "POS001")
		id := h.start(payment.ModeCard, 2550, honest.LocalAddr().String())
		h.waitStatus(id, payment.StatusApproved)
		<-done

		// The evictions are on the console: each closed connection's
		// disconnect says why, not just "use of closed network connection".
		evs, err := h.j.EventsSince(context.Background(), 0, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		evicted := 0
		for _, ev := range evs {
			if ev.Kind == payment.KindConnection && strings.Contains(ev.Detail, "to make room") {
				evicted++
				if !strings.Contains(ev.Detail, "127.0.0.1") {
					t.Errorf("eviction does not name the address: %q", ev.Detail)
				}
			}
		}
		if evicted == 0 {
			t.Error("no eviction shown in the journal")
		}
	})

	t.Run("an address is capped at its share of silent connections", func(t *testing.T) {
		h := newHarness(t, protocol.Options{MaxConns: 100, MaxSilentPerAddr: 5})
		honest := dialFrom(t, h.addr, "127.0.0.2")
		h.countConnected(1)
		for range 12 {
			dialFrom(t, h.addr, "127.0.0.1")
		}
		h.countConnected(12)
		n := 0
		for _, p := range h.srv.Peers() {
			if host, _, _ := net.SplitHostPort(p.Addr); host == "127.0.0.1" {
				n++
			}
		}
		if n > 5 {
			t.Errorf("127.0.0.1 holds %d silent connections, cap 5", n)
		}
		if !peerFrom(h.srv.Peers(), honest.LocalAddr().String()) {
			t.Fatal("the honest POS was closed")
		}
	})

	t.Run("a POS alone on its address is never closed; the newcomer is refused instead", func(t *testing.T) {
		h := newHarness(t, protocol.Options{MaxConns: 3})
		var lone []raw
		for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
			lone = append(lone, dialFrom(t, h.addr, ip))
		}
		h.countConnected(3)
		late := dialFrom(t, h.addr, "127.0.0.5")
		h.wait(5*time.Second, "the refusal", func(ev payment.Event) bool {
			return ev.Kind == payment.KindRejected && strings.Contains(ev.Detail, "connection refused")
		})
		late.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := late.Read(make([]byte, 1)); err == nil {
			t.Error("the newcomer was not closed")
		}
		for _, c := range lone {
			if !peerFrom(h.srv.Peers(), c.LocalAddr().String()) {
				t.Errorf("%s was closed", c.LocalAddr())
			}
		}
	})

	t.Run("a silent POS that has been sent a request is not closed to make room", func(t *testing.T) {
		h := newHarness(t, protocol.Options{MaxConns: 3})
		pos := dialFrom(t, h.addr, "127.0.0.1") // the POS and the flood share an address
		h.countConnected(1)
		id := h.start(payment.ModeCard, 2550, pos.LocalAddr().String())
		m := pos.request(t) // it has the request, and has not answered yet
		for range 6 {
			dialFrom(t, h.addr, "127.0.0.1")
		}
		h.countConnected(6)
		if !peerFrom(h.srv.Peers(), pos.LocalAddr().String()) {
			t.Fatal("the POS with a payment in flight was closed to make room")
		}
		pos.send(t, wire.Payload{"type": "transaction_result", "txn_id": m.TxnID, "status": "success", "pos_id": "POS001"})
		h.waitStatus(id, payment.StatusApproved)
	})
}
