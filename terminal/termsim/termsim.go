// Package termsim is a Concert V2 card terminal simulator: it plays the
// terminal's side of the Concert serial link on a pseudo-terminal
// pair, so paydesk's driver opens the slave path exactly as it opens a real
// /dev/ttyACM0. What the simulated terminal does is chosen by the amount
// (see Outcomes), the way payment sandboxes choose outcomes.
//
// It can also serve any io.ReadWriter (Serve), for tests over pipes. It
// imports only the Concert codec (package concert), not the driver.
package termsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"paydesk/terminal/concert"
)

// Behaviour is what the simulated terminal does with one payment.
type Behaviour string

// The behaviours, chosen by amount (see Table).
const (
	Approve       Behaviour = "approve"
	Refuse        Behaviour = "refuse"
	NeverAnswer   Behaviour = "never-answer"
	Slow          Behaviour = "slow"
	NAKOnce       Behaviour = "nak-once"
	NAKAlways     Behaviour = "nak-always"
	NoAckFrame    Behaviour = "no-ack"
	CorruptOnce   Behaviour = "corrupt-lrc-once"
	CorruptAlways Behaviour = "corrupt-lrc-always"
	Garbage       Behaviour = "garbage"
	MissingEOT    Behaviour = "missing-eot"
	Duplicate     Behaviour = "duplicate"
	HangUp        Behaviour = "hang-up"
	Busy          Behaviour = "busy"
	Late          Behaviour = "late"
	Collide       Behaviour = "collide"
	ShortAnswer   Behaviour = "short-answer"
	Abandon       Behaviour = "abandon"
	Cheque        Behaviour = "cheque"
	WrongAmount   Behaviour = "wrong-amount"
	WrongPrivate  Behaviour = "wrong-private"
	Split         Behaviour = "split"
	Partial       Behaviour = "partial"
	FullPAN       Behaviour = "full-pan"
	SlowAbandon   Behaviour = "slow-abandon"
)

// Case is one row of the behaviour table.
type Case struct {
	// Amount in minor units that selects the behaviour.
	Amount int64
	Behaviour
	// What says what the terminal does, for --help and the demo screen.
	What string
}

// Table lists the amounts with a behaviour; every other amount is approved.
var Table = []Case{
	{601, Refuse, "refuses the card (status 7)"},
	{602, NeverAnswer, "accepts the request, then never answers"},
	{603, Slow, "answers (approved) after the slow delay"},
	{604, NAKOnce, "NAKs the request once, then accepts the resend"},
	{605, NAKAlways, "NAKs the request every time"},
	{606, NoAckFrame, "never ACKs the request frame (then approves later)"},
	{607, CorruptOnce, "sends its answer with a bad LRC once, then a good copy"},
	{608, CorruptAlways, "sends its answer with a bad LRC every time"},
	{609, Garbage, "sends noise before STX and between control bytes"},
	{610, MissingEOT, "approves but never sends the final EOT"},
	{611, Duplicate, "approves, then resends the answer as if our ACK was lost"},
	{612, HangUp, "hangs up (cable unplugged) after accepting; comes back"},
	{613, Busy, "approves, then ignores every ENQ for the busy time"},
	{614, Late, "answers (approved) only after the late delay"},
	{615, Collide, "approves, but holds the answer until the next ENQ (collision)"},
	{616, ShortAnswer, "approves with the short answer although the full one was asked"},
	{617, Abandon, "customer abandons: refused, empty report, amount zeros"},
	{618, Cheque, "approves as a cheque (mode C)"},
	{619, WrongAmount, "approves but echoes another amount"},
	{620, WrongPrivate, "approves but echoes other private data"},
	{621, Split, "sends its answer one byte at a time"},
	{622, Partial, "sends half its answer, goes silent, then a good copy after our NAK"},
	{623, FullPAN, "approves with an unmasked card number in the report"},
	{624, SlowAbandon, "after the slow delay, the customer abandons (refused)"},
}

// BehaviourFor returns the behaviour an amount selects.
func BehaviourFor(amount int64) Behaviour {
	for _, c := range Table {
		if c.Amount == amount {
			return c.Behaviour
		}
	}
	return Approve
}

// Outcomes documents the amounts for --help and the demo screen.
var Outcomes = func() string {
	var b strings.Builder
	b.WriteString("The simulated terminal approves every amount except these:\n")
	for _, c := range Table {
		fmt.Fprintf(&b, "  %d.%02d  %-19s %s\n", c.Amount/100, c.Amount%100, c.Behaviour, c.What)
	}
	return b.String()
}()

