package screens

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"paydesk/payment"
)

// conn is one WebSocket connection of a display.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	addr string
	// raw is the TCP (or TLS) connection under ws, for drop.
	raw net.Conn
	// out holds the frames waiting to be written, oldest first (see
	// push); writing is true while a writer drains it, and shut once the
	// connection is closing. Guarded by outMu, never held across a write.
	outMu   sync.Mutex
	out     []outFrame
	writing bool
	shut    bool
	// refused counts refusals since windowStart, read and written by the
	// connection's reader only.
	refused     int
	windowStart time.Time
}

// Refusals a connection may earn in refusalWindow before it is closed, so
// a client sending garbage, or well-formed messages that are refused, cannot
// flood the journal and slow the others. Every refusal counts.
const (
	maxRefusals   = 20
	refusalWindow = 10 * time.Second
)

// Refusals are journaled at most rejectRate a second, in bursts of
// rejectBurst, across all connections: a flood from many clients costs
// the journal a bounded number of rows (the log keeps a count of the
// rest).
const (
	rejectRate  = 2.0
	rejectBurst = 40
)

// refuse counts a refusal and reports whether the connection is over its
// allowance.
func (c *conn) refuse(now time.Time) bool {
	if now.Sub(c.windowStart) > refusalWindow {
		c.refused, c.windowStart = 0, now
	}
	c.refused++
	return c.refused > maxRefusals
}

// display is one customer display's session: its screen and the
// customer's flow. It outlives its connection for the resume window, so a
// tablet that drops and reconnects is put back where it was.
//
// A display's operations (a frame from it, its payment's outcome, its
// timers, a reconnect, the operator's reset) run one at a time, in the
// order they arrive, as jobs of the display's own serial executor (see
// do). The running job holds mu while it reads and decides, and releases
// it around every journal write, journal read and rail call (see
// outside): so the display's transitions are journaled in order and each
// before it is shown, and yet no lock is held across I/O. Another display,
// the bus's follower and the consoles never wait for this display's disk
// or rail: the follower hands an outcome over without waiting, and the
// consoles' views take mu only between two I/O steps.
type display struct {
	s     *Server
	id    string // server-issued session id, unguessable
	since time.Time

	// device is the serial the display reported; guarded by s.mu (the
	// server's lock), so finding a display by device takes no display lock.
	device string
	// flows are the flow ids it issued, oldest first (see registerFlow);
	// guarded by s.mu.
	flows []string

	// jobs are the display's operations waiting to run, oldest first;
	// working is true while a goroutine runs them (see do). Guarded by
	// qmu, a leaf lock never held while a job runs.
	qmu     sync.Mutex
	jobs    []func()
	working bool

	// mu guards the fields below. It is taken by the display's running
	// job, which alone changes them, and briefly by the views (snapshot,
	// byAddress, Close); the job releases it for I/O (outside).
	mu    sync.Mutex
	label string
	conn  *conn
	addr  string

	screen Screen
	data   Data
	flow   string // the transactionId the server issued for this flow
	amount payment.Money
	method string
	// railTxn is the rail's id of the payment in progress or just done;
	// inFlight is true until its outcome is applied.
	railTxn  string
	inFlight bool
	// pay are the instructions of a payment in flight that the customer
	// makes on their own phone (M-Pesa paybill): PROCESSING shows them,
	// again after a RESET or a reconnect.
	pay *payment.PayInstructions
	// local marks a payment the app takes on its own terminal (Pinto's
	// local-payment mode): paydesk journals it from CARD_CHECK_RESULT and
	// PAYMENT_RESULT.
	local bool
	// localFlow is the flow of the local payment in flight (its
	// CARD_CHECK_RESULT and PAYMENT_RESULT carry it); checked is true once
	// its card check was approved.
	localFlow string
	checked   bool
	// localDue is when the local payment's clock runs out: LocalTimeout
	// after the tap, then after the card check; a reconnect does not
	// restart it.
	localDue time.Time
	// app is true once the display reported its own address (DEVICE_IP):
	// the Android app, which pays DEBIT_CARD and PAY_BY_BANK on its own
	// terminal without sending their tap. deviceIP is that address.
	app      bool
	deviceIP string
	// peerIP is the address the display's last connection came from.
	peerIP string
	// result is the SUCCESS or FAILED message of the last payment, shown
	// again to a display that comes back while the steps after it wait.
	result *Message
	paused bool

	gen   int // bumped by every screen change; older timers do nothing
	timer *time.Timer
	// reserved is the amount (minor units) held against the daily limit
	// by this display's payment in flight.
	reserved atomic.Int64
	expire   *time.Timer
}

// do queues f to run, with mu held, after the display's operations
// queued before it; it does not wait. A goroutine runs the queue while it
// is not empty, so an idle display costs none.
func (d *display) do(f func()) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	d.jobs = append(d.jobs, f)
	if !d.working {
		d.working = true
		go d.work()
	}
}

// run is do, then waits until f has run. It is never called from a job
// (a job waiting on a queue would wait on itself, or on another display
// that may be waiting on it).
func (d *display) run(f func()) {
	done := make(chan struct{})
	d.do(func() { defer close(done); f() })
	<-done
}

// work runs the queued jobs in order until the queue is empty.
func (d *display) work() {
	for {
		d.qmu.Lock()
		if len(d.jobs) == 0 {
			d.working = false
			d.qmu.Unlock()
			return
		}
		f := d.jobs[0]
		d.jobs[0] = nil
		d.jobs = d.jobs[1:]
		d.qmu.Unlock()
		d.mu.Lock()
		f()
		d.mu.Unlock()
	}
}

// outside runs f, an I/O step of the running job, with mu released. The
// job keeps its turn: no other operation of this display runs meanwhile,
// so f works on values the job read before, and the job goes on from
// where it was. Only the views may take mu meanwhile.
func (d *display) outside(f func()) {
	d.mu.Unlock()
	defer d.mu.Lock()
	f()
}

