package protocol_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
	"paydesk/protocol/wire"
)

var secret = postest.Secret

// harness is a kiosk on loopback with a subscription to its events.
type harness struct {
	t    *testing.T
	j    *payment.Journal
	bus  *payment.Bus
	srv  *protocol.Server
	addr string
	sub  *payment.Subscription
	ctx  context.Context
	k    *postest.Kiosk
}

func newHarness(t *testing.T, opts protocol.Options) *harness {
	t.Helper()
	k := postest.New(t, opts)
	return &harness{t: t, j: k.Journal, bus: k.Bus, srv: k.Server, addr: k.Addr, sub: k.Bus.Subscribe(100_000), ctx: k.Ctx, k: k}
}

// wait reads events until one matches, failing after d.
func (h *harness) wait(d time.Duration, what string, match func(payment.Event) bool) payment.Event {
	h.t.Helper()
	timer := time.After(d)
	for {
		select {
		case ev := <-h.sub.C():
			if match(ev) {
				return ev
			}
		case <-timer:
			h.t.Fatalf("timed out after %s waiting for %s", d, what)
			return payment.Event{}
		}
	}
}

func (h *harness) waitStatus(id string, st payment.Status) payment.Event {
	h.t.Helper()
	return h.waitStatusFor(5*time.Second, id, st)
}

