package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
)

// Paths Safaricom Daraja posts to at the hub (a kiosk with [mpesa] via-hub
// gives the first as its CallBackURL; the paybill's C2B URLs are the other
// two). Daraja refuses "mpesa" in a callback URL.
const (
	PathSTK             = mpesa.HubPathSTK
	PathC2BValidation   = mpesa.HubPathC2BValidation
	PathC2BConfirmation = mpesa.HubPathC2BConfirmation
)

// Answers Daraja expects (as the kiosk's own callback server gives them).
var (
	answerSTK       = []byte(`{"ResultCode":0,"ResultDesc":"Accepted"}`)
	answerAccept    = []byte(`{"ResultCode":"0","ResultDesc":"Accepted"}`)
	answerReject    = []byte(`{"ResultCode":"C2B00012","ResultDesc":"Rejected"}`)
	answerConfirmed = []byte(`{"ResultCode":0,"ResultDesc":"Success"}`)
	answerRetry     = []byte(`{"ResultCode":1,"ResultDesc":"Try again"}`)
)

// validationBudget bounds the hub's answer to a C2B validation, well
// inside the few seconds Daraja waits before it applies the registered
// ResponseType.
const validationBudget = 4 * time.Second

// darajaHandler serves Daraja's callbacks: each body capped, its source
// checked against the allow-list, stored in PostgreSQL before it is
// answered.
func (s *Server) darajaHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathSTK, func(w http.ResponseWriter, r *http.Request) { s.callback(w, r, s.onSTK) })
	mux.HandleFunc("POST "+PathC2BValidation, func(w http.ResponseWriter, r *http.Request) { s.callback(w, r, s.onValidation) })
	mux.HandleFunc("POST "+PathC2BConfirmation, func(w http.ResponseWriter, r *http.Request) { s.callback(w, r, s.onConfirmation) })
	return mux
}

// inbound is one callback as received. Its handler is given, beside it,
// the context to store it with (the request's, not cancelled when
// Daraja hangs up: what arrived is still stored).
type inbound struct {
	body    []byte
	source  string
	allowed bool
}

// callback reads the capped body, checks the source, and hands it to h,
// which stores it and returns the answer.
func (s *Server) callback(w http.ResponseWriter, r *http.Request, h func(context.Context, inbound) (int, []byte)) {
	src, allowed := mpesa.CallbackSource(r, s.opts.MpesaAllow, s.opts.MpesaTrustedProxies)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MpesaMaxBody))
	if err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		s.reject(src, "", "Daraja callback on "+r.URL.Path+" refused", err)
		http.Error(w, http.StatusText(status), status)
		return
	}
	if !allowed && s.opts.MpesaEnforceAllow {
		s.reject(src, "", "Daraja callback from outside the allow-list refused", nil)
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return
	}
	// Stored even when Daraja hangs up meanwhile: what arrived is kept.
	status, answer := h(context.WithoutCancel(r.Context()), inbound{body: body, source: src, allowed: allowed})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(answer)
}

// unreadable is the key of a body that does not decode: its hash, so a
// repeat is stored once.
func unreadable(body []byte) string {
	h := sha256.Sum256(body)
	return "unreadable:" + hex.EncodeToString(h[:12])
}