// publishLocked journals ev with mu released (see outside).
func (d *display) publishLocked(ev payment.Event) error {
	var err error
	d.outside(func() { err = d.s.publish(ev) })
	return err
}

// txnLocked reads payment id from the journal with mu released.
func (d *display) txnLocked(id string) (t payment.Txn, err error) {
	d.outside(func() {
		ctx, cancel := d.s.life()
		defer cancel()
		t, err = d.s.bus.Journal().Txn(ctx, id)
	})
	return t, err
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveConn runs one display connection until it closes.
func (s *Server) serveConn(r *http.Request, ws *websocket.Conn) {
	c := &conn{s: s, ws: ws, addr: r.RemoteAddr}
	c.raw, _ = r.Context().Value(connKey{}).(net.Conn)
	q := r.URL.Query()
	session, device := q.Get("session"), sanitize(q.Get("device"))
	var d *display
	resumed := false
	if session == "" && device == "" {
		// The app connects to the bare URL and often cannot read its
		// serial: its address is what tells it apart before it says
		// anything, so its first screen is where it was.
		if e := s.byAddress(hostOf(c.addr), nil); e != nil {
			d, resumed = e, true
			s.log.Info("display recognised by its address: resuming", "display", e.labelSafe(), "session", e.id, "remote", c.addr)
		}
	}
	if d == nil {
		d, resumed = s.find(session, device)
	}
	s.log.Info("display connected", "display", d.labelSafe(), "session", d.id, "remote", c.addr, "resumed", resumed, "path", r.URL.Path)
	s.publish(payment.Event{Kind: payment.KindConnection, Peer: d.labelSafe(), Detail: "display connected from " + c.addr})
	d.attach(c)
	ctx, cancel := s.life()
	defer cancel()
	stopPing := s.heartbeat(ctx, c)
	defer stopPing()
	var err error
	for {
		var typ websocket.MessageType
		var frame []byte
		typ, frame, err = ws.Read(ctx)
		if err != nil {
			break
		}
		if typ != websocket.MessageText {
			d.reject(c, frame, &DecodeError{Code: CodeInvalidMessage, Reason: "binary frames are not accepted; send JSON text"})
			continue
		}
		d = d.handle(c, frame)
	}
	reason := "closed"
	switch status := websocket.CloseStatus(err); {
	case errors.Is(err, websocket.ErrMessageTooBig):
		reason = fmt.Sprintf("frame over %d bytes refused", s.opts.MaxFrame)
		s.log.Warn("display frame refused", "display", d.labelSafe(), "reason", reason)
		s.publish(payment.Event{Kind: payment.KindRejected, Peer: d.labelSafe(), Detail: "display frame refused: " + reason})
	case status != -1:
		reason = fmt.Sprintf("closed by display (%d)", status)
	case err != nil && ctx.Err() == nil:
		reason = err.Error()
	}
	c.shutdown() // before the close, so the writer does not report it as a failure
	if errors.Is(err, websocket.ErrMessageTooBig) {
		c.drop() // the library sent 1009: the app would not notice it
	} else {
		ws.CloseNow()
	}
	d.detach(c, reason)
}

// heartbeat pings the display every PingInterval (a WebSocket control
// frame: OkHttp and browsers answer it themselves, the app never sees it)
// and closes a connection that does not answer, so a display that
// vanished is noticed and its session waits for the reconnect.
func (s *Server) heartbeat(ctx context.Context, c *conn) (stop func()) {
	// A timer chain, not a goroutine per display: a goroutine lives only
	// while a ping waits for its pong.
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	var beat func()
	beat = func() {
		pctx, cancel := context.WithTimeout(ctx, s.opts.PingInterval)
		err := c.ws.Ping(pctx)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Info("display did not answer a ping; closing", "remote", c.addr, "err", err)
			c.ws.CloseNow()
			return
		}
		t = time.AfterFunc(s.opts.PingInterval, beat)
	}
	mu.Lock()
	t = time.AfterFunc(s.opts.PingInterval, beat)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// find returns the session a connecting display resumes (by the session
// id the server issued it, else the device name it gives), or a new one.
func (s *Server) find(session, device string) (*display, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.sessions[session]; d != nil && session != "" {
		return d, true
	}
	if device != "" {
		for _, d := range s.sessions {
			if d.device == device {
				return d, true
			}
		}
	}
	s.seq++
	d := &display{s: s, id: newSessionID(), since: s.opts.Now(), label: fmt.Sprintf("display-%d", s.seq)}
	if device != "" {
		d.device, d.label = device, device
	}
	s.sessions[d.id] = d
	return d, false
}

func (d *display) labelSafe() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.label
}

// attach makes c the display's connection and shows it where it is: the
// request for its identity if unknown, then the amount screen for a new
// display, its screen for a resumed one (the result of a payment finished
// meanwhile), then the configuration.
func (d *display) attach(c *conn) {
	d.run(func() { d.attachLocked(c) })
}

func (d *display) attachLocked(c *conn) {
	if old := d.conn; old != nil && old != c {
		d.s.log.Info("display connection replaced", "display", d.label, "old", old.addr, "new", c.addr)
		// Not under the lock: a dead tablet never answers the close, and
		// the handshake waits 5 s for it. What it still had queued is
		// dropped: this connection is shown the screen.
		old.shutdown()
		go old.closeWith(websocket.StatusPolicyViolation, "replaced by a newer connection", d.app)
	}
	d.conn, d.addr, d.peerIP = c, c.addr, hostOf(c.addr)
	if d.expire != nil {
		d.expire.Stop()
		d.expire = nil
	}
	// The request for the device's identity goes first: it carries an id
	// of its own, which the app copies like any other (apps before v2.0
	// then used it for their next tap), so the screen and the
	// configuration after it leave the flow's id the last one seen.
	d.s.mu.Lock()
	known := d.device != ""
	d.s.mu.Unlock()
	if !known {
		d.askDeviceInfoLocked()
	}
	switch {
	case d.screen == "":
		d.newFlowLocked()
		d.showLocked(ScreenAmountSelect, d.amountData())
	case d.paused && d.result != nil:
		d.paused = false
		d.s.log.Info("display resumed on its payment's result", "display", d.label, "txn", d.railTxn, "screen", d.result.Screen)
		d.showLocked(d.result.Screen, d.result.Data)
	case d.screen == ScreenProcessing && d.pay != nil && d.inFlight:
		d.s.log.Info("display resumed on where to pay", "display", d.label, "txn", d.railTxn)
		d.showLocked(d.screen, d.processingData())
	default:
		d.s.log.Info("display resumed", "display", d.label, "screen", d.screen, "txn", d.railTxn)
		d.showLocked(d.screen, d.data)
	}
	d.sendConfigLocked()
}

