package protocol

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"paydesk/payment"
	"paydesk/protocol/wire"
)

// Defaults of the POS link. Each is documented on its Options field.
const (
	DefaultAddr          = "0.0.0.0:8080"
	DefaultKioskID       = "KIOSK001"
	DefaultAckTimeout    = 10 * time.Second
	DefaultResultTimeout = 120 * time.Second
	DefaultMaxConns      = 4096
	// DefaultRejectRate is the default of Options.RejectRate.
	DefaultRejectRate = 1 << 20
	// DefaultMaxSilentPerAddr is the default of Options.MaxSilentPerAddr.
	DefaultMaxSilentPerAddr = 1024
	// DefaultWindow is the default of Options.Window: the MobyPay
	// protocol's window, the verifier's default.
	DefaultWindow = wire.DefaultWindow
)

// DevSecret is the shared secret published in the MobyPay documents. It is
// the default only for development: paydesk warns when it is in use.
const DevSecret = "POS-KIOSK-SECRET-KEY-2024"

// Options configures a Server. The zero value of each field means its
// default.
type Options struct {
	// Addr is the TCP address to listen on. The default is 0.0.0.0:8080.
	Addr string
	// TLS, when set, makes the listener speak TLS.
	TLS *tls.Config
	// Secret is the HMAC key shared with the POS terminals. Required.
	Secret []byte
	// KioskID is sent as kiosk_id in every message. The default is KIOSK001.
	KioskID string
	// Window is how far a message's timestamp may be from now, either way.
	// The default is 60 seconds.
	Window time.Duration
	// AckTimeout is how long to wait for the POS to acknowledge a request
	// or a cancel. The default is 10 seconds.
	AckTimeout time.Duration
	// ResultTimeout is how long to wait for the result once acknowledged
	// (and for the operator to choose an IPP plan). The default is 120
	// seconds.
	ResultTimeout time.Duration
	// IdleTimeout, when positive, closes a connection that sends nothing
	// for that long while no transaction is in flight on it. Dead peers are
	// found by TCP keep-alive (15 s) whatever this is, so the default is 0:
	// a quiet POS waiting for the next payment stays connected.
	IdleTimeout time.Duration
	// MaxConns caps open connections. When full, room is made from the
	// address (IP) that holds the most connections that never sent a
	// valid message: its oldest such connection is closed. A connection
	// that is the only silent one of its address is never closed to make
	// room (MobyPay's POS sends nothing until it gets a request); when no
	// address holds two, the newcomer is refused. The default is 4096.
	MaxConns int
	// RejectRate is how many bytes of refused frames a connection may
	// send per second (each frame counts 512 bytes more than its size)
	// before its reader slows down to that pace, so a peer sending
	// garbage (a wrong secret, a flood) costs a bounded share of the CPU
	// and the honest POS keep their throughput. The budget starts full
	// (one second's worth). The default is 1 MiB/s.
	RejectRate int
	// MaxSilentPerAddr caps the connections one address may hold that
	// never sent a valid message: a new one beyond it closes that
	// address's oldest. The default is 1024.
	MaxSilentPerAddr int
	// Now is the clock. The default is time.Now.
	Now func() time.Time
	// Logger receives connection events, rejections and transitions. The
	// default is slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.KioskID == "" {
		o.KioskID = DefaultKioskID
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.ResultTimeout <= 0 {
		o.ResultTimeout = DefaultResultTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.RejectRate <= 0 {
		o.RejectRate = DefaultRejectRate
	}
	if o.MaxSilentPerAddr <= 0 {
		o.MaxSilentPerAddr = DefaultMaxSilentPerAddr
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Server is the kiosk side of the MobyPay POS link: it listens for POS
// terminals, sends them payment requests, and turns their answers into
// journaled transitions on the bus. It is a payment rail.
type Server struct {
	opts   Options
	bus    *payment.Bus
	log    *slog.Logger
	nonces *wire.NonceStore
	// started is when this run began: its nonce store knows nothing of
	// what an earlier run accepted (see fresh).
	started time.Time

	mu    sync.Mutex
	ln    net.Listener
	conns []*conn // in accept order
	// silent counts, per host, the open connections that never sent a
	// valid message (conn.counted).
	silent   map[string]int
	refusals *limiter // connections refused at the cap
	txns     map[string]*txn
	lastDone string // peer label of the POS that last completed a payment
	lastTxn  int64  // last txn id's milliseconds, for uniqueness
	closed   bool
	wg       sync.WaitGroup
}

// NewServer returns a server that reports on bus. Call Serve or
// ListenAndServe to accept POS terminals.
func NewServer(bus *payment.Bus, opts Options) (*Server, error) {
	opts.setDefaults()
	if len(opts.Secret) == 0 {
		return nil, errors.New("pos link: no shared secret")
	}
	s := &Server{
		opts:   opts,
		bus:    bus,
		log:    opts.Logger.With("rail", payment.RailPOS),
		nonces: wire.NewNonceStore(opts.Window, 0),
		txns:   make(map[string]*txn),
		silent: make(map[string]int),
	}
	s.started = opts.Now()
	s.refusals = newLimiter(RejectBurst, RejectInterval, func(r report) {
		s.log.Warn("connection refused: too many connections", "peer", r.txnID, "max", s.opts.MaxConns)
		s.publish(payment.Event{Kind: payment.KindRejected, Time: r.at, Peer: r.txnID, Detail: r.reason})
	}, func(n int, since time.Time, last report) {
		d := fmt.Sprintf("%d more connections refused since %s (last from %s): %d connections open, none of them an address's second silent one",
			n, since.Format("15:04:05"), last.txnID, s.opts.MaxConns)
		s.log.Warn("connections refused", "count", n, "since", since, "last", last.txnID)
		s.publish(payment.Event{Kind: payment.KindRejected, Time: last.at, Peer: last.txnID, Detail: d})
	})
	return s, nil
}

// Listen opens the listening socket (TLS when configured) without serving,
// so a caller can report a busy port before starting anything else.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen for POS terminals on %s: %w", s.opts.Addr, err)
	}
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	return ln, nil
}

// Serve accepts POS connections on ln until ctx ends or Close is called.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.ln = ln
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	s.log.Info("listening for POS terminals", "addr", ln.Addr().String(), "tls", s.opts.TLS != nil)
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			// Temporary failures (EMFILE): back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.accept(c)
	}
}