// Defaults of the simulator.
const (
	DefaultThink     = 800 * time.Millisecond
	DefaultSlowDelay = 15 * time.Second
	DefaultLateDelay = 200 * time.Second
	DefaultBusyFor   = 10 * time.Second
	DefaultHangUpFor = time.Second
	// PAN is the card report of an approval: masked, as terminals send it.
	PAN = "497010XXXXXX1234"
	// UnmaskedPAN is the report of the full-pan behaviour (a test card).
	UnmaskedPAN = "4970101234561234"
)

// Options configures a simulator. The zero value of each field is its default.
type Options struct {
	// Think is how long the "customer" takes with the card. The default
	// is 800 ms.
	Think time.Duration
	// SlowDelay is the think time of the slow behaviour. The default is 15 s.
	SlowDelay time.Duration
	// LateDelay is when the late behaviour answers. The default is 200 s,
	// past the driver's 180 s result timeout.
	LateDelay time.Duration
	// BusyFor is how long the busy behaviour ignores ENQs. The default is 10 s.
	BusyFor time.Duration
	// HangUpFor is how long a hang-up lasts before the simulator opens a
	// new pseudo-terminal. The default is 1 s.
	HangUpFor time.Duration
	// Timeout is how long the terminal waits for ACKs and bytes. The
	// default is 3 s.
	Timeout time.Duration
	// Baud, when set, paces the simulator as a line of that speed: each
	// byte it sends takes 10/Baud seconds, and it acts on a byte only once
	// that byte would have arrived. Zero sends at pseudo-terminal speed.
	Baud int
	// Link, when set, is a symbolic link kept pointing at the current
	// slave device, so a driver can reopen it after a hang-up (the way
	// /dev/serial/by-id names a USB terminal).
	Link string
	// Logger receives what the simulator does. The default discards it.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Think, DefaultThink)
	def(&o.SlowDelay, DefaultSlowDelay)
	def(&o.LateDelay, DefaultLateDelay)
	def(&o.BusyFor, DefaultBusyFor)
	def(&o.HangUpFor, DefaultHangUpFor)
	def(&o.Timeout, 3*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats counts what the simulator saw, for tests and the demo.
type Stats struct {
	Requests  int // good request frames received (resends included)
	Answers   int // answer frames sent (copies included)
	NAKsSent  int
	NAKsRecv  int
	ENQIgnore int // ENQs ignored while busy
	Sessions  int // ENQ/EOT sessions opened by the ECR
	// LastRequest is the last request decoded.
	LastRequest concert.Request
}

// Sim is a simulated terminal.
type Sim struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	stats     Stats
	busyUntil time.Time
	held      []byte // an answer held for the next ENQ (collide)
	late      []lateAnswer
	// holdAnswers keeps answers waiting, however due (HoldAnswers)
	holdAnswers bool
	master      *os.File
	slave       *os.File
	path        string
	pathc       chan string
}

type lateAnswer struct {
	at   time.Time
	data []byte
}

// New returns a simulator; Open gives it a pseudo-terminal, Serve runs it
// on any stream.
func New(opts Options) *Sim {
	opts.setDefaults()
	return &Sim{opts: opts, log: opts.Logger, pathc: make(chan string, 16)}
}

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// SetBusy makes the terminal ignore every ENQ for d, as a terminal still
// busy with a previous customer does (OCA/pos#550).
func (s *Sim) SetBusy(d time.Duration) {
	s.mu.Lock()
	s.busyUntil = time.Now().Add(d)
	s.mu.Unlock()
}

// HoldAnswers keeps the terminal's answers (after the think time, and
// the late ones) from being sent while on is set, however due they are;
// HoldAnswers(false) lets them go. Tests use it to have an answer arrive
// after an event they wait for, not after a delay that a loaded machine
// may stretch past the one it races.
func (s *Sim) HoldAnswers(on bool) {
	s.mu.Lock()
	s.holdAnswers = on
	s.mu.Unlock()
}

// Busy reports whether the terminal is ignoring ENQs (SetBusy, or the
// busy behaviour after its answer).
func (s *Sim) Busy() bool { return s.busy() }

// waitHeld waits while answers are held, or until ctx ends.
func (s *Sim) waitHeld(ctx context.Context) error {
	for {
		s.mu.Lock()
		held := s.holdAnswers
		s.mu.Unlock()
		if !held {
			return nil
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Sim) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.busyUntil)
}

// errHangUp ends a serve loop when the hang-up behaviour closes the line.
var errHangUp = errors.New("hung up")

// conn is the simulator's side of one line.
type conn struct {
	s      *Sim
	rw     io.ReadWriter
	chunks chan []byte
	done   chan struct{}
	err    error
	buf    []byte
	free   time.Time // when the paced line is free to send again
	stop   chan struct{}
}

func (s *Sim) newConn(rw io.ReadWriter) *conn {
	c := &conn{s: s, rw: rw, chunks: make(chan []byte, 64), done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		for {
			b := make([]byte, 256)
			n, err := rw.Read(b)
			if n > 0 {
				if d := s.wireTime(n); d > 0 {
					time.Sleep(d) // the bytes are still on the wire
				}
				select {
				case c.chunks <- b[:n]:
				case <-c.stop:
					return
				}
			}
			if err != nil {
				c.err = err
				close(c.done)
				return
			}
		}
	}()
	return c
}

func (s *Sim) wireTime(n int) time.Duration {
	if s.opts.Baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(s.opts.Baud)
}

var errTimeout = errors.New("timeout")

// read returns the next byte within d (d <= 0: wait forever).
func (c *conn) read(ctx context.Context, d time.Duration) (byte, error) {
	for len(c.buf) == 0 {
		var tc <-chan time.Time
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			tc = t.C
		}
		select {
		case b := <-c.chunks:
			c.buf = b
		case <-c.done:
			select {
			case b := <-c.chunks:
				c.buf = b
			default:
				return 0, fmt.Errorf("line closed: %w", c.err)
			}
		case <-tc:
			return 0, errTimeout
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	b := c.buf[0]
	c.buf = c.buf[1:]
	return b, nil
}

func (c *conn) ReadByte() (byte, error) { return c.read(context.Background(), c.s.opts.Timeout) }

// write sends b, paced at the configured baud rate.
func (c *conn) write(b ...byte) error {
	if c.s.opts.Baud > 0 {
		now := time.Now()
		if c.free.Before(now) {
			c.free = now
		}
		c.free = c.free.Add(c.s.wireTime(len(b)))
		time.Sleep(time.Until(c.free))
	}
	_, err := c.rw.Write(b)
	return err
}

// Serve plays the terminal on rw until ctx ends or the line fails. A
// hang-up behaviour returns errHangUp after closing nothing: the caller
// (Run) closes the pseudo-terminal.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	c := s.newConn(rw)
	defer close(c.stop)
	// A frame while idle (a copy of the request that came after its
	// session ended) is dropped whole: its LRC may be ENQ.
	var stray frameSkip
	for {
		if err := s.deliverLate(ctx, c); err != nil {
			return err
		}
		b, err := c.read(ctx, 50*time.Millisecond)
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			return err
		}
		if stray.drop(b) {
			s.log.Debug("sim: ignored frame byte in idle", "byte", fmt.Sprintf("%02x", b))
			continue
		}
		if b != concert.ENQ {
			s.log.Debug("sim: ignored byte in idle", "byte", fmt.Sprintf("%02x", b))
			continue
		}
		if s.busy() {
			s.mu.Lock()
			s.stats.ENQIgnore++
			s.mu.Unlock()
			s.log.Info("sim: busy, ENQ ignored")
			continue
		}
		s.mu.Lock()
		held := s.held
		s.held = nil
		s.stats.Sessions++
		s.mu.Unlock()
		if held != nil {
			// Collision: answer the ECR's ENQ with our own and send first.
			s.log.Info("sim: collision, sending the held answer first")
			if err := c.write(concert.ENQ); err != nil {
				return err
			}
			if b, err := c.read(ctx, s.opts.Timeout); err != nil || b != concert.ACK {
				s.log.Info("sim: collision not yielded", "byte", b, "err", err)
				continue
			}
			if err := s.sendAnswer(ctx, c, held, Approve); err != nil {
				return err
			}
			continue
		}
		if err := s.session(ctx, c); err != nil {
			return err
		}
	}
}