// askDeviceInfoLocked asks the app for its serial number and address
// (SCREEN_CHANGE/INFO_SCREEN with requestType DEVICE_INFO): the app answers
// with DEVICE_INFO messages without changing its screen or its
// transactionId, and the serial lets a reconnect resume this session.
func (d *display) askDeviceInfoLocked() {
	d.sendLocked(Message{MessageType: TypeScreenChange, Screen: ScreenInfo, TransactionID: fmt.Sprintf("info-%d", d.s.opts.Now().UnixMilli()),
		Timestamp: d.s.opts.Now().UnixMilli(), Data: Data{"requestType": "DEVICE_INFO"}})
}

// detach forgets c; the session waits ResumeWindow for a reconnect (for
// as long as its payment is in flight, and longer).
func (d *display) detach(c *conn, reason string) {
	mine, label := false, ""
	d.run(func() {
		if d.conn != c {
			return
		}
		mine, label = true, d.label
		d.conn = nil
		d.armExpireLocked()
	})
	if !mine {
		return
	}
	d.s.log.Info("display disconnected", "display", label, "remote", c.addr, "reason", reason)
	d.s.publish(payment.Event{Kind: payment.KindConnection, Peer: label, Detail: "display disconnected: " + reason})
}

func (d *display) armExpireLocked() {
	if d.expire != nil {
		d.expire.Stop()
	}
	d.expire = time.AfterFunc(d.s.opts.ResumeWindow, d.expired)
}

// expired drops a session whose display did not come back, unless its
// payment is still in flight.
func (d *display) expired() {
	d.do(func() {
		if d.conn != nil || d.s.isClosed() {
			return
		}
		if d.inFlight {
			d.armExpireLocked()
			return
		}
		d.stopTimersLocked()
		d.s.mu.Lock()
		delete(d.s.sessions, d.id)
		if d.railTxn != "" && d.s.byTxn[d.railTxn] == d {
			delete(d.s.byTxn, d.railTxn)
		}
		d.s.forgetFlows(d)
		d.s.mu.Unlock()
		d.s.log.Info("display session expired", "display", d.label)
	})
}

// handle acts on one inbound frame and returns the session now serving
// the connection (another one when a DEVICE_INFO names a display that was
// waiting to resume).
func (d *display) handle(c *conn, frame []byte) *display {
	a, err := Decode(frame)
	if err != nil {
		d.reject(c, frame, err)
		return d
	}
	d.s.log.Info("display message in", "display", d.labelSafe(), "type", a.MessageType, "screen", a.Screen, "txn", a.TxnID, "raw", string(redact(frame)))
	if a.Kind == ActDeviceInfo {
		return d.deviceInfo(c, a)
	}
	if a.TxnID != "" && a.Kind != ActPing && a.Kind != ActReset {
		// A flow id is the server's own: the message belongs to the flow
		// that has it, whatever connection brings it.
		if e := d.s.flowOwner(a.TxnID); e != nil && e != d {
			if n := d.handOver(c, e, "its flow "+a.TxnID); n != nil {
				d = n
			} else if a.Kind == ActPaymentResult {
				e.run(func() { e.paymentResultLocked(a) })
				return d
			}
		}
	}
	d.run(func() { d.actLocked(c, a, frame) })
	return d
}

// actLocked acts on a decoded frame from c, if c is still the display's
// connection.
func (d *display) actLocked(c *conn, a Action, frame []byte) {
	if d.conn != c {
		return
	}
	switch a.Kind {
	case ActPing:
		// The app's liveness probe: nothing to answer.
	case ActReset:
		d.resetLocked("reset by the display")
	case ActCancel:
		d.cancelLocked(a.Reason)
	case ActOther:
		if err := d.expectLocked(a, ScreenAmountSelect, ScreenKeypad); err != nil {
			d.rejectLocked(frame, err)
			return
		}
		if d.s.opts.NoOther {
			d.rejectLocked(frame, &DecodeError{Code: CodeInvalidAmount, Reason: "other amounts are not offered; choose a preset"})
			return
		}
		d.showLocked(ScreenKeypad, Data{"currency": d.s.symbol, "minAmount": d.s.opts.Min, "maxAmount": d.s.opts.Max})
	case ActAmount:
		d.amountLocked(a, frame)
	case ActMethod:
		d.methodLocked(a, frame)
	case ActReceipt:
		d.receiptLocked(a, frame)
	case ActCardCheck:
		d.cardCheckLocked(a)
	case ActPaymentResult:
		d.paymentResultLocked(a)
	case ActReport:
		d.s.log.Warn("display reported on its own terminal", "display", d.label, "type", a.MessageType,
			"code", a.Code, "reason", a.Reason, "result", a.Details["Result"])
		d.publishLocked(payment.Event{Kind: payment.KindNotice, TxnID: d.railTxn, Peer: d.label,
			Detail: fmt.Sprintf("display %s: %s %s %s", a.MessageType, a.Details["Result"], a.Code, a.Reason)})
	}
}

// expectLocked checks that an action answers the screen shown and names
// the transactionId the server issued for it.
func (d *display) expectLocked(a Action, screens ...Screen) error {
	if !slices.Contains(screens, d.screen) {
		return &DecodeError{Code: CodeWrongScreen, Reason: fmt.Sprintf("%s %s does not answer the screen shown, %s", a.Screen, a.SelectionMethod, d.screen)}
	}
	if a.TxnID != d.flow {
		return &DecodeError{Code: CodeUnknownTransaction, Reason: fmt.Sprintf("transactionId %q is not the one issued for this screen: copy the transactionId of the last SCREEN_CHANGE (this message carries it)", trunc(a.TxnID))}
	}
	return nil
}

