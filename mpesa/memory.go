package mpesa

import (
	"slices"
	"time"

	"paydesk/mpesa/daraja"
	"paydesk/payment"
)

// Limits on what the rail holds in memory. The journal keeps everything;
// what is forgotten here is looked up there when a callback needs it.
const (
	// DefaultMaxEarly bounds the callbacks kept while their push is
	// unknown; the oldest goes first.
	DefaultMaxEarly = 10000
	// maxEarlyPerPush bounds the copies kept of one push's callback.
	maxEarlyPerPush = 4
	// DefaultMaxFinished bounds the finished sales held; the oldest goes
	// first, even within the retention window.
	DefaultMaxFinished = 10000
	// DefaultMaxTill bounds the till payments listed; matched ones go
	// before unmatched ones, oldest first.
	DefaultMaxTill = 1000
	// sweepEvery is how often, on the rail's clock, finished sales,
	// receipts and till payments are looked over.
	sweepEvery = time.Minute
)

// earlyCallbacks are the callbacks about one push not known yet.
type earlyCallbacks struct {
	results []daraja.STKResult
	flags   []string // each one's source flag ("" from the allow-list)
	at      time.Time
}

// earlyRef is a push's place in the order callbacks arrived in.
type earlyRef struct {
	checkout string
	at       time.Time
}

// receiptRec is the sale a receipt paid ("" while unmatched or being
// matched) and when it was learnt.
type receiptRec struct {
	txn string
	at  time.Time
}

// tillEntry is a till payment listed, with when it was received.
type tillEntry struct {
	payment.TillPayment
	at time.Time
}

// Memory is what a rail holds, for tests, benchmarks and the curious.
type Memory struct {
	// Sales are those held, Open those not final.
	Sales, Open int
	// Checkouts and Receipts index them.
	Checkouts, Receipts int
	// Early are the pushes whose callbacks came before the push's answer.
	Early int
	// Till are the till payments listed.
	Till int
}

// Memory counts what the rail holds now.
func (r *Rail) Memory() Memory {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := Memory{Sales: len(r.sales), Checkouts: len(r.byCheckout), Receipts: len(r.receipts), Early: len(r.early), Till: len(r.till)}
	for _, s := range r.sales {
		if !s.ended.Load() {
			m.Open++
		}
	}
	return m
}

// putReceipt records that receipt paid txn ("" while unmatched); call
// with r.mu held.
func (r *Rail) putReceipt(receipt, txn string) {
	r.receipts[receipt] = receiptRec{txn: txn, at: r.opt.Now()}
}

// keepEarly keeps a callback whose push is not known yet, forgetting
// first those older than the grace period and, when full, the oldest. It
// reports whether it was kept. Call with r.mu held.
func (r *Rail) keepEarly(res daraja.STKResult, flag string) bool {
	now := r.opt.Now()
	r.expireEarly(now)
	e := r.early[res.CheckoutRequestID]
	if e == nil {
		for len(r.early) >= r.opt.MaxEarly && len(r.earlyOrder) > 0 {
			r.dropEarly()
		}
		e = &earlyCallbacks{at: now}
		r.early[res.CheckoutRequestID] = e
		r.earlyOrder = append(r.earlyOrder, earlyRef{checkout: res.CheckoutRequestID, at: now})
	}
	if len(e.results) >= maxEarlyPerPush {
		return false
	}
	e.results = append(e.results, res)
	e.flags = append(e.flags, flag)
	return true
}

// expireEarly forgets the early callbacks older than the grace period:
// by then a paid one is listed for the operator (orphan), and the
// journal keeps them all. Call with r.mu held.
func (r *Rail) expireEarly(now time.Time) {
	for len(r.earlyOrder) > 0 && now.Sub(r.earlyOrder[0].at) > r.opt.EarlyGrace {
		r.dropEarly()
	}
}

// dropEarly forgets the oldest push in the early order, if still kept.
func (r *Rail) dropEarly() {
	ref := r.earlyOrder[0]
	r.earlyOrder = r.earlyOrder[1:]
	if e := r.early[ref.checkout]; e != nil && e.at.Equal(ref.at) {
		delete(r.early, ref.checkout)
	}
	if len(r.earlyOrder) == 0 {
		r.earlyOrder = nil // let the array go
	}
}

// takeEarly returns and forgets the callbacks kept for checkout; call
// with r.mu held.
func (r *Rail) takeEarly(checkout string) *earlyCallbacks {
	e := r.early[checkout]
	if e == nil {
		return &earlyCallbacks{}
	}
	delete(r.early, checkout)
	return e
}

// sweep forgets, at most once a minute on the rail's clock (or at once
// when a limit is passed), the finished sales older than the retention
// window, the receipts of sales and till payments no longer held, and the
// till payments past their time: matched ones after the retention window,
// unmatched ones after TillMemory. Each kind is also capped, oldest
// first. The journal keeps them all; recall finds them there.
func (r *Rail) sweep() {
	now := r.opt.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireEarly(now)
	if now.Sub(r.swept) < sweepEvery && len(r.sales) <= r.opt.MaxFinished && len(r.till) <= r.opt.MaxTill {
		return
	}
	r.swept = now
	cutoff := now.Add(-r.opt.Retention).UnixNano()
	var finished []*sale
	for _, s := range r.sales {
		if !s.ended.Load() {
			continue
		}
		if s.endedAt.Load() < cutoff {
			r.forget(s)
			continue
		}
		finished = append(finished, s)
	}
	if extra := len(finished) - r.opt.MaxFinished; extra > 0 {
		slices.SortFunc(finished, func(a, b *sale) int { return int(a.endedAt.Load() - b.endedAt.Load()) })
		for _, s := range finished[:extra] {
			r.forget(s)
		}
	}
	r.till = slices.DeleteFunc(r.till, func(p tillEntry) bool {
		if p.Unmatched() {
			return now.Sub(p.at) > TillMemory
		}
		return p.at.UnixNano() < cutoff
	})
	if extra := len(r.till) - r.opt.MaxTill; extra > 0 {
		// Matched ones first: an unmatched one waits for the operator.
		matched := slices.DeleteFunc(slices.Clone(r.till), func(p tillEntry) bool { return p.Unmatched() })
		drop := map[string]bool{}
		for _, p := range matched[:min(extra, len(matched))] {
			drop[p.ID] = true
		}
		r.till = slices.DeleteFunc(r.till, func(p tillEntry) bool { return drop[p.ID] })
		if extra := len(r.till) - r.opt.MaxTill; extra > 0 {
			r.till = slices.Delete(r.till, 0, extra)
		}
	}
	listed := make(map[string]bool, len(r.till))
	for _, p := range r.till {
		listed[p.ID] = true
	}
	for rc, rec := range r.receipts {
		if now.Sub(rec.at) < sweepEvery || listed[rc] {
			continue // being matched, or still listed
		}
		if rec.txn == "" || r.sales[rec.txn] == nil {
			delete(r.receipts, rc)
		}
	}
}

// forget drops finished sale s from memory; call with r.mu held.
func (r *Rail) forget(s *sale) {
	delete(r.sales, s.id)
	if s.checkout != "" && r.byCheckout[s.checkout] == s {
		delete(r.byCheckout, s.checkout)
	}
}