// Addr is the listening address, once serving.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops listening and closes every connection. Transactions in
// flight stay in the journal and become unknown at the next start if they
// never finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln := s.ln
	conns := slices.Clone(s.conns)
	txns := make([]*txn, 0, len(s.txns))
	for _, t := range s.txns {
		txns = append(txns, t)
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.nc.Close()
	}
	for _, t := range txns {
		t.stopTimer()
	}
	s.wg.Wait()
	s.refusals.stop()
	return nil
}

// conn is one POS connection.
type conn struct {
	nc    net.Conn
	addr  string
	host  string // addr without the port
	since time.Time

	// Guarded by the server's mu: counted while in Server.silent;
	// closeReason says why the server closed the connection, if it did.
	counted     bool
	closeReason string

	// done is closed once the connection has ended (gone is set).
	done chan struct{}
	// rejects journals and logs this connection's refused frames at a
	// bounded rate, off its reader; rejected counts them all.
	rejects  *limiter
	rejected atomic.Int64
	// badSigs counts the frames refused for their signature: a POS whose
	// every message fails it signs with another secret.
	badSigs atomic.Int64

	mu sync.Mutex // guards the fields below
	// posID is the pos_id this connection claimed in its first authentic
	// message that carried one; it never changes afterwards, and no two
	// live connections hold the same one (see identify).
	posID   string
	lastMsg time.Time
	trusted bool // sent at least one valid message
	gone    bool

	// writes hands frames to the connection's writer goroutine (see
	// writer), so no lock is held across a write to the POS.
	writes chan writeReq
}

// writeReq is a frame for a connection's writer, and where it answers.
type writeReq struct {
	line []byte
	done chan error // buffered: the writer never waits on it
}

// writeTimeout bounds one write to a POS.
const writeTimeout = 5 * time.Second

