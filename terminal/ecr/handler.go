// Package ecr is paydesk's drop-in for HiPay's Unattended ECR Connector:
// a local HTTP API with Basic Auth through which kiosk
// software takes card payments on the unattended terminal that
// paydesk's terminal driver runs, plus the connector's config.txt reader
// and a durable outbox that forwards each payment result to a
// notification endpoint.
//
// The API, on http://localhost:{LOCAL_PORT}:
//
//	POST /            a payment (also POST /payment), answered when it ends
//	GET  /cancel      ask to cancel the payment in progress (202)
//	GET  /check       the terminal's status (an ENQ/ACK/EOT probe)
//	GET  /reset       close and reopen the terminal's port, then probe
//	GET  /version     paydesk's version in the connector's shape
//	GET  /config      the settings, passwords masked
//	GET  /tlc         telecollection: not supported by Concert V2 (501)
//	GET  /stop        stop the API, when the embedding program allows it
//
// Every answer is a JSON array of one object, as in HiPay's document.
package ecr

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/concert"
)

// Defaults of the handler. Each is documented on its Options field.
const (
	DefaultMaxBody      = 64 << 10
	DefaultNotifyWait   = 2 * time.Second
	DefaultSettleWait   = time.Second
	DefaultProbeTimeout = 10 * time.Second
	DefaultResetTimeout = 30 * time.Second
)

// Terminal is what the API needs of the card terminal rail.
// *terminal.Driver implements it.
type Terminal interface {
	Start(ctx context.Context, req payment.Request) (string, error)
	Cancel(id string) error
	Current() (terminal.Flight, bool)
	Health() terminal.Health
	Probe(ctx context.Context) (terminal.Health, error)
	Reset(ctx context.Context) (terminal.Health, error)
}

// Options configures a Handler.
type Options struct {
	// Terminal runs the payments. Required.
	Terminal Terminal
	// Bus is the bus the terminal publishes on: the handler waits there
	// for each payment's final event and publishes its rejections.
	// Required.
	Bus *payment.Bus
	// Login and Password protect every request with Basic Auth
	// (TERMINAL_MANAGER_LOGIN, TERMINAL_MANAGER_PWD). Both are required:
	// the API does not run open.
	Login    string
	Password Secret
	// Settings are shown (masked) at /config.
	Settings ConfigTxt
	// Currency is the currency the terminal is set up for: a request
	// without one is in it, and a request in another is refused (400).
	// The default is EUR.
	Currency string
	// MaxMinor is the largest amount accepted, in minor units. The default
	// (and ceiling) is 99,999,999, the Concert maximum.
	MaxMinor int64
	// AllowUnknown ignores unknown request fields instead of refusing them
	// with 400 (the default).
	AllowUnknown bool
	// MaxBody caps a request body; a larger one gets 413. The default is
	// 64 KiB.
	MaxBody int64
	// Outbox forwards each payment result; nil forwards nothing and
	// notificationHipaySent is always false.
	Outbox *Outbox
	// NotifyWait is how long a payment response waits for its
	// notification to be delivered before answering
	// notificationHipaySent=false (delivery goes on in the background).
	// The default is 2 seconds.
	NotifyWait time.Duration
	// SettleWait is how long to wait for the final event once the driver
	// has let a payment go, before reading the outcome from the journal.
	// The default is 1 second.
	SettleWait time.Duration
	// Acceptor is the merchant name printed on receipts; empty leaves it out.
	Acceptor string
	// Location is the time zone of receipt dates. The default is time.Local.
	Location *time.Location
	// Version overrides the version shown at /version (the default is the
	// main module's version from the build info).
	Version string
	// Stop, when set, is called by GET /stop (after the answer is sent);
	// nil answers 501. Server sets it to stop itself unless the caller
	// set one.
	Stop func()
	// Logger receives every rejection and every payment's outcome. The
	// default is slog.Default().
	Logger *slog.Logger
}

