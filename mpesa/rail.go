package mpesa

import (
	"context"
	crand "crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paydesk/mpesa/daraja"
	"paydesk/payment"
)

// Flags this rail sets on events and transactions, beside payment's own.
const (
	FlagDuplicate        = "duplicate"
	FlagUnmatched        = "unmatched"
	FlagUnderpaid        = "underpaid"
	FlagOverpaid         = "overpaid"
	FlagFractional       = "fractional_amount"
	FlagLateSuccess      = "late_success"
	FlagSourceNotAllowed = "source_not_allowed"
	FlagQueryDisagrees   = "query_disagrees"
	FlagPushUnanswered   = "push_unanswered"
	FlagAssigned         = "till_assigned"
)

// PollPolicy is how the rail queries Daraja while it waits for a result.
// The defaults respect Daraja's rate limits: first query 20 s after the
// push, then every 10 s ± 2 s, doubling up to 60 s after a Spike Arrest
// or quota answer; after 120 s the payment is timed out (unconfirmed) and
// one more query runs 5 minutes later.
type PollPolicy struct {
	First, Every, Jitter, MaxBackoff, Budget, Reconcile time.Duration
}

// DefaultPoll is the policy used when Options.Poll is zero.
var DefaultPoll = PollPolicy{First: 20 * time.Second, Every: 10 * time.Second, Jitter: 2 * time.Second,
	MaxBackoff: 60 * time.Second, Budget: 120 * time.Second, Reconcile: 5 * time.Minute}

// DefaultAllowList are the addresses Daraja's callbacks are reported to
// come from (Safaricom does not publish them; keep this configurable).
var DefaultAllowList = mustPrefixes("196.201.214.200/32", "196.201.214.206/32", "196.201.214.207/32",
	"196.201.214.208/32", "196.201.213.114/32", "196.201.213.44/32", "196.201.212.127/32", "196.201.212.128/32",
	"196.201.212.129/32", "196.201.212.132/32", "196.201.212.136/32", "196.201.212.138/32", "196.201.212.69/32",
	"196.201.212.74/32")

func mustPrefixes(ss ...string) []netip.Prefix {
	out, err := ParsePrefixes(strings.Join(ss, ","))
	if err != nil {
		panic(err)
	}
	return out
}

