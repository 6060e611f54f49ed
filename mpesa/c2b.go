package mpesa

import (
	"context"
	"fmt"
	"time"

	"paydesk/payment"
)

// DefaultC2BWait is how long a paybill or till sale waits for the
// customer's payment: long enough to open M-Pesa, choose Pay Bill, type
// three numbers and the PIN, short enough that a customer who walked
// away does not hold the display.
const DefaultC2BWait = 5 * time.Minute

// tillSkew is how much earlier than its sale a till payment may be
// stamped and still pay it: Daraja's TransTime has whole seconds and the
// two clocks are not the same clock.
const tillSkew = 2 * time.Minute

// partPaidReason is the reason shown for a sale that ended with only
// part of its amount paid.
const partPaidReason = "only part of the amount was paid: please ask staff for a refund"

// startC2B journals a sale the customer pays from their own phone, by
// paybill with the sale's reference as the account, or by till: no
// phone number, no push. The sale waits Options.C2BWait for a C2B
// confirmation (matched in onConfirmation), then times out; a payment
// after that is still journaled and flagged late.
func (r *Rail) startC2B(req payment.Request) (string, error) {
	if req.Phone != "" {
		return "", r.reject(fmt.Errorf("a paybill or till payment takes no phone number (the customer pays from their own phone)"))
	}
	// The customer types the reference: read it as typed.
	sh, id, err := r.checkSale(req, NormalizeReference(req.Reference))
	if err != nil {
		return "", err
	}
	kind, number := r.c.PayTo()
	now := r.opt.Now()
	s := &sale{id: id, amount: sh, c2b: true, created: now, done: make(chan struct{})}
	if err := r.addSale(s); err != nil {
		return "", err
	}
	where := fmt.Sprintf("%s %s account %s", kind, number, id)
	if kind == "till" {
		where = "till " + number + " (Buy Goods: no account; matched by amount)"
	}
	s.run(func() {
		_, err = r.publishStep(s, payment.Event{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusCreated,
			Mode: payment.ModeC2B, Amount: payment.Money{Minor: sh * 100, Currency: "KES"},
			Detail: fmt.Sprintf("%s payment of KES %d to %s", kind, sh, where)})
		if err == nil {
			s.status = payment.StatusCreated
			s.deadline = now.Add(r.opt.C2BWait)
			if !r.transition(s, payment.StatusSent, fmt.Sprintf("waiting for a %s payment to %s, KES %d, until %s", kind, where, sh,
				s.deadline.Format("15:04:05")), nil, "") {
				err = fmt.Errorf("the wait was not journaled")
			}
		}
	})
	if err != nil {
		r.dropSale(id)
		return "", fmt.Errorf("M-Pesa payment: %w", err)
	}
	r.log.Info("M-Pesa paybill/till sale waiting", "txn", id, "type", kind, "number", number, "shillings", sh, "wait", r.opt.C2BWait.String())
	r.goWork(func(ctx context.Context) { r.waitC2B(ctx, s) })
	return id, nil
}

// waitC2B times out a paybill or till sale that was not paid in full
// within Options.C2BWait.
func (r *Rail) waitC2B(ctx context.Context, s *sale) {
	if !r.sleep(ctx, s.done, r.opt.C2BWait) {
		return
	}
	s.run(func() { r.timeOutC2B(s) })
}

// timeOutC2B is waitC2B's step.
func (r *Rail) timeOutC2B(s *sale) {
	if s.status.Final() {
		return
	}
	detail := fmt.Sprintf("no M-Pesa payment with reference %s within %s: a later payment is still recorded and flagged late", s.id, r.opt.C2BWait)
	reason := "no M-Pesa payment received in time"
	if s.paid > 0 {
		detail = fmt.Sprintf("only KES %s of %d paid within %s: refund KES %s due", payment.FormatMinor(s.paid), s.amount, r.opt.C2BWait,
			payment.FormatMinor(s.paid))
		reason = partPaidReason
	}
	r.transition(s, payment.StatusTimedOut, detail, &payment.Result{Reason: reason}, "")
}

// Instructions are what the customer needs to pay sale id from their own
// phone: the paybill and the sale's reference as the account, or the
// till number; the amount; until when the sale waits.
func (r *Rail) Instructions(id string) (payment.PayInstructions, bool) {
	s := r.lookup(id)
	if s == nil || !s.c2b {
		return payment.PayInstructions{}, false
	}
	kind, number := r.c.PayTo()
	in := payment.PayInstructions{Kind: kind, Number: number, Amount: payment.Money{Minor: s.amount * 100, Currency: "KES"}}
	if kind == "paybill" {
		in.Account = s.id
	}
	s.mu.Lock()
	in.Until = s.deadline
	s.mu.Unlock()
	return in, true
}

// matchTill finds the open paybill/till sale a payment without an
// account reference pays (Buy Goods has none; a paybill customer may
// leave it empty): the one open sale of exactly that amount that
// existed when it was paid. Two or more such sales are ambiguous, and a
// different amount names no sale: both are left to the operator rather
// than guessed. It returns the sale and, when there is none, why. Call
// with r.mu held.
func (r *Rail) matchTill(minor int64, paid time.Time) (*sale, string) {
	var found *sale
	n := 0
	for _, s := range r.sales {
		if !s.c2b || s.ended.Load() || s.amount*100 != minor {
			continue
		}
		if !paid.IsZero() && paid.Before(s.created.Add(-tillSkew)) {
			continue
		}
		found = s
		n++
	}
	switch n {
	case 0:
		return nil, ""
	case 1:
		return found, ""
	}
	return nil, fmt.Sprintf("%d open sales wait for this amount, so it cannot be told which one it pays", n)
}

var _ payment.Instructor = (*Rail)(nil)
