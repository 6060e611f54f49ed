package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paydesk/payment"
	"paydesk/protocol/wire"
)

// ErrUnknownTxn is returned for an operation on a transaction that is not
// in flight on this server.
var ErrUnknownTxn = errors.New("no such transaction in flight")

// ErrUnknownPlan is returned when the chosen plan was not offered.
var ErrUnknownPlan = errors.New("plan not offered")

// txn is a transaction in flight on the POS link.
//
// Everything that can move it (Start's first steps, the POS's messages, the
// timers, the operator's Cancel and SelectPlan) runs as a job of the
// transaction's own serial executor (see do): one at a time, in the order
// they arrive. The running job holds mu while it reads and decides, and
// releases it around every journal append and every write to the POS (see
// outside). So a transaction's transitions are journaled in order, the
// request is sent only once its creation is journaled, and an answer is
// applied only after the steps before it; yet no lock is held across I/O,
// and nothing outside the transaction (another payment, the console's
// InFlight, the server's busy checks) waits for its disk or its POS.
type txn struct {
	s      *Server
	id     string
	mode   payment.Mode
	amount payment.Money

	// jobs wait to run, oldest first; working is true while a goroutine
	// runs them. Guarded by qmu, a leaf never held while a job runs.
	qmu     sync.Mutex
	jobs    []func()
	working bool

	// mu guards the fields below. The running job, which alone changes
	// them, holds it except during I/O; InFlight and Close take it briefly.
	mu        sync.Mutex
	status    payment.Status
	conn      *conn  // where the request went (or the POS's newest connection)
	posID     string // the POS's id, once known: answers must carry it
	plans     []payment.Plan
	cancelReq bool
	timer     *time.Timer
	deadline  time.Time
	waiting   string // what the timer waits for, for its message
	done      bool
	// contested says what a second connection claiming this payment's POS
	// answered for it (refused while the first connection lived): if no
	// accepted answer ends the payment, its outcome is not known.
	contested string
	// badSigs is conn's count of frames refused for their signature when
	// the request went: more by a timeout means the POS's answers were
	// refused, not missing.
	badSigs int64

	// ended is set before the final event is published, so that anyone
	// who reacts to that event (a console starting the next payment) finds
	// the POS free. Read without t.mu by the server's busy checks.
	ended atomic.Bool
}

// do queues f to run, with t.mu held, after the jobs queued before it; it
// does not wait. A goroutine runs the queue while it is not empty.
func (t *txn) do(f func()) {
	t.qmu.Lock()
	defer t.qmu.Unlock()
	t.jobs = append(t.jobs, f)
	if !t.working {
		t.working = true
		go t.work()
	}
}

// run is do, then waits until f has run. A job never calls it (it would
// wait on itself).
func (t *txn) run(f func()) {
	done := make(chan struct{})
	t.do(func() { defer close(done); f() })
	<-done
}

// work runs the queued jobs in order until the queue is empty.
func (t *txn) work() {
	for {
		t.qmu.Lock()
		if len(t.jobs) == 0 {
			t.working = false
			t.qmu.Unlock()
			return
		}
		f := t.jobs[0]
		t.jobs[0] = nil
		t.jobs = t.jobs[1:]
		t.qmu.Unlock()
		t.mu.Lock()
		f()
		t.mu.Unlock()
	}
}

// outside runs f, an I/O step of the running job, with t.mu released. The
// job keeps its turn: no other job of t runs meanwhile, so f uses values
// the job read before, and the job goes on from where it was.
func (t *txn) outside(f func()) {
	t.mu.Unlock()
	defer t.mu.Lock()
	f()
}

// publishLocked journals ev with t.mu released.
func (t *txn) publishLocked(ev payment.Event) (err error) {
	t.outside(func() { _, err = t.s.publish(ev) })
	return err
}

// sendLocked writes p to c with t.mu released.
func (t *txn) sendLocked(c *conn, p wire.Payload) (raw []byte, err error) {
	t.outside(func() { raw, err = t.s.send(c, p) })
	return raw, err
}

// active reports whether t still occupies its POS.
func (t *txn) active() bool { return !t.ended.Load() }