func (d *display) amountLocked(a Action, frame []byte) {
	if err := d.expectLocked(a, ScreenAmountSelect, ScreenKeypad); err != nil {
		d.rejectLocked(frame, err)
		return
	}
	// The amount is judged, not its label: the app labels PRESET_BUTTON
	// exactly the amounts of its own hard-coded list (20, 40, 60, 80,
	// 100), whatever buttons it was sent.
	o := d.s.opts
	if o.NoOther && !slices.Contains(o.Presets, a.Amount) {
		d.rejectLocked(frame, &DecodeError{Code: CodeInvalidAmount, Reason: fmt.Sprintf("%d is not one of the preset amounts %v, and other amounts are not offered", a.Amount, o.Presets)})
		return
	}
	amt, err := d.s.money(a.Amount)
	if err != nil {
		d.rejectLocked(frame, err)
		return
	}
	if limited := d.limitLocked(amt, false); limited {
		return
	}
	d.amount = amt
	d.s.log.Info("display amount chosen", "display", d.label, "flow", d.flow, "amount", amt.Decimal(), "how", a.SelectionMethod)
	d.showLocked(ScreenPaymentMethod, Data{"methods": d.s.methodNames(), "allowCancel": true, "currency": d.s.symbol})
}

// limitLocked shows LIMIT_ERROR and reports true when amt would take the
// day over the daily limit; with reserve it also holds amt against the
// limit (atomically with the check, so two displays cannot both pass).
func (d *display) limitLocked(amt payment.Money, reserve bool) bool {
	ok, remaining, err := d.checkLimitLocked(amt, reserve)
	switch {
	case err != nil:
		d.showLocked(ScreenDeviceError, Data{"errorMessage": "Payments are unavailable, please ask staff", "errorCode": "LIMIT_UNKNOWN"})
		return true
	case !ok:
		d.showLocked(ScreenLimitError, Data{"limit": d.s.opts.DailyLimit, "remaining": remaining, "currency": d.s.symbol})
		return true
	}
	return false
}

// checkLimitLocked reports whether amt fits the daily limit, and if not
// what remains (whole units).
func (d *display) checkLimitLocked(amt payment.Money, reserve bool) (ok bool, remaining int64, err error) {
	o := d.s.opts
	if o.DailyLimit <= 0 {
		if reserve {
			d.reserved.Store(amt.Minor)
		}
		return true, 0, nil
	}
	label := d.label
	// The journal read, under limitMu, runs outside the display's lock.
	d.outside(func() {
		d.s.limitMu.Lock()
		defer d.s.limitMu.Unlock()
		ctx, cancel := d.s.life()
		defer cancel()
		used, uerr := d.s.usedToday(ctx)
		if uerr != nil {
			d.s.log.Error("daily limit unknown", "err", uerr)
			err = uerr
			return
		}
		limit := o.DailyLimit * d.s.unit
		if used+amt.Minor <= limit {
			if reserve {
				d.reserved.Store(amt.Minor)
			}
			ok = true
			return
		}
		remaining = max(limit-used, 0) / d.s.unit
		d.s.log.Info("display amount over the daily limit", "display", label, "amount", amt.Decimal(),
			"limit", o.DailyLimit, "used", payment.FormatMinor(used), "remaining", remaining)
	})
	return ok, remaining, err
}

// receiptLocked takes the answer to RECEIPT_QUESTION (YES or NO), notes it
// against the payment in the journal, and goes on to PRINT_TICKET. The app
// answers NO by itself when requireCardReceipt is false.
func (d *display) receiptLocked(a Action, frame []byte) {
	if d.screen != ScreenReceiptQuestion {
		// The app may answer a question it was never shown (its
		// requireCardReceipt setting): noted, nothing to do.
		d.s.log.Info("receipt answer without a question", "display", d.label, "answer", a.SelectionMethod, "screen", d.screen)
		return
	}
	if err := d.expectLocked(a, ScreenReceiptQuestion); err != nil {
		d.rejectLocked(frame, err)
		return
	}
	wants := "no receipt"
	if a.SelectionMethod == "YES" {
		wants = "a card receipt"
	}
	d.s.log.Info("receipt answer", "display", d.label, "txn", d.railTxn, "answer", a.SelectionMethod)
	d.publishLocked(payment.Event{Kind: payment.KindStep, TxnID: d.railTxn, Peer: d.label, Detail: "the customer wants " + wants})
	d.showLocked(ScreenPrintTicket, Data{})
}

// replyLocked sends an answer that is not a screen change (the app's
// LIMIT_CHECK_RESULT), journaled first like a screen.
func (d *display) replyLocked(typ string, scr Screen, data Data) {
	raw := d.journalLocked(d.messageLocked(typ, scr, data), d.railTxn, "display "+typ+" "+string(scr))
	if raw == nil {
		return
	}
	d.writeLocked(typ, scr, raw, true)
}

// startTimeout bounds a rail's Start (it journals and sends; the outcome
// comes later on the bus).
const startTimeout = 30 * time.Second