func (s *Server) keep(ctx context.Context, in inbound, c Callback) (StoredCallback, error) {
	// What the kiosk is given is masked too: a callback may wait here for
	// good (no kiosk claims it), and the rail needs the receipt, the
	// amount and the reference, not the payer's whole number.
	masked := mpesa.MaskRaw(in.body)
	c.Body, c.Raw, c.Source, c.Allowed = masked, masked, in.source, in.allowed
	if !json.Valid(in.body) || strings.HasPrefix(c.Key, "unreadable:") {
		c.Body = nil // never queued: kept masked for the record
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := s.store.StoreCallback(ctx, c)
	if err != nil {
		s.log.Error("hub: storing a Daraja callback; Daraja is told to try again", "kind", c.Kind, "key", c.Key, "err", err)
		return st, err
	}
	s.log.Info("hub: Daraja callback stored", "kind", c.Kind, "key", c.Key, "kiosk", st.Kiosk,
		"duplicate", st.Duplicate, "allowed", c.Allowed)
	return st, nil
}

func (s *Server) onSTK(ctx context.Context, in inbound) (int, []byte) {
	res, err := daraja.DecodeSTKCallback(in.body)
	if err != nil || !json.Valid(in.body) {
		s.reject(in.source, "", "STK callback refused: malformed body", err)
		return http.StatusBadRequest, []byte(`{"ResultCode":1,"ResultDesc":"Rejected: malformed body"}`)
	}
	c := Callback{Kind: CallbackSTK, Key: res.CheckoutRequestID, Code: res.Code}
	if res.Amount != nil {
		c.Minor = res.Amount.Minor()
	}
	if _, err := s.keep(ctx, in, c); err != nil {
		return http.StatusInternalServerError, answerRetry
	}
	return http.StatusOK, answerSTK
}

func (s *Server) onConfirmation(ctx context.Context, in inbound) (int, []byte) {
	c := Callback{Kind: CallbackC2BConfirm}
	p, err := daraja.DecodeC2B(in.body)
	if err != nil {
		// Money has moved: never refused, kept for head office.
		s.reject(in.source, "", "C2B confirmation unreadable (kept in the unmatched list)", err)
		c.Key = unreadable(in.body)
	} else {
		c.Key, c.Ref, c.Minor, c.Paid = p.TransID, mpesa.NormalizeReference(string(p.BillRefNumber)), p.Amount.Minor(), p.Time
		if c.Ref == "" && p.BillRefNumber != "" {
			// Only a payment with no account at all is matched by
			// amount, as at the kiosk: "-" names no sale.
			c.Ref = string(p.BillRefNumber)
		}
	}
	if _, err := s.keep(ctx, in, c); err != nil {
		return http.StatusInternalServerError, answerRetry
	}
	return http.StatusOK, answerConfirmed
}

// onValidation accepts a C2B payment unless its reference names a sale a
// kiosk reported closed, as a kiosk's own callback server does.
func (s *Server) onValidation(ctx context.Context, in inbound) (int, []byte) {
	ctx, cancel := context.WithTimeout(ctx, validationBudget)
	defer cancel()
	c := Callback{Kind: CallbackC2BValidation}
	p, err := daraja.DecodeC2B(in.body)
	if err != nil {
		c.Key = unreadable(in.body)
		if _, err := s.keep(ctx, in, c); err != nil {
			return http.StatusInternalServerError, answerAccept
		}
		return http.StatusOK, answerAccept // money has not moved; Daraja's default applies to what cannot be read
	}
	c.Key, c.Ref, c.Minor = p.TransID, mpesa.NormalizeReference(string(p.BillRefNumber)), p.Amount.Minor()
	if _, err := s.keep(ctx, in, c); err != nil {
		return http.StatusInternalServerError, answerAccept
	}
	known, closed, err := s.store.SaleOpen(ctx, c.Ref)
	if err != nil {
		s.log.Error("hub: C2B validation: looking up the sale", "ref", c.Ref, "err", err)
		return http.StatusInternalServerError, answerAccept
	}
	if known && closed {
		s.log.Info("hub: C2B validation rejected: the sale is closed", "trans_id", c.Key, "ref", c.Ref)
		return http.StatusOK, answerReject
	}
	return http.StatusOK, answerAccept
}

// listen wakes this replica's links when any replica queues a message for
// their kiosk (PostgreSQL NOTIFY), until ctx ends; the links' own poll is
// the fallback while the listening connection is down.
func (s *Server) listen(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("hub: listening for messages; links poll meanwhile", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (s *Server) listenOnce(ctx context.Context) error {
	conn, err := s.store.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// LISTEN belongs to the session: the connection is not returned to
	// the pool.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(ctx))
	if _, err := pc.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.wakeAll() // whatever was queued while not listening
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.wake(n.Payload)
	}
}

// waiter registers a link's wake channel for its kiosk.
func (s *Server) waiter(kiosk string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.wakers == nil {
		s.wakers = map[string]map[chan struct{}]bool{}
	}
	if s.wakers[kiosk] == nil {
		s.wakers[kiosk] = map[chan struct{}]bool{}
	}
	s.wakers[kiosk][ch] = true
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.wakers[kiosk], ch)
		if len(s.wakers[kiosk]) == 0 {
			delete(s.wakers, kiosk)
		}
		s.mu.Unlock()
	}
}

func (s *Server) wake(kiosk string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.wakers[kiosk] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Server) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, chs := range s.wakers {
		for ch := range chs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