// InFlight lists the transactions in flight, oldest first.
func (s *Server) InFlight() []payment.Flight {
	s.mu.Lock()
	ts := make([]*txn, 0, len(s.txns))
	for _, t := range s.txns {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	out := make([]payment.Flight, 0, len(ts))
	for _, t := range ts {
		if !t.active() {
			continue
		}
		t.mu.Lock()
		out = append(out, payment.Flight{ID: t.id, Mode: t.mode, Amount: t.amount, Status: t.status, Peer: t.peerLabel(),
			Deadline: t.deadline, Waiting: t.waiting, CancelRequested: t.cancelReq, Plans: t.plans})
		t.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b payment.Flight) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Start sends a payment request to the target POS (req.Target, else the
// default target) and returns the new transaction's id. Progress and the
// outcome arrive as events on the bus.
func (s *Server) Start(ctx context.Context, req payment.Request) (string, error) {
	switch req.Mode {
	case payment.ModeCard, payment.ModeBNPL, payment.ModeDuitNowQR, payment.ModeIPP:
	default:
		return "", fmt.Errorf("start payment: unknown payment mode %q", req.Mode)
	}
	if req.Amount.Minor <= 0 {
		return "", fmt.Errorf("start payment: amount must be positive")
	}
	if req.Amount.Currency == "" {
		req.Amount.Currency = payment.DefaultCurrency
	}
	s.mu.Lock()
	var c *conn
	if req.Target != "" {
		c = s.findLocked(req.Target)
		if c == nil {
			s.mu.Unlock()
			return "", fmt.Errorf("start payment: POS %s is not connected: %w", req.Target, payment.ErrNoPeer)
		}
	} else if c = s.defaultConnLocked(); c == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("start payment: no POS terminal connected: %w", payment.ErrNoPeer)
	}
	c.mu.Lock()
	posID := c.posID
	c.mu.Unlock()
	for _, t := range s.txns {
		if t.active() && (t.conn == c || (posID != "" && t.posID == posID)) {
			s.mu.Unlock()
			return "", fmt.Errorf("start payment: POS %s is busy with %s: %w", c.label(), t.id, payment.ErrBusy)
		}
	}
	t := &txn{s: s, id: s.newTxnIDLocked(), mode: req.Mode, amount: req.Amount, conn: c, posID: posID, status: payment.StatusCreated, badSigs: c.badSigs.Load()}
	s.txns[t.id] = t
	s.mu.Unlock()

	var err error
	t.run(func() { err = t.startLocked(c) })
	if err != nil {
		return "", err
	}
	return t.id, nil
}

// startLocked journals the new transaction, then sends its request.
func (t *txn) startLocked(c *conn) error {
	s := t.s
	err := t.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: t.id, Status: payment.StatusCreated,
		Mode: t.mode, Amount: t.amount, Peer: c.label(), Detail: fmt.Sprintf("%s %s to %s", t.mode, t.amount, c.label())})
	if err != nil {
		t.done = true
		t.ended.Store(true)
		s.forget(t)
		return fmt.Errorf("start payment: journal: %w", err)
	}
	raw, err := t.sendLocked(c, wire.Payload{"type": "transaction_request", "txn_id": t.id,
		"amount": json.Number(wire.FormatAmount(t.amount.Minor)), "payment_mode": string(t.mode)})
	if err != nil {
		t.finish(payment.StatusFailed, &payment.Result{Reason: err.Error()}, nil, "")
		return nil
	}
	t.move(payment.StatusSent, raw, fmt.Sprintf("request sent to %s", c.label()))
	t.arm(s.opts.AckTimeout, "ack")
	s.log.Info("payment request sent", "txn", t.id, "mode", t.mode, "amount", t.amount.Decimal(), "pos", c.label())
	return nil
}

// Cancel asks the POS to cancel a transaction. The transaction stays in
// flight until the POS confirms (ack or failed result) or the cancel times
// out; a result that arrives later is journaled and flagged.
func (s *Server) Cancel(id string) error {
	t := s.lookup(id)
	if t == nil {
		return fmt.Errorf("cancel %s: %w", id, ErrUnknownTxn)
	}
	var err error
	t.run(func() { err = t.cancelLocked() })
	return err
}

func (t *txn) cancelLocked() error {
	if t.done {
		return fmt.Errorf("cancel %s: %w", t.id, ErrUnknownTxn)
	}
	if t.cancelReq {
		return nil
	}
	raw, err := t.sendLocked(t.conn, wire.Payload{"type": "cancel_transaction", "txn_id": t.id})
	if err != nil {
		t.finishFlag(payment.StatusCancelled, &payment.Result{Reason: "POS unreachable, cancel not delivered: " + err.Error()},
			nil, payment.FlagCancelUnconf)
		return nil
	}
	t.cancelReq = true
	t.step(raw, "cancel requested", "")
	t.arm(t.s.opts.AckTimeout, "cancel confirmation")
	return nil
}

