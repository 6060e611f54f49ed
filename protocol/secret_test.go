package protocol_test

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/wire"
)

// A POS that signs with another secret acknowledges at once, but every
// message it sends fails the signature check: the timeout must say that
// the secrets differ, not only that no ack came.
func TestAckTimeoutNamesDifferentSecrets(t *testing.T) {
	// The ack timeout is what the test waits for; the POS's refused ack
	// arrives within milliseconds of the request, so 2 s leaves room on a
	// loaded machine.
	h := newHarness(t, protocol.Options{AckTimeout: 2 * time.Second})
	wrongPOS(t, h.addr, []byte("not the kiosk's secret"))
	deadline := time.Now().Add(10 * time.Second)
	for len(h.srv.Peers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the POS did not connect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	id := h.start(payment.ModeCard, 2550, "")
	ev := h.waitStatusFor(10*time.Second, id, payment.StatusTimedOut)
	const want = "the POS's messages fail the signature check: the POS and this kiosk have different secrets"
	if ev.Result == nil || !strings.Contains(ev.Result.Reason, want) || !strings.Contains(ev.Detail, want) {
		t.Errorf("timed out with %q (result %+v), want it to say %q", ev.Detail, ev.Result, want)
	}

	// A POS that is merely silent times out with the plain words.
	h2 := newHarness(t, protocol.Options{AckTimeout: 500 * time.Millisecond})
	h2.sim(possim.Options{})
	id = h2.start(payment.ModeCard, 2561, "") // .61: the simulator never answers
	ev = h2.waitStatusFor(10*time.Second, id, payment.StatusTimedOut)
	if strings.Contains(ev.Detail, "signature") {
		t.Errorf("a silent POS's timeout blames the secret: %q", ev.Detail)
	}
}

// wrongPOS is a POS that acknowledges every request at once, signing its
// ack with secret (it does not check the kiosk's signature).
func wrongPOS(t *testing.T, addr string, secret []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		fr := wire.NewFrameReader(c, wire.MaxFrame)
		for n := 0; ; n++ {
			frame, err := fr.Next()
			if err != nil {
				return
			}
			var env struct{ Payload json.RawMessage }
			if json.Unmarshal(frame, &env) != nil {
				continue
			}
			m, err := wire.DecodePayload(env.Payload)
			if err != nil || m.Type != "transaction_request" {
				continue
			}
			ack, _ := wire.Sign(wire.Payload{"type": "ack", "txn_id": m.TxnID, "status": "processing", "pos_id": "POS001",
				"timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "nonce": "wrong-" + strconv.Itoa(n)}, secret)
			c.Write(ack.Line())
		}
	}()
}

// The simulated POS, given another secret, refuses the kiosk's request
// with an error message signed with its own secret (as a POS reports a
// configuration problem); the kiosk, refusing that, says the secrets
// differ.
func TestSimWithAnotherSecret(t *testing.T) {
	// See TestAckTimeoutNamesDifferentSecrets for the timeout.
	h := newHarness(t, protocol.Options{AckTimeout: 2 * time.Second})
	sim := possim.New(possim.Options{Addr: h.addr, Secret: []byte("not the kiosk's secret"), PosID: "POS101"})
	go sim.Run(h.ctx)
	deadline := time.Now().Add(10 * time.Second)
	for len(h.srv.Peers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the POS did not connect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	id := h.start(payment.ModeCard, 2550, "")
	ev := h.waitStatusFor(10*time.Second, id, payment.StatusTimedOut)
	if !strings.Contains(ev.Detail, "the POS and this kiosk have different secrets") {
		t.Errorf("timed out with %q", ev.Detail)
	}
}
