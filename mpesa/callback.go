package mpesa

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"paydesk/mpesa/daraja"
	"paydesk/payment"
)

// Answers Daraja expects.
var (
	answerSTK       = []byte(`{"ResultCode":0,"ResultDesc":"Accepted"}`)
	answerAccept    = []byte(`{"ResultCode":"0","ResultDesc":"Accepted"}`)
	answerReject    = []byte(`{"ResultCode":"C2B00012","ResultDesc":"Rejected"}`)
	answerConfirmed = []byte(`{"ResultCode":0,"ResultDesc":"Success"}`)
)

// Handler is the callback server: the STK result, C2B validation and C2B
// confirmation, each on a path under the rail's secret segment. Anything
// else is 404. Every body is journaled before it is answered.
func (r *Rail) Handler() http.Handler {
	mux := http.NewServeMux()
	base := "/" + r.secret
	mux.HandleFunc("POST "+base+"/stk/result", func(w http.ResponseWriter, q *http.Request) { r.serve(w, q, r.onSTK) })
	mux.HandleFunc("POST "+base+"/c2b/validation", func(w http.ResponseWriter, q *http.Request) { r.serve(w, q, r.onValidation) })
	mux.HandleFunc("POST "+base+"/c2b/confirmation", func(w http.ResponseWriter, q *http.Request) { r.serve(w, q, r.onConfirmation) })
	mux.HandleFunc("/", r.unknownPath)
	return mux
}

// unknownPath answers 404 to a request on no callback path, and logs it
// at a bounded rate, without the path's first segment (a path secret,
// perhaps an old one): a callback for a URL given before the secret
// changed leaves a trace.
func (r *Rail) unknownPath(w http.ResponseWriter, q *http.Request) {
	src, _ := r.source(q)
	seg, rest, _ := strings.Cut(strings.TrimPrefix(q.URL.Path, "/"), "/")
	which := "another secret"
	switch {
	case seg == r.secret:
		which = "this secret"
	case rest == "" && seg != "":
		which = "no secret"
		rest, seg = seg, ""
	}
	path := "/…/" + truncate(rest, 40)
	if seg == "" && rest == "" {
		path = "/"
	}
	if n, ok := r.unknownLimit.allow(r.opt.Now()); ok {
		r.log.Warn("M-Pesa callback server: request on an unknown path", "method", q.Method, "path", path,
			"path_secret", which, "source", src, "not_logged_before", n)
	}
	http.NotFound(w, q)
}

// inbound is one callback as received: body to decode, raw (the body
// with phone numbers masked) to journal. Its handler is given, beside it,
// the context to read the journal with (the request's, not cancelled when
// Daraja hangs up: what was received is still journaled).
type inbound struct {
	body, raw []byte
	source    string
	allowed   bool
}