// SelectPlan sends the operator's choice of IPP plan.
func (s *Server) SelectPlan(id, planID string) error {
	t := s.lookup(id)
	if t == nil {
		return fmt.Errorf("select plan for %s: %w", id, ErrUnknownTxn)
	}
	var err error
	t.run(func() { err = t.selectPlanLocked(planID) })
	return err
}

func (t *txn) selectPlanLocked(planID string) error {
	id := t.id
	if t.done || t.status != payment.StatusPlansOffered {
		return fmt.Errorf("select plan for %s: no plans on offer (status %s)", id, t.status)
	}
	if !slices.ContainsFunc(t.plans, func(p payment.Plan) bool { return p.ID == planID }) {
		return fmt.Errorf("select plan %q for %s: %w", planID, id, ErrUnknownPlan)
	}
	raw, err := t.sendLocked(t.conn, wire.Payload{"type": "ipp_plan_selection", "txn_id": t.id, "plan_id": planID})
	if err != nil {
		t.finish(payment.StatusFailed, &payment.Result{Reason: err.Error(), PlanID: planID}, nil, "")
		return nil
	}
	t.moveResult(payment.StatusPlanSelected, raw, &payment.Result{PlanID: planID}, "plan "+planID+" selected")
	t.arm(t.s.opts.ResultTimeout, "result")
	return nil
}

func (s *Server) lookup(id string) *txn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txns[id]
}

func (s *Server) forget(t *txn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.txns, t.id)
}

func (t *txn) peerLabel() string {
	if t.posID != "" {
		return t.posID
	}
	return t.conn.label()
}

// move journals a transition; called with t.mu held.
func (t *txn) move(st payment.Status, raw []byte, detail string) bool {
	return t.moveResult(st, raw, nil, detail)
}

func (t *txn) moveResult(st payment.Status, raw []byte, r *payment.Result, detail string) bool {
	err := t.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: t.id, Status: st, Peer: t.peerLabel(),
		Raw: raw, Result: r, Detail: detail, Plans: plansIf(st, t.plans)})
	if err != nil {
		return false
	}
	t.status = st
	return true
}

func plansIf(st payment.Status, plans []payment.Plan) []payment.Plan {
	if st == payment.StatusPlansOffered {
		return plans
	}
	return nil
}

// step journals progress that does not change the status.
func (t *txn) step(raw []byte, detail, flag string) {
	t.publishLocked(payment.Event{Kind: payment.KindStep, TxnID: t.id, Peer: t.peerLabel(), Raw: raw, Detail: detail, Flag: flag})
}

func (t *txn) finish(st payment.Status, r *payment.Result, raw []byte, detail string) {
	t.finishFlag(st, r, raw, "", detail)
}

// finishFlag ends the transaction: journals the final transition and takes
// it out of flight. Called with t.mu held.
func (t *txn) finishFlag(st payment.Status, r *payment.Result, raw []byte, flag string, detail ...string) {
	d := string(st)
	if len(detail) > 0 && detail[0] != "" {
		d = detail[0]
	} else if r != nil && r.Reason != "" {
		d = r.Reason
	}
	t.stopTimerLocked()
	t.ended.Store(true)
	if st == payment.StatusApproved {
		// Before the publish, so whoever reacts to the approval already
		// finds this POS as the default target.
		t.s.mu.Lock()
		t.s.lastDone = t.peerLabel()
		t.s.mu.Unlock()
	}
	ev := payment.Event{Kind: payment.KindTransition, TxnID: t.id, Status: st, Peer: t.peerLabel(), Raw: raw, Result: r, Detail: d, Flag: flag}
	if err := t.publishLocked(ev); err == nil {
		t.status = st
	}
	t.done = true
	t.s.forget(t)
	t.s.log.Info("payment finished", "txn", t.id, "status", st, "detail", d)
}

// arm (re)starts the transaction's timer; called with t.mu held.
// Once the server is closed no timer is armed: Close stops the timers,
// and a job still running then must not start another.
func (t *txn) arm(d time.Duration, waiting string) {
	t.stopTimerLocked()
	t.waiting = waiting
	t.deadline = t.s.opts.Now().Add(d)
	t.s.mu.Lock()
	closed := t.s.closed
	t.s.mu.Unlock()
	if closed {
		return
	}
	t.timer = time.AfterFunc(d, func() { t.do(func() { t.expireLocked(waiting, d) }) })
}