func (s *Sim) deliverLate(ctx context.Context, c *conn) error {
	s.mu.Lock()
	var due []byte
	for i, l := range s.late {
		if s.holdAnswers {
			break
		}
		if time.Now().After(l.at) {
			due = l.data
			s.late = append(s.late[:i], s.late[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if due == nil {
		return nil
	}
	s.log.Info("sim: sending a late answer")
	return s.phase2(ctx, c, due, Approve)
}

// session plays one ECR session after its ENQ: ACK, the request, EOT, then
// the answer as the behaviour says.
func (s *Sim) session(ctx context.Context, c *conn) error {
	if err := c.write(concert.ACK); err != nil {
		return err
	}
	naks := 0
	var q concert.Request
	var bh Behaviour
	for {
		// An EOT instead of a frame ends the session (the ECR's ENQ/EOT
		// health probe, or the ECR giving up): it must not be skipped as
		// noise, or the next ENQ would be swallowed with it.
		first, err := c.read(ctx, s.opts.Timeout)
		if err != nil {
			if isClosed(err) {
				return err
			}
			s.log.Info("sim: no request frame", "err", err)
			return nil
		}
		if first == concert.EOT {
			s.log.Debug("sim: session ended by EOT")
			return nil
		}
		c.buf = append([]byte{first}, c.buf...)
		data, _, err := concert.ReadFrame(c)
		if err != nil {
			if errors.Is(err, concert.ErrBadLRC) || errors.Is(err, concert.ErrBadData) {
				s.count(func(st *Stats) { st.NAKsSent++ })
				if err := c.write(concert.NAK); err != nil {
					return err
				}
				continue
			}
			if isClosed(err) {
				return err
			}
			s.log.Info("sim: no request frame", "err", err)
			return nil // EOT or silence: the ECR ended the session
		}
		q, err = concert.ParseRequest(data)
		if err != nil {
			s.log.Info("sim: bad request", "err", err)
			if err := c.write(concert.NAK); err != nil {
				return err
			}
			continue
		}
		s.count(func(st *Stats) { st.Requests++; st.LastRequest = q })
		bh = BehaviourFor(q.Amount)
		if bh == NoAckFrame {
			// Every copy is ignored until the ECR gives up with EOT; the
			// terminal approves later anyway. The wait is per byte and
			// generous: an ECR slowed down (a loaded machine) resends
			// later than its usual ACK timeout, and a session ended here
			// would never answer.
			s.log.Info("sim: no-ack, frames ignored until the ECR's EOT")
			s.ignoreUntilEOT(ctx, c)
			s.schedule(answer(q, Approve), s.opts.Think)
			return nil
		}
		if bh == NAKAlways || (bh == NAKOnce && naks == 0) {
			naks++
			s.count(func(st *Stats) { st.NAKsSent++ })
			if err := c.write(concert.NAK); err != nil {
				return err
			}
			continue
		}
		if bh == Garbage {
			if err := c.write(0x00, 0xFF, 'z'); err != nil {
				return err
			}
		}
		if err := c.write(concert.ACK); err != nil {
			return err
		}
		break
	}
	s.waitEOT(ctx, c)
	if bh == HangUp {
		s.log.Info("sim: hanging up")
		return errHangUp
	}
	data := answer(q, bh)
	switch bh {
	case NeverAnswer:
		return nil
	case Late:
		s.schedule(data, s.opts.LateDelay)
		return nil
	case Collide:
		s.mu.Lock()
		s.held = data
		s.mu.Unlock()
		return nil
	}
	think := s.opts.Think
	if bh == Slow || bh == SlowAbandon {
		think = s.opts.SlowDelay
	}
	select {
	case <-time.After(think):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := s.waitHeld(ctx); err != nil {
		return err
	}
	if err := s.phase2(ctx, c, data, bh); err != nil {
		return err
	}
	if bh == Busy {
		s.SetBusy(s.opts.BusyFor)
	}
	return nil
}

func (s *Sim) schedule(data []byte, after time.Duration) {
	s.mu.Lock()
	s.late = append(s.late, lateAnswer{at: time.Now().Add(after), data: data})
	s.mu.Unlock()
}

func (s *Sim) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func isClosed(err error) bool {
	return err != nil && !errors.Is(err, errTimeout) && strings.Contains(err.Error(), "line closed")
}

// ignoreUntilEOT drops what the ECR sends until its EOT, waiting up to
// four timeouts (at least 2 s) for each byte.
func (s *Sim) ignoreUntilEOT(ctx context.Context, c *conn) {
	c.untilEOT(ctx, max(4*s.opts.Timeout, 2*time.Second))
}

// waitEOT drops what the ECR sends until its EOT, each byte within the
// timeout.
func (s *Sim) waitEOT(ctx context.Context, c *conn) { c.untilEOT(ctx, s.opts.Timeout) }

// untilEOT reads and drops bytes until the ECR's EOT, each within wait.
// A frame (a copy of the request resent because our ACK came late, or
// never) is dropped whole, through its LRC: the LRC may be any byte, EOT
// included, and is not the ECR's EOT.
func (c *conn) untilEOT(ctx context.Context, wait time.Duration) {
	var f frameSkip
	for {
		b, err := c.read(ctx, wait)
		if err != nil || (!f.drop(b) && b == concert.EOT) {
			return
		}
	}
}

// frameSkip follows a frame the simulator drops (STX, data, ETX, LRC), so
// that its LRC, which may be any byte, is not taken for a control byte.
type frameSkip struct{ inFrame, lrcNext bool }

// drop reports whether b belongs to a frame being dropped. A control
// byte inside the data (which holds none) ends a frame cut short, and is
// not dropped.
func (f *frameSkip) drop(b byte) bool {
	switch {
	case f.lrcNext:
		f.lrcNext = false
		return true
	case f.inFrame && b == concert.ETX:
		f.inFrame, f.lrcNext = false, true
		return true
	case f.inFrame && b >= 0x20:
		return true
	case b == concert.STX:
		f.inFrame = true
		return true
	}
	f.inFrame = false
	return false
}

// phase2 opens the terminal's session: ENQ (retried), then the answer.
func (s *Sim) phase2(ctx context.Context, c *conn, data []byte, bh Behaviour) error {
	for attempt := 0; ; attempt++ {
		if bh == Garbage {
			if err := c.write('#', 0x7F); err != nil {
				return err
			}
		}
		if err := c.write(concert.ENQ); err != nil {
			return err
		}
		b, err := c.read(ctx, s.opts.Timeout)
		if err == nil && b == concert.ACK {
			break
		}
		if isClosed(err) || ctx.Err() != nil {
			return err
		}
		if err == nil && b == concert.ENQ {
			// The ECR wants to send too: we go first, as a terminal with a
			// result does; it yields.
			continue
		}
		if attempt == 2 {
			s.log.Info("sim: the ECR never ACKed our ENQ; answer dropped")
			c.write(concert.EOT)
			return nil
		}
		c.write(concert.EOT)
	}
	return s.sendAnswer(ctx, c, data, bh)
}

// sendAnswer sends the answer frame after the ECR ACKed our ENQ.
func (s *Sim) sendAnswer(ctx context.Context, c *conn, data []byte, bh Behaviour) error {
	good := concert.Frame(data)
	for copyN := 1; ; copyN++ {
		f := bytes.Clone(good)
		if bh == CorruptAlways || (bh == CorruptOnce && copyN == 1) {
			f[len(f)-1] ^= 0x40
		}
		if bh == Garbage && copyN == 1 {
			f = append([]byte("\x00noise\xff"), f...)
		}
		var err error
		switch {
		case bh == Split:
			for _, b := range f {
				if err = c.write(b); err != nil {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
		case bh == Partial && copyN == 1:
			err = c.write(f[:len(f)/2]...)
		default:
			err = c.write(f...)
		}
		if err != nil {
			return err
		}
		s.count(func(st *Stats) { st.Answers++ })
		b, err := c.read(ctx, s.opts.Timeout+time.Second)
		if isClosed(err) {
			return err
		}
		if err != nil {
			s.log.Info("sim: no ACK to our answer", "err", err)
			return nil
		}
		switch b {
		case concert.ACK:
		case concert.NAK:
			s.count(func(st *Stats) { st.NAKsRecv++ })
			if copyN >= 3 {
				// Three sends, then EOT, as the ECR does with its own frame.
				return c.write(concert.EOT)
			}
			continue
		default: // EOT: the ECR gave up
			return nil
		}
		if bh == Duplicate && copyN == 1 {
			continue // as if our ACK was lost: the same frame again
		}
		break
	}
	if bh == MissingEOT {
		return nil
	}
	return c.write(concert.EOT)
}

// answer builds the terminal's answer to q for the behaviour.
func answer(q concert.Request, bh Behaviour) []byte {
	status, amount, mode, report, private := byte('0'), q.Amount, byte('1'), PAN, q.Private
	switch bh {
	case Refuse, SlowAbandon:
		status, report = '7', ""
	case Abandon:
		status, amount, report = '7', 0, ""
	case Cheque:
		mode, report = 'C', "0000000 000000000000 0000000000000"
	case WrongAmount:
		amount++
	case WrongPrivate:
		private = "XXXXXXXXXX"
	case FullPAN:
		report = UnmaskedPAN
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%02d%c%08d%c", q.POS, status, amount, mode)
	if q.FullAnswer && bh != ShortAnswer {
		fmt.Fprintf(&b, "%-55s", report)
	}
	fmt.Fprintf(&b, "%s%-10s", q.Currency, private)
	return b.Bytes()
}