// Handler is the ECR HTTP API. It serves one payment at a time.
type Handler struct {
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	user   [32]byte
	pass   [32]byte
	dopts  DecodeOptions
	home   concert.Currency // the terminal's currency: the only one taken
	quit   chan struct{}
	closer sync.Once
	wg     sync.WaitGroup

	mu  sync.Mutex
	cur *inflight
	// unresolved are the API's payments answered Unknown, waiting for a
	// late answer to resolve them (then forwarded). Kept in memory only:
	// after a restart the operator's resolution is not forwarded.
	unresolved map[string]PaymentRequest
	lateSub    *payment.Subscription
}

// inflight is the API's payment in progress.
type inflight struct {
	txnID   string
	orderID string
	done    chan PaymentResponse
}

// NewHandler checks opts and returns the API's handler.
func NewHandler(opts Options) (*Handler, error) {
	if opts.Terminal == nil || opts.Bus == nil {
		return nil, errors.New("ecr: a terminal and a bus are required")
	}
	if opts.Login == "" || opts.Password == "" {
		return nil, errors.New("ecr: the API needs a login and a password (TERMINAL_MANAGER_LOGIN, TERMINAL_MANAGER_PWD)")
	}
	if opts.Currency == "" {
		opts.Currency = DefaultCurrency
	}
	home, err := concert.LookupCurrency(opts.Currency)
	if err != nil {
		return nil, fmt.Errorf("ecr: default currency: %w", err)
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.NotifyWait <= 0 {
		opts.NotifyWait = DefaultNotifyWait
	}
	if opts.SettleWait <= 0 {
		opts.SettleWait = DefaultSettleWait
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Handler{
		opts:  opts,
		log:   opts.Logger.With("part", "ecr api"),
		mux:   http.NewServeMux(),
		user:  sha256.Sum256([]byte(opts.Login)),
		pass:  sha256.Sum256([]byte(opts.Password.Reveal())),
		dopts: DecodeOptions{Currency: opts.Currency, MaxMinor: opts.MaxMinor, AllowUnknown: opts.AllowUnknown},
		quit:  make(chan struct{}),
		home:  home,

		unresolved: map[string]PaymentRequest{},
	}
	h.mux.HandleFunc("POST /{$}", h.pay)
	h.mux.HandleFunc("POST /payment", h.pay)
	h.mux.HandleFunc("GET /cancel", h.cancel)
	h.mux.HandleFunc("GET /stop", h.stop)
	h.mux.HandleFunc("GET /reset", h.reset)
	h.mux.HandleFunc("GET /version", h.version)
	h.mux.HandleFunc("GET /config", h.config)
	h.mux.HandleFunc("GET /tlc", h.tlc)
	h.mux.HandleFunc("GET /check", h.check)
	h.mux.HandleFunc("/", h.notFound)
	if opts.Outbox != nil {
		h.lateSub = opts.Bus.Subscribe(0)
		h.wg.Add(1)
		go h.forwardResolutions()
	}
	return h, nil
}

// forwardResolutions forwards the outcome of a payment the API answered
// Unknown once a late answer from the terminal (or the operator) resolves
// it in the journal.
func (h *Handler) forwardResolutions() {
	defer h.wg.Done()
	defer h.lateSub.Close()
	for {
		select {
		case <-h.quit:
			return
		case ev, ok := <-h.lateSub.C():
			if !ok {
				return
			}
			var ids []string
			h.mu.Lock()
			if ev.Missed > 0 {
				for id := range h.unresolved {
					ids = append(ids, id)
				}
			} else if _, ok := h.unresolved[ev.TxnID]; ok && ev.Kind == payment.KindTransition && ev.Status.Final() {
				ids = append(ids, ev.TxnID)
			}
			h.mu.Unlock()
			for _, id := range ids {
				h.resolve(id)
			}
		}
	}
}

// resolve forwards the final outcome of an unresolved payment, once.
func (h *Handler) resolve(id string) {
	out, final := h.finalInJournal(id)
	if !final {
		return
	}
	h.mu.Lock()
	pr, ok := h.unresolved[id]
	delete(h.unresolved, id)
	h.mu.Unlock()
	if !ok {
		return
	}
	resp := buildResponse(pr, out, h.opts.Acceptor, h.opts.Location)
	sent := h.notify(resp)
	h.log.Info("ecr payment answered unknown is now resolved; result forwarded", "txn", id, "order", pr.OrderID,
		"status", out.Status, "notification_sent", sent)
}

// Close stops the goroutines waiting for payment outcomes (a payment
// still on the terminal goes on; the driver journals its outcome).
func (h *Handler) Close() {
	h.closer.Do(func() { close(h.quit) })
	h.wg.Wait()
}

// ServeHTTP checks Basic Auth on every request, then routes it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="paydesk ECR", charset="UTF-8"`)
		h.refuse(w, r, http.StatusUnauthorized, CodeUnauthorized, "authentication required (HTTP Basic Auth)", "no Basic Auth credentials")
		return
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	okUser := subtle.ConstantTimeCompare(u[:], h.user[:])
	okPass := subtle.ConstantTimeCompare(p[:], h.pass[:])
	if okUser&okPass != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="paydesk ECR", charset="UTF-8"`)
		why := "wrong password"
		if okUser != 1 {
			why = "wrong user"
		}
		h.refuse(w, r, http.StatusUnauthorized, CodeUnauthorized, "wrong user or password", why)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// refuse answers an error, logs it and journals it as a rejection. logWhy
// is the reason for the log when it says more than msg (never a secret).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, errCode, msg, logWhy string) {
	if logWhy == "" {
		logWhy = msg
	}
	h.log.Warn("ecr request refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path,
		"status", code, "code", errCode, "reason", logWhy)
	h.opts.Bus.Publish(context.Background(), payment.Event{Kind: payment.KindRejected, Rail: payment.RailTerminal,
		Peer: "ecr api " + r.RemoteAddr, Detail: fmt.Sprintf("ECR API %s %s: %d %s: %s", r.Method, r.URL.Path, code, errCode, logWhy)})
	writeJSON(w, code, []any{errorBody{Status: StatusError, Error: &APIError{Code: errCode, Message: msg}}})
}

type errorBody struct {
	Status string    `json:"status"`
	Error  *APIError `json:"error"`
	// OrderID and TransactionID name the payment in progress for a 409.
	OrderID       string `json:"orderId,omitempty"`
	TransactionID string `json:"transactionId,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`[{"status":"Error","error":{"code":"internal_error","message":"cannot encode the answer"}}]`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	allow := ""
	switch r.URL.Path {
	case "/", "/payment":
		allow = http.MethodPost
	case "/cancel", "/stop", "/reset", "/version", "/config", "/tlc", "/check":
		allow = http.MethodGet
	}
	if allow != "" {
		w.Header().Set("Allow", allow)
		h.refuse(w, r, http.StatusMethodNotAllowed, CodeMethod, fmt.Sprintf("%s %s is not allowed: use %s", r.Method, r.URL.Path, allow), "")
		return
	}
	h.refuse(w, r, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.URL.Path, "")
}

// pay takes a payment and answers when it ends.
func (h *Handler) pay(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/json" && mt != "text/plain") {
			h.refuse(w, r, http.StatusUnsupportedMediaType, CodeMediaType, fmt.Sprintf("content type %q: send application/json", ct), "")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.refuse(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body over %d bytes", h.opts.MaxBody), "")
			return
		}
		h.refuse(w, r, http.StatusBadRequest, CodeBadRequest, "could not read the request body: "+err.Error(), "")
		return
	}
	pr, err := DecodePaymentRequest(body, h.dopts)
	if err == nil && pr.Currency.Alpha != h.home.Alpha {
		// The terminal is set up for one currency: another one would be
		// sent as its numeric code and charged as if it were that.
		err = &RequestError{Field: "currency", Reason: fmt.Sprintf("%q is not the currency the terminal is set up for (%s)", pr.Currency.Alpha, h.home.Alpha)}
	}
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
		return
	}
	if len(pr.Ignored) > 0 {
		h.log.Info("ecr payment request: unknown fields ignored", "fields", pr.Ignored, "order", pr.OrderID)
	}

	h.mu.Lock()
	if cur := h.cur; cur != nil {
		order, txn := cur.orderID, cur.txnID
		h.mu.Unlock()
		h.refuseBusy(w, r, order, txn)
		return
	}
	fl := &inflight{orderID: pr.OrderID, done: make(chan PaymentResponse, 1)}
	h.cur = fl
	h.mu.Unlock()
	release := func() {
		h.mu.Lock()
		if h.cur == fl {
			h.cur = nil
		}
		h.mu.Unlock()
	}

	// Subscribe before Start: the outcome may be journaled before Start
	// returns the id.
	sub := h.opts.Bus.Subscribe(0)
	id, err := h.opts.Terminal.Start(r.Context(), payment.Request{Mode: payment.ModeCard, Amount: pr.Amount, Reference: pr.OrderID})
	if err != nil {
		sub.Close()
		release()
		switch {
		case errors.Is(err, payment.ErrBusy):
			cur, _ := h.opts.Terminal.Current()
			h.refuseBusy(w, r, "", cur.ID)
		case errors.Is(err, payment.ErrUnavailable):
			h.refuse(w, r, http.StatusServiceUnavailable, CodeUnavailable, err.Error(), "")
		case errors.Is(err, concert.ErrBadRequest), errors.Is(err, concert.ErrUnknownCurrency):
			h.refuse(w, r, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
		default:
			h.refuse(w, r, http.StatusInternalServerError, CodeInternal, err.Error(), "")
		}
		return
	}
	h.mu.Lock()
	fl.txnID = id
	h.mu.Unlock()
	h.log.Info("ecr payment started", "txn", id, "order", pr.OrderID, "amount", pr.Amount.String(), "remote", r.RemoteAddr)

	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer release()
		defer sub.Close()
		out, ok := h.await(sub, id)
		if !ok {
			return // shutting down: the journal has the payment
		}
		if out.Status == payment.StatusUnknown && h.opts.Outbox != nil {
			h.mu.Lock()
			h.unresolved[id] = pr
			h.mu.Unlock()
		}
		resp := buildResponse(pr, out, h.opts.Acceptor, h.opts.Location)
		sent := h.notify(resp)
		resp.NotificationHipaySent = &sent
		h.log.Info("ecr payment finished", "txn", id, "order", pr.OrderID, "status", out.Status, "notification_sent", sent)
		release() // before the answer: the kiosk may send the next payment at once
		fl.done <- resp
		if out.Status == payment.StatusUnknown && h.opts.Outbox != nil {
			h.resolve(id) // resolved while the first notification went out
		}
	}()

	select {
	case resp := <-fl.done:
		writeJSON(w, http.StatusOK, []PaymentResponse{resp})
	case <-r.Context().Done():
		h.log.Warn("ecr client went away before the payment ended; it goes on and its result is journaled and forwarded",
			"txn", id, "order", pr.OrderID, "err", r.Context().Err())
	case <-h.quit:
		writeJSON(w, http.StatusServiceUnavailable, []any{errorBody{Status: StatusError, TransactionID: id, OrderID: pr.OrderID,
			Error: &APIError{Code: CodeUnavailable, Message: "paydesk is stopping; the payment's outcome is in its journal"}}})
	}
}