// waitStatusFor waits until the journal holds the transition of id to st
// and returns that event. It reads the journal, not the subscription, so it
// does not matter what other waits consumed.
func (h *harness) waitStatusFor(d time.Duration, id string, st payment.Status) payment.Event {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for {
		hist, err := h.j.History(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, ev := range hist {
			if ev.Kind != payment.KindTransition {
				continue
			}
			if ev.Status == st {
				return ev
			}
			if ev.Status.Final() {
				h.t.Fatalf("%s became %s (%s), want %s", id, ev.Status, ev.Detail, st)
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s to become %s; the journal:\n%s", d, id, st, h.journalDump())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// journalDump lists the journal's events (rejections included), for a
// failure to say what the kiosk did instead.
func (h *harness) journalDump() string {
	evs, err := h.j.EventsSince(context.Background(), 0, 200)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s %s %s %s %s: %s\n", ev.Time.Format("15:04:05.000"), ev.Kind, ev.TxnID, ev.Status, ev.Peer, ev.Detail)
	}
	return b.String()
}

// sim starts a simulated POS and waits until the kiosk has it.
func (h *harness) sim(o possim.Options) *possim.Sim {
	h.t.Helper()
	return h.k.AddSim(h.t, o)
}

func (h *harness) start(mode payment.Mode, minor int64, target string) string {
	h.t.Helper()
	id, err := h.srv.Start(context.Background(), payment.Request{Mode: mode, Amount: payment.Money{Minor: minor, Currency: "MYR"}, Target: target})
	if err != nil {
		h.t.Fatalf("start %s %d: %v", mode, minor, err)
	}
	return id
}

func TestPaymentFlows(t *testing.T) {
	for _, mode := range []payment.Mode{payment.ModeCard, payment.ModeBNPL, payment.ModeDuitNowQR} {
		t.Run(string(mode)+" is approved after request, ack and result", func(t *testing.T) {
			h := newHarness(t, protocol.Options{})
			h.sim(possim.Options{})
			id := h.start(mode, 2550, "")
			if !strings.HasPrefix(id, "TXN") {
				t.Errorf("txn id %q does not start with TXN", id)
			}
			h.waitStatus(id, payment.StatusSent)
			h.waitStatus(id, payment.StatusAcknowledged)
			ev := h.waitStatus(id, payment.StatusApproved)
			if ev.Result == nil || ev.Result.AuthCode == "" || ev.Result.Card != "4242" || ev.Result.RemoteID == "" {
				t.Errorf("approved result = %+v", ev.Result)
			}
			tx, err := h.j.Txn(context.Background(), id)
			if err != nil || tx.Status != payment.StatusApproved || tx.Amount.Minor != 2550 || tx.Peer != "POS001" {
				t.Errorf("journal has %+v, %v", tx, err)
			}
		})
	}

	t.Run("a failed result with USER_ABORT is declined with that reason", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{})
		id := h.start(payment.ModeCard, 8051, "")
		ev := h.waitStatus(id, payment.StatusDeclined)
		if ev.Result == nil || ev.Result.Reason != "USER_ABORT" {
			t.Errorf("result = %+v", ev.Result)
		}
	})

	t.Run("a POS error message fails the payment with its message", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{})
		id := h.start(payment.ModeCard, 1081, "")
		ev := h.waitStatus(id, payment.StatusFailed)
		if ev.Result == nil || ev.Result.Reason != "card reader not responding" {
			t.Errorf("result = %+v", ev.Result)
		}
	})

	t.Run("IPP offers plans, takes the choice and is approved with the plan", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{})
		id := h.start(payment.ModeIPP, 10000, "")
		ev := h.waitStatus(id, payment.StatusPlansOffered)
		if len(ev.Plans) != 3 || ev.Plans[0].ID != "IPP_3M" || len(ev.Plans[0].Installments) != 3 {
			t.Fatalf("plans = %+v", ev.Plans)
		}
		in := ev.Plans[0].Installments
		if in[0].Amount.Minor+in[1].Amount.Minor+in[2].Amount.Minor != 10000 || in[0].FeePercent != "1.5" || in[0].Fee.Minor != 50 {
			t.Errorf("instalments = %+v", in)
		}
		if err := h.srv.SelectPlan(id, "nope"); !errors.Is(err, protocol.ErrUnknownPlan) {
			t.Errorf("unknown plan: err = %v", err)
		}
		if err := h.srv.SelectPlan(id, "IPP_3M"); err != nil {
			t.Fatal(err)
		}
		h.waitStatus(id, payment.StatusPlanSelected)
		h.wait(5*time.Second, "ack plan_received", func(ev payment.Event) bool {
			return ev.TxnID == id && ev.Kind == payment.KindStep && ev.Detail == "ack plan_received"
		})
		ev = h.waitStatus(id, payment.StatusApproved)
		if ev.Result == nil || ev.Result.PlanID != "IPP_3M" || ev.Result.AuthCode != "AUTH456" {
			t.Errorf("result = %+v", ev.Result)
		}
	})

	t.Run("quitting the plan choice sends a cancel and the POS confirms it", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{})
		id := h.start(payment.ModeIPP, 10000, "")
		h.waitStatus(id, payment.StatusPlansOffered)
		if err := h.srv.Cancel(id); err != nil {
			t.Fatal(err)
		}
		h.waitStatus(id, payment.StatusCancelled)
	})

	t.Run("cancel waits for the POS to confirm", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{})
		id := h.start(payment.ModeCard, 1062, "") // acks, never answers
		h.waitStatus(id, payment.StatusAcknowledged)
		if err := h.srv.Cancel(id); err != nil {
			t.Fatal(err)
		}
		h.wait(5*time.Second, "cancel requested", func(ev payment.Event) bool {
			return ev.TxnID == id && ev.Kind == payment.KindStep && ev.Detail == "cancel requested"
		})
		ev := h.waitStatus(id, payment.StatusCancelled)
		if ev.Flag != "" {
			t.Errorf("confirmed cancel flagged %q", ev.Flag)
		}
	})

	for _, status := range []string{"cancelled", "canceled", "RECEIVED"} {
		t.Run("an ack "+status+" after a cancel confirms it", func(t *testing.T) {
			h := newHarness(t, protocol.Options{})
			pos := dialRaw(t, h.addr)
			h.wait(5*time.Second, "connection", func(ev payment.Event) bool { return ev.Kind == payment.KindConnection })
			id := h.start(payment.ModeCard, 100, "")
			if err := h.srv.Cancel(id); err != nil {
				t.Fatal(err)
			}
			// An ack processing may be the request's own: it confirms nothing.
			pos.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing"})
			h.waitStatus(id, payment.StatusAcknowledged)
			pos.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": status})
			if ev := h.waitStatus(id, payment.StatusCancelled); ev.Flag != "" {
				t.Errorf("confirmed cancel flagged %q", ev.Flag)
			}
		})
	}

	t.Run("a cancel the POS never confirms ends as cancelled, flagged", func(t *testing.T) {
		h := newHarness(t, protocol.Options{AckTimeout: 300 * time.Millisecond})
		c := dialRaw(t, h.addr) // a POS that never answers anything
		h.wait(5*time.Second, "connection", func(ev payment.Event) bool { return ev.Kind == payment.KindConnection })
		id := h.start(payment.ModeCard, 100, "")
		if err := h.srv.Cancel(id); err != nil {
			t.Fatal(err)
		}
		ev := h.waitStatus(id, payment.StatusCancelled)
		if ev.Flag != payment.FlagCancelUnconf {
			t.Errorf("flag = %q, want %q", ev.Flag, payment.FlagCancelUnconf)
		}
		c.Close()
	})

	t.Run("no ack times out", func(t *testing.T) {
		h := newHarness(t, protocol.Options{AckTimeout: 200 * time.Millisecond})
		h.sim(possim.Options{})
		id := h.start(payment.ModeCard, 1061, "")
		ev := h.waitStatus(id, payment.StatusTimedOut)
		if ev.Result == nil || !strings.Contains(ev.Result.Reason, "no ack") {
			t.Errorf("result = %+v", ev.Result)
		}
	})

	t.Run("no result times out", func(t *testing.T) {
		h := newHarness(t, protocol.Options{ResultTimeout: 200 * time.Millisecond})
		h.sim(possim.Options{})
		id := h.start(payment.ModeCard, 1062, "")
		h.waitStatus(id, payment.StatusAcknowledged)
		ev := h.waitStatus(id, payment.StatusTimedOut)
		if ev.Result == nil || !strings.Contains(ev.Result.Reason, "no result") {
			t.Errorf("result = %+v", ev.Result)
		}
	})

	t.Run("a result after the timeout is journaled and flagged", func(t *testing.T) {
		h := newHarness(t, protocol.Options{ResultTimeout: 200 * time.Millisecond})
		pos := dialRaw(t, h.addr)
		h.wait(5*time.Second, "connection", func(ev payment.Event) bool { return ev.Kind == payment.KindConnection })
		id := h.start(payment.ModeCard, 500, "")
		pos.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POS001"})
		h.waitStatus(id, payment.StatusTimedOut)
		// Sent once the timeout is journaled, the result is late however
		// long the kiosk took to time out on a loaded machine.
		pos.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POS001",
			"authorization_code": "AUTH411", "card_last4": "4242", "transaction_id": "000411", "amount": 5})
		late := h.wait(5*time.Second, "the late result", func(ev payment.Event) bool {
			return ev.TxnID == id && ev.Kind == payment.KindLate
		})
		if late.Flag != payment.FlagLateResult || late.Result == nil || late.Result.AuthCode == "" || len(late.Raw) == 0 {
			t.Errorf("late event = %+v", late)
		}
		tx, _ := h.j.Txn(context.Background(), id)
		if tx.Status != payment.StatusTimedOut || !tx.HasFlag(payment.FlagLateResult) {
			t.Errorf("journal has %+v", tx)
		}
	})

	t.Run("a duplicate result is kept as late, the payment approved once", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{})
		id := h.start(payment.ModeCard, 1093, "")
		h.waitStatus(id, payment.StatusApproved)
		h.wait(5*time.Second, "the duplicate", func(ev payment.Event) bool { return ev.TxnID == id && ev.Kind == payment.KindLate })
	})

	t.Run("an approval for another amount is held as unknown for the operator", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{})
		id := h.start(payment.ModeCard, 1091, "")
		ev := h.waitStatus(id, payment.StatusUnknown)
		if ev.Flag != payment.FlagAmountMismatch || !strings.Contains(ev.Result.Reason, "RM11.91") {
			t.Errorf("event = %+v %+v", ev, ev.Result)
		}
	})

	t.Run("a POS that reconnects mid-transaction still delivers the result", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{Reconnect: true, BackoffBase: 50 * time.Millisecond})
		id := h.start(payment.ModeCard, 1092, "")
		h.waitStatus(id, payment.StatusAcknowledged)
		h.wait(5*time.Second, "the disconnect", func(ev payment.Event) bool {
			return ev.Kind == payment.KindConnection && strings.HasPrefix(ev.Detail, "disconnected")
		})
		h.waitStatus(id, payment.StatusApproved)
	})

	t.Run("a second payment on a busy POS is refused", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		h.sim(possim.Options{})
		h.start(payment.ModeCard, 1062, "")
		_, err := h.srv.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: 100}})
		if !errors.Is(err, payment.ErrBusy) {
			t.Errorf("err = %v, want ErrBusy", err)
		}
	})

	t.Run("with no POS connected a payment is refused", func(t *testing.T) {
		h := newHarness(t, protocol.Options{})
		_, err := h.srv.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: 100}})
		if !errors.Is(err, payment.ErrNoPeer) {
			t.Errorf("err = %v, want ErrNoPeer", err)
		}
	})
}