func (t *txn) stopTimerLocked() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.deadline = time.Time{}
	t.waiting = ""
}

func (t *txn) stopTimer() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopTimerLocked()
}

// expireLocked ends the wait for waiting after d, unless the transaction
// moved on meanwhile.
func (t *txn) expireLocked(waiting string, d time.Duration) {
	if t.done || t.waiting != waiting {
		return
	}
	if t.cancelReq {
		reason := fmt.Sprintf("POS did not confirm the cancel within %s", d)
		if t.contested != "" {
			t.finishFlag(payment.StatusUnknown, &payment.Result{Reason: reason}, nil, FlagContested,
				fmt.Sprintf("%s, but %s: check the payment on the POS, then resolve", reason, t.contested))
			return
		}
		t.finishFlag(payment.StatusCancelled, &payment.Result{Reason: reason}, nil, payment.FlagCancelUnconf)
		return
	}
	reason := fmt.Sprintf("no %s from POS within %s", waiting, d)
	if waiting == "plan choice" {
		reason = fmt.Sprintf("no plan chosen within %s", d)
	} else if t.conn != nil && t.conn.badSigs.Load() > t.badSigs {
		reason += ": the POS's messages fail the signature check: the POS and this kiosk have different secrets"
	}
	// Tell the POS to stop too, so it does not take money later.
	raw, _ := t.sendLocked(t.conn, wire.Payload{"type": "cancel_transaction", "txn_id": t.id})
	if raw != nil {
		t.step(raw, "cancel sent to POS after timeout", "")
	}
	if t.contested != "" {
		t.finishFlag(payment.StatusUnknown, &payment.Result{Reason: reason}, nil, FlagContested,
			fmt.Sprintf("%s, but %s: check the payment on the POS, then resolve", reason, t.contested))
		return
	}
	t.finish(payment.StatusTimedOut, &payment.Result{Reason: reason}, nil, "")
}

// FlagContested marks a payment left unknown because, while its POS's
// connection was open, a second connection claiming that POS answered for
// it (a POS that reconnected before the kiosk saw its old connection die,
// or an impostor), and no answer the kiosk could accept followed.
const FlagContested = "pos_id_contested"

// contest notes, on the payment in flight that m answers, that a second
// connection claiming its POS answered for it.
func (s *Server) contest(c *conn, m *wire.Message) {
	t := s.lookup(m.TxnID)
	if t == nil {
		return
	}
	// Queued, not waited for: the claimant's reader does not wait on this
	// payment's I/O.
	t.do(func() {
		if !t.done && t.posID != "" && t.posID == m.PosID && t.contested == "" {
			t.contested = fmt.Sprintf("a second connection (%s) claiming %s sent %s for it, refused while %s's connection was open",
				c.addr, m.PosID, strings.TrimSpace(m.Type+" "+m.Status), m.PosID)
		}
	})
}

// dispatch routes a verified message from c.
func (s *Server) dispatch(c *conn, m *wire.Message, frame []byte) {
	raw := slices.Clone(frame)
	switch m.Type {
	case "ack", "transaction_result", "error":
	default:
		s.log.Warn("unknown message type", "peer", c.addr, "type", m.Type)
		s.publish(payment.Event{Kind: payment.KindMessage, TxnID: "", Peer: c.label(), Raw: raw,
			Detail: fmt.Sprintf("unknown message type %q ignored", m.Type)})
		return
	}
	if m.TxnID == "" {
		s.reject(c, frame, "", &wire.RejectError{Reason: fmt.Sprintf("%s without txn_id", m.Type), Err: wire.ErrMissingField})
		return
	}
	t := s.lookup(m.TxnID)
	if t == nil {
		s.notInFlight(c, m, raw)
		return
	}
	// The reader waits for its message to be applied (its own payment's
	// I/O), as it waits for the journal elsewhere; nobody else does.
	over := false
	t.run(func() {
		if t.done {
			over = true
			return
		}
		if !t.acceptsFrom(c) {
			s.reject(c, frame, t.id, &wire.RejectError{Reason: fmt.Sprintf("%s for %s from %s, but the request went to %s",
				m.Type, t.id, c.label(), t.peerLabel()), Err: ErrWrongPOS})
			// The answer is authentic (it passed the signature check) and
			// may be the POS's own, read on its new connection before its
			// old one said which POS it is: if nothing the kiosk can accept
			// follows, the payment's outcome is not known.
			if t.contested == "" {
				t.contested = fmt.Sprintf("another connection (%s) sent %s for it, refused because the request went to %s",
					c.label(), strings.TrimSpace(m.Type+" "+m.Status), t.peerLabel())
			}
			return
		}
		t.handle(m, raw)
	})
	if over {
		s.notInFlight(c, m, raw)
	}
}

