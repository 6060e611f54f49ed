package protocol_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/wire"
)

func TestStaleClockMakesThePaymentUnknown(t *testing.T) {
	for _, c := range []struct {
		name  string
		skew  time.Duration
		words string
	}{
		{"behind", -90 * time.Second, "POS clock is 1m30s behind this kiosk"},
		{"ahead", 90 * time.Second, "POS clock is 1m30s ahead of this kiosk"},
	} {
		t.Run("a POS clock 90 s "+c.name+": its signed answers make the payment unknown, not timed out", func(t *testing.T) {
			// The kiosk's clock stands still, so the difference is exactly
			// the skew however long the machine takes to deliver. The ack
			// timeout is what ended such a payment as timed_out; 3 s leaves
			// a loaded machine time to deliver the answers.
			now := time.Now()
			h := newHarness(t, protocol.Options{AckTimeout: 3 * time.Second, Now: func() time.Time { return now }})
			a := dialRaw(t, h.addr)
			h.waitConn()
			id := h.start(payment.ModeCard, 500, "")
			a.request(t)
			stamp := func() string { return strconv.FormatInt(now.Add(c.skew).UnixMilli(), 10) }
			a.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POSA", "timestamp": stamp()})
			a.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA",
				"authorization_code": "AUTH9", "timestamp": stamp()})
			ev := h.waitStatus(id, payment.StatusUnknown)
			if !strings.Contains(ev.Detail, c.words) {
				t.Errorf("unknown transition says %q, want %q", ev.Detail, c.words)
			}
			// The approval, refused for its timestamp, is in the history.
			deadline := time.Now().Add(10 * time.Second)
			for {
				hist, err := h.j.History(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				rejected := 0
				for _, e := range hist {
					if e.Kind == payment.KindRejected && strings.Contains(e.Detail, c.words) {
						rejected++
					}
				}
				if rejected == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("history has %d of the 2 refused answers: %+v", rejected, hist)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tx, _ := h.j.Txn(context.Background(), id); tx.Status != payment.StatusUnknown {
				t.Errorf("journal has %s", tx.Status)
			}
		})
	}

	t.Run("a stale answer from another POS leaves the payment in flight", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		a := dialRaw(t, h.addr)
		h.waitConn()
		b := dialRaw(t, h.addr)
		h.waitConn()
		id := h.start(payment.ModeCard, 500, "")
		a.request(t)
		a.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POSA"})
		h.waitStatus(id, payment.StatusAcknowledged)
		b.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSB",
			"timestamp": strconv.FormatInt(time.Now().Add(-90*time.Second).UnixMilli(), 10)})
		if ev := h.waitTxnEvent(id, payment.KindRejected, payment.KindTransition); ev.Kind != payment.KindRejected {
			t.Fatalf("got %s %s: %q", ev.Kind, ev.Status, ev.Detail)
		}
		a.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA"})
		h.waitStatus(id, payment.StatusApproved)
	})
}