func (d *display) methodLocked(a Action, frame []byte) {
	if err := d.expectLocked(a, ScreenPaymentMethod); err != nil {
		d.rejectLocked(frame, err)
		return
	}
	m, ok := d.s.method(a.Method)
	if !ok {
		d.rejectLocked(frame, &DecodeError{Code: CodeUnknownMethod, Reason: fmt.Sprintf("payment method %q is not offered (%s)", trunc(a.Method), strings.Join(d.s.methodNames(), ", "))})
		return
	}
	if h, ok := m.Rail.(payment.HealthReporter); ok {
		if st := h.Health(); !st.Up {
			d.s.log.Warn("display method's rail is down", "display", d.label, "method", m.Name, "rail", m.RailName, "detail", st.Detail)
			d.showLocked(ScreenDeviceError, Data{"errorMessage": textUnavailable, "errorCode": "TERMINAL_ERROR"})
			return
		}
	}
	if d.limitLocked(d.amount, true) {
		return
	}
	if m.paysAtDisplay() {
		// The display's own terminal takes it: journaled as started there
		// now, so its clock runs from the tap (the app says nothing more
		// until its card check).
		if !d.startLocalLocked(m.Name, d.amount, "the customer chose "+m.Name+"; the display takes the payment on its own terminal") {
			d.showLocked(ScreenDeviceError, Data{"errorMessage": "Payments are unavailable, please ask staff", "errorCode": "TERMINAL_ERROR"})
			return
		}
		d.showLocked(ScreenProcessing, Data{})
		return
	}
	d.method = m.Name
	d.inFlight, d.railTxn, d.result, d.pay = true, "", nil, nil
	d.showLocked(ScreenProcessing, Data{})
	req := payment.Request{Mode: m.Mode, Amount: d.amount, Target: m.Target}
	var id string
	var err error
	// The rail journals and sends: outside the lock. The display's other
	// operations wait their turn (its outcome is read back below if it
	// came first); the other displays do not wait at all.
	d.outside(func() {
		life, stop := d.s.life()
		defer stop()
		ctx, cancel := context.WithTimeout(life, startTimeout)
		id, err = m.Rail.Start(ctx, req)
		cancel()
	})
	if err != nil {
		d.inFlight = false
		d.reserved.Store(0)
		d.s.log.Warn("display payment not started", "display", d.label, "method", m.Name, "rail", m.RailName, "amount", d.amount.Decimal(), "err", err)
		if errors.Is(err, payment.ErrNoPeer) || errors.Is(err, payment.ErrUnavailable) || errors.Is(err, payment.ErrBusy) {
			d.showLocked(ScreenDeviceError, Data{"errorMessage": textUnavailable, "errorCode": "TERMINAL_ERROR"})
			return
		}
		d.showLocked(ScreenFailed, Data{"errorMessage": "The payment could not start. Please try again", "errorCode": "PAYMENT_FAILED"})
		return
	}
	d.railTxn = id
	d.s.log.Info("display payment started", "display", d.label, "txn", id, "flow", d.flow, "method", m.Name,
		"rail", m.RailName, "mode", m.Mode, "amount", d.amount.Decimal())
	d.s.mu.Lock()
	d.s.byTxn[id] = d
	d.s.mu.Unlock()
	if in, ok := m.Rail.(payment.Instructor); ok {
		if pi, ok := in.Instructions(id); ok {
			d.pay = &pi
			d.s.log.Info("display shows where to pay", "display", d.label, "txn", id, "type", pi.Kind, "number", pi.Number, "account", pi.Account)
			d.showLocked(ScreenProcessing, d.processingData())
		}
	}
	// The rail may have finished before Start returned: read it back.
	go d.s.recheck(id, d)
}

// processingData is the PROCESSING screen of a payment the customer
// makes from their own phone. M-Pesa's menu asks, for Pay Bill, the
// business number, the account number and the amount; for Buy Goods the
// till number and the amount: so these are what the screen carries, as
// the customer types them (numbers as integers, the account as text),
// with the seconds left to pay. The Android app ignores fields it does
// not know; the browser display shows them large.
func (d *display) processingData() Data {
	if d.pay == nil || !d.inFlight {
		return Data{}
	}
	pi := *d.pay
	data := Data{"paymentMethod": d.method, "payTo": strings.ToUpper(pi.Kind), "amount": pi.Amount.Minor / payment.MinorPerUnit(pi.Amount.Currency),
		"currency": Symbol(pi.Amount.Currency)}
	var number any = pi.Number
	if n, err := strconv.ParseInt(pi.Number, 10, 64); err == nil {
		number = n
	}
	if pi.Kind == "till" {
		data["tillNumber"] = number
	} else {
		data["businessNumber"] = number
		data["accountNumber"] = pi.Account
	}
	if !pi.Until.IsZero() {
		data["expiresIn"] = max(int64(pi.Until.Sub(d.s.opts.Now())/time.Second), 0)
	}
	return data
}

// outcome shows the result of the display's payment id.
//
// It queues the work on the display's executor and returns at once: the
// bus's follower, which calls it, never waits for one display's journal
// or rail.
func (d *display) outcome(id string, st payment.Status, r *payment.Result) {
	d.do(func() { d.outcomeLocked(id, st, r) })
}

func (d *display) outcomeLocked(id string, st payment.Status, r *payment.Result) {
	if d.railTxn != id || !d.inFlight {
		return
	}
	d.inFlight, d.local, d.localFlow, d.checked = false, false, "", false
	d.reserved.Store(0)
	d.s.mu.Lock()
	delete(d.s.byTxn, id)
	d.s.mu.Unlock()
	reason := ""
	if r != nil {
		reason = r.Reason
	}
	d.s.log.Info("display payment finished", "display", d.label, "txn", id, "status", st, "reason", reason)
	var msg Message
	switch st {
	case payment.StatusApproved:
		msg = Message{Screen: ScreenSuccess, Data: Data{"showReceipt": true}}
	default:
		// The customer is told what happened in words for them; the
		// rail's reason is in the journal and the log.
		code, text := failure(st)
		if t, err := d.txnLocked(id); err == nil && t.HasFlag(flagUnderpaid) {
			text = "Only part of the amount was paid. Please ask staff for a refund"
		}
		msg = Message{Screen: ScreenFailed, Data: Data{"errorMessage": text, "errorCode": code}}
	}
	d.result = &msg
	d.showLocked(msg.Screen, msg.Data)
}

