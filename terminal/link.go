package terminal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"paydesk/terminal/concert"
	"time"
)

// Defaults of the Concert link layer. No public source gives
// Concert's own values; these follow the implementations and
// comparable ECR links. Each is documented on its Timers field.
const (
	DefaultAckTimeout    = 3 * time.Second
	DefaultInterByte     = 3 * time.Second
	DefaultENQAttempts   = 3
	DefaultENQPause      = time.Second
	DefaultFrameSends    = 3
	DefaultResultTimeout = 180 * time.Second
	DefaultEOTTimeout    = 3 * time.Second
	DefaultBadFrames     = 3
)

// Timers are the link layer's timeouts and retry counts. The zero value of
// each field means its default.
type Timers struct {
	// Ack is how long to wait for ACK after our ENQ, and for ACK or NAK
	// after our frame. The default is 3 seconds.
	Ack time.Duration
	// InterByte is the longest gap allowed inside a frame, and the wait
	// for STX after we ACK the terminal's ENQ. The default is 3 seconds.
	InterByte time.Duration
	// ENQAttempts is how many ENQs are sent (EOT and a pause after each
	// unanswered one) before the terminal is "not ready". The default is 3.
	ENQAttempts int
	// ENQPause is the pause after the EOT that follows an unanswered ENQ.
	// The default is 1 second.
	ENQPause time.Duration
	// FrameSends is how many times a request frame is sent: the first and
	// the resends after a NAK or silence. The default is 3.
	FrameSends int
	// Result is how long to wait for the terminal's ENQ with the result
	// once it accepted the request. The default is 180 seconds.
	Result time.Duration
	// EOT is how long to wait for the terminal's EOT after we ACK its
	// answer; without it the result is kept and a warning logged. The
	// default is 3 seconds.
	EOT time.Duration
	// BadFrames is how many bad copies of a frame (wrong LRC, cut short,
	// control bytes inside) we take from the terminal: each is NAKed, and
	// after the last NAK an EOT ends the session. The default is 3.
	BadFrames int
}

func (t *Timers) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	def(&t.Ack, DefaultAckTimeout)
	def(&t.InterByte, DefaultInterByte)
	def(&t.ENQPause, DefaultENQPause)
	def(&t.Result, DefaultResultTimeout)
	def(&t.EOT, DefaultEOTTimeout)
	defInt(&t.ENQAttempts, DefaultENQAttempts)
	defInt(&t.FrameSends, DefaultFrameSends)
	defInt(&t.BadFrames, DefaultBadFrames)
}

// Errors of the link layer, for errors.Is.
var (
	// ErrNotReady: the terminal did not ACK our ENQ after every attempt.
	ErrNotReady = errors.New("terminal not ready: no ACK to ENQ")
	// ErrRefused: the terminal NAKed every send of our frame.
	ErrRefused = errors.New("terminal refused the request frame")
	// ErrNoAck: the terminal never answered our frame; it may have taken it.
	ErrNoAck = errors.New("terminal did not acknowledge the request frame")
	// ErrGaveUp: the terminal's frame arrived bad too many times.
	ErrGaveUp = errors.New("terminal's frame arrived bad too many times")
	// ErrCancelled: the session was ended by a cancel before the terminal
	// accepted the request.
	ErrCancelled = errors.New("cancelled before the terminal accepted")
)

// state is a state of the Concert link layer. The link runs one state
// machine per session; each state says what the next byte may be.
type state int

const (
	stateIdle          state = iota
	stateSendENQ             // we open a session
	stateWaitAck             // ... and wait for the terminal's ACK
	stateSendFrame           // we send our frame
	stateWaitFrameAck        // ... and wait for ACK or NAK
	stateSendEOT             // we close our session
	stateWaitResultENQ       // we wait for the terminal to open its session
	stateAckENQ              // we ACK the terminal's ENQ
	stateReadFrame           // we read STX data ETX LRC
	stateAckFrame            // we ACK a good frame (after journaling it)
	stateWaitEOT             // we wait for the terminal's EOT
	stateDone
)

var stateNames = [...]string{"Idle", "SendENQ", "WaitAck", "SendFrame", "WaitFrameAck", "SendEOT",
	"WaitResultENQ", "AckENQ", "ReadFrame", "AckFrame", "WaitEOT", "Done"}

func (s state) String() string { return stateNames[s] }

// linkEvents is how the link reports to the driver while it runs.
type linkEvents interface {
	// step reports progress worth journaling ("ENQ sent").
	step(detail string)
	// sent reports that the request frame went out (n: 1 for the first).
	sent(n int)
	// frame delivers a good frame from the terminal. It is called before
	// the frame is ACKed, so what it journals is on disk first.
	frame(data, raw []byte)
	// rejected reports bad input from the terminal with the raw bytes.
	rejected(reason string, raw []byte)
}