// writer writes the frames sent to c one at a time, each within
// writeTimeout, until the connection has ended.
func (c *conn) writer() {
	for {
		select {
		case w := <-c.writes:
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			_, err := c.nc.Write(w.line)
			w.done <- err
		case <-c.done:
			return
		}
	}
}

// identity is the pos_id the connection has claimed, empty if none yet.
func (c *conn) identity() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.posID
}

func (c *conn) isGone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

func (c *conn) label() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.posID != "" {
		return c.posID
	}
	return c.addr
}

// Peers lists the open connections in the order they connected.
func (s *Server) Peers() []payment.Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]payment.Peer, 0, len(s.conns))
	for _, c := range s.conns {
		c.mu.Lock()
		p := payment.Peer{ID: c.posID, Addr: c.addr, Since: c.since, LastMsg: c.lastMsg, Rejected: c.rejected.Load()}
		c.mu.Unlock()
		for _, t := range s.txns {
			if t.active() && (t.conn == c || (p.ID != "" && t.posID == p.ID)) {
				p.Busy = t.id
			}
		}
		out = append(out, p)
	}
	return out
}

// DefaultTarget is where a request goes when the operator names none: the
// POS that last completed a payment if it is still connected, else the
// earliest connection still open (kiosk.py's choice). Empty when none.
func (s *Server) DefaultTarget() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.defaultConnLocked()
	if c == nil {
		return ""
	}
	return c.label()
}

func (s *Server) defaultConnLocked() *conn {
	if s.lastDone != "" {
		if c := s.findLocked(s.lastDone); c != nil {
			return c
		}
	}
	if len(s.conns) > 0 {
		return s.conns[0]
	}
	return nil
}

// findLocked returns the newest open connection whose pos_id or address
// is label.
func (s *Server) findLocked(label string) *conn {
	for i := len(s.conns) - 1; i >= 0; i-- {
		c := s.conns[i]
		c.mu.Lock()
		match := c.posID == label || c.addr == label
		c.mu.Unlock()
		if match {
			return c
		}
	}
	return nil
}

func (s *Server) accept(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3})
	}
	addr := nc.RemoteAddr().String()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c := &conn{nc: nc, addr: addr, host: host, since: s.opts.Now(), done: make(chan struct{}), writes: make(chan writeReq)}
	c.rejects = s.rejectLimiter(c)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	var evict *conn
	refuse := ""
	if n := s.silent[host]; n >= s.opts.MaxSilentPerAddr {
		if evict = s.oldestSilentLocked(host); evict != nil {
			evict.closeReason = fmt.Sprintf("closed to make room: %s holds %d connections that never sent a valid message, its cap", host, n)
		} else {
			refuse = fmt.Sprintf("connection refused: %s holds %d connections that never sent a valid message, its cap, all of them busy", host, n)
		}
	} else if len(s.conns) >= s.opts.MaxConns {
		if busiest, most := s.busiestLocked(host); most >= 2 {
			evict = s.oldestSilentLocked(busiest)
			if evict != nil {
				evict.closeReason = fmt.Sprintf("closed to make room: %d connections open, %s holds the most that never sent a valid message (%d)",
					s.opts.MaxConns, busiest, s.silent[busiest])
			}
		}
		if evict == nil {
			refuse = fmt.Sprintf("connection refused: %d connections open, and no address holds two idle ones that never sent a valid message", s.opts.MaxConns)
		}
	}
	if refuse != "" {
		s.mu.Unlock()
		s.refusals.add(report{reason: refuse, txnID: addr, at: c.since})
		nc.Close()
		return
	}
	if evict != nil {
		s.uncountLocked(evict)
		if i := slices.Index(s.conns, evict); i >= 0 {
			s.conns = slices.Delete(s.conns, i, i+1)
		}
	}
	s.conns = append(s.conns, c)
	c.counted = true
	s.silent[host]++
	n := len(s.conns)
	s.wg.Add(1)
	var why string
	if evict != nil {
		why = evict.closeReason
	}
	s.mu.Unlock()
	if evict != nil {
		// Its reader journals the disconnect with this reason, so the
		// console shows the eviction.
		s.log.Warn("closing a silent connection to make room", "peer", evict.addr, "reason", why)
		evict.nc.Close()
	}
	s.log.Info("POS connected", "peer", c.addr, "connections", n)
	go s.serveConn(c)
}

