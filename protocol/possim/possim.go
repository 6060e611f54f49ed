// Package possim is a MobyPay POS terminal simulator: it connects to a
// kiosk as the real POS app does, verifies what the kiosk sends, and
// answers with signed messages whose outcome is chosen by the amount (see
// Outcomes). paydesk's demo, its tests and QA use it in place of a POS.
package possim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"paydesk/protocol/wire"
)

// Outcomes documents how the simulator answers, by the cents of the amount.
// It is shown by `paydesk sim pos --help` and in the demo.
const Outcomes = `Outcome by the cents of the amount (any mode but ipp):
  .51  declined: failed result, error_message USER_ABORT
  .52  declined: failed result, error_message INSUFFICIENT_FUNDS
  .61  never answers (no ack, no result): the kiosk's ack timeout
  .62  acknowledges, never sends a result: the result timeout
  .71  slow: ack after 2 s, result after 6 s
  .81  POS error message "card reader not responding"
  .91  approves a different amount than requested
  .92  acknowledges, drops the connection, reconnects, then approves
  .93  sends the approved result twice
  any other  approved: auth code, card 4242, POS transaction id
ipp: offers 3 plans (IPP_3M, IPP_6M, pay-in-full); after the choice, ack
  plan_received and an approved result with the plan id.
cancel: ack "received" and no result.`

// WriteMode is how the simulator writes its messages: the real POS writes
// one line each, but peers in the field split and merge writes.
type WriteMode string

// The write modes.
const (
	// WriteLines writes each message as one line in one write.
	WriteLines WriteMode = "lines"
	// WriteBytes writes every byte of a message separately.
	WriteBytes WriteMode = "bytes"
	// WriteCoalesced writes an ack and the result that follows it in one
	// write with no separator between them (what breaks kiosk.py).
	WriteCoalesced WriteMode = "coalesced"
)

// Options configures a simulator.
type Options struct {
	// Addr is the kiosk's address, host:port.
	Addr string
	// Secret is the shared HMAC key.
	Secret []byte
	// PosID is sent as pos_id. The default is POS001.
	PosID string
	// Mode is the write mode. The default is WriteLines.
	Mode WriteMode
	// AckDelay and ResultDelay wait before the ack and before the result.
	AckDelay, ResultDelay time.Duration
	// DisconnectAfterAck drops the connection after every ack, then
	// reconnects and delivers the result.
	DisconnectAfterAck bool
	// Reconnect makes Run reconnect when the connection is lost, with
	// backoff 1, 2, 4, 8 … up to 30 s (scaled by BackoffBase).
	Reconnect bool
	// BackoffBase is the first reconnect delay. The default is 1 second.
	BackoffBase time.Duration
	// Window is the timestamp window for the kiosk's messages. The
	// default is 60 s.
	Window time.Duration
	// TLS, when set, makes the simulator connect with TLS.
	TLS *tls.Config
	// Logger receives what the simulator does. The default discards.
	Logger *slog.Logger
}

// Sim is one simulated POS terminal.
type Sim struct {
	opts   Options
	log    *slog.Logger
	nonces *wire.NonceStore

	mu        sync.Mutex
	conn      net.Conn
	connected chan struct{} // closed and replaced on each connection
	pending   []func()      // sends waiting for the next connection
	seq       atomic.Int64
	handled   atomic.Int64
}

// New returns a simulator; Run connects it.
func New(opts Options) *Sim {
	if opts.PosID == "" {
		opts.PosID = "POS001"
	}
	if opts.Mode == "" {
		opts.Mode = WriteLines
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.Window <= 0 {
		opts.Window = wire.DefaultWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sim{opts: opts, log: opts.Logger.With("sim", opts.PosID), nonces: wire.NewNonceStore(opts.Window, 0),
		connected: make(chan struct{})}
	s.seq.Store(409)
	return s
}

// Connected returns a channel closed once the simulator is connected.
func (s *Sim) Connected() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Handled is how many kiosk messages the simulator accepted.
func (s *Sim) Handled() int64 { return s.handled.Load() }

// Run connects to the kiosk and answers its requests until ctx ends. With
// Reconnect it reconnects after a lost connection, with backoff.
func (s *Sim) Run(ctx context.Context) error {
	backoff := s.opts.BackoffBase
	for {
		var c net.Conn
		var err error
		if s.opts.TLS != nil {
			d := tls.Dialer{Config: s.opts.TLS}
			c, err = d.DialContext(ctx, "tcp", s.opts.Addr)
		} else {
			var d net.Dialer
			c, err = d.DialContext(ctx, "tcp", s.opts.Addr)
		}
		if err == nil {
			backoff = s.opts.BackoffBase
			err = s.serve(ctx, c)
		}
		if ctx.Err() != nil {
			return nil
		}
		if !s.opts.Reconnect {
			return err
		}
		// Full jitter would be kinder to a fleet; a POS is one device.
		wait := backoff
		s.log.Info("reconnecting", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 30*s.opts.BackoffBase)
	}
}

func (s *Sim) serve(ctx context.Context, c net.Conn) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	s.mu.Lock()
	s.conn = c
	close(s.connected)
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	s.log.Info("connected", "kiosk", s.opts.Addr)
	for _, f := range pending {
		go f()
	}
	defer func() {
		s.mu.Lock()
		if s.conn == c {
			s.conn = nil
			s.connected = make(chan struct{})
		}
		s.mu.Unlock()
		c.Close()
	}()
	v := wire.NewVerifier(s.opts.Secret, s.nonces, wire.VerifierOptions{Window: s.opts.Window})
	fr := wire.NewFrameReader(c, wire.MaxFrame)
	for {
		frame, err := fr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read from kiosk: %w", err)
		}
		m, err := v.Check(frame)
		if err != nil {
			s.log.Warn("kiosk message rejected", "err", err)
			if errors.Is(err, wire.ErrBadSignature) {
				// A POS reports a configuration problem with an error
				// message; signed with this POS's own secret, the kiosk
				// refuses it too, and so learns the secrets differ.
				s.send(wire.Payload{"type": "error", "txn_id": unverifiedTxnID(frame), "message": "Invalid signature"})
			}
			continue
		}
		s.handled.Add(1)
		s.handle(c, m)
	}
}