// getOnly refuses HEAD on an endpoint with an effect (the mux routes HEAD
// to GET patterns).
func (h *Handler) getOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet {
		return true
	}
	w.Header().Set("Allow", http.MethodGet)
	h.refuse(w, r, http.StatusMethodNotAllowed, CodeMethod, r.Method+" "+r.URL.Path+" is not allowed: use GET", "")
	return false
}

func (h *Handler) refuseBusy(w http.ResponseWriter, r *http.Request, orderID, txnID string) {
	msg := "a payment is already in progress"
	if orderID != "" {
		msg += " (order " + orderID + ")"
	}
	msg += ": wait for its result, or GET /cancel"
	h.log.Warn("ecr request refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path,
		"status", http.StatusConflict, "code", CodeBusy, "reason", msg, "txn", txnID)
	h.opts.Bus.Publish(context.Background(), payment.Event{Kind: payment.KindRejected, Rail: payment.RailTerminal, TxnID: "",
		Peer: "ecr api " + r.RemoteAddr, Detail: "ECR API payment refused: 409 busy with " + txnID})
	writeJSON(w, http.StatusConflict, []any{errorBody{Status: StatusError, OrderID: orderID, TransactionID: txnID,
		Error: &APIError{Code: CodeBusy, Message: msg}}})
}

