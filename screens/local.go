package screens

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"paydesk/payment"
)

// The app's own terminal. PintoAndroid pays DEBIT_CARD and PAY_BY_BANK on
// the terminal it drives itself (Planet/Integra, NNSmart): after the tap
// it sends nothing until CARD_CHECK_RESULT (a card check of up to 60 s,
// or on NNSmart the whole sale, up to 120 s), asks the daily limit with
// it, and reports the outcome with PAYMENT_RESULT, all under the flow's
// transactionId. paydesk journals such a payment on the screen rail, by
// an id derived from the flow's, so a report that comes late, on another
// connection or after a restart still finds it.

// flowTxnID is the journal's id of the payment a display takes on its
// own terminal for flow: DSP and the first 12 hex digits of the flow's
// UUID (48 random bits), so it is found again from the flow's id alone.
// A flow id that is not a UUID (not one paydesk issued) gets a fresh id.
func (s *Server) flowTxnID(flow string) string {
	u, err := uuid.Parse(flow)
	if err != nil {
		return s.localTxnID()
	}
	h := strings.ToUpper(strings.ReplaceAll(u.String(), "-", ""))
	return "DSP" + h[:12]
}

// paysAtDisplay reports whether the method is paid on the display's own
// terminal.
func (m Method) paysAtDisplay() bool { return m.RailName == payment.RailScreen }

// appPaysLocally are the methods the app pays on its own terminal
// whatever paydesk maps them to: it does not even send their tap.
var appPaysLocally = []string{"DEBIT_CARD", "PAY_BY_BANK"}

// localWaitLocked reports whether the customer may now be paying on the
// display's own terminal without a word to the server: a method paid
// there is offered, or the display is the app (it reported its address)
// and one of the methods it pays itself is offered.
func (d *display) localWaitLocked() bool {
	for _, m := range d.s.opts.Methods {
		if m.paysAtDisplay() {
			return true
		}
		if d.app {
			for _, n := range appPaysLocally {
				if m.Name == n {
					return true
				}
			}
		}
	}
	return false
}

// startLocalLocked journals a payment of amt on the display's own
// terminal for the current flow (created, then sent) and makes it the
// display's payment in flight. The daily limit must already be reserved.
func (d *display) startLocalLocked(method string, amt payment.Money, why string) bool {
	id := d.s.flowTxnID(d.flow)
	if _, err := d.txnLocked(id); err == nil {
		id = d.s.localTxnID() // this flow already has a payment (a retry)
	}
	if err := d.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusCreated, Mode: payment.ModeCard,
		Amount: amt, Peer: d.label, Detail: fmt.Sprintf("%s %s on %s's own terminal (flow %s)", method, amt, d.label, d.flow)}); err != nil {
		d.reserved.Store(0)
		return false
	}
	d.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusSent, Peer: d.label, Detail: why})
	d.amount, d.method, d.railTxn, d.inFlight, d.local, d.localFlow, d.checked, d.result, d.pay = amt, method, id, true, true, d.flow, false, nil, nil
	d.localDue = d.s.opts.Now().Add(d.s.opts.LocalTimeout)
	d.s.mu.Lock()
	d.s.byTxn[id] = d
	d.s.mu.Unlock()
	d.s.log.Info("display payment started on its own terminal", "display", d.label, "txn", id, "flow", d.flow, "method", method, "amount", amt.Decimal())
	return true
}