// link runs the Concert link layer over a wire.
type link struct {
	w   *wire
	t   Timers
	log *slog.Logger
	st  state
	// delivered is the last frame handed to frame(), to recognise a
	// resent copy (our ACK lost).
	delivered []byte
	// missingEOT is set when a receive ended without the terminal's EOT.
	missingEOT bool
}

func (l *link) to(s state) {
	if l.st != s {
		l.log.Debug("link state", "from", l.st, "to", s)
		l.st = s
	}
}

// sendOutcome is how a send session ended.
type sendOutcome int

const (
	sendAccepted  sendOutcome = iota // the terminal ACKed the frame; EOT sent
	sendCancelled                    // cancelled before the terminal accepted; EOT sent
	sendNotReady                     // no ACK to any ENQ
	sendRefused                      // every send NAKed
	sendNoAck                        // the frame was never answered: the terminal may have it
	sendPortLost
)

// send runs the sender's session: ENQ/ACK (with retries and collision),
// the frame (with resends), EOT. A close of cancel before the terminal
// accepted ends the session with EOT.
func (l *link) send(frame []byte, cancel <-chan struct{}, ev linkEvents) (sendOutcome, error) {
	enqs, sends := 0, 0
	cancelled := func() bool {
		select {
		case <-cancel:
			return true
		default:
			return false
		}
	}
	var deadline time.Time
	l.to(stateSendENQ)
	for {
		switch l.st {
		case stateSendENQ:
			if cancelled() {
				return sendCancelled, ErrCancelled
			}
			enqs++
			if err := l.w.write([]byte{concert.ENQ}); err != nil {
				return sendPortLost, err
			}
			ev.step(fmt.Sprintf("ENQ sent (%d/%d)", enqs, l.t.ENQAttempts))
			deadline = time.Now().Add(l.t.Ack)
			l.to(stateWaitAck)

		case stateWaitAck:
			b, err := l.w.readByte(deadline, cancel)
			switch {
			case errors.Is(err, errInterrupted):
				if err := l.w.write([]byte{concert.EOT}); err != nil {
					return sendPortLost, err
				}
				return sendCancelled, ErrCancelled
			case errors.Is(err, errTimeout):
				if err := l.w.write([]byte{concert.EOT}); err != nil {
					return sendPortLost, err
				}
				if enqs >= l.t.ENQAttempts {
					return sendNotReady, fmt.Errorf("%w after %d attempts", ErrNotReady, enqs)
				}
				ev.step(fmt.Sprintf("no ACK to ENQ within %s: EOT, retrying", l.t.Ack))
				if b, err := l.w.readByte(time.Now().Add(l.t.ENQPause), cancel); err == nil {
					// Something arrived during the pause: look at it next.
					l.w.unread(b)
					if b == concert.ENQ {
						deadline = time.Now().Add(l.t.Ack)
						continue // a collision: WaitAck receives it
					}
				} else if errors.Is(err, errInterrupted) {
					return sendCancelled, ErrCancelled
				} else if !errors.Is(err, errTimeout) {
					return sendPortLost, err
				}
				l.to(stateSendENQ)
			case err != nil:
				return sendPortLost, err
			default:
				l.w.logBytes("serial rx", []byte{b})
				switch b {
				case concert.ACK:
					ev.step("terminal ready (ACK)")
					l.to(stateSendFrame)
				case concert.ENQ:
					// Collision: the terminal wants to send (a late
					// result). Yield, receive, then start again.
					ev.step("collision: the terminal sent ENQ too; receiving its frame first")
					if err := l.receive(ev); err != nil && (errors.Is(err, ErrPortLost) || errors.Is(err, ErrStopped)) {
						return sendPortLost, err
					}
					enqs = 0
					l.to(stateSendENQ)
				case concert.NAK, concert.EOT:
					// The terminal declines the session (EOT: ends it):
					// as an unanswered ENQ, EOT, pause, retry.
					deadline = time.Now()
				default:
					ev.rejected(fmt.Sprintf("unexpected byte 0x%02X while waiting for ACK to ENQ", b), []byte{b})
				}
			}

		case stateSendFrame:
			sends++
			if err := l.w.write(frame); err != nil {
				return sendPortLost, err
			}
			ev.sent(sends)
			deadline = time.Now().Add(l.t.Ack)
			l.to(stateWaitFrameAck)

		case stateWaitFrameAck:
			// A cancel does not interrupt this wait: whether the terminal
			// took the request decides what a cancel can do.
			b, err := l.w.readByte(deadline, nil)
			switch {
			case errors.Is(err, errTimeout):
				if sends >= l.t.FrameSends || cancelled() {
					if err := l.w.write([]byte{concert.EOT}); err != nil {
						return sendPortLost, err
					}
					return sendNoAck, fmt.Errorf("%w after %d sends", ErrNoAck, sends)
				}
				ev.step(fmt.Sprintf("no ACK to the request within %s: sending it again", l.t.Ack))
				l.to(stateSendFrame)
			case err != nil:
				return sendPortLost, err
			default:
				l.w.logBytes("serial rx", []byte{b})
				switch b {
				case concert.ACK:
					l.to(stateSendEOT)
				case concert.NAK:
					if cancelled() {
						if err := l.w.write([]byte{concert.EOT}); err != nil {
							return sendPortLost, err
						}
						return sendCancelled, ErrCancelled
					}
					if sends >= l.t.FrameSends {
						if err := l.w.write([]byte{concert.EOT}); err != nil {
							return sendPortLost, err
						}
						return sendRefused, fmt.Errorf("%w: NAK %d times", ErrRefused, sends)
					}
					ev.step(fmt.Sprintf("terminal NAKed the request (%d/%d): sending it again", sends, l.t.FrameSends))
					l.to(stateSendFrame)
				default:
					ev.rejected(fmt.Sprintf("unexpected byte 0x%02X while waiting for ACK to the request", b), []byte{b})
				}
			}

		case stateSendEOT:
			if err := l.w.write([]byte{concert.EOT}); err != nil {
				return sendPortLost, err
			}
			l.to(stateIdle)
			return sendAccepted, nil
		}
	}
}