// ParsePrefixes reads a comma-separated list of addresses and CIDR
// prefixes ("196.201.214.200, 10.0.0.0/8").
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("address list: %w", err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("address list: %w", err)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Options configure a Rail.
type Options struct {
	Client *daraja.Client
	Bus    *payment.Bus
	// PublicURL is where Daraja reaches the callback server, without the
	// path: "https://kiosk.example.com" (HTTPS in production).
	PublicURL string
	// HubURL, when set, is the hub's base URL: Daraja posts this rail's
	// callbacks there (HubPathSTK and the C2B paths), and the hub hands
	// them to HubCallback.
	HubURL string
	// PathSecret is the unguessable first segment of every callback path;
	// empty means a random one (then the callback URLs change on each
	// start; LoadPathSecret keeps one in a file).
	PathSecret string
	// AllowList are the sources callbacks may come from; nil means
	// DefaultAllowList. TrustedProxies are the proxies whose
	// X-Forwarded-For is believed.
	AllowList      []netip.Prefix
	TrustedProxies []netip.Prefix
	// EnforceAllowList refuses (403) a callback from elsewhere; by default
	// it is journaled and flagged, and answered.
	EnforceAllowList bool
	// MaxBody caps a callback body. The default is 16 KiB.
	MaxBody int64
	// Poll is the query policy; the zero value means DefaultPoll.
	Poll PollPolicy
	// PushTimeout bounds one STK Push call. The default is 30 s.
	PushTimeout time.Duration
	// Desc is the TransactionDesc, ≤13 characters. The default is
	// "Kiosk sale".
	Desc string
	// EarlyGrace is how long a success callback for a push this rail
	// does not know waits for that push's answer before it is listed as
	// an unmatched till payment for the operator. The default is 30 s.
	EarlyGrace time.Duration
	// C2BWait is how long a paybill or till sale (ModeC2B) waits for the
	// customer's payment before it is timed out. The default is
	// DefaultC2BWait.
	C2BWait time.Duration
	// Retention is how long a finished sale, and a matched till payment,
	// stay in memory (Recover holds again the sales that finished this
	// recently). A callback about an older one is judged from the
	// journal. The default is DefaultRetention.
	Retention time.Duration
	// MaxEarly, MaxFinished and MaxTill cap the callbacks kept while
	// their push is unknown, the finished sales held and the till
	// payments listed; the oldest go first. The defaults are
	// DefaultMaxEarly, DefaultMaxFinished and DefaultMaxTill.
	MaxEarly, MaxFinished, MaxTill int
	Logger                         *slog.Logger
	// Now and After are the clock (time.Now and time.After by default):
	// tests replace both to run the query policy without waiting.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Rail takes M-Pesa payments: a payment.Starter for STK Push, the
// callback server's handler, and the till list for C2B payments.
type Rail struct {
	opt    Options
	c      *daraja.Client
	bus    *payment.Bus
	log    *slog.Logger
	secret string
	// quit is closed when the rail stops: the contexts of its pushes,
	// queries and waits end. work counts those goroutines.
	quit     chan struct{}
	quitOnce sync.Once
	work     sync.WaitGroup
	// served is closed when a running Serve has returned; guarded by
	// serveMu.
	serveMu sync.Mutex
	served  chan struct{}

	mu         sync.Mutex
	sales      map[string]*sale // by reference = txn id
	byCheckout map[string]*sale
	early      map[string]*earlyCallbacks // callbacks whose push is not known yet
	earlyOrder []earlyRef                 // the order they came in
	receipts   map[string]receiptRec      // receipt → txn id ("" when unmatched)
	till       []tillEntry
	swept      time.Time // the last sweep, on the rail's clock
	orphans    int       // paid callbacks waiting for their push, at most MaxEarly

	unknownLimit limiter // logs of requests on unknown paths
}

// limiter allows one event per second and counts the others.
type limiter struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
}

// allow reports whether an event at now may be logged, and how many were
// not since the last one that was.
func (l *limiter) allow(now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < time.Second {
		l.dropped++
		return 0, false
	}
	n := l.dropped
	l.last, l.dropped = now, 0
	return n, true
}

// sale is one STK Push payment (its txn id is its AccountReference).
type sale struct {
	// mu guards the fields below. A step of the sale (see do) holds it
	// while it decides, and releases it around every journal write
	// (outside), so a view of the sale never waits for the disk.
	mu sync.Mutex
	// qmu guards jobs and working: the steps queued, and whether a
	// goroutine is running them.
	qmu     sync.Mutex
	jobs    []func()
	working bool

	id       string
	phone    string // normalised MSISDN; "" after a restart
	amount   int64  // shillings
	checkout string // guarded by Rail.mu
	receipt  string
	status   payment.Status
	paid     int64 // minor units received by C2B
	fraction bool  // one of them had a fraction of a shilling
	// raw is a callback body waiting to ride on the next event published
	// about the sale, so a callback costs one journal write; see resolve.
	raw      []byte
	peer     string
	deadline time.Time
	lost     bool // the push's answer never came; guarded by Rail.mu
	// c2b marks a sale the customer pays by paybill or till (ModeC2B):
	// no push, no phone; only a C2B confirmation pays it.
	c2b     bool
	created time.Time
	done    chan struct{} // closed when final
	ended   atomic.Bool   // final, readable without the lock
	endedAt atomic.Int64  // when it became final (or was recalled), Unix ns
}

// do queues f as a step of s. The steps of a sale run one at a time, in
// the order they were queued, on one goroutine that exists only while
// steps are queued; each runs with s.mu held, except around its journal
// writes (outside). So a sale's transitions are journaled in order, each
// before it is shown, and its callbacks, queries and timers are applied
// one after the other, while another sale, or a view of this one, never
// waits for its journal write.
func (s *sale) do(f func()) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	s.jobs = append(s.jobs, f)
	if !s.working {
		s.working = true
		go s.work()
	}
}

// run is do, then waits until f has run. A step never calls it (it
// would wait on itself).
func (s *sale) run(f func()) {
	done := make(chan struct{})
	s.do(func() { defer close(done); f() })
	<-done
}

// work runs the queued steps in order until the queue is empty.
func (s *sale) work() {
	for {
		s.qmu.Lock()
		if len(s.jobs) == 0 {
			s.working = false
			s.qmu.Unlock()
			return
		}
		f := s.jobs[0]
		s.jobs[0] = nil
		s.jobs = s.jobs[1:]
		s.qmu.Unlock()
		s.mu.Lock()
		f()
		s.mu.Unlock()
	}
}

// outside runs f, a journal write of the running step, with s.mu
// released. The step keeps its turn: no other step of s runs meanwhile,
// so f uses values the step read before, and the step goes on from where
// it was.
func (s *sale) outside(f func()) {
	s.mu.Unlock()
	defer s.mu.Lock()
	f()
}

// publishStep journals ev for the running step of s, with s.mu released.
func (r *Rail) publishStep(s *sale, ev payment.Event) (payment.Event, error) {
	var out payment.Event
	var err error
	s.outside(func() { out, err = r.publish(ev) })
	return out, err
}

// DefaultRetention is how long a finished sale stays in memory by
// default: a day, well past Daraja's late callbacks and the reconciling
// query.
const DefaultRetention = 24 * time.Hour