// busiestLocked returns the host holding the most silent connections,
// counting the newcomer from host, and that count.
func (s *Server) busiestLocked(newcomer string) (string, int) {
	best, most := "", 0
	for h, n := range s.silent {
		if h == newcomer {
			n++
		}
		if n > most || (n == most && h == newcomer) {
			best, most = h, n
		}
	}
	if most == 0 {
		return newcomer, 1
	}
	return best, most
}

// oldestSilentLocked returns the oldest open connection of host that never
// sent a valid message and has no payment in flight (a POS that has just
// been sent its first request has not answered yet), or nil.
func (s *Server) oldestSilentLocked(host string) *conn {
	for _, c := range s.conns {
		if c.counted && c.host == host && !s.busyLocked(c) {
			return c
		}
	}
	return nil
}

// uncountLocked takes c out of the silent counts (it spoke, was closed to
// make room, or ended).
func (s *Server) uncountLocked(c *conn) {
	if !c.counted {
		return
	}
	c.counted = false
	if s.silent[c.host]--; s.silent[c.host] <= 0 {
		delete(s.silent, c.host)
	}
}

func (s *Server) serveConn(c *conn) {
	defer s.wg.Done()
	go c.writer() // ends once c.done is closed, below
	// Journaled here, not in the accept loop, which must never wait on disk.
	s.publish(payment.Event{Kind: payment.KindConnection, Peer: c.addr, Detail: "connected from " + c.addr})
	reason := "disconnected"
	defer func() {
		c.nc.Close()
		s.mu.Lock()
		c.mu.Lock()
		c.gone = true
		c.mu.Unlock()
		s.uncountLocked(c)
		if i := slices.Index(s.conns, c); i >= 0 {
			s.conns = slices.Delete(s.conns, i, i+1)
		}
		if c.closeReason != "" {
			reason = c.closeReason
		}
		n := len(s.conns)
		s.mu.Unlock()
		close(c.done)
		c.rejects.stop() // its count is journaled before the disconnect
		s.log.Info("POS disconnected", "peer", c.addr, "pos_id", c.label(), "reason", reason, "connections", n)
		s.publish(payment.Event{Kind: payment.KindConnection, Peer: c.label(), Detail: "disconnected: " + reason})
	}()
	v := wire.NewVerifier(s.opts.Secret, s.nonces, wire.VerifierOptions{Window: s.opts.Window, Now: s.opts.Now})
	fr := wire.NewFrameReader(&deadlineReader{s: s, c: c}, wire.MaxFrame)
	tb := bucket{rate: float64(s.opts.RejectRate), tokens: float64(s.opts.RejectRate), last: time.Now()}
	for {
		if n := c.rejected.Load(); n > 0 {
			// The previous frame was refused: pay for it before reading
			// the next, so refused input costs this kiosk at most
			// RejectRate bytes a second per connection.
			tb.pay(n, time.Now())
		}
		frame, err := fr.Next()
		tb.cost = len(frame) + frameOverhead
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				reason = "closed by POS"
			case errors.Is(err, wire.ErrFrameTooLarge):
				reason = fmt.Sprintf("frame larger than %d bytes", wire.MaxFrame)
				s.reject(c, nil, "", &wire.RejectError{Reason: reason + ": closing connection", Err: wire.ErrFrameTooLarge})
			case errors.Is(err, os.ErrDeadlineExceeded):
				reason = fmt.Sprintf("idle for %s", s.opts.IdleTimeout)
			default:
				reason = err.Error()
			}
			return
		}
		msg, err := v.Check(frame)
		if err != nil {
			var re *wire.RejectError
			if errors.As(err, &re) && re.Stale != nil {
				s.trust(c)
				s.staleAnswer(c, frame, re)
				continue
			}
			s.reject(c, frame, "", err)
			continue
		}
		s.trust(c)
		if err := s.identify(c, msg); err != nil {
			s.reject(c, frame, s.knownTxn(msg.TxnID), err)
			continue
		}
		s.dispatch(c, msg, frame)
	}
}