// send signs p and writes it on the current connection; when the
// simulator is between connections it waits for the next one.
func (s *Sim) send(p wire.Payload) {
	s.write(s.line(p))
}

func (s *Sim) line(p wire.Payload) []byte {
	p["pos_id"] = s.opts.PosID
	p["timestamp"] = strconv.FormatInt(time.Now().UnixMilli(), 10)
	var nonce [16]byte
	for i := range nonce {
		nonce[i] = byte(rand.Uint32())
	}
	p["nonce"] = fmt.Sprintf("%x", nonce)
	env, err := wire.Sign(p, s.opts.Secret)
	if err != nil {
		s.log.Error("sign", "err", err)
		return nil
	}
	return env.Line()
}

func (s *Sim) write(b []byte) {
	if b == nil {
		return
	}
	s.mu.Lock()
	c := s.conn
	if c == nil {
		s.pending = append(s.pending, func() { s.write(b) })
		s.mu.Unlock()
		return
	}
	defer s.mu.Unlock()
	if s.opts.Mode == WriteBytes {
		for i := range b {
			if _, err := c.Write(b[i : i+1]); err != nil {
				return
			}
		}
		return
	}
	c.Write(b)
}

// drop closes the current connection (the kiosk sees a disconnect).
func (s *Sim) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
		s.connected = make(chan struct{})
	}
}

func (s *Sim) handle(c net.Conn, m *wire.Message) {
	switch m.Type {
	case "transaction_request":
		go s.pay(m)
	case "ipp_plan_selection":
		go func() {
			s.send(wire.Payload{"type": "ack", "txn_id": m.TxnID, "status": "plan_received"})
			sleep(s.opts.ResultDelay)
			s.send(wire.Payload{"type": "transaction_result", "txn_id": m.TxnID, "status": "success",
				"authorization_code": "AUTH456", "card_last4": "4242", "plan_id": m.PlanID,
				"transaction_id": s.nextID()})
		}()
	case "cancel_transaction":
		s.send(wire.Payload{"type": "ack", "txn_id": m.TxnID, "status": "received"})
	default:
		s.log.Warn("unknown message type from kiosk", "type", m.Type)
	}
}

func (s *Sim) nextID() string { return fmt.Sprintf("%06d", s.seq.Add(1)) }

func sleep(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

// pay answers a transaction request by the cents of its amount.
func (s *Sim) pay(m *wire.Message) {
	minor, err := wire.AmountMinor(m.Amount)
	if err != nil {
		s.send(wire.Payload{"type": "error", "txn_id": m.TxnID, "message": "invalid amount " + m.Amount})
		return
	}
	amount := wire.FormatAmount(minor)
	num := func(text string) any { return jsonNumber(text) }
	ack := wire.Payload{"type": "ack", "txn_id": m.TxnID, "status": "processing"}
	approved := wire.Payload{"type": "transaction_result", "txn_id": m.TxnID, "status": "success",
		"authorization_code": fmt.Sprintf("AUTH%03d", s.seq.Load()%1000), "card_last4": "4242",
		"transaction_id": s.nextID(), "amount": num(amount)}
	declined := func(code string) wire.Payload {
		return wire.Payload{"type": "transaction_result", "txn_id": m.TxnID, "status": "failed",
			"error_message": code, "amount": num(amount)}
	}
	ackDelay, resultDelay := s.opts.AckDelay, s.opts.ResultDelay
	var result wire.Payload
	cents := minor % 100
	if m.PaymentMode == "ipp" {
		result = wire.Payload{"type": "transaction_result", "txn_id": m.TxnID, "status": "ipp_plans",
			"amount": num(amount), "plans": Plans(minor)}
	} else {
		switch cents {
		case 51:
			result = declined("USER_ABORT")
		case 52:
			result = declined("INSUFFICIENT_FUNDS")
		case 61:
			return
		case 62:
			s.send(ack)
			return
		case 71:
			ackDelay, resultDelay = 2*time.Second, 6*time.Second
			result = approved
		case 81:
			result = wire.Payload{"type": "error", "txn_id": m.TxnID, "message": "card reader not responding"}
		case 91:
			approved["amount"] = num(wire.FormatAmount(minor + 100))
			result = approved
		default:
			result = approved
		}
	}
	sleep(ackDelay)
	if s.opts.Mode == WriteCoalesced && resultDelay == 0 && cents != 92 && !s.opts.DisconnectAfterAck {
		s.write(append(trimNL(s.line(ack)), s.line(result)...))
		return
	}
	s.send(ack)
	if cents == 92 || s.opts.DisconnectAfterAck {
		s.drop()
	}
	sleep(resultDelay)
	s.send(result)
	if cents == 93 {
		s.send(result)
	}
}

func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// unverifiedTxnID is the txn_id a frame refused for its signature claims,
// for the error that answers it; "" if it has none.
func unverifiedTxnID(frame []byte) string {
	var env struct {
		Payload struct {
			TxnID string `json:"txn_id"`
		} `json:"payload"`
	}
	if json.Unmarshal(frame, &env) != nil {
		return ""
	}
	return env.Payload.TxnID
}