// ErrWrongPOS is the reason an answer from a POS other than the one the
// request went to is refused.
var ErrWrongPOS = errors.New("answer from another POS")

// acceptsFrom reports whether an answer from c is from the POS the request
// went to. The connection's identity counts, not the message alone: the
// pos_id it has claimed (identify keeps a message's pos_id equal to it, and
// no two live connections hold the same one). It accepts the connection the
// request went to, and a new connection of the same pos_id once that one
// has ended (a POS that reconnected). An answer that cannot be tied to the
// POS, such as one without pos_id on another connection, is refused.
func (t *txn) acceptsFrom(c *conn) bool {
	// conn and posID are read by the server under s.mu (busy checks), so
	// they are written holding both t.mu and s.mu.
	set := func(c *conn, posID string) {
		t.s.mu.Lock()
		t.conn, t.posID = c, posID
		t.s.mu.Unlock()
	}
	id := c.identity()
	if c == t.conn {
		if t.posID == "" && id != "" {
			set(c, id)
		}
		return id == "" || id == t.posID
	}
	if t.posID != "" && id == t.posID && t.conn.isGone() {
		set(c, t.posID) // the POS reconnected: further messages go here
		return true
	}
	return false
}

// handle applies one message to the transaction; called with t.mu held.
func (t *txn) handle(m *wire.Message, raw []byte) {
	switch m.Type {
	case "ack":
		if t.cancelReq && cancelConfirmed(m.Status) {
			t.finish(payment.StatusCancelled, &payment.Result{Reason: "cancelled: POS confirmed"}, raw, "")
			return
		}
		switch t.status {
		case payment.StatusSent:
			t.move(payment.StatusAcknowledged, raw, "ack "+m.Status)
			if !t.cancelReq {
				t.arm(t.s.opts.ResultTimeout, "result")
			}
		default:
			t.step(raw, "ack "+m.Status, "")
			if t.status == payment.StatusPlanSelected && !t.cancelReq {
				t.arm(t.s.opts.ResultTimeout, "result")
			}
		}
	case "error":
		msg := m.Message
		if msg == "" {
			msg = m.ErrorMessage
		}
		if msg == "" {
			msg = "POS reported an error"
		}
		if t.cancelReq {
			t.finish(payment.StatusCancelled, &payment.Result{Reason: "cancelled: " + msg}, raw, "")
			return
		}
		t.finish(payment.StatusFailed, &payment.Result{Reason: msg}, raw, "POS error: "+msg)
	case "transaction_result":
		t.result(m, raw)
	}
}

// cancelConfirmed reports whether an ack that arrives after a cancel
// confirms it. The documents say the POS answers a cancel with ack
// "received"; peers written from them also say "cancelled". An ack
// "processing" may be the original request's, so it confirms nothing.
func cancelConfirmed(status string) bool {
	switch strings.ToLower(status) {
	case "received", "cancelled", "canceled":
		return true
	}
	return false
}