func TestFraming(t *testing.T) {
	for _, mode := range []possim.WriteMode{possim.WriteBytes, possim.WriteCoalesced, possim.WriteLines} {
		t.Run("messages written as "+string(mode)+" are all read", func(t *testing.T) {
			h := newHarness(t, protocol.Options{})
			h.sim(possim.Options{Mode: mode})
			for i := range 3 {
				id := h.start(payment.ModeCard, int64(1000+i), "")
				h.waitStatus(id, payment.StatusAcknowledged)
				h.waitStatus(id, payment.StatusApproved)
			}
		})
	}
}

func TestTxnIDsAreUnique(t *testing.T) {
	fixed := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	h := newHarness(t, protocol.Options{Now: func() time.Time { return fixed }})
	seen := map[string]bool{}
	for i := range 5 {
		h.sim(possim.Options{PosID: "P" + strconv.Itoa(i)})
	}
	for _, p := range h.srv.Peers() {
		id := h.start(payment.ModeCard, 1062, p.Addr)
		if seen[id] {
			t.Fatalf("duplicate txn id %s", id)
		}
		seen[id] = true
	}
	if !seen["TXN"+strconv.FormatInt(fixed.UnixMilli(), 10)] || !seen["TXN"+strconv.FormatInt(fixed.UnixMilli()+4, 10)] {
		t.Errorf("ids = %v", seen)
	}
}