// cardCheckLocked answers CARD_CHECK_RESULT: the app has read a card on
// its own terminal (on NNSmart: taken the whole sale) and asks whether
// selectedAmount fits the daily limit. It is never refused without a
// journaled payment: an approval journals the payment in flight (or finds
// the one the tap started); a refusal journals it declined, with why.
func (d *display) cardCheckLocked(a Action) {
	o := d.s.opts
	amt := payment.Money{Minor: a.Amount * d.s.unit, Currency: o.Currency}
	switch {
	case d.inFlight && d.local && d.localFlow == a.TxnID:
		// The tap started it, or the app asks again.
		if !d.checked && amt != d.amount {
			d.reserved.Store(0)
			ok, remaining, err := d.checkLimitLocked(amt, true)
			if err != nil || !ok {
				d.declineLocalLocked(d.railTxn, fmt.Sprintf("card check of %s: over the daily limit", amt))
				d.limitRefusalLocked(remaining, err)
				return
			}
			d.publishLocked(payment.Event{Kind: payment.KindNotice, TxnID: d.railTxn, Peer: d.label,
				Detail: fmt.Sprintf("the display's card check is for %s, the amount chosen was %s (the app adds its fee)", amt, d.amount)})
			d.amount = amt
		}
	case d.inFlight:
		id := d.s.flowTxnID(a.TxnID)
		d.s.log.Warn("display card check while another payment is in flight", "display", d.label, "txn", d.railTxn, "flow", a.TxnID)
		if id = d.journalLocalLocked(id, a.TxnID, amt); id != "" {
			d.declineLocalLocked(id, "another payment is in progress on this display ("+d.railTxn+")")
		}
		d.replyLocked(TypeLimitCheckResult, ScreenLimitError, Data{"errorMessage": "Please wait for the payment in progress"})
		return
	default:
		if d.flow != a.TxnID {
			// A flow that timed out, or one from before a restart: the
			// customer is paying in it, so it is the display's flow again.
			d.s.log.Info("display card check for an earlier flow: taking it up", "display", d.label, "flow", a.TxnID, "was", d.flow)
			d.adoptFlowLocked(a.TxnID)
		}
		if _, err := d.s.money(a.Amount); err != nil {
			id := d.s.flowTxnID(a.TxnID)
			if id = d.journalLocalLocked(id, a.TxnID, amt); id != "" {
				d.declineLocalLocked(id, "card check: "+err.Error())
			}
			d.replyLocked(TypeLimitCheckResult, ScreenLimitError, Data{"errorMessage": "This amount cannot be paid here"})
			return
		}
		ok, remaining, err := d.checkLimitLocked(amt, true)
		if err != nil || !ok {
			id := d.s.flowTxnID(a.TxnID)
			if id = d.journalLocalLocked(id, a.TxnID, amt); id != "" {
				d.declineLocalLocked(id, "card check: over the daily limit")
			}
			d.limitRefusalLocked(remaining, err)
			return
		}
		if t, err := d.txnLocked(d.s.flowTxnID(a.TxnID)); err == nil && !t.Status.Final() {
			// The flow's payment is journaled already, from before a
			// restart (unknown since): the card check carries it on.
			d.s.log.Info("display card check for a payment journaled before", "display", d.label, "txn", t.ID, "status", t.Status)
			d.amount, d.method, d.railTxn, d.inFlight, d.local, d.localFlow, d.checked, d.result, d.pay = amt, "LOCAL_CARD", t.ID, true, true, a.TxnID, false, nil, nil
			d.s.mu.Lock()
			d.s.byTxn[t.ID] = d
			d.s.mu.Unlock()
		} else if !d.startLocalLocked("LOCAL_CARD", amt, "card checked; the display takes the payment") {
			d.replyLocked(TypeLimitCheckResult, ScreenLimitError, Data{"errorMessage": "Payments are unavailable, please ask staff"})
			return
		}
	}
	if !d.checked {
		d.checked = true
		d.localDue = d.s.opts.Now().Add(o.LocalTimeout)
		d.publishLocked(payment.Event{Kind: payment.KindStep, TxnID: d.railTxn, Peer: d.label, Detail: "card checked: daily limit approved, the display takes the payment"})
	}
	d.s.log.Info("display card check approved", "display", d.label, "txn", d.railTxn, "flow", d.flow, "amount", d.amount.Decimal())
	d.replyLocked(TypeLimitCheckResult, "APPROVED", Data{})
	// The app shows PROCESSING itself; the server's state follows it, and
	// the clock now waits for PAYMENT_RESULT.
	d.screen, d.data = ScreenProcessing, Data{}
	d.gen++
	d.stopTimersLocked()
	d.armLocked()
}

// limitRefusalLocked answers a card check over the daily limit (or one
// the limit cannot be checked for).
func (d *display) limitRefusalLocked(remaining int64, err error) {
	data := Data{"errorMessage": "Daily limit exceeded", "limit": d.s.opts.DailyLimit, "remaining": remaining, "currency": d.s.symbol}
	if err != nil {
		data = Data{"errorMessage": "Payments are unavailable, please ask staff"}
	}
	d.replyLocked(TypeLimitCheckResult, ScreenLimitError, data)
}

// journalLocalLocked journals the creation of a payment the display
// reports on its own terminal that paydesk does not approve, so the
// operator sees it, under id or (when id is taken) a fresh one; it
// returns the id used, "" when the journal refused it.
func (d *display) journalLocalLocked(id, flow string, amt payment.Money) string {
	if _, err := d.txnLocked(id); err == nil {
		id = d.s.localTxnID()
	}
	if d.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusCreated, Mode: payment.ModeCard,
		Amount: amt, Peer: d.label, Detail: fmt.Sprintf("card check of %s on %s's own terminal (flow %s)", amt, d.label, flow)}) != nil {
		return ""
	}
	return id
}

// declineLocalLocked ends a payment on the display's terminal that
// paydesk does not approve; the app reverses what it took.
func (d *display) declineLocalLocked(id, why string) {
	d.s.log.Warn("display card check refused", "display", d.label, "txn", id, "why", why)
	d.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusDeclined, Peer: d.label,
		Result: &payment.Result{Reason: why}, Detail: "refused: " + why})
	if d.railTxn == id {
		d.inFlight, d.local = false, false
		d.reserved.Store(0)
		d.s.mu.Lock()
		delete(d.s.byTxn, id)
		d.s.mu.Unlock()
	}
}