func (t *txn) result(m *wire.Message, raw []byte) {
	status := strings.ToLower(m.Status)
	r := &payment.Result{AuthCode: m.AuthCode, Card: payment.MaskCard(m.CardLast4), RemoteID: m.TransactionID, PlanID: m.PlanID}
	mismatch := ""
	if m.Amount != "" {
		minor, err := wire.AmountMinor(m.Amount)
		if err != nil {
			mismatch = fmt.Sprintf("POS reported an unreadable amount %q", m.Amount)
		} else if minor != t.amount.Minor {
			mismatch = fmt.Sprintf("POS reported %s but %s was requested", payment.Money{Minor: minor, Currency: t.amount.Currency}, t.amount)
		}
	}
	switch status {
	case "ipp_plans":
		if t.mode != payment.ModeIPP || (t.status != payment.StatusSent && t.status != payment.StatusAcknowledged) {
			t.step(raw, fmt.Sprintf("ipp_plans ignored: transaction is %s (%s)", t.status, t.mode), "")
			return
		}
		if len(m.Plans) == 0 {
			t.finish(payment.StatusFailed, &payment.Result{Reason: "POS offered no instalment plans"}, raw, "")
			return
		}
		t.plans = m.Plans
		t.move(payment.StatusPlansOffered, raw, fmt.Sprintf("%d plan(s) offered", len(m.Plans)))
		if t.cancelReq {
			return
		}
		t.arm(t.s.opts.ResultTimeout, "plan choice")
	case "success", "approved":
		if mismatch != "" {
			r.Reason = mismatch + ": check the POS, then resolve"
			t.finishFlag(payment.StatusUnknown, r, raw, payment.FlagAmountMismatch, "approved with wrong amount: "+mismatch)
			return
		}
		detail := "approved"
		if t.cancelReq {
			detail = "approved by POS despite the cancel request"
		}
		t.finishFlag(payment.StatusApproved, r, raw, "", detail)
	case "failed", "declined":
		reason := m.ErrorMessage
		if reason == "" {
			reason = m.Message
		}
		if reason == "" {
			reason = "declined by POS"
		}
		r.Reason = reason
		flag := ""
		if mismatch != "" {
			flag = payment.FlagAmountMismatch
		}
		if t.cancelReq {
			t.finishFlag(payment.StatusCancelled, r, raw, flag, "cancelled: "+reason)
			return
		}
		t.finishFlag(payment.StatusDeclined, r, raw, flag, "declined: "+reason)
	default:
		r.Reason = fmt.Sprintf("unexpected result status %q", m.Status)
		t.finish(payment.StatusFailed, r, raw, "")
	}
}

// notInFlight handles an answer for a transaction that is not in flight:
// a late result (after cancel or timeout) is journaled and flagged; a
// result for a transaction left unknown by a crash resolves it; anything
// else is rejected as an unknown id.
func (s *Server) notInFlight(c *conn, m *wire.Message, raw []byte) {
	tx, err := s.bus.Journal().Txn(context.Background(), m.TxnID)
	if err != nil || tx.Rail != payment.RailPOS {
		s.reject(c, raw, "", &wire.RejectError{Reason: fmt.Sprintf("%s for unknown txn_id %q", m.Type, m.TxnID), Err: ErrUnknownTxn})
		return
	}
	// The journal names the POS the request went to (its pos_id, or its
	// address while it had sent none). The answer must come from a
	// connection that is that POS: the pos_id it claimed, or the very
	// connection (its address). The message's own pos_id equals the
	// connection's claim (identify), so one without pos_id on another
	// POS's connection cannot be tied to this payment.
	if !s.tied(c, tx) {
		s.reject(c, raw, tx.ID, &wire.RejectError{Reason: fmt.Sprintf("%s for %s from %s, but the request went to %s",
			m.Type, tx.ID, c.label(), orUnknown(tx.Peer)), Err: ErrWrongPOS})
		return
	}
	if !s.fresh(m, tx) {
		s.reject(c, raw, tx.ID, &wire.RejectError{Reason: fmt.Sprintf("%s %s for %s stamped %s, within %s of this kiosk's start, for a payment of an earlier run: it may be a replay of a message that run accepted, so it is kept here and not applied; check the POS, then resolve",
			m.Type, m.Status, tx.ID, m.Timestamp.Format("15:04:05.000"), s.opts.Window), Err: wire.ErrReplay})
		return
	}
	r := &payment.Result{AuthCode: m.AuthCode, Card: payment.MaskCard(m.CardLast4), RemoteID: m.TransactionID,
		Reason: firstNonEmpty(m.ErrorMessage, m.Message)}
	detail := fmt.Sprintf("late %s %s after the transaction was %s", m.Type, m.Status, tx.Status)
	if tx.Status == payment.StatusUnknown && m.Type == "transaction_result" {
		var st payment.Status
		switch strings.ToLower(m.Status) {
		case "success", "approved":
			st = payment.StatusApproved
		case "failed", "declined":
			st = payment.StatusDeclined
		}
		if st != "" {
			s.log.Warn("late result resolves an unknown transaction", "txn", tx.ID, "status", st)
			s.publish(payment.Event{Kind: payment.KindTransition, TxnID: tx.ID, Status: st, Peer: c.label(), Raw: raw,
				Result: r, Flag: payment.FlagLateResult, Detail: "late result resolves unknown: " + m.Status})
			return
		}
	}
	if m.Type == "ack" {
		s.log.Info("late ack", "txn", tx.ID, "status", m.Status)
		s.publish(payment.Event{Kind: payment.KindStep, TxnID: tx.ID, Peer: c.label(), Raw: raw, Detail: detail})
		return
	}
	s.log.Warn("late result kept for the operator", "txn", tx.ID, "status", m.Status, "was", tx.Status)
	s.publish(payment.Event{Kind: payment.KindLate, TxnID: tx.ID, Peer: c.label(), Raw: raw, Result: r, Detail: detail})
}