func TestSeveralPOS(t *testing.T) {
	h := newHarness(t, protocol.Options{})
	h.sim(possim.Options{PosID: "POS001"})
	h.sim(possim.Options{PosID: "POS002"})

	t.Run("the default target is the earliest connection", func(t *testing.T) {
		id := h.start(payment.ModeCard, 100, "")
		h.waitStatus(id, payment.StatusApproved)
		tx, _ := h.j.Txn(context.Background(), id)
		if tx.Peer != "POS001" {
			t.Errorf("went to %s", tx.Peer)
		}
	})

	t.Run("a request goes to the chosen POS only", func(t *testing.T) {
		// POS002 has not spoken yet, so it is known by its address.
		id := h.start(payment.ModeCard, 200, h.srv.Peers()[1].Addr)
		h.waitStatus(id, payment.StatusApproved)
		tx, _ := h.j.Txn(context.Background(), id)
		if tx.Peer != "POS002" {
			t.Errorf("went to %s", tx.Peer)
		}
		if h.srv.DefaultTarget() != "POS002" {
			t.Errorf("default target = %s, want the POS that last completed a payment", h.srv.DefaultTarget())
		}
	})

	t.Run("an answer from another POS is ignored and logged", func(t *testing.T) {
		rogue := dialRaw(t, h.addr)
		h.wait(5*time.Second, "rogue connection", func(ev payment.Event) bool { return ev.Kind == payment.KindConnection })
		id := h.start(payment.ModeCard, 1062, "POS001") // POS001 acks and never answers
		h.waitStatus(id, payment.StatusAcknowledged)
		rogue.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POS009"})
		ev := h.wait(5*time.Second, "the rejection", func(ev payment.Event) bool { return ev.Kind == payment.KindRejected })
		if !strings.Contains(ev.Detail, "the request went to POS001") {
			t.Errorf("rejection = %q", ev.Detail)
		}
		h.srv.Cancel(id)
		h.waitStatus(id, payment.StatusCancelled)
	})
}