// adoptFlowLocked makes flow (one paydesk issued earlier, or from before
// a restart) the display's flow again.
func (d *display) adoptFlowLocked(flow string) {
	d.flow = flow
	d.s.registerFlow(d, flow)
}

// paymentResultLocked journals the outcome the app reports for a payment
// it took on its own terminal; the bus then shows SUCCESS or FAILED and
// the steps. A report is never refused: one for an earlier flow, or from
// before a restart, is journaled against the payment of its flow (found
// by the flow's id), and one without any is journaled as a new payment,
// unknown, for the operator.
func (d *display) paymentResultLocked(a Action) {
	st, reason := payment.StatusApproved, ""
	if a.Screen == ScreenFailed {
		st, reason = payment.StatusDeclined, a.Reason
		if reason == "" {
			reason = a.Code
		}
		if reason == "" {
			reason = "declined on the display's terminal"
		}
	}
	r := &payment.Result{Reason: reason, RemoteID: a.Details["RequesterTransRefNum"], AuthCode: a.Details["AuthCode"]}
	detail := fmt.Sprintf("the display's terminal: %s %s", a.Details["Result"], reason)
	if d.inFlight && d.local && d.localFlow == a.TxnID {
		d.s.log.Info("display reported its payment", "display", d.label, "txn", d.railTxn, "screen", a.Screen, "code", a.Code, "ref", r.RemoteID)
		d.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: d.railTxn, Status: st, Peer: d.label, Result: r, Detail: detail})
		return
	}
	id := d.s.flowTxnID(a.TxnID)
	t, err := d.txnLocked(id)
	switch {
	case err != nil:
		// No payment of this flow was journaled: the app reports one
		// paydesk never approved. The money may have moved: unknown.
		d.s.log.Warn("display reported a payment paydesk has no record of; journaled unknown for the operator", "display", d.label,
			"flow", a.TxnID, "screen", a.Screen, "code", a.Code, "ref", r.RemoteID)
		amt := payment.Money{Currency: d.s.opts.Currency}
		if a.TxnID == d.flow {
			amt = d.amount
		}
		if id = d.journalLocalLocked(id, a.TxnID, amt); id == "" {
			return
		}
		d.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusUnknown, Peer: d.label, Result: r, Flag: payment.FlagLateResult,
			Detail: fmt.Sprintf("the display reported %s for a payment paydesk did not approve (ref %q, %s %s): check the display's terminal", a.Screen, r.RemoteID, a.Code, a.Reason)})
	case t.Status.Final():
		if t.Status != st {
			d.publishLocked(payment.Event{Kind: payment.KindNotice, TxnID: id, Peer: d.label, Flag: payment.FlagLateResult,
				Detail: fmt.Sprintf("the display now reports %s for this %s payment: check the display's terminal", a.Screen, t.Status)})
		}
		d.s.log.Info("display reported a payment already ended", "display", d.label, "txn", id, "status", t.Status, "screen", a.Screen)
	default:
		// The payment of an earlier flow, or of before a restart (unknown
		// since): its outcome now, shown if the display is free.
		d.s.log.Info("display reported an earlier payment", "display", d.label, "txn", id, "was", t.Status, "screen", a.Screen)
		if !d.inFlight {
			d.adoptFlowLocked(a.TxnID)
			d.amount, d.method, d.railTxn, d.inFlight, d.local, d.localFlow, d.checked, d.result, d.pay = t.Amount, "LOCAL_CARD", id, true, true, a.TxnID, true, nil, nil
			d.localDue = d.s.opts.Now().Add(d.s.opts.LocalTimeout)
			d.s.mu.Lock()
			d.s.byTxn[id] = d
			d.s.mu.Unlock()
		}
		flag := ""
		if t.Status == payment.StatusUnknown {
			flag = payment.FlagLateResult
		}
		d.publishLocked(payment.Event{Kind: payment.KindTransition, TxnID: id, Status: st, Peer: d.label, Result: r, Flag: flag, Detail: detail})
	}
}

// registerFlow records that d issued flow, so a message carrying it finds
// d whatever connection brings it. Each display keeps its last maxFlows.
func (s *Server) registerFlow(d *display, flow string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flows[flow] == d {
		return
	}
	s.flows[flow] = d
	d.flows = append(d.flows, flow)
	if len(d.flows) > maxFlows {
		if s.flows[d.flows[0]] == d {
			delete(s.flows, d.flows[0])
		}
		d.flows = d.flows[1:]
	}
}

// maxFlows is how many of its flows a display is found by.
const maxFlows = 16

// flowOwner is the display that issued flow, if it is still known.
func (s *Server) flowOwner(flow string) *display {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flows[flow]
}

// forgetFlows drops d's flows (its session ended).
func (s *Server) forgetFlows(d *display) {
	for _, f := range d.flows {
		if s.flows[f] == d {
			delete(s.flows, f)
		}
	}
	d.flows = nil
}