// NewRail returns the rail. It takes payments at once; Serve runs its
// callback server until the context ends, and then stops the rail's
// pushes and queries and waits for them (as Close does).
func NewRail(opt Options) (*Rail, error) {
	if opt.Client == nil || opt.Bus == nil {
		return nil, fmt.Errorf("%w: the rail needs a client and a bus", daraja.ErrConfig)
	}
	if opt.PublicURL == "" {
		return nil, fmt.Errorf("%w: the rail needs the callback server's public URL", daraja.ErrConfig)
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.After == nil {
		opt.After = time.After
	}
	if opt.MaxBody <= 0 {
		opt.MaxBody = 16 << 10
	}
	if opt.Poll == (PollPolicy{}) {
		opt.Poll = DefaultPoll
	}
	if opt.PushTimeout <= 0 {
		opt.PushTimeout = 30 * time.Second
	}
	if opt.Desc == "" {
		opt.Desc = "Kiosk sale"
	}
	if opt.EarlyGrace <= 0 {
		opt.EarlyGrace = 30 * time.Second
	}
	if opt.C2BWait <= 0 {
		opt.C2BWait = DefaultC2BWait
	}
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.MaxEarly <= 0 {
		opt.MaxEarly = DefaultMaxEarly
	}
	if opt.MaxFinished <= 0 {
		opt.MaxFinished = DefaultMaxFinished
	}
	if opt.MaxTill <= 0 {
		opt.MaxTill = DefaultMaxTill
	}
	if len(opt.Desc) > daraja.MaxTransactionDesc {
		return nil, fmt.Errorf("%w: TransactionDesc %q is over %d characters", daraja.ErrConfig, opt.Desc, daraja.MaxTransactionDesc)
	}
	if opt.AllowList == nil {
		opt.AllowList = DefaultAllowList
	}
	opt.PublicURL = strings.TrimRight(opt.PublicURL, "/")
	opt.HubURL = strings.TrimRight(opt.HubURL, "/")
	secret := opt.PathSecret
	if secret == "" {
		secret = NewPathSecret()
	}
	r := &Rail{opt: opt, c: opt.Client, bus: opt.Bus, log: opt.Logger, secret: secret, quit: make(chan struct{}),
		sales: map[string]*sale{}, byCheckout: map[string]*sale{}, early: map[string]*earlyCallbacks{}, receipts: map[string]receiptRec{}}
	for _, u := range []string{r.STKCallbackURL(), r.ConfirmationURL(), r.ValidationURL()} {
		if err := daraja.CheckCallbackURL(u); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// NewPathSecret returns a random path segment of 26 lower-case letters
// and digits that avoids the words Daraja refuses in URLs.
func NewPathSecret() string {
	for {
		var b [16]byte
		if _, err := crand.Read(b[:]); err != nil {
			panic("mpesa: crypto/rand failed: " + err.Error())
		}
		s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
		if daraja.CheckCallbackURL("https://x/"+s) == nil {
			return s
		}
	}
}

// STKCallbackURL is the CallBackURL sent with every push.
func (r *Rail) STKCallbackURL() string {
	if r.opt.HubURL != "" {
		return r.opt.HubURL + HubPathSTK
	}
	return r.opt.PublicURL + "/" + r.secret + "/stk/result"
}

// ConfirmationURL is the C2B confirmation URL to register.
func (r *Rail) ConfirmationURL() string {
	if r.opt.HubURL != "" {
		return r.opt.HubURL + HubPathC2BConfirmation
	}
	return r.opt.PublicURL + "/" + r.secret + "/c2b/confirmation"
}

// ValidationURL is the C2B validation URL to register.
func (r *Rail) ValidationURL() string {
	if r.opt.HubURL != "" {
		return r.opt.HubURL + HubPathC2BValidation
	}
	return r.opt.PublicURL + "/" + r.secret + "/c2b/validation"
}

// ShutdownGrace is how long Serve lets callbacks in flight finish when it
// stops.
const ShutdownGrace = 5 * time.Second

// Serve answers Daraja's callbacks on ln (see Handler) and keeps the
// rail's memory swept, until ctx ends or Close is called. Then it stops
// the callback server (callbacks in flight have ShutdownGrace to finish),
// stops the rail's pushes, queries and waits, waits for them, and returns
// nil. The listener is closed. A callback server that fails is logged;
// the rail goes on taking payments (it queries Daraja) until it is
// stopped. A rail is served once.
func (r *Rail) Serve(ctx context.Context, ln net.Listener) error {
	done := make(chan struct{})
	defer close(done)
	r.serveMu.Lock()
	r.served = done
	r.serveMu.Unlock()
	hs := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	r.log.Info("M-Pesa callback server listening", "addr", ln.Addr().String())
	// The sweeps tick in real time, not on Options.After, which belongs
	// to the query policy (tests drive that one by hand): an idle kiosk's
	// memory shrinks too.
	tick := time.NewTicker(r.opt.EarlyGrace)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-r.quit:
			running = false
		case err := <-served:
			r.log.Error("M-Pesa callback server stopped", "err", err)
			served = nil
		case <-tick.C:
			r.sweep()
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	if err := hs.Shutdown(sctx); err != nil {
		r.log.Warn("M-Pesa callback server: callbacks in flight cut off", "err", err)
	}
	cancel()
	if served != nil {
		<-served
	}
	r.stopWork()
	return nil
}

// Close stops the rail: a Serve returns, and the rail's pushes, queries
// and waits end; Close waits for both.
func (r *Rail) Close() {
	r.quitOnce.Do(func() { close(r.quit) })
	r.serveMu.Lock()
	served := r.served
	r.serveMu.Unlock()
	if served != nil {
		<-served // it has stopped the callback server, then the work
	}
	r.stopWork()
}

// stopWork ends the contexts of the rail's goroutines and waits for them.
func (r *Rail) stopWork() {
	r.quitOnce.Do(func() { close(r.quit) })
	r.work.Wait()
}

// goWork runs fn in a goroutine the rail waits for when it stops; fn's
// context ends then.
func (r *Rail) goWork(fn func(ctx context.Context)) {
	r.work.Add(1)
	go func() {
		defer r.work.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-r.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		fn(ctx)
	}()
}

// Currency is what M-Pesa amounts are in.
func (r *Rail) Currency() string { return "KES" }

// CheckPhone implements payment.PhoneChecker: the error says why a number
// is not one Start would take.
func (r *Rail) CheckPhone(phone string) error {
	_, err := daraja.NormalizePhone(phone)
	return err
}

// Health is whether Daraja issued the last token asked for.
func (r *Rail) Health() payment.Health {
	if err := r.c.TokenError(); err != nil {
		var ae *daraja.APIError
		if errors.As(err, &ae) {
			return payment.Health{Up: false, Detail: fmt.Sprintf("token refused (HTTP %d)", ae.Status)}
		}
		return payment.Health{Up: false, Detail: "Daraja unreachable"}
	}
	return payment.Health{Up: true, Detail: "ready"}
}

// Deadline is the wait for the customer's PIN on payment id.
func (r *Rail) Deadline(id string) (string, time.Time, bool) {
	s := r.lookup(id)
	if s == nil {
		return "", time.Time{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c2b && s.status == payment.StatusSent {
		kind, _ := r.c.PayTo()
		return "the customer's " + kind + " payment", s.deadline, true
	}
	if s.status != payment.StatusAcknowledged || s.deadline.IsZero() {
		return "", time.Time{}, false
	}
	return "the customer's PIN", s.deadline, true
}

func (r *Rail) publish(ev payment.Event) (payment.Event, error) {
	ev.Rail = payment.RailMPesa
	if ev.Time.IsZero() {
		ev.Time = r.opt.Now()
	}
	return r.bus.Publish(context.Background(), ev)
}

// reject journals refused input and returns err.
func (r *Rail) reject(err error) error {
	r.publish(payment.Event{Kind: payment.KindRejected, Detail: err.Error()})
	r.log.Info("M-Pesa payment refused", "reason", err.Error())
	return err
}

// Start journals a new STK Push payment and sends the push in the
// background. The phone is normalised and the amount checked first; bad
// input is journaled as a rejection and returned.
func (r *Rail) Start(ctx context.Context, req payment.Request) (string, error) {
	r.sweep()
	if req.Mode == payment.ModeC2B {
		return r.startC2B(req)
	}
	if req.Mode != "" && req.Mode != payment.ModeSTKPush {
		return "", r.reject(fmt.Errorf("M-Pesa takes STK Push or paybill/till (c2b) payments, not %s", req.Mode))
	}
	phone, err := daraja.NormalizePhone(req.Phone)
	if err != nil {
		return "", r.reject(fmt.Errorf("phone number refused: %w", err))
	}
	sh, id, err := r.checkSale(req, req.Reference)
	if err != nil {
		return "", err
	}
	s := &sale{id: id, phone: phone, amount: sh, done: make(chan struct{})}
	if err := r.addSale(s); err != nil {
		return "", err
	}
	if !daraja.LikelySafaricom(phone) {
		r.log.Info("phone number outside Safaricom's ranges (it may have been ported)", "phone", daraja.MaskPhone(phone))
	}
	s.run(func() {
		_, err = r.publishStep(s, payment.Event{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusCreated,
			Mode: payment.ModeSTKPush, Amount: payment.Money{Minor: sh * 100, Currency: "KES"}, Peer: daraja.MaskPhone(phone),
			Detail: fmt.Sprintf("STK Push of KES %d to %s, reference %s", sh, daraja.MaskPhone(phone), id)})
		if err == nil {
			s.status = payment.StatusCreated
		}
	})
	if err != nil {
		r.dropSale(id)
		return "", fmt.Errorf("M-Pesa payment: %w", err)
	}
	r.goWork(func(ctx context.Context) { r.push(ctx, s) })
	return id, nil
}

// checkSale checks what every M-Pesa sale needs, and journals a refusal:
// shillings, whole, within an STK Push's limits; and the reference ref
// (req.Reference as the mode reads it), or a new one when none was given.
func (r *Rail) checkSale(req payment.Request, ref string) (shillings int64, id string, err error) {
	if req.Amount.Currency != "" && req.Amount.Currency != "KES" {
		return 0, "", r.reject(fmt.Errorf("M-Pesa takes shillings (KES), not %s", req.Amount.Currency))
	}
	sh, err := daraja.CheckPushAmount(req.Amount.Minor)
	if err != nil {
		return 0, "", r.reject(err)
	}
	if req.Reference == "" {
		return sh, NewReference(), nil
	}
	if !daraja.ValidAccountReference(ref) {
		return 0, "", r.reject(fmt.Errorf("reference %q: 1-%d letters and digits", req.Reference, daraja.MaxAccountReference))
	}
	return sh, ref, nil
}

// addSale lists s under its reference, unless that is taken (a refusal,
// journaled).
func (r *Rail) addSale(s *sale) error {
	r.mu.Lock()
	_, dup := r.sales[s.id]
	if !dup {
		r.sales[s.id] = s
	}
	r.mu.Unlock()
	if dup {
		return r.reject(fmt.Errorf("reference %s is already in use", s.id))
	}
	return nil
}

// lookup is the sale with reference id, nil when there is none.
func (r *Rail) lookup(id string) *sale {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sales[id]
}

// dropSale forgets a sale whose start could not be journaled.
func (r *Rail) dropSale(id string) {
	r.mu.Lock()
	delete(r.sales, id)
	r.mu.Unlock()
}

// transition publishes a status change of s, and then makes it; call
// from a step of s.
func (r *Rail) transition(s *sale, st payment.Status, detail string, res *payment.Result, flag string) bool {
	ev := payment.Event{Kind: payment.KindTransition, TxnID: s.id, Status: st, Detail: detail,
		Result: res, Flag: flag, Peer: daraja.MaskPhone(s.phone)}
	ev.Raw, s.raw = s.raw, nil
	_, err := r.publishStep(s, ev)
	if err != nil {
		r.log.Error("M-Pesa transition not journaled", "txn", s.id, "to", st, "err", err)
		return false
	}
	s.status = st
	if st.Final() {
		s.endedAt.Store(r.opt.Now().UnixNano())
		s.ended.Store(true)
		close(s.done)
	}
	return true
}

// note publishes a step about s with a flag; call from a step of s.
func (r *Rail) note(s *sale, kind payment.Kind, detail, flag string, res *payment.Result) {
	ev := payment.Event{Kind: kind, TxnID: s.id, Detail: detail, Flag: flag, Result: res}
	if s.raw != nil {
		ev.Raw, ev.Peer, s.raw = s.raw, s.peer, nil
	}
	r.publishStep(s, ev)
}

// push sends the STK Push and waits for its outcome.
func (r *Rail) push(ctx context.Context, s *sale) {
	var ok bool
	s.run(func() { ok = r.transition(s, payment.StatusSent, "prompt sent to "+daraja.MaskPhone(s.phone), nil, "") })
	if !ok {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, r.opt.PushTimeout)
	resp, err := r.c.STKPush(pctx, daraja.PushRequest{Phone: s.phone, Amount: s.amount, Reference: s.id, Desc: r.opt.Desc,
		CallbackURL: r.STKCallbackURL()})
	cancel()
	if err != nil {
		r.pushFailed(s, err)
		return
	}
	var early *earlyCallbacks
	s.run(func() {
		r.mu.Lock()
		s.checkout = resp.CheckoutRequestID
		r.byCheckout[s.checkout] = s
		early = r.takeEarly(s.checkout)
		r.mu.Unlock()
		if !s.status.Final() {
			s.deadline = r.opt.Now().Add(r.opt.Poll.Budget)
			r.transition(s, payment.StatusAcknowledged, "waiting for the customer to enter the M-Pesa PIN",
				&payment.Result{RemoteID: resp.CheckoutRequestID}, "")
		}
	})
	r.log.Info("STK Push accepted", "txn", s.id, "checkout", resp.CheckoutRequestID, "early_callbacks", len(early.results))
	for i, res := range early.results {
		r.resolveRaw(s, res, "callback (arrived before the push answer)", nil, "", early.flags[i])
	}
	r.waitResult(ctx, s, r.opt.Poll.First, true)
}

// pushFailed ends a payment whose push Daraja refused, or marks it
// unknown when the answer never came (the push may have reached the
// phone; it is never re-sent).
func (r *Rail) pushFailed(s *sale, err error) {
	s.run(func() { r.pushFailedStep(s, err) })
}

// pushFailedStep is pushFailed's step.
func (r *Rail) pushFailedStep(s *sale, err error) {
	if s.status.Final() {
		return
	}
	var ae *daraja.APIError
	switch {
	case errors.As(err, &ae) && ae.Code == "500.003.1001":
		// An internal error after the request was taken: the push may
		// have gone out.
		r.log.Warn("STK Push answered with an internal error", "txn", s.id, "code", ae.Code, "request_id", ae.RequestID)
		r.unanswered(s, fmt.Sprintf("Daraja answered %s %s", ae.Code, ae.Message))
	case errors.As(err, &ae) && ae.Code != "":
		st := payment.StatusFailed
		why := ae.Message
		if strings.Contains(strings.ToLower(ae.Message), "unable to lock subscriber") {
			// The push refused outright for what a callback reports as
			// ResultCode 1001: said and ended the same way.
			m := daraja.Meaning("1001", "")
			st, why = m.Status, m.Words
		}
		r.log.Warn("STK Push refused", "txn", s.id, "status", ae.Status, "code", ae.Code, "request_id", ae.RequestID)
		r.transition(s, st, fmt.Sprintf("Daraja refused the push: %s (%s)", why, ae.Code),
			&payment.Result{Reason: fmt.Sprintf("%s %s", ae.Code, why)}, "")
	case errors.As(err, &ae):
		r.log.Warn("STK Push answered oddly", "txn", s.id, "status", ae.Status)
		if ae.Status >= 500 {
			r.unanswered(s, fmt.Sprintf("Daraja answered HTTP %d without a verdict", ae.Status))
			return
		}
		r.transition(s, payment.StatusFailed, "Daraja refused the push: "+ae.Error(), &payment.Result{Reason: fmt.Sprintf("HTTP %d", ae.Status)}, "")
	case isDialError(err):
		r.log.Warn("Daraja unreachable", "txn", s.id, "err", err)
		r.transition(s, payment.StatusFailed, "Daraja unreachable, the push was not sent: "+shortErr(err),
			&payment.Result{Reason: "Daraja unreachable"}, "")
	default:
		r.log.Warn("STK Push unanswered", "txn", s.id, "err", err)
		r.unanswered(s, "no answer to the push ("+shortErr(err)+")")
	}
}

// unanswered makes s unknown after a push Daraja gave no verdict on
// (what happened): the prompt may have reached the phone, so it is never
// re-sent; a callback, a receipt or the operator settles it. Call from a
// step of s.
func (r *Rail) unanswered(s *sale, what string) {
	r.markLost(s)
	r.transition(s, payment.StatusUnknown, what+": the prompt may have been sent; not re-sent, waiting for a callback or receipt",
		nil, FlagPushUnanswered)
}

// isDialError reports a connection that was never made, so the request
// cannot have reached Daraja.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// markLost records that the push of s was never answered.
func (r *Rail) markLost(s *sale) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.lost = true
}

// checkoutOf is the CheckoutRequestID of s, "" while unknown.
func (r *Rail) checkoutOf(s *sale) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return s.checkout
}

func shortErr(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return truncate(err.Error(), 80)
}

// waitResult queries Daraja per the policy until s is final or the
// budget is spent; then, if timeout, it times the payment out and runs
// one reconciling query later.
func (r *Rail) waitResult(ctx context.Context, s *sale, first time.Duration, timeout bool) {
	p := r.opt.Poll
	start := r.opt.Now()
	wait := first
	backoff := p.Every
	for {
		if !r.sleep(ctx, s.done, wait) {
			return
		}
		res, err := r.c.STKQuery(ctx, r.checkoutOf(s))
		var ae *daraja.APIError
		switch {
		case err == nil:
			r.resolve(s, res, "query")
			return
		case errors.Is(err, daraja.ErrPending):
			wait, backoff = jitter(p.Every, p.Jitter), p.Every
		case errors.As(err, &ae) && ae.RateLimited():
			backoff = min(backoff*2, p.MaxBackoff)
			wait = backoff
			r.log.Info("STK query rate-limited; backing off", "txn", s.id, "code", ae.Code, "wait", wait.String())
		default:
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("STK query failed", "txn", s.id, "err", err)
			wait = jitter(p.Every, p.Jitter)
		}
		if r.opt.Now().Add(wait).Sub(start) > p.Budget {
			if !timeout {
				return
			}
			r.timeOut(ctx, s, p.Budget-r.opt.Now().Sub(start))
			return
		}
	}
}

// timeOut ends the wait (after left, if the budget is not yet spent)
// and schedules one more query to reconcile.
func (r *Rail) timeOut(ctx context.Context, s *sale, left time.Duration) {
	if left > 0 && !r.sleep(ctx, s.done, left) {
		return
	}
	s.run(func() {
		if !s.status.Final() {
			r.transition(s, payment.StatusTimedOut, fmt.Sprintf("no result from M-Pesa within %s (unconfirmed): a late payment is still recorded", r.opt.Poll.Budget),
				&payment.Result{Reason: "no answer from M-Pesa"}, "")
		}
	})
	r.reconcileLater(ctx, s)
}

// reconcileLater runs one more query after Poll.Reconcile, so a payment
// that was timed out or cancelled locally still learns its real outcome.
func (r *Rail) reconcileLater(ctx context.Context, s *sale) {
	if !r.sleep(ctx, nil, r.opt.Poll.Reconcile) {
		return
	}
	checkout := r.checkoutOf(s)
	if checkout == "" {
		return // the push was never answered: nothing to query
	}
	if res, err := r.c.STKQuery(ctx, checkout); err == nil {
		r.resolve(s, res, "reconciling query")
	}
}

// sleep waits d on the rail's clock; it returns false, early, when ctx
// ends or done is closed (a nil done is never closed).
func (r *Rail) sleep(ctx context.Context, done <-chan struct{}, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-done:
		return false
	case <-r.opt.After(d):
		return true
	}
}

func jitter(d, j time.Duration) time.Duration {
	if j <= 0 {
		return d
	}
	return d - j + rand.N(2*j+1)
}

// Cancel stops waiting for payment id. Daraja cannot withdraw a prompt,
// so a payment made afterwards is still journaled, flagged late_success.
func (r *Rail) Cancel(id string) error {
	s := r.lookup(id)
	if s == nil {
		return fmt.Errorf("M-Pesa payment %s: %w", id, payment.ErrNotFound)
	}
	var final payment.Status
	var ok bool
	s.run(func() {
		if s.status.Final() {
			final = s.status
			return
		}
		detail := "stopped waiting at the console: the prompt cannot be withdrawn; a late payment is still recorded"
		if s.c2b {
			detail = "stopped waiting at the console: a payment the customer still makes with reference " + s.id + " is recorded and flagged late"
		}
		reason := "stopped waiting"
		if s.paid > 0 {
			detail += fmt.Sprintf("; KES %s of %d was paid: refund KES %s due", payment.FormatMinor(s.paid), s.amount, payment.FormatMinor(s.paid))
			reason = partPaidReason
		}
		ok = r.transition(s, payment.StatusCancelled, detail, &payment.Result{Reason: reason}, "")
	})
	if final != "" {
		return fmt.Errorf("M-Pesa payment %s is already %s", id, final)
	}
	if !ok {
		return fmt.Errorf("M-Pesa payment %s: cancel not journaled", id)
	}
	if s.c2b {
		return nil // no push to query: a late payment arrives as a C2B confirmation
	}
	r.goWork(func(ctx context.Context) { r.reconcileLater(ctx, s) })
	return nil
}

// resolve applies an STK outcome from any source to s, exactly once:
// duplicates (same receipt, from any channel) are journaled as such, a
// result after the payment ended is journaled and flagged, and a query
// never overrides a success that carries a receipt.
func (r *Rail) resolve(s *sale, res daraja.STKResult, source string) {
	r.resolveRaw(s, res, source, nil, "", "")
}

// resolveRaw is resolve for a callback whose body (raw, from peer) is not
// journaled yet: it rides on the event the outcome publishes (the
// transition, the duplicate or the late note), and is journaled on its
// own if the outcome publishes nothing. It returns false when the body
// could not be journaled.
//
// flag, when not "", marks the outcome for the operator (the callback
// came from outside the allow-list).
func (r *Rail) resolveRaw(s *sale, res daraja.STKResult, source string, raw []byte, peer, flag string) bool {
	ok := true
	s.run(func() {
		s.raw, s.peer = raw, peer
		r.resolveLocked(s, res, source, flag)
		if s.raw == nil {
			return
		}
		ev := payment.Event{Kind: payment.KindMessage, TxnID: s.id, Peer: peer, Raw: s.raw,
			Detail: fmt.Sprintf("STK %s %s: ResultCode %s %s", source, res.CheckoutRequestID, res.Code, res.Desc)}
		s.raw = nil
		_, err := r.publishStep(s, ev)
		ok = err == nil
	})
	return ok
}

// resolveLocked applies res to s; call from a step of s.
func (r *Rail) resolveLocked(s *sale, res daraja.STKResult, source, extra string) {
	if res.Success() && res.Receipt != "" {
		r.mu.Lock()
		rec, seen := r.receipts[res.Receipt]
		owner := rec.txn
		if !seen {
			r.putReceipt(res.Receipt, s.id)
		}
		r.mu.Unlock()
		if seen {
			r.note(s, payment.KindMessage, fmt.Sprintf("duplicate %s: receipt %s already recorded (%s)", source, res.Receipt, orNone(owner)), FlagDuplicate, nil)
			return
		}
	}
	if s.status.Final() {
		r.resolveFinal(s, res, source, extra)
		return
	}
	m := daraja.Meaning(res.Code, res.Desc)
	if !res.Success() {
		r.transition(s, m.Status, fmt.Sprintf("%s (ResultCode %s, from %s)", m.Words, res.Code, source),
			&payment.Result{Reason: m.Words, Flags: flags(extra)}, extra)
		return
	}
	if res.Receipt == "" {
		// The query says paid but carries no receipt: approve; the
		// receipt comes with the callback or the C2B confirmation.
		var out *payment.Result
		if extra != "" {
			out = &payment.Result{Flags: flags(extra)}
		}
		r.transition(s, payment.StatusApproved, fmt.Sprintf("paid (from %s; the receipt follows with the callback)", source), out, extra)
		return
	}
	s.receipt = res.Receipt
	flag, why := amountCheck(s, res)
	if flag == "" {
		flag = extra
	}
	paid, attn := attention(s, res, extra)
	if r.transition(s, payment.StatusApproved, fmt.Sprintf("paid: M-Pesa receipt %s (from %s)%s", res.Receipt, source, why),
		&payment.Result{RemoteID: res.Receipt, Paid: paid, Flags: attn}, flag) {
		r.noteFraction(s, res)
	}
}

// amountCheck compares the amount a success reports with what sale s
// asked: the flag and the words to add to the detail when they differ
// (or the amount has a fraction), none when they agree or no amount was
// reported (a query's answer).
func amountCheck(s *sale, res daraja.STKResult) (flag, detail string) {
	if res.Amount == nil || (!res.Amount.Fractional() && res.Amount.Minor() == s.amount*100) {
		return "", ""
	}
	return payment.FlagAmountMismatch, fmt.Sprintf("; Daraja reports %s, the sale asked KES %d: check", res.Amount.Raw, s.amount)
}

// attention is what a success reported for s needs the operator for:
// the amount paid when it is not the one asked, and the flags (underpaid
// or overpaid, a fraction of a shilling, extra).
func attention(s *sale, res daraja.STKResult, extra string) (*payment.Money, []string) {
	var paid *payment.Money
	var fl []string
	if a := res.Amount; a != nil && a.Minor() != s.amount*100 {
		paid = &payment.Money{Minor: a.Minor(), Currency: "KES"}
		if a.Minor() < s.amount*100 {
			fl = append(fl, FlagUnderpaid)
		} else {
			fl = append(fl, FlagOverpaid)
		}
	}
	if res.Amount != nil && res.Amount.Fractional() {
		fl = append(fl, FlagFractional)
	}
	return paid, append(fl, flags(extra)...)
}

// flags is the list of f, none when f is "".
func flags(f string) []string {
	if f == "" {
		return nil
	}
	return []string{f}
}

// noteFraction flags an amount with a fraction of a shilling on s; call
// from a step of s.
func (r *Rail) noteFraction(s *sale, res daraja.STKResult) {
	if res.Amount != nil && res.Amount.Fractional() {
		r.note(s, payment.KindStep, "amount "+res.Amount.Raw+" has a fraction of a shilling", FlagFractional, nil)
	}
}

// resolveFinal handles an outcome for a payment that has already ended;
// call from a step of s.
func (r *Rail) resolveFinal(s *sale, res daraja.STKResult, source, extra string) {
	m := daraja.Meaning(res.Code, res.Desc)
	switch {
	case s.status == payment.StatusApproved && res.Success() && res.Receipt == "":
		// A query agreeing with the success: nothing new.
	case s.status == payment.StatusApproved && res.Success() && s.receipt == "":
		// Approved by a query, which reports no amount: the amount is
		// checked now, whichever source came first.
		s.receipt = res.Receipt
		flag, why := amountCheck(s, res)
		if flag == "" {
			flag = extra
		}
		paid, attn := attention(s, res, extra)
		r.note(s, payment.KindStep, fmt.Sprintf("M-Pesa receipt %s (from %s)%s", res.Receipt, source, why), flag,
			&payment.Result{RemoteID: res.Receipt, Paid: paid, Flags: attn})
		r.noteFraction(s, res)
	case s.status == payment.StatusApproved && res.Success():
		r.note(s, payment.KindLate, fmt.Sprintf("a second payment (%s): receipt %s after %s, refund due", source, res.Receipt, s.receipt),
			FlagLateSuccess, &payment.Result{RemoteID: res.Receipt})
	case s.status == payment.StatusApproved:
		r.note(s, payment.KindStep, fmt.Sprintf("%s says %s %s after a success: the success stands", source, res.Code, m.Words), FlagQueryDisagrees, nil)
	case res.Success():
		r.note(s, payment.KindLate, fmt.Sprintf("paid after the console stopped waiting (%s, from %s): receipt %q; refund due or complete the sale",
			s.status, source, res.Receipt), FlagLateSuccess, &payment.Result{RemoteID: res.Receipt})
	case s.status == m.Status:
		r.note(s, payment.KindMessage, fmt.Sprintf("duplicate %s: %s %s", source, res.Code, m.Words), FlagDuplicate, nil)
	default:
		r.note(s, payment.KindLate, fmt.Sprintf("%s after %s: %s %s", source, s.status, res.Code, m.Words), payment.FlagLateResult, nil)
	}
}

func orNone(s string) string {
	if s == "" {
		return "unmatched"
	}
	return "by " + s
}

// truncate cuts s to n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