// raw is a hand-driven POS connection for hostile input.
type raw struct{ net.Conn }

func dialRaw(t *testing.T, addr string) raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return raw{c}
}

var nonceSeq struct {
	sync.Mutex
	n int
}

func nonce() string {
	nonceSeq.Lock()
	defer nonceSeq.Unlock()
	nonceSeq.n++
	return fmt.Sprintf("n-%d-%d", time.Now().UnixNano(), nonceSeq.n)
}

func (r raw) send(t *testing.T, p wire.Payload) []byte {
	t.Helper()
	if _, ok := p["timestamp"]; !ok {
		p["timestamp"] = strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	if _, ok := p["nonce"]; !ok {
		p["nonce"] = nonce()
	}
	env, err := wire.Sign(p, secret)
	if err != nil {
		t.Fatal(err)
	}
	r.write(t, env.Line())
	return env.Line()
}

func (r raw) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := r.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestHostileInput(t *testing.T) {
	h := newHarness(t, protocol.Options{})
	h.sim(possim.Options{PosID: "POS001"})
	bad := dialRaw(t, h.addr)
	h.wait(5*time.Second, "hostile connection", func(ev payment.Event) bool { return ev.Kind == payment.KindConnection })

	// An honest payment runs while the hostile connection sends garbage.
	id := h.start(payment.ModeCard, 1071, "") // slow: ack after 2 s, result after 6 s

	now := time.Now().UnixMilli()
	ack := func() wire.Payload {
		return wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "EVIL"}
	}
	forged := func() []byte {
		env, _ := wire.Sign(ack(), []byte("wrong secret"))
		return env.Line()
	}
	replayed := signed(t, wire.Payload{"type": "ack", "txn_id": "TXN0", "status": "processing",
		"timestamp": strconv.FormatInt(now, 10), "nonce": nonce()})
	cases := []struct {
		name, reason string
		frame        []byte
	}{
		{"an ack for an unknown txn_id", "unknown txn_id", replayed},
		{"a bad signature", "signature", forged()},
		{"a replayed nonce", "nonce", replayed},
		{"a stale timestamp", "timestamp", signed(t, wire.Payload{"type": "ack", "txn_id": "X", "timestamp": strconv.FormatInt(now-120_000, 10), "nonce": nonce()})},
		{"a future timestamp", "timestamp", signed(t, wire.Payload{"type": "ack", "txn_id": "X", "timestamp": strconv.FormatInt(now+120_000, 10), "nonce": nonce()})},
		{"a missing nonce", "nonce", signed(t, wire.Payload{"type": "ack", "txn_id": "X", "timestamp": strconv.FormatInt(now, 10)})},
		{"a missing type", "type", signed(t, wire.Payload{"txn_id": "X", "timestamp": strconv.FormatInt(now, 10), "nonce": nonce()})},
		{"a missing signature", "signature", []byte(`{"payload":{"type":"ack"}}` + "\n")},
		{"non-JSON garbage", "JSON", []byte("\x00\xff garbage GET / HTTP/1.1\n")},
		{"an unknown txn_id", "unknown txn_id", signed(t, wire.Payload{"type": "transaction_result", "txn_id": "TXN42", "status": "success", "timestamp": strconv.FormatInt(now, 10), "nonce": nonce()})},
	}
	for _, c := range cases {
		t.Run(c.name+" is rejected with its reason", func(t *testing.T) {
			bad.write(t, c.frame)
			ev := h.wait(5*time.Second, "the rejection of "+c.name, func(ev payment.Event) bool { return ev.Kind == payment.KindRejected })
			if !strings.Contains(strings.ToLower(ev.Detail), strings.ToLower(c.reason)) {
				t.Errorf("rejection reason %q does not mention %q", ev.Detail, c.reason)
			}
		})
	}

	t.Run("a 1 MiB frame closes that connection only", func(t *testing.T) {
		big := append([]byte(`{"payload":{"type":"ack","x":"`), make([]byte, 1<<20)...)
		for i := 30; i < len(big); i++ {
			big[i] = 'a'
		}
		go bad.Write(big)
		ev := h.wait(5*time.Second, "the oversized frame rejection", func(ev payment.Event) bool { return ev.Kind == payment.KindRejected })
		if !strings.Contains(ev.Detail, "larger than") {
			t.Errorf("reason = %q", ev.Detail)
		}
		h.wait(5*time.Second, "the disconnect", func(ev payment.Event) bool {
			return ev.Kind == payment.KindConnection && strings.Contains(ev.Detail, "larger than")
		})
	})

	t.Run("the honest POS completes its payment meanwhile", func(t *testing.T) {
		h.waitStatusFor(15*time.Second, id, payment.StatusApproved)
	})
}

