package terminal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"paydesk/payment"
	"paydesk/terminal/concert"
)

// Defaults of the driver. Each is documented on its Options field.
const (
	DefaultPOS            = 1
	DefaultCurrency       = "EUR"
	DefaultProbeInterval  = 60 * time.Second
	DefaultReopenInterval = 2 * time.Second
)

// ErrUnknownTxn is returned for a cancel of a transaction that is not in
// flight on the terminal.
var ErrUnknownTxn = errors.New("no such transaction in flight on the terminal")

// Options configures a Driver. The zero value of each field means its
// default.
type Options struct {
	// Port says which serial port to open and how. Ignored when Open is set.
	Port PortOptions
	// Open opens the port; the default opens Port with go.bug.st/serial.
	// Tests pass a fake or a pseudo-terminal.
	Open func() (Port, error)
	// POS is the cash register number sent in every request, 1–99. The
	// default is 1.
	POS int
	// Currency is the ISO 4217 code used when a request has none. The
	// default is EUR.
	Currency string
	// MaxMinor is the largest amount taken, in minor units: the kiosk's
	// --max-amount, applied to every entry point. The default (and
	// ceiling) is 99,999,999, the most a Concert request carries.
	MaxMinor int64
	// ProtocolE sends the 26-byte protocol E request, for terminals whose
	// Telium Manager predates E+ (no A/B fields, so no forced online).
	ProtocolE bool
	// ShortAnswer asks for the 25-byte answer without the card report.
	// The default asks for the full 80-byte answer.
	ShortAnswer bool
	// ForceOnline asks every payment for online authorisation (B011).
	// StartWith can ask it for one payment.
	ForceOnline bool
	// Timers are the link layer's timeouts and retries.
	Timers Timers
	// ProbeInterval is how often an idle terminal is probed with ENQ/EOT
	// (some USB links die after hours of silence). The default is 60
	// seconds; negative turns the probe off.
	ProbeInterval time.Duration
	// ReopenInterval is the pause between attempts to reopen a port that
	// failed or could not be opened. The default is 2 seconds.
	ReopenInterval time.Duration
	// Logger receives every byte on the line (hex, card numbers masked),
	// transitions and warnings. The default is slog.Default().
	Logger *slog.Logger
	// Now is the clock for transaction ids and events. The default is
	// time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	o.Timers.setDefaults()
	if o.POS == 0 {
		o.POS = DefaultPOS
	}
	if o.Currency == "" {
		o.Currency = DefaultCurrency
	}
	if o.MaxMinor <= 0 || o.MaxMinor > concert.MaxAmount {
		o.MaxMinor = concert.MaxAmount
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.ReopenInterval <= 0 {
		o.ReopenInterval = DefaultReopenInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Port.setDefaults()
	if o.Open == nil {
		po := o.Port
		o.Open = func() (Port, error) { return OpenPort(po) }
	}
}

// HealthState is what the driver last knew of the terminal.
type HealthState string

// The health states.
const (
	HealthUnknown    HealthState = "unknown"       // not checked yet
	HealthOK         HealthState = "ok"            // answered the last ENQ
	HealthNoAnswer   HealthState = "not answering" // the port is open, the terminal silent
	HealthPortClosed HealthState = "port closed"   // the port is missing, unplugged or busy
)

// Health is the terminal's state for the console's header and /check.
type Health struct {
	State HealthState
	// Port names the serial port.
	Port string
	// Detail says why, for people ("no ACK to ENQ within 3s").
	Detail string
	// Since is when State began.
	Since time.Time
	// LastProbe is the last ENQ/EOT check; LastOK the last that answered.
	LastProbe, LastOK time.Time
	// RTT is the last ENQ→ACK time.
	RTT time.Duration
	// Busy is the transaction in flight, if any.
	Busy string
}

// Flight describes the transaction in flight, for the console.
type Flight struct {
	ID     string
	Ref    string
	Mode   payment.Mode
	Amount payment.Money
	Status payment.Status
	// Accepted is set once the terminal ACKed the request: from then on a
	// cancel can only be requested.
	Accepted        bool
	CancelRequested bool
	// Waiting says what the driver waits for.
	Waiting  string
	Deadline time.Time
}

// StartOptions are per-payment choices beyond payment.Request.
type StartOptions struct {
	// ForceOnline asks the terminal for online authorisation (B011).
	ForceOnline bool
}

// Driver is the unattended card terminal rail: it owns the serial port,
// runs one Concert session at a time, and reports every transition on the
// bus. It implements payment.Starter for card payments (debit) and
// refunds (credit).
type Driver struct {
	opts Options
	bus  *payment.Bus
	log  *slog.Logger

	startc chan *flight
	// ready is closed once Run has tried the port (see Ready).
	ready     chan struct{}
	readyOnce sync.Once
	probec    chan chan error
	resetc    chan chan error

	mu      sync.Mutex
	cur     *flight
	health  Health
	running bool
	lastRef int64
	// recent are the last answers received, by private reference, so a
	// duplicate is recognised even in a later session.
	recent []answerSeen
}

type answerSeen struct {
	ref  string
	data []byte
}

// NewDriver returns a driver that reports on bus. Run opens the port and
// serves.
func NewDriver(bus *payment.Bus, opts Options) (*Driver, error) {
	opts.setDefaults()
	if opts.POS < 1 || opts.POS > 99 {
		return nil, fmt.Errorf("terminal: POS number %d is not 1-99", opts.POS)
	}
	if _, err := concert.LookupCurrency(opts.Currency); err != nil {
		return nil, fmt.Errorf("terminal: currency: %w", err)
	}
	d := &Driver{
		opts:   opts,
		bus:    bus,
		log:    opts.Logger.With("rail", payment.RailTerminal),
		startc: make(chan *flight, 1),
		ready:  make(chan struct{}),
		probec: make(chan chan error),
		resetc: make(chan chan error),
	}
	d.health = Health{State: HealthUnknown, Port: d.portName(), Since: opts.Now()}
	return d, nil
}

func (d *Driver) portName() string {
	if d.opts.Port.Path != "" {
		return d.opts.Port.Path
	}
	return "terminal"
}

// flight is the transaction in flight. Its fields are written only by the
// driver's goroutine, except cancel, which Cancel closes under d.mu.
type flight struct {
	id, ref string
	mode    payment.Mode
	amount  payment.Money
	req     concert.Request

	status     payment.Status
	accepted   bool
	cancelReq  bool
	cancel     chan struct{}
	cancelOnce sync.Once
	waiting    string
	deadline   time.Time
	done       bool
	freed      chan struct{} // closed once the driver no longer holds the flight
	freeOnce   sync.Once
}

// Start implements payment.Starter: it journals the new transaction and
// hands it to the driver's goroutine, which runs the session. ModeCard is
// a debit, ModeRefund a credit.
func (d *Driver) Start(ctx context.Context, req payment.Request) (string, error) {
	return d.StartWith(ctx, req, StartOptions{ForceOnline: d.opts.ForceOnline})
}

// StartWith is Start with per-payment options (forced online authorisation).
func (d *Driver) StartWith(ctx context.Context, req payment.Request, so StartOptions) (string, error) {
	var typ concert.TxType
	switch req.Mode {
	case payment.ModeCard:
		typ = concert.Debit
	case payment.ModeRefund:
		typ = concert.Credit
	default:
		return "", fmt.Errorf("start terminal payment: the card terminal takes card payments and refunds, not %q", req.Mode)
	}
	curCode := req.Amount.Currency
	if curCode == "" {
		curCode = d.opts.Currency
	}
	cur, err := concert.LookupCurrency(curCode)
	if err != nil {
		return "", fmt.Errorf("start terminal payment: %w", err)
	}
	if home, _ := concert.LookupCurrency(d.opts.Currency); cur.Numeric != home.Numeric {
		return "", fmt.Errorf("start terminal payment: %w: currency %s: the terminal is set up for %s", concert.ErrBadRequest, cur.Alpha, home.Alpha)
	}
	if req.Amount.Minor > d.opts.MaxMinor {
		return "", fmt.Errorf("start terminal payment: %w: amount %s is over the maximum of %s", concert.ErrBadRequest,
			req.Amount, payment.Money{Minor: d.opts.MaxMinor, Currency: cur.Alpha})
	}
	req.Amount.Currency = cur.Alpha
	q := concert.Request{POS: d.opts.POS, Amount: req.Amount.Minor, FullAnswer: !d.opts.ShortAnswer, Type: typ,
		Currency: cur.Numeric, ProtocolE: d.opts.ProtocolE, ForceOnline: so.ForceOnline && !d.opts.ProtocolE}

	d.mu.Lock()
	// A payment whose outcome is already journaled frees the terminal a
	// moment later: whoever saw that outcome and starts the next payment
	// waits for it rather than being told the terminal is busy.
	for d.cur != nil && d.cur.done {
		freed := d.cur.freed
		d.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return "", fmt.Errorf("start terminal payment: %w", ctx.Err())
		case <-time.After(2 * time.Second):
			return "", fmt.Errorf("start terminal payment: the previous payment is still closing: %w", payment.ErrBusy)
		}
		d.mu.Lock()
	}
	if !d.running {
		d.mu.Unlock()
		return "", fmt.Errorf("start terminal payment: the terminal driver is not running: %w", payment.ErrUnavailable)
	}
	if d.cur != nil {
		id := d.cur.id
		d.mu.Unlock()
		return "", fmt.Errorf("start terminal payment: the terminal is busy with %s: %w", id, payment.ErrBusy)
	}
	if d.health.State == HealthPortClosed {
		detail := d.health.Detail
		d.mu.Unlock()
		return "", fmt.Errorf("start terminal payment: %s: %w", detail, payment.ErrUnavailable)
	}
	ref := d.newRefLocked()
	q.Private = ref
	if _, err := q.Encode(); err != nil {
		d.mu.Unlock()
		return "", fmt.Errorf("start terminal payment: %w", err)
	}
	f := &flight{id: TxnID(ref), ref: ref, mode: req.Mode, amount: req.Amount, req: q,
		status: payment.StatusCreated, cancel: make(chan struct{}), freed: make(chan struct{})}
	d.cur = f
	d.mu.Unlock()

	detail := fmt.Sprintf("%s %s on the card terminal (POS %02d, ref %s)", req.Mode, req.Amount, q.POS, ref)
	if req.Reference != "" {
		detail += ", order " + req.Reference
	}
	if q.ForceOnline {
		detail += ", online authorisation forced"
	}
	if _, err := d.publishCtx(ctx, payment.Event{Kind: payment.KindTransition, TxnID: f.id, Status: payment.StatusCreated,
		Mode: f.mode, Amount: f.amount, Peer: d.portName(), Detail: detail}); err != nil {
		d.release(f)
		return "", fmt.Errorf("start terminal payment: journal: %w", err)
	}
	d.startc <- f // empty: d.cur was nil
	return f.id, nil
}

// TxnID is the transaction id of a private reference: "TRM" + the ten
// characters the terminal echoes, so an answer maps back to its
// transaction even after a restart.
func TxnID(ref string) string { return "TRM" + ref }

// newRefLocked mints a 10-character private reference: the time in
// milliseconds in base 36, never the same twice.
func (d *Driver) newRefLocked() string {
	ms := d.opts.Now().UnixMilli()
	if ms <= d.lastRef {
		ms = d.lastRef + 1
	}
	d.lastRef = ms
	s := strings.ToUpper(strconv.FormatInt(ms, 36))
	return strings.Repeat("0", max(0, 10-len(s))) + s
}

// Cancel implements payment.Starter. Before the terminal accepted the
// request the session is ended with EOT and the payment is cancelled;
// after, Concert V2 has no abort message, so the driver records "cancel
// requested" and waits for the terminal's own answer (refused if the
// customer or the terminal abandons, approved if the card was already
// taken).
func (d *Driver) Cancel(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.cur
	if f == nil || f.id != id {
		return fmt.Errorf("cancel %s: %w", id, ErrUnknownTxn)
	}
	f.cancelOnce.Do(func() { close(f.cancel) })
	return nil
}

// Current returns the transaction in flight, if any.
func (d *Driver) Current() (Flight, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.cur
	if f == nil {
		return Flight{}, false
	}
	cancelled := false
	select {
	case <-f.cancel:
		cancelled = true
	default:
	}
	return Flight{ID: f.id, Ref: f.ref, Mode: f.mode, Amount: f.amount, Status: f.status, Accepted: f.accepted,
		CancelRequested: cancelled, Waiting: f.waiting, Deadline: f.deadline}, true
}

// Health returns what the driver last knew of the terminal.
func (d *Driver) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.health
	if d.cur != nil {
		h.Busy = d.cur.id
	}
	return h
}