// receive runs the receiver's session once the terminal's ENQ has been
// read: ACK, the frame (NAK and wait for the resend when bad), ACK once
// delivered, EOT. A copy of the frame resent because our ACK was lost is
// ACKed again and not delivered twice.
func (l *link) receive(ev linkEvents) error {
	bad, enqs := 0, 0
	l.missingEOT = false
	var deadline time.Time
	l.to(stateAckENQ)
	for {
		switch l.st {
		case stateAckENQ:
			if err := l.w.write([]byte{concert.ACK}); err != nil {
				return err
			}
			l.to(stateReadFrame)

		case stateReadFrame:
			data, raw, ctl, err := l.readFrame()
			if err != nil && (errors.Is(err, ErrPortLost) || errors.Is(err, ErrStopped)) {
				return err
			}
			if len(raw) > 0 && ctl != 0 {
				ev.rejected(fmt.Sprintf("%d unexpected byte(s) before the terminal's 0x%02X", len(raw), ctl), raw)
			}
			switch ctl {
			case concert.EOT:
				// The terminal ends its session where its frame would be
				// (it has nothing to send, or it gave up): so do we.
				ev.step("the terminal closed its session (EOT) without sending a frame")
				l.to(stateIdle)
				return nil
			case concert.ENQ:
				// It did not get our ACK and opens its session again.
				if enqs++; enqs >= l.t.BadFrames {
					if err := l.w.write([]byte{concert.EOT}); err != nil {
						return err
					}
					l.to(stateIdle)
					return fmt.Errorf("%w: ENQ %d times without a frame", ErrGaveUp, enqs+1)
				}
				ev.step("the terminal sent ENQ again: ACKed again")
				l.to(stateAckENQ)
				continue
			}
			if err != nil {
				bad++
				ev.rejected(fmt.Sprintf("bad frame from the terminal (%d/%d): %v", bad, l.t.BadFrames, err), raw)
				if err := l.w.write([]byte{concert.NAK}); err != nil {
					return err
				}
				if bad >= l.t.BadFrames {
					// Three NAKs, then EOT.
					if err := l.w.write([]byte{concert.EOT}); err != nil {
						return err
					}
					l.to(stateIdle)
					return fmt.Errorf("%w (%d copies): %v", ErrGaveUp, bad, err)
				}
				continue
			}
			if bytes.Equal(data, l.delivered) {
				ev.step("the terminal resent its answer (our ACK was lost): ACKed again, not counted twice")
			} else {
				l.delivered = bytes.Clone(data)
				ev.frame(data, raw)
			}
			l.to(stateAckFrame)

		case stateAckFrame:
			if err := l.w.write([]byte{concert.ACK}); err != nil {
				return err
			}
			deadline = time.Now().Add(l.t.EOT)
			l.to(stateWaitEOT)

		case stateWaitEOT:
			b, err := l.w.readByte(deadline, nil)
			switch {
			case errors.Is(err, errTimeout):
				l.missingEOT = true
				l.log.Warn("no EOT from the terminal after its frame: result kept", "port", l.w.name, "waited", l.t.EOT)
				ev.step(fmt.Sprintf("no EOT within %s after the answer: result kept", l.t.EOT))
				l.to(stateIdle)
				return nil
			case err != nil:
				return err
			}
			switch b {
			case concert.EOT:
				l.w.logBytes("serial rx", []byte{b})
				l.to(stateIdle)
				return nil
			case concert.STX:
				// The same frame again: the terminal did not get our ACK.
				l.w.unread(b)
				l.to(stateReadFrame)
			case concert.ENQ:
				// A new session without the EOT of the last one.
				l.w.unread(b)
				l.missingEOT = true
				l.log.Warn("terminal opened a new session without EOT", "port", l.w.name)
				l.to(stateIdle)
				return nil
			default:
				l.w.logBytes("serial rx", []byte{b})
				ev.rejected(fmt.Sprintf("unexpected byte 0x%02X while waiting for EOT", b), []byte{b})
			}
		}
	}
}