// await waits for the payment's outcome on the bus. The driver leaves
// flight before it publishes the final event, and some ends (no answer
// after an unacknowledged request) publish no final transition: once the
// driver has let the payment go, await waits SettleWait for a final event
// and then reads the journal.
func (h *Handler) await(sub *payment.Subscription, id string) (outcome, bool) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	stopSettle := func() bool { return false }
	defer func() { stopSettle() }()
	var settle <-chan time.Time
	ended := func() bool {
		f, ok := h.opts.Terminal.Current()
		return !ok || f.ID != id
	}
	arm := func() {
		if settle == nil && ended() {
			t := time.NewTimer(h.opts.SettleWait)
			settle = t.C
			stopSettle = t.Stop
		}
	}
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return h.fromJournal(id), true
			}
			if ev.Missed > 0 {
				if out, final := h.finalInJournal(id); final {
					return out, true
				}
			}
			if ev.TxnID != id {
				continue
			}
			if ev.Kind == payment.KindTransition && ev.Status.Final() {
				return outcome{TxnID: id, Status: ev.Status, Result: ev.Result, Raw: ev.Raw, Detail: ev.Detail, Time: ev.Time}, true
			}
			arm()
		case <-tick.C:
			arm()
		case <-settle:
			return h.fromJournal(id), true
		case <-h.quit:
			return outcome{}, false
		}
	}
}