// FlagClockSkew marks a payment left unknown because its POS's answer was
// authentic but stamped outside the time window: the POS may have taken
// the money, so the operator checks it there.
const FlagClockSkew = "pos_clock_skew"

// clockWords says how far the POS's clock is from the kiosk's, from a
// message stamped ts and received at now: "POS clock is 1m30s behind this
// kiosk".
func clockWords(ts, now time.Time) string {
	d := ts.Sub(now)
	way := "ahead of"
	if d < 0 {
		way, d = "behind", -d
	}
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(time.Millisecond)
	}
	return fmt.Sprintf("POS clock is %s %s this kiosk", d, way)
}

// staleAnswer handles an authentic message refused only for its
// timestamp. If it is an answer for a payment and comes from the POS that
// payment's request went to, the POS's clock is off, not the message
// forged: the refusal is journaled against the payment with the clock
// difference in words, and a payment still in flight becomes unknown (the
// POS may have taken the money; waiting would only end it as timed_out).
// Anything else is an ordinary refusal.
func (s *Server) staleAnswer(c *conn, frame []byte, re *wire.RejectError) {
	m := re.Stale
	words := clockWords(m.Timestamp, re.Now)
	what := strings.TrimSpace(m.Type + " " + m.Status)
	if m.TxnID != "" && (m.PosID == "" || m.PosID == c.identity() || s.identify(c, m) == nil) {
		if t := s.lookup(m.TxnID); t != nil {
			handled := false
			t.run(func() {
				if !t.done && t.acceptsFrom(c) {
					handled = true
					s.reject(c, frame, t.id, &wire.RejectError{Reason: fmt.Sprintf("%s: its %s for %s refused (%s)", words, what, t.id, re.Reason), Err: re.Err})
					detail := fmt.Sprintf("%s: its signed %s was refused for its timestamp, and the POS may have taken the payment: check it on the POS, then resolve", words, what)
					t.finishFlag(payment.StatusUnknown, &payment.Result{Reason: words}, slices.Clone(frame), FlagClockSkew, detail)
				}
			})
			if handled {
				return
			}
		} else if tx, err := s.bus.Journal().Txn(context.Background(), m.TxnID); err == nil && tx.Rail == payment.RailPOS && s.tied(c, tx) {
			s.reject(c, frame, tx.ID, &wire.RejectError{Reason: fmt.Sprintf("%s: its %s for %s refused (%s)", words, what, tx.ID, re.Reason), Err: re.Err})
			return
		}
	}
	s.reject(c, frame, s.knownTxn(m.TxnID), re)
}

// fresh reports whether m, an answer for tx (not in flight), cannot have
// been accepted by an earlier run of paydesk. Seen nonces live in memory
// only, so a message an earlier run accepted could be replayed after a
// restart while its timestamp is still inside the window. That earlier run
// stopped before this one started, so it accepted only messages stamped
// before started + window: a message stamped later is fresh. So is any
// answer for a payment this run created, since no message about it existed
// before its request. What is left (an answer stamped in the first window
// after the start, for a payment of an earlier run) may be a replay and is
// refused, kept in the payment's history as evidence.
func (s *Server) fresh(m *wire.Message, tx payment.Txn) bool {
	if !m.Timestamp.Before(s.started.Add(s.opts.Window)) {
		return true
	}
	return tx.CreatedAt.UnixMilli() >= s.started.UnixMilli()
}

// tied reports whether c is the POS that tx's request went to, as the
// journal names it: the pos_id c claimed, or c itself (its address).
func (s *Server) tied(c *conn, tx payment.Txn) bool {
	if tx.Peer == "" {
		return false
	}
	id := c.identity()
	return (id != "" && id == tx.Peer) || c.addr == tx.Peer
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown POS"
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