// readFrame reads one frame with the inter-byte timeout, logging every
// byte it consumed (noise included), masked. An EOT or ENQ before the
// frame's STX is the terminal ending or reopening its session: it is
// returned as ctl (with the noise before it as raw) and no frame is read.
func (l *link) readFrame() (data, raw []byte, ctl byte, err error) {
	r := &gapReader{w: l.w, gap: l.t.InterByte}
	for {
		b, err := r.ReadByte()
		if err != nil {
			l.w.logBytes("serial rx", r.rec)
			return nil, MaskPAN(r.rec), 0, fmt.Errorf("no frame: %w", err)
		}
		if b == concert.EOT || b == concert.ENQ {
			l.w.logBytes("serial rx", r.rec)
			return nil, MaskPAN(r.rec[:len(r.rec)-1]), b, nil
		}
		if b == concert.STX {
			l.w.unread(b)
			r.rec = r.rec[:len(r.rec)-1]
			break
		}
		if len(r.rec) > concert.MaxNoise {
			l.w.logBytes("serial rx", r.rec)
			return nil, MaskPAN(r.rec), 0, concert.ErrNotAFrame
		}
	}
	data, _, err = concert.ReadFrame(r)
	l.w.logBytes("serial rx", r.rec)
	if errors.Is(err, ErrPortLost) || errors.Is(err, ErrStopped) {
		return nil, MaskPAN(r.rec), 0, err
	}
	return data, MaskPAN(r.rec), 0, err
}

// gapReader reads bytes from a wire, each within gap of the one before,
// and records them.
type gapReader struct {
	w   *wire
	gap time.Duration
	rec []byte
}

func (g *gapReader) ReadByte() (byte, error) {
	b, err := g.w.readByte(time.Now().Add(g.gap), nil)
	if err != nil {
		if errors.Is(err, errTimeout) {
			return 0, fmt.Errorf("no byte within %s: %w", g.gap, err)
		}
		return 0, err
	}
	g.rec = append(g.rec, b)
	return b, nil
}

// probe checks the terminal is there: ENQ, ACK, EOT. An ENQ from the
// terminal instead (it has something to send) is received first. It
// returns the ENQ→ACK time.
func (l *link) probe(ev linkEvents) (time.Duration, error) {
	start := time.Now()
	l.to(stateSendENQ)
	if err := l.w.write([]byte{concert.ENQ}); err != nil {
		return 0, err
	}
	deadline := start.Add(l.t.Ack)
	l.to(stateWaitAck)
	for {
		b, err := l.w.readByte(deadline, nil)
		switch {
		case errors.Is(err, errTimeout):
			if err := l.w.write([]byte{concert.EOT}); err != nil {
				return 0, err
			}
			l.to(stateIdle)
			return 0, fmt.Errorf("%w within %s", ErrNotReady, l.t.Ack)
		case err != nil:
			return 0, err
		}
		l.w.logBytes("serial rx", []byte{b})
		switch b {
		case concert.ACK:
			rtt := time.Since(start)
			l.to(stateSendEOT)
			if err := l.w.write([]byte{concert.EOT}); err != nil {
				return 0, err
			}
			l.to(stateIdle)
			return rtt, nil
		case concert.ENQ:
			rtt := time.Since(start)
			ev.step("collision on the health probe: the terminal sent ENQ; receiving its frame")
			if err := l.receive(ev); err != nil {
				return rtt, err
			}
			return rtt, nil
		default:
			ev.rejected(fmt.Sprintf("unexpected byte 0x%02X in answer to the health probe", b), []byte{b})
		}
	}
}