// Probe checks the terminal now with ENQ/ACK/EOT and returns its health.
// While a payment is in flight it returns the last known health.
func (d *Driver) Probe(ctx context.Context) (Health, error) {
	return d.ask(ctx, d.probec)
}

// Reset closes the port and opens it again (Concert has no reboot
// command), then probes the terminal.
func (d *Driver) Reset(ctx context.Context) (Health, error) {
	return d.ask(ctx, d.resetc)
}

func (d *Driver) ask(ctx context.Context, c chan chan error) (Health, error) {
	reply := make(chan error, 1)
	select {
	case c <- reply:
	case <-ctx.Done():
		return d.Health(), ctx.Err()
	}
	select {
	case err := <-reply:
		return d.Health(), err
	case <-ctx.Done():
		return d.Health(), ctx.Err()
	}
}

// Ready is closed once Run has tried the port: it opened and the
// terminal was probed, or it could not be opened (Health and Start say
// why). A console waits for it before it acts on a script's first line.
func (d *Driver) Ready() <-chan struct{} { return d.ready }

func (d *Driver) setReady() { d.readyOnce.Do(func() { close(d.ready) }) }

// Run opens the port and serves until ctx ends: payments, the idle
// terminal's unsolicited sessions (late results), health probes. A port
// that fails is reopened every ReopenInterval; the console sees each
// change as a KindConnection event.
func (d *Driver) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("terminal driver already running")
	}
	d.running = true
	d.mu.Unlock()
	defer d.setReady()
	defer func() {
		d.mu.Lock()
		d.running = false
		f := d.cur
		d.mu.Unlock()
		if f != nil {
			// Stopped mid-payment: the journal makes it unknown at the next start.
			d.log.Warn("terminal driver stopped with a payment in flight", "txn", f.id)
		}
	}()
	var reply chan error // a reset waiting for the port to be open again
	for ctx.Err() == nil {
		p, err := d.opts.Open()
		if err != nil {
			d.setHealth(HealthPortClosed, err.Error(), 0, false)
			d.log.Error("cannot open the terminal's port", "port", d.portName(), "err", err)
			if reply != nil {
				reply <- err
				reply = nil
			}
			d.failQueued(err)
			d.setReady()
			if !d.pause(ctx, d.opts.ReopenInterval) {
				return nil
			}
			continue
		}
		// Whatever the port holds is from before this run (a session cut
		// by a crash): drop it, or a stale ENQ opens a session the
		// terminal is not in.
		if fl, ok := p.(inputFlusher); ok {
			if err := fl.ResetInputBuffer(); err != nil {
				d.log.Warn("cannot flush the terminal port's input", "port", d.portName(), "err", err)
			}
		}
		w := newWire(p, d.portName(), d.log)
		unhook := context.AfterFunc(ctx, w.halt)
		d.publish(payment.Event{Kind: payment.KindConnection, Peer: d.portName(), Detail: "terminal port " + d.portName() + " open"})
		d.log.Info("terminal port open", "port", d.portName())
		reply = d.serve(ctx, w, reply)
		unhook()
		w.close()
		if ctx.Err() != nil {
			return nil
		}
		if reply == nil && !d.pause(ctx, d.opts.ReopenInterval) {
			return nil
		}
	}
	return nil
}

