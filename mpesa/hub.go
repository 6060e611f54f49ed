package mpesa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"paydesk/mpesa/daraja"
	"paydesk/payment"
)

// The hub's paths Daraja posts to when a kiosk's callbacks go through the
// hub (Options.HubURL). Daraja refuses "mpesa" in a callback URL.
const (
	HubPathSTK             = "/v1/daraja/stk/result"
	HubPathC2BValidation   = "/v1/daraja/c2b/validation"
	HubPathC2BConfirmation = "/v1/daraja/c2b/confirmation"
)

// Kinds of callback HubCallback takes.
const (
	HubSTK             = "stk"
	HubC2BConfirmation = "c2b_confirmation"
)

// HubCallback applies a callback the hub received from Daraja for this
// kiosk exactly as one received by the rail's own callback server: the
// same matching, amount checks, flags and duplicates; source is the
// address Daraja posted from and allowed whether the allow-list holds it.
// It returns nil once the callback is journaled (or, for a body that does
// not decode, its rejection), so the hub may forget it; an error means
// nothing was journaled and the hub should deliver it again.
func (r *Rail) HubCallback(ctx context.Context, kind string, body []byte, source string, allowed bool) error {
	ctx, in := context.WithoutCancel(ctx), inbound{body: body, raw: MaskRaw(body), source: source, allowed: allowed}
	var status int
	switch kind {
	case HubSTK:
		status, _ = r.onSTK(ctx, in)
	case HubC2BConfirmation:
		status, _ = r.onConfirmation(ctx, in)
	default:
		return fmt.Errorf("M-Pesa via the hub: unknown callback kind %q", truncate(kind, 40))
	}
	if status >= http.StatusInternalServerError {
		return fmt.Errorf("M-Pesa via the hub: %s callback not journaled", kind)
	}
	return nil
}

// HubAssign applies a payment head office assigned, at the hub, to sale
// txnID of this kiosk: a Daraja callback (kind HubSTK or
// HubC2BConfirmation, body as the hub keeps it) that matched no sale, so
// this kiosk never received it. The rail journals the payment as
// received and unmatched, then assigns it as the operator's AssignTill
// does (the sale paid, the amount compared, the assignment journaled,
// made "by head office (by, at the hub)").
//
// It returns nil once that is journaled, or once it was before (the hub
// delivers again an assignment whose acknowledgement it did not get):
// a receipt this kiosk already holds is not recorded twice. An
// assignment the kiosk cannot apply (the sale unknown here, or paid here
// since the hub last heard) is journaled with the reason, and the
// payment stays in this kiosk's list of unmatched payments for its
// operator. An error means nothing was journaled: deliver it again.
func (r *Rail) HubAssign(ctx context.Context, kind string, body []byte, source string, allowed bool, txnID, by string) error {
	ctx = context.WithoutCancel(ctx)
	in := inbound{body: body, raw: MaskRaw(body), source: source, allowed: allowed}
	tp, what, err := hubPayment(kind, body)
	if err != nil {
		_, jerr := r.publish(payment.Event{Kind: payment.KindRejected, Peer: source, Raw: in.raw, Flag: sourceFlag(in),
			Detail: fmt.Sprintf("head office's assignment of a payment to %s: %v", txnID, err)})
		return jerr
	}
	if tp.Time.IsZero() {
		tp.Time = r.opt.Now()
	}
	by = "head office (" + by + ", at the hub)"
	owner, seen := r.receiptOwner(ctx, tp.ID)
	switch {
	case seen && owner == txnID:
		return nil // applied before
	case seen && owner != "":
		_, err := r.publish(payment.Event{Kind: payment.KindNotice, Flag: FlagDuplicate, Amount: tp.Amount, Result: &payment.Result{RemoteID: tp.ID},
			Detail: fmt.Sprintf("%s assigned payment %s to %s, but it already paid %s here: not recorded twice", by, tp.ID, txnID, owner)})
		return err
	case !seen:
		r.mu.Lock()
		r.putReceipt(tp.ID, "")
		r.mu.Unlock()
		if _, err := r.publish(payment.Event{Kind: payment.KindMessage, Peer: source, Raw: in.raw, Flag: sourceFlag(in),
			Detail: fmt.Sprintf("%s, received by the hub and assigned to %s by %s", what, txnID, by)}); err != nil {
			r.mu.Lock()
			delete(r.receipts, tp.ID)
			r.mu.Unlock()
			return err
		}
		tp.Note = "assigned at the hub"
		if _, err := r.publish(payment.Event{Kind: payment.KindNotice, Flag: FlagUnmatched, Amount: tp.Amount, Raw: in.raw,
			Result: &payment.Result{RemoteID: tp.ID, Reason: tp.Note},
			Detail: fmt.Sprintf("unmatched till payment %s %s ref %q: %s", tp.ID, tp.Amount, tp.Reference, tp.Note)}); err != nil {
			return err
		}
	}
	r.mu.Lock()
	if !slices.ContainsFunc(r.till, func(p tillEntry) bool { return p.ID == tp.ID }) {
		r.till = append(r.till, tillEntry{TillPayment: tp, at: r.opt.Now()})
	}
	r.mu.Unlock()
	if err := r.assignTill(tp.ID, txnID, by); err != nil {
		_, jerr := r.publish(payment.Event{Kind: payment.KindNotice, Flag: FlagUnmatched, Amount: tp.Amount, Result: &payment.Result{RemoteID: tp.ID, Reason: err.Error()},
			Detail: fmt.Sprintf("%s assigned payment %s to %s, which this kiosk cannot apply: %v; the payment stays unmatched here for the operator", by, tp.ID, txnID, err)})
		return jerr
	}
	return nil
}

// hubPayment reads the payment a callback the hub kept carries, as the
// rail lists one it could not match, and says what it was.
func hubPayment(kind string, body []byte) (payment.TillPayment, string, error) {
	switch kind {
	case HubC2BConfirmation:
		p, err := daraja.DecodeC2B(body)
		if err != nil {
			return payment.TillPayment{}, "", err
		}
		return payment.TillPayment{ID: p.TransID, Reference: string(p.BillRefNumber), Payer: payerOf(p),
				Amount: payment.Money{Minor: p.Amount.Minor(), Currency: "KES"}, Time: p.Time},
			fmt.Sprintf("C2B confirmation %s KES %s ref %q from %s", p.TransID, p.Amount.Raw, string(p.BillRefNumber), daraja.MaskPhone(string(p.MSISDN))), nil
	case HubSTK:
		res, err := daraja.DecodeSTKCallback(body)
		if err != nil {
			return payment.TillPayment{}, "", err
		}
		if res.Receipt == "" || res.Amount == nil {
			return payment.TillPayment{}, "", errors.New("an STK result without a receipt and an amount is no payment")
		}
		return payment.TillPayment{ID: res.Receipt, Payer: daraja.MaskPhone(res.Phone), Time: res.Paid,
				Amount: payment.Money{Minor: res.Amount.Minor(), Currency: "KES"}},
			fmt.Sprintf("STK payment %s KES %s for a push this kiosk does not know (%s)", res.Receipt, res.Amount.Raw, res.CheckoutRequestID), nil
	}
	return payment.TillPayment{}, "", fmt.Errorf("unknown callback kind %q", truncate(kind, 40))
}