// frameOverhead is what a refused frame costs beyond its bytes, in the
// RejectRate budget: the work of reading and refusing it.
const frameOverhead = 512

// bucket is a token bucket of refused bytes for one connection's reader.
type bucket struct {
	rate, tokens float64
	last         time.Time
	cost         int   // of the frame being handled
	seen         int64 // refusals already paid for
}

// pay charges the last frame if it was refused (rejected moved past seen)
// and sleeps while the bucket is empty. Sleeping holds no lock and waits
// for no disk: the refused peer's own socket simply fills up.
func (b *bucket) pay(rejected int64, now time.Time) {
	if rejected == b.seen || b.rate <= 0 {
		return
	}
	b.seen = rejected
	b.tokens = min(b.rate, b.tokens+b.rate*now.Sub(b.last).Seconds())
	b.last = now
	b.tokens -= float64(b.cost)
	if b.tokens < 0 {
		time.Sleep(time.Duration(-b.tokens / b.rate * float64(time.Second)))
	}
}

// trust notes that c sent an authentic message: it is no longer a silent
// connection that may be closed to make room.
func (s *Server) trust(c *conn) {
	c.mu.Lock()
	first := !c.trusted
	c.trusted, c.lastMsg = true, s.opts.Now()
	c.mu.Unlock()
	if first {
		s.mu.Lock()
		s.uncountLocked(c)
		s.mu.Unlock()
	}
}

// ClaimGrace is how long a connection that claims the pos_id of another
// live connection waits for that connection to end before its claim is
// refused: a POS that reconnects has closed its old socket, and the
// kiosk's reader of that socket needs a moment to see it.
const ClaimGrace = 2 * time.Second

// ErrPOSIDTaken is the reason a message is refused when its pos_id is held
// by another live connection, or differs from the one its connection
// already claimed.
var ErrPOSIDTaken = errors.New("pos_id held by another connection")

// identify ties the message's pos_id to its connection. All POS share one
// secret, so a pos_id is a claim, not a proof: the first connection to
// claim an id keeps it while it lives. A connection keeps the id it first
// claimed; a second connection may claim the same id only once the first
// has ended (closed by the POS, or declared dead by TCP keep-alive).
func (s *Server) identify(c *conn, m *wire.Message) error {
	if m.PosID == "" {
		return nil
	}
	if own := c.identity(); own != "" {
		if own != m.PosID {
			return &wire.RejectError{Reason: fmt.Sprintf("%s says pos_id %s, but this connection is %s", m.Type, m.PosID, own),
				Err: ErrPOSIDTaken}
		}
		return nil
	}
	deadline := time.Now().Add(ClaimGrace)
	for first := true; ; first = false {
		s.mu.Lock()
		var holder *conn
		for _, o := range s.conns {
			if o != c && o.identity() == m.PosID {
				holder = o
				break
			}
		}
		if holder == nil {
			c.mu.Lock()
			c.posID = m.PosID
			c.mu.Unlock()
			s.mu.Unlock()
			s.log.Info("POS identified", "peer", c.addr, "pos_id", m.PosID)
			return nil
		}
		s.mu.Unlock()
		if first {
			s.contest(c, m)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return &wire.RejectError{Reason: fmt.Sprintf("pos_id %s is held by the live connection from %s: claim from %s refused",
				m.PosID, holder.addr, c.addr), Err: ErrPOSIDTaken}
		}
		t := time.NewTimer(wait)
		select {
		case <-holder.done:
		case <-t.C:
		}
		t.Stop()
	}
}

// knownTxn returns id if it names a transaction of this rail (in flight or
// in the journal), so a refusal is journaled against it; else "".
func (s *Server) knownTxn(id string) string {
	if id == "" || s.lookup(id) != nil {
		return id
	}
	if tx, err := s.bus.Journal().Txn(context.Background(), id); err == nil && tx.Rail == payment.RailPOS {
		return id
	}
	return ""
}