// failure is the FAILED screen's errorCode and default message for a
// status.
func failure(st payment.Status) (code, text string) {
	switch st {
	case payment.StatusDeclined:
		return "CARD_DECLINED", "Payment declined. Please try another card or ask staff"
	case payment.StatusCancelled:
		return "CANCELLED", "Payment cancelled"
	case payment.StatusTimedOut:
		return "PAYMENT_TIMEOUT", "The payment took too long. Please try again"
	case payment.StatusUnknown:
		return "OUTCOME_UNKNOWN", "We could not confirm your payment. Please ask staff"
	}
	return "PAYMENT_FAILED", "Payment failed. Please try again"
}

// flagUnderpaid is M-Pesa's flag (mpesa.FlagUnderpaid) on a sale the
// customer paid only part of: they are owed a refund, and told so.
const flagUnderpaid = "underpaid"

// textUnavailable is DEVICE_ERROR's message when a method's rail is down.
const textUnavailable = "This payment method is not available right now. Please try another or ask staff"

// customerText is an ERROR's errorMessage for its code: words for the
// customer, since the app shows it on its FAILED screen. Why the message
// was refused goes to the log and the journal.
func customerText(code string) string {
	switch code {
	case CodeInvalidAmount:
		return "Please choose another amount"
	case CodeBusy:
		return "Please wait for the payment in progress"
	case CodeTimeout:
		return "Transaction timed out"
	}
	return "Please try again"
}

// resetLocked answers a RESET: the amount screen with a new flow, unless a
// payment is in flight, whose PROCESSING screen is shown again (the app
// gets a screen within its 3 s, and the outcome still reaches it).
func (d *display) resetLocked(why string) {
	if d.inFlight {
		d.s.log.Info("display reset while its payment is in flight: staying on PROCESSING", "display", d.label, "txn", d.railTxn, "why", why)
		d.showLocked(ScreenProcessing, d.processingData())
		return
	}
	d.newFlowLocked()
	d.showLocked(ScreenAmountSelect, d.amountData())
}

func (d *display) cancelLocked(reason string) {
	if d.inFlight && d.local {
		// The display's own terminal has the payment; paydesk cannot
		// cancel it there, and its report is awaited.
		d.s.log.Info("display cancel while its own terminal takes the payment: awaiting its report", "display", d.label, "txn", d.railTxn, "reason", reason)
		d.showLocked(ScreenProcessing, Data{})
		return
	}
	if d.inFlight && d.railTxn != "" {
		if m, ok := d.s.method(d.method); ok {
			d.s.log.Info("display cancelled its payment", "display", d.label, "txn", d.railTxn, "reason", reason)
			id := d.railTxn
			d.outside(func() {
				if err := m.Rail.Cancel(id); err != nil {
					d.s.log.Warn("cancel refused by the rail", "txn", id, "err", err)
				}
			})
		}
		d.showLocked(ScreenProcessing, Data{})
		return
	}
	d.s.log.Info("display cancelled its selection", "display", d.label, "flow", d.flow, "reason", reason)
	d.resetLocked("cancel")
}

// operatorReset is ResetDisplay for one display.
func (d *display) operatorReset() (err error) {
	d.run(func() { err = d.operatorResetLocked() })
	return err
}

func (d *display) operatorResetLocked() error {
	if d.inFlight {
		return fmt.Errorf("reset display %s: payment %s is in flight; its outcome must reach the customer", d.label, d.railTxn)
	}
	d.s.log.Info("display reset by the operator", "display", d.label)
	d.paused = false
	d.newFlowLocked()
	d.showLocked(ScreenAmountSelect, d.amountData())
	return nil
}

// deviceInfo records the device's identity and answers with the
// configuration. A device that was waiting to resume takes over this
// connection and is shown its screen.
func (d *display) deviceInfo(c *conn, a Action) *display {
	device, ip := sanitize(a.Device), sanitize(a.IP)
	s := d.s
	if device != "" {
		s.mu.Lock()
		var other *display
		for _, e := range s.sessions {
			// The device's serial is its identity: a new connection from it
			// means an older one is dead (a tablet that lost Wi-Fi is
			// often not noticed until it is back), so it takes over.
			if e != d && e.device == device {
				other = e
			}
		}
		s.mu.Unlock()
		if other != nil {
			if n := d.handOver(c, other, "its device serial "+device); n != nil {
				return n
			}
		}
		s.mu.Lock()
		d.device = device
		s.mu.Unlock()
	}
	if ip != "" {
		// The app's own LAN address (its serial is often "unknown"): a
		// session waiting for the display at that address is this one.
		if other := s.byAddress(ip, d); other != nil {
			if n := d.handOver(c, other, "its address "+ip); n != nil {
				n.run(func() { n.app, n.deviceIP = true, ip })
				return n
			}
		}
	}
	d.run(func() {
		if device != "" {
			d.label = device
		}
		if ip != "" {
			d.app, d.deviceIP = true, ip
			s.log.Info("display reported its address", "display", d.label, "ip", ip)
		}
		if d.conn == c {
			d.sendConfigLocked()
		}
	})
	return d
}

// handOver gives connection c, now served by the new session d, to the
// session e it turned out to be, if d has nothing of its own yet (no
// payment, no result): d is dropped and e is shown on c where it was. It
// returns e, or nil when d keeps c.
func (d *display) handOver(c *conn, e *display, why string) *display {
	fresh := false
	d.run(func() {
		fresh = d.conn == c && !d.inFlight && d.railTxn == "" && d.result == nil
		if fresh {
			d.conn = nil
			d.stopTimersLocked()
		}
	})
	if !fresh {
		return nil
	}
	s := d.s
	s.mu.Lock()
	delete(s.sessions, d.id)
	s.forgetFlows(d)
	s.mu.Unlock()
	s.log.Info("display recognised by "+why+": resuming", "display", e.labelSafe(), "session", e.id, "remote", c.addr)
	e.attach(c)
	return e
}