// finalInJournal looks for the payment's final transition in the journal.
func (h *Handler) finalInJournal(id string) (outcome, bool) {
	evs, err := h.opts.Bus.Journal().History(context.Background(), id)
	if err != nil {
		h.log.Error("ecr: read the payment's history", "txn", id, "err", err)
		return outcome{}, false
	}
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		if ev.Kind == payment.KindTransition && ev.Status.Final() {
			return outcome{TxnID: id, Status: ev.Status, Result: ev.Result, Raw: ev.Raw, Detail: ev.Detail, Time: ev.Time}, true
		}
	}
	return outcome{}, false
}

// fromJournal is the outcome as the journal has it: the final transition,
// or the current (unknown) status with the last event's detail.
func (h *Handler) fromJournal(id string) outcome {
	if out, ok := h.finalInJournal(id); ok {
		return out
	}
	out := outcome{TxnID: id, Status: payment.StatusUnknown, Time: time.Now()}
	if tx, err := h.opts.Bus.Journal().Txn(context.Background(), id); err == nil {
		out.Status = tx.Status
		r := tx.Result
		out.Result = &r
	}
	if evs, err := h.opts.Bus.Journal().History(context.Background(), id); err == nil && len(evs) > 0 {
		out.Detail = evs[len(evs)-1].Detail
	}
	if out.Status.Final() {
		return out
	}
	out.Status = payment.StatusUnknown
	if out.Result == nil || out.Result.Reason == "" {
		out.Result = &payment.Result{Reason: "the terminal's answer is not known: check the terminal; paydesk's operator resolves the payment (" + out.Detail + ")"}
	}
	return out
}

// notify queues the result in the outbox and waits NotifyWait for its
// delivery.
func (h *Handler) notify(resp PaymentResponse) bool {
	if h.opts.Outbox == nil {
		return false
	}
	body, err := marshalJSON(resp)
	if err != nil {
		h.log.Error("ecr: encode the notification", "txn", resp.TransactionID, "err", err)
		return false
	}
	_, done, err := h.opts.Outbox.Enqueue(resp.TransactionID, body)
	if err != nil {
		h.log.Error("ecr: the notification could not be queued", "txn", resp.TransactionID, "err", err)
		return false
	}
	t := time.NewTimer(h.opts.NotifyWait)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	case <-h.quit:
		return false
	}
}