// reject logs and journals an inbound frame refused by the guard or by
// the session rules, against txnID when it concerns a transaction; the
// connection keeps serving. The first RejectBurst refusals of a connection
// are kept in full, then one line per RejectInterval counts the rest; both
// are written off the reader, which never waits for the journal because of
// a frame it refused.
func (s *Server) reject(c *conn, frame []byte, txnID string, err error) {
	reason := err.Error()
	var re *wire.RejectError
	if errors.As(err, &re) {
		reason = re.Reason
	}
	c.rejected.Add(1)
	if errors.Is(err, wire.ErrBadSignature) {
		c.badSigs.Add(1)
	}
	raw := frame
	if len(raw) > 1024 {
		raw = raw[:1024]
	}
	c.rejects.add(report{kind: kindOf(err), reason: reason, txnID: txnID, raw: slices.Clone(raw), at: s.opts.Now()})
}

// rejectLimiter returns the limiter of c's refusals.
func (s *Server) rejectLimiter(c *conn) *limiter {
	return newLimiter(RejectBurst, RejectInterval, func(r report) {
		s.log.Warn("message rejected", "peer", c.addr, "pos_id", c.label(), "txn", r.txnID, "reason", r.reason)
		s.publish(payment.Event{Kind: payment.KindRejected, Time: r.at, TxnID: r.txnID, Peer: c.label(), Detail: r.reason, Raw: r.raw})
	}, func(n int, since time.Time, last report) {
		d := fmt.Sprintf("%d more frames rejected since %s (the last: %s)", n, since.Format("15:04:05"), last.reason)
		s.log.Warn("messages rejected", "peer", c.addr, "pos_id", c.label(), "count", n, "since", since, "last_reason", last.reason)
		s.publish(payment.Event{Kind: payment.KindRejected, Time: last.at, Peer: c.label(), Detail: d, Raw: last.raw})
	})
}

// publish journals an event of this rail. Errors are logged by the bus.
func (s *Server) publish(ev payment.Event) (payment.Event, error) {
	ev.Rail = payment.RailPOS
	if ev.Time.IsZero() {
		ev.Time = s.opts.Now()
	}
	return s.bus.Publish(context.Background(), ev)
}

// deadlineReader applies the idle timeout to each read, except while a
// transaction is in flight on the connection.
type deadlineReader struct {
	s *Server
	c *conn
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.s.opts.IdleTimeout > 0 {
		if d.s.busy(d.c) {
			d.c.nc.SetReadDeadline(time.Time{})
		} else {
			d.c.nc.SetReadDeadline(time.Now().Add(d.s.opts.IdleTimeout))
		}
	}
	return d.c.nc.Read(p)
}

func (s *Server) busy(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busyLocked(c)
}

func (s *Server) busyLocked(c *conn) bool {
	for _, t := range s.txns {
		if t.active() && t.conn == c {
			return true
		}
	}
	return false
}

// send signs payload and writes it as one line to c, through c's writer.
func (s *Server) send(c *conn, p wire.Payload) ([]byte, error) {
	p["kiosk_id"] = s.opts.KioskID
	p["timestamp"] = strconv.FormatInt(s.opts.Now().UnixMilli(), 10)
	p["nonce"] = uuid.NewString()
	env, err := wire.Sign(p, s.opts.Secret)
	if err != nil {
		return nil, fmt.Errorf("sign %v: %w", p["type"], err)
	}
	line := env.Line()
	if s.opts.IdleTimeout > 0 {
		// An answer is now expected: lift the idle deadline of the read
		// already pending (the next read sets its own).
		c.nc.SetReadDeadline(time.Time{})
	}
	// The connection's writer writes it: whoever sends holds no lock
	// while the POS's socket takes it (or not, for up to writeTimeout).
	w := writeReq{line: line, done: make(chan error, 1)}
	select {
	case c.writes <- w:
		err = <-w.done
	case <-c.done:
		err = net.ErrClosed
	}
	if err != nil {
		return line, fmt.Errorf("send %v to %s: %w", p["type"], c.label(), err)
	}
	return line, nil
}

// newTxnID returns "TXN" + milliseconds, as POS apps expect, never the same
// twice: within one millisecond the next id takes the next millisecond.
func (s *Server) newTxnIDLocked() string {
	ms := s.opts.Now().UnixMilli()
	if ms <= s.lastTxn {
		ms = s.lastTxn + 1
	}
	s.lastTxn = ms
	return "TXN" + strconv.FormatInt(ms, 10)
}