// byAddress is the one session, other than not, that a display at
// address ip resumes: one waiting for its display (with a flow under way,
// a payment, or a result to show) whose last connection came from ip or
// which reported ip as its own; or the app's session from ip that is
// still connected (the app holds one connection: a new one means the old
// one died unnoticed). None when two or more could be it.
func (s *Server) byAddress(ip string, not *display) *display {
	if ip == "" {
		return nil
	}
	s.mu.Lock()
	all := make([]*display, 0, len(s.sessions))
	for _, e := range s.sessions {
		if e != not {
			all = append(all, e)
		}
	}
	s.mu.Unlock()
	var found *display
	for _, e := range all {
		e.mu.Lock()
		match := false
		switch {
		case e.conn == nil:
			match = (e.peerIP == ip || e.deviceIP == ip) && (e.inFlight || e.result != nil || (e.screen != "" && e.screen != ScreenAmountSelect))
		default:
			match = e.app && e.deviceIP == ip && e.peerIP == ip
		}
		e.mu.Unlock()
		if match {
			if found != nil {
				s.log.Info("display address matches several sessions: starting afresh", "ip", ip)
				return nil
			}
			found = e
		}
	}
	return found
}

// hostOf is the host part of a host:port address.
func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// sanitize keeps a device name printable and short. The app reports
// "unknown" when it cannot read its serial: that identifies nothing (two
// such tablets would take each other's sessions), so it counts as none.
func sanitize(s string) string {
	if strings.EqualFold(strings.TrimSpace(s), "unknown") {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") // not half a character
	}
	return s
}

func (d *display) newFlowLocked() {
	d.flow = uuid.NewString()
	d.s.registerFlow(d, d.flow)
	d.amount, d.method, d.result, d.paused = payment.Money{}, "", nil, false
	if !d.inFlight {
		d.railTxn = ""
	}
}

func (d *display) amountData() Data {
	o := d.s.opts
	return Data{"amounts": o.Presets, "currency": d.s.symbol, "showOtherOption": !o.NoOther}
}

// sendConfigLocked sends DEVICE_INFO with the configuration the app reads
// (amounts as whole numbers; no fee) and the session id a browser display
// reconnects with.
func (d *display) sendConfigLocked() {
	o := d.s.opts
	d.sendLocked(d.messageLocked(TypeDeviceInfo, "", Data{"minTransactionLimit": o.Min, "maxTransactionLimit": o.Max, "currency": o.Currency,
		"transactionFeeType": "FIXED", "transactionFeeValue": int64(0), "yaspaEnabled": true,
		"requireCardReceipt": o.ReceiptQuestion, "paymentProvider": o.PaymentProvider, "sessionId": d.id}))
}

// showLocked changes the display's screen: it journals the screen (with
// the payment's id when there is one), then writes it to the display if
// connected, and arms the screen's timer.
func (d *display) showLocked(scr Screen, data Data) {
	if data == nil {
		data = Data{}
	}
	// Journaled before the state changes: the consoles' views, which may
	// look while the journal writes, never see a screen the journal does
	// not have.
	raw := d.journalLocked(d.messageLocked(TypeScreenChange, scr, data), d.railTxn, "display "+string(scr))
	d.screen, d.data = scr, data
	d.gen++
	d.stopTimersLocked()
	if raw == nil {
		return
	}
	d.armLocked()
	d.writeLocked(TypeScreenChange, scr, raw, true)
}

// messageLocked is a frame of the display's flow, stamped now.
func (d *display) messageLocked(typ string, scr Screen, data Data) Message {
	return Message{MessageType: typ, Screen: scr, Data: data, TransactionID: d.flow, Timestamp: d.s.opts.Now().UnixMilli()}
}

// journalLocked journals msg (against payment txn, if any) before it is
// sent, and returns its encoding; nil when the journal refused it: what is
// not on disk is not shown.
func (d *display) journalLocked(msg Message, txn, detail string) []byte {
	raw := msg.Encode()
	if err := d.publishLocked(payment.Event{Kind: payment.KindMessage, TxnID: txn, Peer: d.label, Detail: detail, Raw: raw}); err != nil {
		return nil
	}
	return raw
}

// sendLocked writes a frame that is not journaled (configuration,
// requests, refusals).
func (d *display) sendLocked(msg Message) {
	d.writeLocked(msg.MessageType, msg.Screen, msg.Encode(), false)
}

// writeLocked queues raw for the display if connected; the connection's
// writer sends it (see conn.push), so the display's lock, which the bus's
// outcomes take, is never held across a network write. The log keeps the
// text of a frame the journal does not have; a journaled one's is there.
func (d *display) writeLocked(typ string, scr Screen, raw []byte, journaled bool) {
	c := d.conn
	if c == nil {
		d.s.log.Info("display message held: not connected", "display", d.label, "type", typ, "screen", scr)
		return
	}
	switch err := c.push(outFrame{raw: raw, label: d.label}); {
	case errors.Is(err, errTooSlow):
		reason := fmt.Sprintf("too slow: %d frames waiting to be written", maxQueued)
		d.s.log.Warn("display too slow; closing its connection", "display", d.label, "remote", c.addr, "reason", reason)
		// Not under the lock: CloseNow waits for a close handshake already
		// under way. The session is detached now, so its steps wait and the
		// reconnect shows it its screen; the reader's detach is then a no-op.
		go c.ws.CloseNow()
		// Journaled before the views see the display disconnected.
		d.publishLocked(payment.Event{Kind: payment.KindConnection, Peer: d.label, Detail: "display disconnected: " + reason})
		d.conn = nil
		d.armExpireLocked()
		return
	case err != nil:
		d.s.log.Info("display message dropped: connection closing", "display", d.label, "type", typ, "screen", scr)
		return
	}
	if journaled {
		d.s.log.Info("display message out", "display", d.label, "type", typ, "screen", scr, "txn", d.flow, "journaled", true)
	} else {
		d.s.log.Info("display message out", "display", d.label, "type", typ, "screen", scr, "txn", d.flow, "raw", string(raw))
	}
}

// reject answers a refused frame with ERROR (the connection stays open).
func (d *display) reject(c *conn, frame []byte, err error) {
	d.run(func() {
		if d.conn == c {
			d.rejectLocked(frame, err)
		}
	})
}