// pause waits d or until ctx ends (false), answering probes meanwhile with
// the port's error and taking a reset as a reason to try at once.
func (d *Driver) pause(ctx context.Context, dur time.Duration) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case r := <-d.probec:
			r <- fmt.Errorf("%s: %w", d.Health().Detail, payment.ErrUnavailable)
		case r := <-d.resetc:
			r <- nil
			return true
		case f := <-d.startc:
			d.finish(f, payment.StatusFailed, &payment.Result{Reason: "terminal port not open: " + d.Health().Detail}, nil, "", "")
		}
	}
}

// failQueued fails a payment started just before the port failed.
func (d *Driver) failQueued(err error) {
	select {
	case f := <-d.startc:
		d.finish(f, payment.StatusFailed, &payment.Result{Reason: "terminal port not open: " + err.Error()}, nil, "", "")
	default:
	}
}

// serve runs the open port until it fails, ctx ends, or a reset is asked
// (returned, to be answered once the port is open again).
func (d *Driver) serve(ctx context.Context, w *wire, pending chan error) chan error {
	l := &link{w: w, t: d.opts.Timers, log: d.log}
	idle := &idleEvents{d: d}
	doProbe := func() error {
		rtt, err := l.probe(idle)
		if err != nil {
			if errors.Is(err, ErrPortLost) || errors.Is(err, ErrStopped) {
				return err
			}
			d.setHealth(HealthNoAnswer, err.Error(), 0, true)
			return err
		}
		d.setHealth(HealthOK, fmt.Sprintf("answered ENQ in %s", rtt.Round(time.Millisecond)), rtt, true)
		return nil
	}
	err := doProbe()
	d.setReady()
	if errors.Is(err, ErrPortLost) {
		d.portLost(err)
		if pending != nil {
			pending <- err
		}
		return nil
	}
	if pending != nil {
		pending <- nil
	}
	var tick <-chan time.Time
	if d.opts.ProbeInterval > 0 {
		t := time.NewTicker(d.opts.ProbeInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var err error
		if w.buffered() {
			err = d.idleBytes(l, idle)
		} else {
			select {
			case <-ctx.Done():
				return nil
			case f := <-d.startc:
				err = d.session(l, f)
			case c := <-w.chunks:
				w.buf = c
				err = d.idleBytes(l, idle)
			case <-w.failed:
				var b byte
				if b, err = w.readByte(time.Time{}, nil); err == nil {
					w.unread(b) // bytes came with the failure: read them first
				}
			case <-tick:
				err = doProbe()
			case r := <-d.probec:
				r <- doProbe()
			case r := <-d.resetc:
				d.publish(payment.Event{Kind: payment.KindConnection, Peer: d.portName(), Detail: "reset: closing and reopening " + d.portName()})
				return r
			}
		}
		if ctx.Err() != nil || errors.Is(err, ErrStopped) {
			return nil
		}
		if errors.Is(err, ErrPortLost) {
			d.portLost(err)
			return nil
		}
	}
}

func (d *Driver) portLost(err error) {
	d.setHealth(HealthPortClosed, err.Error(), 0, false)
	d.log.Error("terminal port lost", "port", d.portName(), "err", err)
}

// idleBytes handles what the terminal sends while no session runs: an ENQ
// opens its session (a late or duplicate result), anything else is noise.
func (d *Driver) idleBytes(l *link, ev *idleEvents) error {
	var noise []byte
	defer func() {
		if len(noise) > 0 {
			l.w.logBytes("serial rx", noise)
			ev.rejected(fmt.Sprintf("%d unexpected byte(s) on the line while idle", len(noise)), MaskPAN(noise))
		}
	}()
	for l.w.buffered() {
		b, err := l.w.readByte(time.Now().Add(time.Millisecond), nil)
		if err != nil {
			if errors.Is(err, errTimeout) {
				return nil
			}
			return err
		}
		if b == concert.EOT {
			// The end of a session: harmless while idle (the terminal
			// closing one we gave up on, or an old session's last byte).
			l.w.logBytes("serial rx", []byte{b})
			d.log.Info("EOT from the terminal while idle: ignored")
			continue
		}
		if b != concert.ENQ {
			noise = append(noise, b)
			continue
		}
		l.w.logBytes("serial rx", []byte{b})
		d.log.Info("the terminal opened a session while idle")
		if err := l.receive(ev); err != nil {
			return err
		}
		d.setHealth(HealthOK, "the terminal sent a frame", 0, false)
	}
	return nil
}

// setHealth records the terminal's state; a change is published as a
// KindConnection event.
func (d *Driver) setHealth(st HealthState, detail string, rtt time.Duration, probed bool) {
	now := d.opts.Now()
	d.mu.Lock()
	old := d.health.State
	d.health.Detail = detail
	if probed {
		d.health.LastProbe = now
	}
	if st == HealthOK {
		d.health.LastOK = now
		if rtt > 0 {
			d.health.RTT = rtt
		}
	}
	if old != st {
		d.health.State, d.health.Since = st, now
	}
	d.mu.Unlock()
	if old != st {
		d.publish(payment.Event{Kind: payment.KindConnection, Peer: d.portName(), Detail: "terminal " + string(st) + ": " + detail})
	}
}

func (d *Driver) publish(ev payment.Event) (payment.Event, error) {
	return d.publishCtx(context.Background(), ev)
}

func (d *Driver) publishCtx(ctx context.Context, ev payment.Event) (payment.Event, error) {
	ev.Rail = payment.RailTerminal
	if ev.Time.IsZero() {
		ev.Time = d.opts.Now()
	}
	if ev.Peer == "" {
		ev.Peer = d.portName()
	}
	return d.bus.Publish(ctx, ev)
}

// reject journals bad input from the terminal.
func (d *Driver) reject(txnID, reason string, raw []byte) {
	d.log.Warn("terminal input rejected", "txn", txnID, "reason", reason, "hex", hexBytes(MaskPAN(raw)))
	d.publish(payment.Event{Kind: payment.KindRejected, TxnID: txnID, Detail: reason, Raw: MaskPAN(raw)})
}

// idleEvents receives what the link reports outside a payment.
type idleEvents struct{ d *Driver }

func (e *idleEvents) step(detail string)                 { e.d.log.Info(detail) }
func (e *idleEvents) sent(int)                           {}
func (e *idleEvents) frame(data, raw []byte)             { e.d.deliver(data, raw, nil) }
func (e *idleEvents) rejected(reason string, raw []byte) { e.d.reject("", reason, raw) }

// flightEvents receives what the link reports during a payment.
type flightEvents struct {
	d *Driver
	f *flight
	// result is set while the driver waits for the answer: a frame then
	// may be this payment's result. Before, a frame is another one's.
	result bool
}

func (e *flightEvents) step(detail string) { e.d.step(e.f, detail, nil) }
func (e *flightEvents) sent(n int) {
	if n == 1 {
		e.d.move(e.f, payment.StatusSent, fmt.Sprintf("request sent (%d bytes)", len(mustEncode(e.f.req))+3), nil)
		return
	}
	e.d.step(e.f, fmt.Sprintf("request sent again (%d/%d)", n, e.d.opts.Timers.FrameSends), nil)
}
func (e *flightEvents) frame(data, raw []byte) {
	if e.result {
		e.d.deliver(data, raw, e.f)
		return
	}
	e.d.deliver(data, raw, nil)
}
func (e *flightEvents) rejected(reason string, raw []byte) { e.d.reject(e.f.id, reason, raw) }

func mustEncode(q concert.Request) []byte {
	b, _ := q.Encode()
	return b
}

func (d *Driver) step(f *flight, detail string, raw []byte) {
	d.log.Info("terminal step", "txn", f.id, "detail", detail)
	d.publish(payment.Event{Kind: payment.KindStep, TxnID: f.id, Detail: detail, Raw: raw})
}

func (d *Driver) move(f *flight, st payment.Status, detail string, raw []byte) {
	if _, err := d.publish(payment.Event{Kind: payment.KindTransition, TxnID: f.id, Status: st, Detail: detail, Raw: raw}); err == nil {
		d.mu.Lock()
		f.status = st
		d.mu.Unlock()
	}
}

// finish ends the payment: it journals the outcome, then frees the
// terminal. A Start that comes in between (someone reacting to the final
// event) waits for the flight's freed channel rather than seeing busy.
func (d *Driver) finish(f *flight, st payment.Status, r *payment.Result, raw []byte, flag, detail string) {
	if detail == "" {
		detail = string(st)
		if r != nil && r.Reason != "" {
			detail = r.Reason
		}
	}
	d.mu.Lock()
	f.done = true
	already := f.status == payment.StatusUnknown && st == payment.StatusUnknown
	d.mu.Unlock()
	// The outcome is journaled before the terminal is free again, so a
	// payment started next never precedes it.
	if already {
		// Still unknown: say why again, the lifecycle has no unknown → unknown.
		d.publish(payment.Event{Kind: payment.KindStep, TxnID: f.id, Result: r, Raw: raw, Flag: flag, Detail: detail})
	} else if _, err := d.publish(payment.Event{Kind: payment.KindTransition, TxnID: f.id, Status: st, Result: r, Raw: raw,
		Flag: flag, Detail: detail}); err == nil {
		d.mu.Lock()
		f.status = st
		d.mu.Unlock()
	}
	d.release(f)
	d.log.Info("terminal payment finished", "txn", f.id, "status", st, "detail", detail)
}

// release frees the terminal from f and wakes a Start waiting for it.
func (d *Driver) release(f *flight) {
	d.mu.Lock()
	if d.cur == f {
		d.cur = nil
	}
	d.mu.Unlock()
	f.freeOnce.Do(func() { close(f.freed) })
}

// setWaiting records what the flight waits for, for the console.
func (d *Driver) setWaiting(f *flight, what string, until time.Time) {
	d.mu.Lock()
	f.waiting, f.deadline = what, until
	d.mu.Unlock()
}

// session runs one payment on the link. It returns an error only when the
// port was lost.
func (d *Driver) session(l *link, f *flight) error {
	ev := &flightEvents{d: d, f: f}
	select {
	case <-f.cancel:
		d.finish(f, payment.StatusCancelled, &payment.Result{Reason: "cancelled before the request was sent"}, nil, "", "")
		return nil
	default:
	}
	frame := concert.Frame(mustEncode(f.req))
	d.setWaiting(f, "terminal ready (ACK)", time.Now().Add(d.opts.Timers.Ack))
	out, err := l.send(frame, f.cancel, ev)
	if errors.Is(err, ErrStopped) {
		d.stopped(f)
		return err
	}
	switch out {
	case sendPortLost:
		if f.status == payment.StatusCreated {
			d.finish(f, payment.StatusFailed, &payment.Result{Reason: "the terminal's port failed before the request was sent: " + err.Error()}, nil, "", "")
		} else {
			d.finish(f, payment.StatusUnknown, &payment.Result{Reason: "the terminal's port failed after the request was sent: check the terminal, then resolve"},
				nil, "", "port lost mid-transaction: "+err.Error())
		}
		return err
	case sendCancelled:
		d.finish(f, payment.StatusCancelled, &payment.Result{Reason: "cancelled before the terminal accepted: session ended with EOT"}, nil, "", "")
		return nil
	case sendNotReady:
		d.setHealth(HealthNoAnswer, err.Error(), 0, false)
		d.finish(f, payment.StatusFailed, &payment.Result{Reason: err.Error() + ": is the terminal on and in cash-register mode?"}, nil, "", "")
		return nil
	case sendRefused:
		d.finish(f, payment.StatusFailed, &payment.Result{Reason: "link error: " + err.Error()}, nil, "", "")
		return nil
	case sendNoAck:
		d.move(f, payment.StatusUnknown, err.Error()+": the terminal may have started the payment; still listening for its answer", nil)
	case sendAccepted:
		d.setHealth(HealthOK, "accepted a request", 0, false)
		d.mu.Lock()
		f.accepted = true
		d.mu.Unlock()
		d.move(f, payment.StatusAcknowledged, "terminal accepted the request", nil)
		d.step(f, "waiting for card", nil)
	}
	return d.awaitResult(l, f, ev)
}

// stopped leaves f as the journal has it: the driver is stopping and the
// terminal's answer will not be waited for. The next start recovers the
// payment as unknown; an answer the terminal sends then is taken as late.
func (d *Driver) stopped(f *flight) {
	d.mu.Lock()
	st := f.status
	d.mu.Unlock()
	d.log.Warn("terminal driver stopping: the payment stays in the journal as it stands", "txn", f.id, "status", st)
}

// awaitResult waits for the terminal's session with the answer.
func (d *Driver) awaitResult(l *link, f *flight, ev *flightEvents) error {
	deadline := time.Now().Add(d.opts.Timers.Result)
	d.setWaiting(f, "the terminal's answer", deadline)
	ev.result = true
	intr := (<-chan struct{})(f.cancel)
	for !f.done {
		b, err := l.w.readByte(deadline, intr)
		switch {
		case errors.Is(err, ErrStopped):
			d.stopped(f)
			return err
		case errors.Is(err, errInterrupted):
			intr = nil
			f.cancelReq = true
			if f.accepted {
				d.step(f, "cancel requested: Concert cannot abort a payment the terminal accepted; waiting for the terminal's answer", nil)
			} else {
				d.step(f, "cancel requested: the terminal may have the request; waiting for its answer", nil)
			}
			d.setWaiting(f, "the terminal's answer to the cancelled payment", deadline)
			continue
		case errors.Is(err, errTimeout):
			wait := d.opts.Timers.Result
			switch {
			case f.status == payment.StatusUnknown:
				d.mu.Lock()
				f.done = true
				d.mu.Unlock()
				d.release(f)
				d.step(f, fmt.Sprintf("no answer within %s: the status stays unknown; check the terminal, then resolve", wait), nil)
			case f.cancelReq:
				// A cancel is only a request: without the terminal's
				// answer, the payment timed out like any other.
				d.finish(f, payment.StatusTimedOut, &payment.Result{Reason: fmt.Sprintf("no answer from the terminal within %s; the cancel request was not confirmed", wait)},
					nil, payment.FlagCancelUnconf, "")
			default:
				d.finish(f, payment.StatusTimedOut, &payment.Result{Reason: fmt.Sprintf("no answer from the terminal within %s", wait)}, nil, "", "")
			}
			return nil
		case err != nil:
			d.finish(f, payment.StatusUnknown, &payment.Result{Reason: "the terminal's port failed while the payment was on the terminal: check the terminal, then resolve"},
				nil, "", "port lost mid-transaction: "+err.Error())
			return err
		}
		if b == concert.EOT {
			// The end of a session the terminal gave up (or of the one
			// just ended): not noise, and nothing to answer.
			l.w.logBytes("serial rx", []byte{b})
			d.log.Info("EOT from the terminal while waiting for its answer: ignored", "txn", f.id)
			continue
		}
		if b != concert.ENQ {
			l.w.logBytes("serial rx", []byte{b})
			ev.rejected(fmt.Sprintf("unexpected byte 0x%02X while waiting for the terminal's answer", b), []byte{b})
			continue
		}
		l.w.logBytes("serial rx", []byte{b})
		d.step(f, "the terminal is sending its answer", nil)
		err = l.receive(ev)
		switch {
		case errors.Is(err, ErrStopped):
			if !f.done {
				d.stopped(f)
			}
			return err
		case errors.Is(err, ErrPortLost):
			if !f.done {
				d.finish(f, payment.StatusUnknown, &payment.Result{Reason: "the terminal's port failed while it sent its answer: check the terminal, then resolve"},
					nil, "", "port lost mid-transaction: "+err.Error())
			}
			return err
		case errors.Is(err, ErrGaveUp):
			if !f.done {
				d.finish(f, payment.StatusUnknown, &payment.Result{Reason: err.Error() + ": outcome unknown; check the terminal, then resolve"}, nil, "", "")
			}
			return nil
		}
		if f.done && l.missingEOT {
			d.publish(payment.Event{Kind: payment.KindNotice, TxnID: f.id, Detail: "the terminal did not close its session (no EOT): result kept"})
		}
	}
	return nil
}

// deliver handles a good frame from the terminal, before it is ACKed. f is
// the payment waiting for its answer, or nil.
func (d *Driver) deliver(data, raw []byte, f *flight) {
	a, err := concert.ParseAnswer(data)
	if err != nil {
		id := ""
		if f != nil {
			id = f.id
		}
		d.reject(id, "unreadable answer: "+err.Error(), raw)
		if f != nil {
			d.finish(f, payment.StatusUnknown, &payment.Result{Reason: "the terminal's answer was unreadable: check the terminal, then resolve"}, raw, "", "")
		}
		return
	}
	if d.seen(a.Private, data) {
		id := ""
		if isRef(a.Private) {
			id = TxnID(a.Private)
		}
		d.log.Info("duplicate answer ignored", "ref", a.Private)
		d.publish(payment.Event{Kind: payment.KindMessage, TxnID: id, Raw: raw, Detail: "duplicate answer from the terminal (already recorded): ignored"})
		return
	}
	defer d.remember(a.Private, data)
	if f != nil && a.Private == f.ref {
		d.result(f, a, raw)
		return
	}
	if isRef(a.Private) {
		tx, err := d.bus.Journal().Txn(context.Background(), TxnID(a.Private))
		if err == nil && tx.Rail == payment.RailTerminal {
			d.late(tx, a, raw)
			return
		}
	}
	if f != nil {
		d.result(f, a, raw) // the echo check below flags the private data
		return
	}
	d.reject("", fmt.Sprintf("answer for no known transaction (private data %q)", a.Private), raw)
}

func isRef(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func (d *Driver) seen(ref string, data []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.recent {
		if s.ref == ref && bytes.Equal(s.data, data) {
			return true
		}
	}
	return false
}

func (d *Driver) remember(ref string, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recent = append(d.recent, answerSeen{ref: ref, data: bytes.Clone(data)})
	if len(d.recent) > 32 {
		d.recent = d.recent[1:]
	}
}

// mismatch lists the echoed fields that differ from the request.
func mismatch(q concert.Request, a concert.Answer) []string {
	var out []string
	if a.POS != q.POS {
		out = append(out, fmt.Sprintf("POS %02d (sent %02d)", a.POS, q.POS))
	}
	if a.Amount != q.Amount {
		out = append(out, fmt.Sprintf("amount %d (sent %d)", a.Amount, q.Amount))
	}
	if a.Currency != q.Currency {
		out = append(out, fmt.Sprintf("currency %s (sent %s)", a.Currency, q.Currency))
	}
	if a.Private != q.Private {
		out = append(out, fmt.Sprintf("private data %q (sent %q)", a.Private, q.Private))
	}
	return out
}

// answerResult is what the journal keeps of an answer: the last four
// digits of a card, never more.
func answerResult(a concert.Answer) *payment.Result {
	r := &payment.Result{RemoteID: strings.TrimSpace(a.Private)}
	if a.Mode != 'C' {
		r.Card = a.Last4()
	}
	if !a.Approved() {
		r.Reason = statusReason(a.Status)
	}
	return r
}

func statusReason(s byte) string {
	switch s {
	case '7':
		return "refused or not completed by the terminal (status 7)"
	case '9':
		return "not verified by the terminal (status 9)"
	}
	return fmt.Sprintf("terminal status %q (only '0' is an approval)", s)
}

func modeNote(a concert.Answer) string {
	switch a.Mode {
	case '1':
		return ""
	case 'C':
		return " (paid by cheque)"
	}
	return fmt.Sprintf(" (payment mode %q)", a.Mode)
}

// result applies the answer to the payment waiting for it. Echoes are
// checked on an approval only: a terminal cancelled with its red button
// answers without the amount (OCA/l10n-france#669).
func (d *Driver) result(f *flight, a concert.Answer, raw []byte) {
	r := answerResult(a)
	if a.Approved() {
		if mm := mismatch(f.req, a); len(mm) > 0 {
			r.Reason = "the terminal approved with a different echo: " + strings.Join(mm, ", ") + ": check the terminal, then resolve"
			d.finish(f, payment.StatusUnknown, r, raw, payment.FlagAmountMismatch, "approved with wrong echo: "+strings.Join(mm, ", "))
			return
		}
		detail := "approved" + modeNote(a)
		if f.cancelReq {
			detail = "approved by the terminal despite the cancel request" + modeNote(a)
		}
		if f.status == payment.StatusUnknown {
			detail += " (answer after the request went unacknowledged)"
		}
		d.finish(f, payment.StatusApproved, r, raw, "", detail)
		return
	}
	if f.cancelReq {
		d.finish(f, payment.StatusCancelled, r, raw, "", "cancelled: the terminal refused after the cancel request")
		return
	}
	d.finish(f, payment.StatusDeclined, r, raw, "", "declined: "+r.Reason)
}

// late handles an answer for a transaction no longer in flight: it
// resolves one left unknown (by a crash, a lost port, an unacknowledged
// request) when the echo matches, and is kept and flagged otherwise.
func (d *Driver) late(tx payment.Txn, a concert.Answer, raw []byte) {
	r := answerResult(a)
	var mm []string
	if a.Approved() {
		if cur, err := concert.LookupCurrency(tx.Amount.Currency); err == nil && cur.Numeric != a.Currency {
			mm = append(mm, fmt.Sprintf("currency %s (sent %s)", a.Currency, cur.Numeric))
		}
		if a.Amount != tx.Amount.Minor {
			mm = append(mm, fmt.Sprintf("amount %d (sent %d)", a.Amount, tx.Amount.Minor))
		}
	}
	word := "approved"
	if !a.Approved() {
		word = "refused"
	}
	if tx.Status == payment.StatusUnknown && len(mm) == 0 {
		st := payment.StatusApproved
		if !a.Approved() {
			st = payment.StatusDeclined
		}
		d.log.Warn("late answer resolves an unknown transaction", "txn", tx.ID, "status", st)
		d.publish(payment.Event{Kind: payment.KindTransition, TxnID: tx.ID, Status: st, Result: r, Raw: raw,
			Flag: payment.FlagLateResult, Detail: "late answer resolves unknown: " + word + modeNote(a)})
		return
	}
	flag := ""
	if len(mm) > 0 {
		flag = payment.FlagAmountMismatch
		r.Reason = strings.TrimSpace(r.Reason + " echo differs: " + strings.Join(mm, ", "))
	}
	d.log.Warn("late answer kept for the operator", "txn", tx.ID, "answer", word, "was", tx.Status)
	d.publish(payment.Event{Kind: payment.KindLate, TxnID: tx.ID, Result: r, Raw: raw, Flag: flag,
		Detail: fmt.Sprintf("late answer (%s%s) after the transaction was %s", word, modeNote(a), tx.Status)})
}