// cancel asks the driver to cancel the payment in progress.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	if !h.getOnly(w, r) {
		return
	}
	f, ok := h.opts.Terminal.Current()
	if !ok {
		h.refuse(w, r, http.StatusConflict, CodeNoPayment, "no payment in progress to cancel", "")
		return
	}
	if err := h.opts.Terminal.Cancel(f.ID); err != nil {
		if errors.Is(err, terminal.ErrUnknownTxn) {
			h.refuse(w, r, http.StatusConflict, CodeNoPayment, "the payment ended before the cancel", "")
			return
		}
		h.refuse(w, r, http.StatusInternalServerError, CodeInternal, err.Error(), "")
		return
	}
	// Even before the terminal accepted, its ACK may be on the way: the
	// cancel is a request either way, and the payment's own answer says
	// whether it was cancelled (Cancelled only when the session ended
	// before the terminal took the request, or the terminal confirmed).
	msg := "cancel requested: the request had not been accepted by the terminal; the payment's answer says whether it was cancelled"
	if f.Accepted {
		msg = "cancel requested: the terminal has the payment and Concert cannot abort it; the payment's answer gives the terminal's outcome"
	}
	h.mu.Lock()
	order := ""
	if h.cur != nil && h.cur.txnID == f.ID {
		order = h.cur.orderID
	}
	h.mu.Unlock()
	h.log.Info("ecr cancel", "txn", f.ID, "order", order, "accepted", f.Accepted, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, []any{struct {
		Status        string    `json:"status"`
		Error         *APIError `json:"error"`
		Message       string    `json:"message"`
		TransactionID string    `json:"transactionId"`
		OrderID       string    `json:"orderId,omitempty"`
		Accepted      bool      `json:"acceptedByTerminal"`
	}{StatusCancelRequested, nil, msg, f.ID, order, f.Accepted}})
}

// stop calls Options.Stop, or answers 501.
func (h *Handler) stop(w http.ResponseWriter, r *http.Request) {
	if !h.getOnly(w, r) {
		return
	}
	if h.opts.Stop == nil {
		h.refuse(w, r, http.StatusNotImplemented, CodeNotSupported,
			"not supported: paydesk's API is part of the console and is stopped from it", "")
		return
	}
	h.log.Warn("ecr stop requested", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, []any{map[string]any{"status": StatusSuccess, "error": nil, "message": "stopping the local API"}})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go h.opts.Stop()
}

// checkBody is /check's answer: HiPay's cr/card/call/periph plus the
// driver's health. Concert reports only whether the terminal answers an
// ENQ, so cr is "0" when it answered, "1" when it is silent, "2" when the
// port is closed (missing, unplugged, busy), "3" not checked yet; periph
// is "0" while the port is open, "1" when it is not; card and call (card
// in the reader, call in progress) are not known over Concert V2 and are
// null.
type checkBody struct {
	CR     string  `json:"cr"`
	Card   *string `json:"card"`
	Call   *string `json:"call"`
	Periph string  `json:"periph"`
	healthBody
}

type healthBody struct {
	State     string     `json:"state"`
	Detail    string     `json:"detail"`
	Port      string     `json:"port"`
	Busy      string     `json:"busy,omitempty"`
	LastProbe *time.Time `json:"lastProbe,omitempty"`
	LastOK    *time.Time `json:"lastOk,omitempty"`
	RTTms     float64    `json:"rttMs,omitempty"`
	Error     string     `json:"probeError,omitempty"`
}