// serve reads the capped body, checks the source, and hands it to h,
// which journals it and returns the answer.
func (r *Rail) serve(w http.ResponseWriter, q *http.Request, h func(context.Context, inbound) (int, []byte)) {
	src, allowed := r.source(q)
	body, err := io.ReadAll(http.MaxBytesReader(w, q.Body, r.opt.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		status := http.StatusBadRequest
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		r.publish(payment.Event{Kind: payment.KindRejected, Peer: src, Raw: MaskRaw(body),
			Detail: fmt.Sprintf("callback on %s refused: %s", pathKind(q.URL.Path), shortErr(err))})
		http.Error(w, http.StatusText(status), status)
		return
	}
	if !allowed && r.opt.EnforceAllowList {
		r.publish(payment.Event{Kind: payment.KindRejected, Peer: src, Raw: MaskRaw(body), Flag: FlagSourceNotAllowed,
			Detail: fmt.Sprintf("callback on %s from %s refused: not on the allow-list", pathKind(q.URL.Path), src)})
		r.log.Warn("callback from outside the allow-list refused", "source", src)
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return
	}
	if !allowed {
		r.log.Warn("callback from outside the allow-list (flagged)", "source", src)
	}
	status, answer := h(context.WithoutCancel(q.Context()), inbound{body: body, raw: MaskRaw(body), source: src, allowed: allowed})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(answer)
}

func pathKind(p string) string {
	switch {
	case strings.HasSuffix(p, "/stk/result"):
		return "STK result"
	case strings.HasSuffix(p, "/c2b/validation"):
		return "C2B validation"
	}
	return "C2B confirmation"
}

// source is where a callback came from: the peer address, or, when the
// peer is a trusted proxy, the right-most untrusted X-Forwarded-For
// address; and whether the allow-list holds it.
func (r *Rail) source(q *http.Request) (string, bool) {
	return CallbackSource(q, r.opt.AllowList, r.opt.TrustedProxies)
}

// CallbackSource is where a callback came from: the peer address, or,
// when the peer is one of trusted (proxies), the right-most untrusted
// X-Forwarded-For address; and whether allow holds it.
func CallbackSource(q *http.Request, allow, trusted []netip.Prefix) (string, bool) {
	host, _, err := net.SplitHostPort(q.RemoteAddr)
	if err != nil {
		host = q.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host, false
	}
	addr = addr.Unmap()
	if contains(trusted, addr) {
		hops := strings.Split(strings.Join(q.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				return strings.TrimSpace(hops[i]), false
			}
			addr = a.Unmap()
			if !contains(trusted, addr) {
				break
			}
		}
	}
	return addr.String(), contains(allow, addr)
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

func sourceFlag(in inbound) string {
	if in.allowed {
		return ""
	}
	return FlagSourceNotAllowed
}

// onSTK journals an STK callback, then applies it.
func (r *Rail) onSTK(ctx context.Context, in inbound) (int, []byte) {
	res, err := daraja.DecodeSTKCallback(in.body)
	if err != nil {
		r.publish(payment.Event{Kind: payment.KindRejected, Peer: in.source, Raw: in.raw, Flag: sourceFlag(in), Detail: err.Error()})
		return http.StatusBadRequest, []byte(`{"ResultCode":1,"ResultDesc":"Rejected: malformed body"}`)
	}
	r.mu.Lock()
	s := r.byCheckout[res.CheckoutRequestID]
	if s == nil && res.Success() {
		s = r.matchLost(res)
	}
	r.mu.Unlock()
	if s == nil {
		// A sale this process does not hold: one that finished before a
		// restart, or was forgotten, is in the journal.
		s = r.recall(ctx, res.CheckoutRequestID, res.Receipt)
	}
	r.mu.Lock()
	if s == nil {
		s = r.byCheckout[res.CheckoutRequestID] // its push answered meanwhile
	}
	kept := false
	// A paid one also waits in an orphan goroutine: at most MaxEarly.
	if s == nil && (!res.Success() || r.orphans < r.opt.MaxEarly) {
		kept = r.keepEarly(res, sourceFlag(in))
		if kept && res.Success() {
			r.orphans++
		}
	}
	r.mu.Unlock()
	r.sweep()
	if s != nil && in.allowed {
		// One journal write: the body rides on the outcome's event.
		if !r.resolveRaw(s, res, "callback", in.raw, in.source, "") {
			return http.StatusInternalServerError, []byte(`{"ResultCode":1,"ResultDesc":"Try again"}`)
		}
		return http.StatusOK, answerSTK
	}
	ev := payment.Event{Kind: payment.KindMessage, Peer: in.source, Raw: in.raw, Flag: sourceFlag(in),
		Detail: fmt.Sprintf("STK callback %s: ResultCode %s %s", res.CheckoutRequestID, res.Code, res.Desc)}
	switch {
	case s != nil:
		ev.TxnID = s.id
	case kept:
		ev.Detail += " (push not known yet: kept until it is)"
	default:
		ev.Detail += " (push not known yet; not kept, too many such callbacks wait already: if it paid, assign the receipt by hand)"
	}
	if _, err := r.publish(ev); err != nil {
		return http.StatusInternalServerError, []byte(`{"ResultCode":1,"ResultDesc":"Try again"}`)
	}
	if s != nil {
		r.resolveRaw(s, res, "callback", nil, "", sourceFlag(in))
	} else if kept && res.Success() {
		r.goWork(func(ctx context.Context) {
			r.orphan(ctx, res, in.raw)
			r.mu.Lock()
			r.orphans--
			r.mu.Unlock()
		})
	}
	return http.StatusOK, answerSTK
}

// orphan lists a paid STK callback whose push never became known (after
// Options.EarlyGrace) as an unmatched till payment: money was received,
// and the operator decides which sale it pays.
func (r *Rail) orphan(ctx context.Context, res daraja.STKResult, raw []byte) {
	if !r.sleep(ctx, nil, r.opt.EarlyGrace) {
		return
	}
	_, seenBefore := r.receiptOwner(ctx, res.Receipt)
	r.mu.Lock()
	known := r.byCheckout[res.CheckoutRequestID] != nil // its push was answered
	_, seen := r.receipts[res.Receipt]
	if known || seen || seenBefore {
		r.mu.Unlock()
		return
	}
	delete(r.early, res.CheckoutRequestID)
	r.putReceipt(res.Receipt, "")
	r.mu.Unlock()
	tp := payment.TillPayment{ID: res.Receipt, Payer: daraja.MaskPhone(res.Phone), Time: res.Paid,
		Note: "STK payment for a push this kiosk does not know (" + res.CheckoutRequestID + ")"}
	if res.Amount != nil {
		tp.Amount = payment.Money{Minor: res.Amount.Minor(), Currency: "KES"}
	}
	if tp.Time.IsZero() {
		tp.Time = r.opt.Now()
	}
	r.unmatched(tp, raw)
}

// matchLost finds the payment whose push answer was lost that a success
// callback belongs to: same phone, same amount. Called with r.mu held.
func (r *Rail) matchLost(res daraja.STKResult) *sale {
	if res.Phone == "" || res.Amount == nil {
		return nil
	}
	var found *sale
	for _, s := range r.sales {
		if s.lost && s.checkout == "" && s.phone == res.Phone && s.amount*100 == res.Amount.Minor() {
			if found != nil {
				return nil // ambiguous: leave it to the operator
			}
			found = s
		}
	}
	if found != nil {
		found.checkout = res.CheckoutRequestID
		r.byCheckout[res.CheckoutRequestID] = found
	}
	return found
}

// onValidation accepts a C2B payment unless its reference names a sale
// that is already paid or closed.
func (r *Rail) onValidation(_ context.Context, in inbound) (int, []byte) {
	p, err := daraja.DecodeC2B(in.body)
	if err != nil {
		r.publish(payment.Event{Kind: payment.KindRejected, Peer: in.source, Raw: in.raw, Flag: sourceFlag(in), Detail: "C2B validation: " + err.Error()})
		return http.StatusOK, answerAccept // money has not moved; let Daraja's default apply to what we cannot read
	}
	answer, verdict := answerAccept, "accepted"
	ref := NormalizeReference(string(p.BillRefNumber))
	s := r.lookup(ref)
	txn := ""
	if s != nil {
		txn = s.id
		s.mu.Lock()
		closed := s.status.Final()
		s.mu.Unlock()
		if closed {
			answer, verdict = answerReject, "rejected: sale "+s.id+" is already closed"
		}
	}
	if _, err := r.publish(payment.Event{Kind: payment.KindMessage, TxnID: txn, Peer: in.source, Raw: in.raw, Flag: sourceFlag(in),
		Detail: fmt.Sprintf("C2B validation %s KES %s ref %q: %s", p.TransID, p.Amount.Raw, string(p.BillRefNumber), verdict)}); err != nil {
		return http.StatusInternalServerError, answerAccept
	}
	return http.StatusOK, answer
}

// onConfirmation journals a C2B payment and matches it: by receipt
// (duplicates), then by bill reference to an open sale, comparing the
// amount. What matches nothing is kept for the operator.
func (r *Rail) onConfirmation(ctx context.Context, in inbound) (int, []byte) {
	p, err := daraja.DecodeC2B(in.body)
	if err != nil {
		r.publish(payment.Event{Kind: payment.KindRejected, Peer: in.source, Raw: in.raw, Flag: sourceFlag(in),
			Detail: "C2B confirmation (money has moved; check the statement): " + err.Error()})
		return http.StatusOK, answerConfirmed // never refuse a confirmation
	}
	ref := NormalizeReference(string(p.BillRefNumber))
	noRef := p.BillRefNumber == "" // Flex is trimmed as decoded
	if !noRef && r.lookup(ref) == nil {
		r.recallSale(ctx, ref) // a finished sale no longer held
	}
	before, seenBefore := r.receiptOwner(ctx, p.TransID)
	r.sweep()
	r.mu.Lock()
	rec, seen := r.receipts[p.TransID]
	owner := rec.txn
	if !seen && seenBefore {
		seen, owner = true, before
	}
	if !seen {
		r.putReceipt(p.TransID, "")
	}
	s := r.sales[ref]
	tillWhy := ""
	if s == nil && !seen && noRef {
		// Buy Goods carries no account: match by amount, only when
		// unambiguous.
		s, tillWhy = r.matchTill(p.Amount.Minor(), p.Time)
	}
	r.mu.Unlock()
	detail := fmt.Sprintf("C2B confirmation %s KES %s ref %q from %s", p.TransID, p.Amount.Raw, string(p.BillRefNumber), daraja.MaskPhone(string(p.MSISDN)))
	if seen {
		if _, err := r.publish(payment.Event{Kind: payment.KindMessage, TxnID: owner, Peer: in.source, Raw: in.raw,
			Flag: FlagDuplicate, Detail: "duplicate " + detail + ": receipt already recorded"}); err != nil {
			return http.StatusInternalServerError, answerConfirmed
		}
		return http.StatusOK, answerConfirmed
	}
	ev := payment.Event{Kind: payment.KindMessage, Peer: in.source, Raw: in.raw, Flag: sourceFlag(in), Detail: detail}
	if s != nil {
		ev.TxnID = s.id
	}
	if _, err := r.publish(ev); err != nil {
		r.mu.Lock()
		delete(r.receipts, p.TransID)
		r.mu.Unlock()
		return http.StatusInternalServerError, answerConfirmed
	}
	tp := payment.TillPayment{ID: p.TransID, Reference: string(p.BillRefNumber), Payer: payerOf(p),
		Amount: payment.Money{Minor: p.Amount.Minor(), Currency: "KES"}, Time: p.Time}
	if tp.Time.IsZero() {
		tp.Time = r.opt.Now()
	}
	if s == nil {
		tp.Note = "no sale with this reference"
		if noRef {
			tp.Note = "till payment without a reference"
			if tillWhy != "" {
				tp.Note += "; " + tillWhy
			}
		} else if near := r.nearMisses(ref); len(near) > 0 {
			tp.Note += "; did the customer mean " + strings.Join(near, " or ") + "?"
		}
		r.unmatched(tp, in.raw)
		return http.StatusOK, answerConfirmed
	}
	r.applyC2B(s, p, tp, in.raw, sourceFlag(in))
	return http.StatusOK, answerConfirmed
}

// nearMisses lists the open sales whose reference is one typing slip
// from ref (one character wrong, two swapped, one missing or one extra),
// for the operator to check; at most three.
func (r *Rail) nearMisses(ref string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, s := range r.sales {
		if len(out) == 3 {
			break
		}
		if oneSlip(ref, id) && !s.ended.Load() {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// oneSlip reports whether a and b differ by one substitution, one
// transposition of neighbours, or one insertion or deletion.
func oneSlip(a, b string) bool {
	if a == b {
		return false
	}
	switch len(a) - len(b) {
	case 0:
		var diff []int
		for i := range len(a) {
			if a[i] != b[i] {
				diff = append(diff, i)
			}
		}
		return len(diff) == 1 || (len(diff) == 2 && diff[1] == diff[0]+1 && a[diff[0]] == b[diff[1]] && a[diff[1]] == b[diff[0]])
	case 1:
		a, b = b, a
		fallthrough
	case -1:
		for i := range len(a) {
			if a[i] != b[i] {
				return a[i:] == b[i+1:]
			}
		}
		return true
	}
	return false
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func payerOf(p daraja.C2BPayment) string {
	m := daraja.MaskPhone(string(p.MSISDN))
	if p.FirstName != "" {
		if m != "" {
			return p.FirstName + " " + m
		}
		return p.FirstName
	}
	return m
}

// unmatched keeps a C2B payment for the operator.
func (r *Rail) unmatched(tp payment.TillPayment, raw []byte) {
	r.publish(payment.Event{Kind: payment.KindNotice, Flag: FlagUnmatched, Amount: tp.Amount, Raw: raw,
		Result: &payment.Result{RemoteID: tp.ID, Reason: tp.Note},
		Detail: fmt.Sprintf("unmatched till payment %s %s ref %q: %s; assign it to a sale", tp.ID, tp.Amount, tp.Reference, tp.Note)})
	r.mu.Lock()
	r.till = append(r.till, tillEntry{TillPayment: tp, at: r.opt.Now()})
	r.mu.Unlock()
}

// applyC2B pays sale s with a C2B payment: the sale completes when what
// was paid reaches what it asked; less stays open with the shortfall
// shown, more completes with a refund flagged.
// A payment from outside the allow-list is flagged (flag) on the sale's
// outcome.
func (r *Rail) applyC2B(s *sale, p daraja.C2BPayment, tp payment.TillPayment, raw []byte, flag string) {
	var ended payment.Status
	s.run(func() {
		if s.status.Final() {
			ended = s.status
			if ended != payment.StatusApproved {
				// Money for a sale that stopped waiting: journaled on
				// the sale like any late result, and listed for the
				// operator to complete the sale or refund.
				r.note(s, payment.KindLate, fmt.Sprintf("paid after the console stopped waiting (%s, by till/paybill): receipt %s KES %s; refund due or complete the sale",
					ended, p.TransID, p.Amount.Raw), FlagLateSuccess, &payment.Result{RemoteID: p.TransID})
			}
			return
		}
		r.mu.Lock()
		r.putReceipt(p.TransID, s.id)
		r.mu.Unlock()
		if p.Amount.Fractional() {
			s.fraction = true
			r.note(s, payment.KindStep, "C2B amount "+p.Amount.Raw+" has a fraction of a shilling", FlagFractional, nil)
		}
		tp.TxnID = s.id
		tp.Note = r.credit(s, p.Amount.Minor(), p.TransID, "till payment "+p.TransID,
			"paid by till/paybill: M-Pesa receipt "+p.TransID, flag)
	})
	if ended != "" {
		tp.Note = fmt.Sprintf("sale %s is already %s", s.id, ended)
		r.unmatched(tp, raw)
		return
	}
	r.mu.Lock()
	r.till = append(r.till, tillEntry{TillPayment: tp, at: r.opt.Now()})
	r.mu.Unlock()
}

// credit adds minor units, paid by till payment receipt (named what in
// the journal), to open sale s; call from a step of s. Short of the amount
// asked, the sale stays open with the shortfall noted; reaching it, the
// sale is approved with the receipt (detail and flag on that
// transition); over it, the excess is flagged for a refund. It returns
// the note for the till list.
func (r *Rail) credit(s *sale, minor int64, receipt, what, detail, flag string) string {
	s.paid += minor
	due := s.amount * 100
	if s.paid < due {
		r.note(s, payment.KindStep, fmt.Sprintf("%s: paid KES %s of %d, KES %s short; the sale stays open", what,
			payment.FormatMinor(s.paid), s.amount, payment.FormatMinor(due-s.paid)), FlagUnderpaid, nil)
		return fmt.Sprintf("underpaid: KES %s of %d, %s short", payment.FormatMinor(s.paid), s.amount, payment.FormatMinor(due-s.paid))
	}
	s.receipt = receipt
	res := &payment.Result{RemoteID: receipt}
	if s.paid != due {
		res.Paid = &payment.Money{Minor: s.paid, Currency: "KES"}
		res.Flags = append(res.Flags, FlagOverpaid)
	}
	if s.fraction {
		res.Flags = append(res.Flags, FlagFractional)
	}
	if flag != "" && flag != payment.FlagResolved {
		res.Flags = append(res.Flags, flag)
	}
	if !r.transition(s, payment.StatusApproved, detail, res, flag) || s.paid == due {
		return "paid"
	}
	r.note(s, payment.KindStep, fmt.Sprintf("overpaid: KES %s for KES %d, refund KES %s due", payment.FormatMinor(s.paid), s.amount,
		payment.FormatMinor(s.paid-due)), FlagOverpaid, nil)
	return fmt.Sprintf("overpaid by KES %s: refund due", payment.FormatMinor(s.paid-due))
}

// TillPayments returns the C2B payments received since start, newest
// first.
func (r *Rail) TillPayments() []payment.TillPayment {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]payment.TillPayment, len(r.till))
	for i, p := range r.till {
		out[len(r.till)-1-i] = p.TillPayment
	}
	return out
}

// AssignTill assigns an unmatched till payment to sale txnID. An open
// sale is paid by it (the amount compared as for a matched payment); a
// sale that already ended keeps its status and records the assignment.
func (r *Rail) AssignTill(id, txnID string) error { return r.assignTill(id, txnID, "the operator") }

// assignTill is AssignTill, the assignment made by by ("the operator",
// or head office at the hub), as the journal says.
func (r *Rail) assignTill(id, txnID, by string) error {
	r.mu.Lock()
	i := slices.IndexFunc(r.till, func(p tillEntry) bool { return p.ID == id })
	if i < 0 {
		r.mu.Unlock()
		return fmt.Errorf("till payment %s: %w", id, payment.ErrNotFound)
	}
	tp := r.till[i].TillPayment
	s := r.sales[txnID]
	r.mu.Unlock()
	if s == nil {
		s = r.recallSale(context.Background(), txnID) // a finished sale no longer held
	}
	if !tp.Unmatched() {
		return fmt.Errorf("till payment %s is already assigned to %s", id, tp.TxnID)
	}
	if s == nil {
		return fmt.Errorf("sale %s: not an M-Pesa sale of this session: %w", txnID, payment.ErrNotFound)
	}
	var paidBy string
	paid := false
	s.run(func() {
		if s.status == payment.StatusApproved {
			paid, paidBy = true, s.receipt
			return
		}
		if s.status.Final() {
			r.note(s, payment.KindStep, fmt.Sprintf("till payment %s (%s) assigned by %s after the sale was %s", id, tp.Amount, by, s.status),
				payment.FlagResolved, &payment.Result{RemoteID: id})
		} else {
			r.credit(s, tp.Amount.Minor, id, "till payment "+id+" assigned by "+by,
				fmt.Sprintf("paid by till payment %s, assigned by %s", id, by), payment.FlagResolved)
		}
	})
	if paid {
		return fmt.Errorf("sale %s is already paid (receipt %s): this payment is a refund to make, not a payment of it", txnID, orDash(paidBy))
	}
	r.publish(payment.Event{Kind: payment.KindNotice, Flag: FlagAssigned, Amount: tp.Amount,
		Result: &payment.Result{RemoteID: id}, Detail: fmt.Sprintf("till payment %s assigned to %s by %s", id, txnID, by)})
	r.mu.Lock()
	defer r.mu.Unlock()
	for j := range r.till {
		if r.till[j].ID == id {
			r.till[j].TxnID, r.till[j].Note = txnID, "assigned by "+by
		}
	}
	r.putReceipt(id, txnID)
	return nil
}

// TillMemory is how far back Recover looks for till payments left
// unmatched by an earlier run.
const TillMemory = 7 * 24 * time.Hour

// recoverTill lists again the till payments an earlier run left
// unmatched (and not assigned since), from the journal.
func (r *Rail) recoverTill(ctx context.Context, j *payment.Journal) error {
	since := r.opt.Now().Add(-TillMemory)
	left, err := j.Flagged(ctx, payment.RailMPesa, FlagUnmatched, since)
	if err != nil {
		return err
	}
	assigned, err := j.Flagged(ctx, payment.RailMPesa, FlagAssigned, since)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, e := range assigned {
		if e.Result != nil {
			done[e.Result.RemoteID] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range left {
		if e.Kind != payment.KindNotice || e.Result == nil || done[e.Result.RemoteID] {
			continue
		}
		tp := payment.TillPayment{ID: e.Result.RemoteID, Amount: e.Amount, Time: e.Time, Note: e.Result.Reason + " (before restart)"}
		if p, err := daraja.DecodeC2B(e.Raw); err == nil && p.TransID == tp.ID {
			tp.Reference, tp.Payer, tp.Time = string(p.BillRefNumber), payerOf(p), p.Time
		} else if res, err := daraja.DecodeSTKCallback(e.Raw); err == nil && res.Receipt == tp.ID {
			tp.Payer, tp.Time = daraja.MaskPhone(res.Phone), res.Paid
		} else {
			continue
		}
		if tp.Time.IsZero() {
			tp.Time = e.Time
		}
		r.till = append(r.till, tillEntry{TillPayment: tp, at: e.Time}) // kept TillMemory from when it came
		r.putReceipt(tp.ID, "")
	}
	return nil
}

// Recover takes over the M-Pesa payments an earlier run left unknown:
// each with a CheckoutRequestID is queried (and a late callback resolves
// it too); one whose push was never answered waits for a callback, a
// receipt or the operator. Receipts already journaled are remembered, so
// a duplicate after a restart is still recognised.
func (r *Rail) Recover(ctx context.Context, j *payment.Journal) error {
	recent, err := j.Recent(ctx, 5000)
	if err != nil {
		return fmt.Errorf("M-Pesa recovery: %w", err)
	}
	unresolved, err := j.Unresolved(ctx)
	if err != nil {
		return fmt.Errorf("M-Pesa recovery: %w", err)
	}
	// The sales that finished within the retention window are held
	// again, with their CheckoutRequestIDs and receipts, so a callback
	// or a confirmation that arrives after the restart finds its sale.
	since := r.opt.Now().Add(-r.opt.Retention)
	for _, t := range recent {
		if t.Rail == payment.RailMPesa && t.Status.Final() && !t.UpdatedAt.Before(since) {
			r.recallSale(ctx, t.ID)
		}
	}
	r.mu.Lock()
	var queried []*sale
	for _, t := range unresolved {
		if t.Rail != payment.RailMPesa || r.sales[t.ID] != nil {
			continue
		}
		s := &sale{id: t.ID, amount: t.Amount.Minor / 100, status: payment.StatusUnknown, done: make(chan struct{}),
			c2b: t.Mode == payment.ModeC2B, created: t.CreatedAt}
		r.sales[t.ID] = s
		switch id := t.Result.RemoteID; {
		case s.c2b:
			// No push: a C2B confirmation (by reference, or by amount
			// for a till) or the operator settles it.
		case id != "":
			s.checkout = id
			r.byCheckout[id] = s
			queried = append(queried, s)
		default:
			s.lost = true
		}
	}
	r.mu.Unlock()
	if err := r.recoverTill(ctx, j); err != nil {
		return fmt.Errorf("M-Pesa recovery: %w", err)
	}
	for _, s := range queried {
		r.log.Info("M-Pesa payment left unknown: querying", "txn", s.id, "checkout", r.checkoutOf(s))
		r.goWork(func(ctx context.Context) { r.waitResult(ctx, s, 0, false) })
	}
	return nil
}

// recall finds in the journal the M-Pesa sale one of ids (a
// CheckoutRequestID, a receipt) belongs to, when this process does not
// hold it (it finished before a restart, or was forgotten), and holds it
// again as it ended. It returns nil when the journal knows none.
func (r *Rail) recall(ctx context.Context, ids ...string) *sale {
	for _, id := range ids {
		if id == "" {
			continue
		}
		evs, err := r.bus.Journal().ByRemoteID(ctx, payment.RailMPesa, id)
		if err != nil {
			r.log.Warn("M-Pesa: journal lookup failed", "id", id, "err", err)
			return nil
		}
		for _, e := range evs {
			if e.TxnID != "" {
				return r.recallSale(ctx, e.TxnID)
			}
		}
	}
	return nil
}

// receiptOwner reports whether receipt was recorded, in memory or in the
// journal, and the sale it paid ("" when unmatched).
func (r *Rail) receiptOwner(ctx context.Context, receipt string) (string, bool) {
	if receipt == "" {
		return "", false
	}
	r.mu.Lock()
	rec, ok := r.receipts[receipt]
	r.mu.Unlock()
	if ok {
		return rec.txn, true
	}
	evs, err := r.bus.Journal().ByRemoteID(ctx, payment.RailMPesa, receipt)
	if err != nil || len(evs) == 0 {
		return "", false
	}
	for _, e := range evs {
		if e.TxnID != "" {
			return e.TxnID, true
		}
	}
	return "", true
}

// recallSale holds finished sale id again from the journal (see recall);
// a sale already held is returned as it is, and nil when id is no
// finished M-Pesa sale.
func (r *Rail) recallSale(ctx context.Context, id string) *sale {
	if s := r.lookup(id); s != nil {
		return s
	}
	j := r.bus.Journal()
	t, err := j.Txn(ctx, id)
	if err != nil || t.Rail != payment.RailMPesa || !t.Status.Final() {
		return nil
	}
	evs, err := j.History(ctx, id)
	if err != nil {
		r.log.Warn("M-Pesa: journal lookup failed", "txn", id, "err", err)
		return nil
	}
	s := &sale{id: t.ID, amount: t.Amount.Minor / 100, status: t.Status, c2b: t.Mode == payment.ModeC2B,
		created: t.CreatedAt, done: make(chan struct{})}
	close(s.done)
	s.ended.Store(true)
	var receipts []string
	for _, e := range evs {
		if e.Result == nil || e.Result.RemoteID == "" {
			continue
		}
		switch {
		case e.Kind == payment.KindTransition && e.Status == payment.StatusAcknowledged:
			s.checkout = e.Result.RemoteID
		case e.Status == payment.StatusApproved && s.receipt == "" && (e.Kind == payment.KindTransition || e.Kind == payment.KindStep):
			s.receipt = e.Result.RemoteID
			receipts = append(receipts, e.Result.RemoteID)
		case e.Kind == payment.KindLate:
			receipts = append(receipts, e.Result.RemoteID) // money after the end, already reported
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.sales[id]; cur != nil {
		return cur
	}
	r.sales[id] = s
	if s.checkout != "" && r.byCheckout[s.checkout] == nil {
		r.byCheckout[s.checkout] = s
	}
	for _, rc := range receipts {
		if _, ok := r.receipts[rc]; !ok {
			r.putReceipt(rc, id)
		}
	}
	s.endedAt.Store(r.opt.Now().UnixNano()) // held again for a retention window
	return s
}

// Check queries Daraja now for payment id (an operator's "check with
// M-Pesa") and applies the answer like any other source: a pending
// answer changes nothing, and a query never overrides a success that
// carries a receipt. It returns the result as Daraja gave it.
func (r *Rail) Check(ctx context.Context, id string) (daraja.STKResult, error) {
	s := r.lookup(id)
	if s == nil {
		return daraja.STKResult{}, fmt.Errorf("M-Pesa payment %s: %w", id, payment.ErrNotFound)
	}
	checkout := r.checkoutOf(s)
	if checkout == "" {
		return daraja.STKResult{}, fmt.Errorf("M-Pesa payment %s: Daraja never answered its push, so there is nothing to query", id)
	}
	res, err := r.c.STKQuery(ctx, checkout)
	if err != nil {
		return res, err
	}
	r.resolve(s, res, "query")
	return res, nil
}

// CheckOutcome implements payment.Checker with Check, in words for the
// operator.
func (r *Rail) CheckOutcome(ctx context.Context, id string) (string, error) {
	res, err := r.Check(ctx, id)
	switch {
	case errors.Is(err, daraja.ErrPending):
		return "Daraja: the customer has not answered the prompt yet", nil
	case err != nil:
		return "", err
	case res.Success():
		return "Daraja: paid", nil
	}
	m := daraja.Meaning(res.Code, res.Desc)
	return fmt.Sprintf("Daraja: %s (ResultCode %s)", m.Words, res.Code), nil
}

// RegisterC2B registers the rail's confirmation and validation URLs for
// the shortcode.
func (r *Rail) RegisterC2B(ctx context.Context, version, responseType string) (daraja.RegisterResponse, error) {
	return r.c.RegisterURLs(ctx, daraja.RegisterRequest{Version: version, ResponseType: responseType,
		ConfirmationURL: r.ConfirmationURL(), ValidationURL: r.ValidationURL()})
}

var _ interface {
	payment.Starter
	payment.HealthReporter
	payment.Deadliner
	payment.Currencier
	payment.Till
	payment.Checker
} = (*Rail)(nil)