func signed(t *testing.T, p wire.Payload) []byte {
	t.Helper()
	env, err := wire.Sign(p, secret)
	if err != nil {
		t.Fatal(err)
	}
	return env.Line()
}

func TestIdleConnections(t *testing.T) {
	h := newHarness(t, protocol.Options{IdleTimeout: 2 * time.Second})
	const n = 1000
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatalf("dial after %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Every idle connection is accepted before the honest POS arrives, so
	// the newest connection is the simulator.
	for deadline := time.Now().Add(20 * time.Second); len(h.srv.Peers()) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d connections accepted", len(h.srv.Peers()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.sim(possim.Options{PosID: "POS001"})
	// A POS is known by its address until its first message names it.
	peers := h.srv.Peers()
	id := h.start(payment.ModeCard, 2550, peers[len(peers)-1].Addr)
	h.waitStatusFor(20*time.Second, id, payment.StatusApproved)

	closed := 0
	h.wait(15*time.Second, "the idle connections to be closed", func(ev payment.Event) bool {
		if ev.Kind == payment.KindConnection && strings.Contains(ev.Detail, "idle") {
			closed++
		}
		return closed >= n
	})
}

func TestConnectionCap(t *testing.T) {
	h := newHarness(t, protocol.Options{MaxConns: 3})
	h.sim(possim.Options{PosID: "POS001"})
	id := h.start(payment.ModeCard, 100, "")
	h.waitStatus(id, payment.StatusApproved) // POS001 has now sent valid messages

	silent1 := dialRaw(t, h.addr)
	h.wait(5*time.Second, "first silent connection", func(ev payment.Event) bool { return ev.Kind == payment.KindConnection })
	dialRaw(t, h.addr)
	h.wait(5*time.Second, "second silent connection", func(ev payment.Event) bool { return ev.Kind == payment.KindConnection })

	t.Run("a new connection at the cap closes the oldest silent one", func(t *testing.T) {
		// At the cap the count cannot grow, so h.sim cannot be used here.
		go possim.New(possim.Options{Addr: h.addr, Secret: secret, PosID: "POS002"}).Run(h.ctx)
		silent1.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := silent1.Read(make([]byte, 1)); err == nil {
			t.Error("the oldest silent connection is still open")
		}
		deadline := time.Now().Add(5 * time.Second)
		for n := len(h.srv.Peers()); n != 3; n = len(h.srv.Peers()) {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections open, want the cap of 3", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("the POS that spoke keeps its connection and takes payments", func(t *testing.T) {
		id := h.start(payment.ModeCard, 200, "POS001")
		h.waitStatus(id, payment.StatusApproved)
	})
}