func healthOf(hl terminal.Health, err error) healthBody {
	b := healthBody{State: string(hl.State), Detail: hl.Detail, Port: hl.Port, Busy: hl.Busy,
		RTTms: float64(hl.RTT.Microseconds()) / 1000}
	if !hl.LastProbe.IsZero() {
		t := hl.LastProbe.UTC()
		b.LastProbe = &t
	}
	if !hl.LastOK.IsZero() {
		t := hl.LastOK.UTC()
		b.LastOK = &t
	}
	if err != nil {
		b.Error = err.Error()
	}
	return b
}

func (h *Handler) check(w http.ResponseWriter, r *http.Request) {
	var hl terminal.Health
	var err error
	if _, busy := h.opts.Terminal.Current(); busy {
		// The driver answers a probe only between sessions (its Probe
		// blocks for the whole payment, though documented to return the
		// last known health): report that health without waiting.
		hl = h.opts.Terminal.Health()
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), DefaultProbeTimeout)
		hl, err = h.opts.Terminal.Probe(ctx)
		cancel()
	}
	b := checkBody{healthBody: healthOf(hl, err), Periph: "0"}
	switch hl.State {
	case terminal.HealthOK:
		b.CR = "0"
	case terminal.HealthNoAnswer:
		b.CR = "1"
	case terminal.HealthPortClosed:
		b.CR, b.Periph = "2", "1"
	default:
		b.CR = "3"
	}
	writeJSON(w, http.StatusOK, []any{b})
}

func (h *Handler) reset(w http.ResponseWriter, r *http.Request) {
	if !h.getOnly(w, r) {
		return
	}
	if f, ok := h.opts.Terminal.Current(); ok {
		h.refuseBusy(w, r, "", f.ID)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultResetTimeout)
	defer cancel()
	hl, err := h.opts.Terminal.Reset(ctx)
	if err != nil {
		h.refuse(w, r, http.StatusServiceUnavailable, CodeUnavailable, "reset: "+err.Error(), "")
		return
	}
	h.log.Info("ecr reset", "remote", r.RemoteAddr, "state", hl.State)
	writeJSON(w, http.StatusOK, []any{struct {
		Status  string    `json:"status"`
		Error   *APIError `json:"error"`
		Message string    `json:"message"`
		healthBody
	}{StatusSuccess, nil, "Concert has no reboot command: the port was closed and reopened, then the terminal probed", healthOf(hl, nil)}})
}

// versionBody is HiPay's /version shape: version is
// "<paydesk version>-tpa-<os>" like "0.0.0-tpa-winserver2003_64", type is
// "tpa" as in HiPay's document (kiosk software may check it), os is GOOS_GOARCH;
// application and goVersion are additions.
type versionBody struct {
	Version     string `json:"version"`
	Type        string `json:"type"`
	OS          string `json:"os"`
	Application string `json:"application"`
	GoVersion   string `json:"goVersion"`
}

func (h *Handler) versionInfo() versionBody {
	v := h.opts.Version
	if v == "" {
		v = "0.0.0"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	osName := runtime.GOOS + "_" + runtime.GOARCH
	return versionBody{Version: v + "-tpa-" + osName, Type: "tpa", OS: osName, Application: "paydesk", GoVersion: runtime.Version()}
}

func (h *Handler) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []any{h.versionInfo()})
}

// config answers HiPay's /config shape (which HiPay documents as
// the terminal's serial number but shows with /version's fields): the
// version fields, serialNumber null (Concert V2 does not report it), and
// the settings with the passwords masked.
func (h *Handler) config(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []any{struct {
		versionBody
		SerialNumber *string   `json:"serialNumber"`
		Note         string    `json:"note"`
		Settings     ConfigTxt `json:"settings"`
		Currency     string    `json:"defaultCurrency"`
		Notify       bool      `json:"notificationConfigured"`
	}{h.versionInfo(), nil, "the terminal's serial number is not available over Concert V2", h.opts.Settings, h.opts.Currency, h.opts.Outbox != nil}})
}

func (h *Handler) tlc(w http.ResponseWriter, r *http.Request) {
	h.refuse(w, r, http.StatusNotImplemented, CodeNotSupported,
		"not supported by this terminal: Concert V2 has no telecollection request; the terminal does its own data capture", "")
}