func (d *display) rejectLocked(frame []byte, err error) {
	code := CodeInvalidMessage
	var de *DecodeError
	if errors.As(err, &de) {
		code = de.Code
	}
	if c := d.conn; c != nil && c.refuse(d.s.opts.Now()) {
		// Over the allowance: closed, once; what it still sends is
		// dropped unanswered.
		if c.shutdown() {
			d.s.log.Warn("display closed: too many refused messages", "display", d.label, "remote", c.addr, "limit", maxRefusals, "window", refusalWindow)
			d.publishLocked(payment.Event{Kind: payment.KindRejected, Peer: d.label,
				Detail: fmt.Sprintf("display closed: more than %d messages refused within %s", maxRefusals, refusalWindow)})
			go c.closeWith(websocket.StatusPolicyViolation, "too many refused messages", d.app)
		}
		return
	}
	safe := redact(frame)
	if ok, dropped := d.s.rejects.allow(d.s.opts.Now()); ok {
		detail := "display message refused: " + err.Error()
		if dropped > 0 {
			detail += fmt.Sprintf(" (and %d refusals before it not journaled: over %g a second)", dropped, rejectRate)
		}
		d.s.log.Warn("display message refused", "display", d.label, "code", code, "reason", err.Error(), "raw", trunc(string(safe)), "not_journaled_before", dropped)
		d.publishLocked(payment.Event{Kind: payment.KindRejected, Peer: d.label, Detail: detail, Raw: safe})
	}
	d.sendLocked(d.messageLocked(TypeError, d.screen, Data{"errorCode": code, "errorMessage": customerText(code)}))
}

func (d *display) stopTimersLocked() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// afterLocked runs f (with the lock held) after delay, unless the screen
// has changed meanwhile or the server stopped.
func (d *display) afterLocked(delay time.Duration, f func()) {
	gen := d.gen
	d.timer = time.AfterFunc(delay, func() {
		d.do(func() {
			if d.gen != gen || d.s.isClosed() {
				return
			}
			f()
		})
	})
}

// armLocked sets the timer of the screen just shown: the idle timeout of
// screens that wait for the customer, the steps after a payment, the hold
// of an error.
func (d *display) armLocked() {
	o := d.s.opts
	switch d.screen {
	case ScreenPaymentMethod:
		wait := o.IdleTimeout
		if d.localWaitLocked() {
			// The customer may be paying on the display's own terminal,
			// which says nothing until its card check: the method's idle
			// time and the app's longest path.
			wait += o.LocalTimeout
		}
		d.afterLocked(wait, d.timeoutLocked)
	case ScreenKeypad, ScreenLimitError:
		d.afterLocked(o.IdleTimeout, d.timeoutLocked)
	case ScreenSuccess:
		if o.ReceiptQuestion {
			d.stepLocked(o.StepDelay, ScreenReceiptQuestion)
		} else {
			d.stepLocked(o.StepDelay, ScreenPrintTicket)
		}
	case ScreenReceiptQuestion:
		// The customer has paid: one who walks away still gets a ticket.
		d.afterLocked(o.IdleTimeout, func() {
			d.s.log.Info("receipt question unanswered; printing the ticket", "display", d.label, "txn", d.railTxn)
			d.showLocked(ScreenPrintTicket, Data{})
		})
	case ScreenPrintTicket:
		d.stepLocked(o.StepDelay, ScreenCollectTicket)
	case ScreenCollectTicket:
		d.stepLocked(o.StepDelay, ScreenThankYou)
	case ScreenThankYou:
		d.stepLocked(o.StepDelay, ScreenAmountSelect)
	case ScreenFailed, ScreenDeviceError:
		d.stepLocked(o.ResultHold, ScreenAmountSelect)
	case ScreenProcessing:
		if d.local && d.inFlight {
			id := d.railTxn
			what := "PAYMENT_RESULT"
			if !d.checked {
				what = "card check"
			}
			d.afterLocked(max(d.localDue.Sub(o.Now()), 0), func() {
				d.s.log.Warn("display did not report its payment; marking it unknown", "display", d.label, "txn", id, "awaited", what)
				d.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusUnknown, Peer: d.label,
					Detail: fmt.Sprintf("no %s from the display within %s: check its terminal", what, o.LocalTimeout)})
			})
		}
	}
}

// stepLocked moves on to next after delay. While the display is away the
// steps wait: a display that comes back is shown its payment's result.
func (d *display) stepLocked(delay time.Duration, next Screen) {
	d.afterLocked(delay, func() {
		if d.conn == nil {
			if d.result != nil {
				d.paused = true
			}
			return
		}
		if next == ScreenAmountSelect {
			d.newFlowLocked()
			d.showLocked(next, d.amountData())
			return
		}
		d.showLocked(next, Data{})
	})
}

// timeoutLocked ends a flow the customer left: ERROR with errorCode
// TIMEOUT on the current screen, then the amount screen after the hold
// (or at once on the app's RESET).
func (d *display) timeoutLocked() {
	d.s.log.Info("display idle: flow timed out", "display", d.label, "screen", d.screen, "flow", d.flow)
	msg := d.messageLocked(TypeError, d.screen, Data{"errorMessage": "Transaction timed out", "errorCode": CodeTimeout})
	raw := d.journalLocked(msg, "", "display timed out on "+string(d.screen))
	if raw == nil {
		return
	}
	d.writeLocked(TypeError, d.screen, raw, true)
	d.gen++
	d.afterLocked(d.s.opts.ResultHold, func() {
		d.newFlowLocked()
		d.showLocked(ScreenAmountSelect, d.amountData())
	})
}

// snapshot is the display as the consoles list it.
func (d *display) snapshot() payment.Display {
	d.mu.Lock()
	defer d.mu.Unlock()
	return payment.Display{ID: d.id, Label: d.label, Addr: d.addr, Connected: d.conn != nil, Screen: string(d.screen),
		Flow: d.flow, TxnID: d.railTxn, Amount: d.amount, Method: d.method, Since: d.since}
}

func sortDisplays(ds []payment.Display) {
	slices.SortFunc(ds, func(a, b payment.Display) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Label, b.Label)
	})
}
