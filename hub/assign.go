package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"paydesk/hub/wire"
	"paydesk/mpesa"
	"paydesk/payment"
)

// MessageMpesaAssign is the kind of a message carrying an M-Pesa payment
// head office assigned to one of the kiosk's sales; its body is a
// MpesaAssignment.
const MessageMpesaAssign = "mpesa.assign"

// MpesaAssignment is a payment no kiosk's sale claimed, assigned by an
// operator at the hub to sale Txn of the kiosk it is sent to.
type MpesaAssignment struct {
	MpesaMessage
	Txn string `json:"txn"`
	By  string `json:"by"` // the operator
}

// AssignError is why AssignPayment refused: Msg says it for the
// operator, Err is one of the errors below.
type AssignError struct {
	Msg string
	Err error
}

func (e *AssignError) Error() string { return e.Msg }
func (e *AssignError) Unwrap() error { return e.Err }

func refuse(err error, format string, args ...any) error {
	return &AssignError{Msg: fmt.Sprintf(format, args...), Err: err}
}

// Why an assignment is refused (in an AssignError, with the specifics).
var (
	ErrNoPayment     = errors.New("no such unmatched M-Pesa payment")
	ErrAssigned      = errors.New("payment already assigned")
	ErrNotAssignable = errors.New("payment cannot be assigned")
	ErrNoSale        = errors.New("no such sale")
	ErrSalePaid      = errors.New("sale already paid")
)

// ApplyMessage hands a message from the hub to a kiosk's M-Pesa rail: a
// Daraja callback routed to the kiosk (MessageMpesa) or a payment head
// office assigned to one of its sales (MessageMpesaAssign). It returns
// nil once the rail has journaled it, when the kiosk acknowledges it.
func ApplyMessage(ctx context.Context, rail *mpesa.Rail, m wire.Message) error {
	switch m.Kind {
	case MessageMpesa:
		var cb MpesaMessage
		if err := json.Unmarshal(m.Body, &cb); err != nil {
			return fmt.Errorf("an M-Pesa callback from the hub: %w", err)
		}
		return rail.HubCallback(ctx, cb.Kind, cb.Body, cb.Source, cb.Allowed)
	case MessageMpesaAssign:
		var a MpesaAssignment
		if err := json.Unmarshal(m.Body, &a); err != nil {
			return fmt.Errorf("an M-Pesa assignment from the hub: %w", err)
		}
		return rail.HubAssign(ctx, a.Kind, a.Body, a.Source, a.Allowed, a.Txn, a.By)
	}
	return fmt.Errorf("a message of kind %q, which this kiosk does not take", m.Kind)
}

// Assignment is an M-Pesa payment the hub received, with where it went:
// routed to a kiosk, or assigned there by an operator.
type Assignment struct {
	Unmatched
	Kiosk     string     // "" while unmatched
	Txn       string     // the sale an operator assigned it to
	By        string     // that operator
	At        *time.Time // when
	Delivered *time.Time // when its kiosk acknowledged it
}

// Payment returns the M-Pesa payment the hub holds under id (an STK
// result or a C2B confirmation), with its assignment if any.
func (s *Store) Payment(ctx context.Context, id int64) (Assignment, error) {
	as, err := s.payments(ctx, `c.id = $1`, id)
	if err != nil {
		return Assignment{}, err
	}
	if len(as) == 0 {
		return Assignment{}, fmt.Errorf("M-Pesa payment %d: %w", id, ErrNoPayment)
	}
	return as[0], nil
}

// Assigned lists, newest assignment first, at most limit payments
// operators assigned to kiosks' sales.
func (s *Store) Assigned(ctx context.Context, limit int) ([]Assignment, error) {
	return s.payments(ctx, `c.assigned_at IS NOT NULL ORDER BY c.assigned_at DESC, c.id DESC LIMIT $1`, limit)
}

func (s *Store) payments(ctx context.Context, where string, arg any) ([]Assignment, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.kind, c.key, c.ref, c.amount_minor, c.result_code, c.source, c.allowed, c.received_at,
			coalesce(c.kiosk_id, ''), coalesce(c.assigned_txn, ''), coalesce(c.assigned_by, ''), c.assigned_at, m.acked_at
		FROM mpesa_callbacks c LEFT JOIN messages m ON m.id = c.message_id
		WHERE c.kind <> 'c2b_validation' AND `+where, arg)
	if err != nil {
		return nil, fmt.Errorf("M-Pesa payments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Assignment, error) {
		var a Assignment
		err := r.Scan(&a.ID, &a.Kind, &a.Key, &a.Ref, &a.Amount.Minor, &a.Code, &a.Source, &a.Allowed, &a.Received,
			&a.Kiosk, &a.Txn, &a.By, &a.At, &a.Delivered)
		a.Amount.Currency = "KES"
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("M-Pesa payments: %w", err)
	}
	return out, nil
}

// Sale is a kiosk's M-Pesa sale as the kiosk reported it.
type Sale struct {
	Kiosk   string
	Txn     string
	Mode    payment.Mode
	Status  payment.Status
	Amount  payment.Money
	Created *time.Time
}

// AssignableSales lists the fleet's M-Pesa sales of the last week that
// are not paid, those of amount minor first, then the newest; at most
// limit. An operator picks the one a payment pays from them.
func (s *Store) AssignableSales(ctx context.Context, minor int64, limit int) ([]Sale, error) {
	rows, err := s.pool.Query(ctx, `SELECT kiosk_id, txn_id, mode, status, amount_minor, currency, created_at FROM txns
		WHERE rail = 'mpesa' AND status <> 'approved' AND updated_at > now() - interval '7 days'
		ORDER BY amount_minor = $1 DESC, created_at DESC NULLS LAST, kiosk_id, txn_id LIMIT $2`, minor, limit)
	if err != nil {
		return nil, fmt.Errorf("M-Pesa sales: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sale, error) {
		var x Sale
		err := r.Scan(&x.Kiosk, &x.Txn, &x.Mode, &x.Status, &x.Amount.Minor, &x.Amount.Currency, &x.Created)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("M-Pesa sales: %w", err)
	}
	return out, nil
}

// AssignPayment assigns unmatched payment id to sale txn of kiosk, on
// operator's word: in one transaction it records the assignment, queues
// the payment for that kiosk (a MessageMpesaAssign, delivered and
// acknowledged like a routed callback, again after a reconnect) and
// notifies the replicas. The kiosk's M-Pesa rail then pays the sale with
// it. Refused, with the specifics, when the payment is unknown, was
// routed or assigned before, cannot be a payment (a failed STK result, a
// body that did not decode); when the kiosk is unknown or revoked; when
// the kiosk reported no M-Pesa sale txn, or reported it paid.
func (s *Store) AssignPayment(ctx context.Context, id int64, kiosk, txn, operator string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			return err
		}
		// Serialised with routing: a kiosk's new sale cannot claim the
		// payment meanwhile. routeLock taken exclusively (every other
		// router takes it shared), not the payment's key: an operator's
		// assignment is rare, and the key of an STK result, a reference
		// or an amount need not be worked out again here. route takes
		// the kiosk's message lock, so the kiosk's messages still commit
		// in the order of their ids.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, routeLock); err != nil {
			return err
		}
		var (
			m                MpesaMessage
			key, code        string
			body             []byte
			owner, aTxn, aBy *string
			aAt              *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT kind, key, result_code, body, source, allowed, kiosk_id, assigned_txn, assigned_by, assigned_at
			FROM mpesa_callbacks WHERE id = $1 AND kind <> 'c2b_validation' FOR UPDATE`, id).
			Scan(&m.Kind, &key, &code, &body, &m.Source, &m.Allowed, &owner, &aTxn, &aBy, &aAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return refuse(ErrNoPayment, "no unmatched M-Pesa payment %d at the hub", id)
		}
		if err != nil {
			return err
		}
		switch {
		case aTxn != nil:
			return refuse(ErrAssigned, "payment %s is already assigned to %s sale %s by %s at %s", key, *owner, *aTxn, *aBy,
				aAt.Format("2006-01-02 15:04:05 MST"))
		case owner != nil:
			return refuse(ErrAssigned, "payment %s already reached kiosk %s, whose sale it names", key, *owner)
		case body == nil:
			return refuse(ErrNotAssignable, "payment %s: Daraja's message could not be read; settle it from the M-Pesa statement", key)
		case m.Kind == CallbackSTK && code != "0":
			return refuse(ErrNotAssignable, "STK result %s is no payment (result code %s)", key, code)
		}
		var revoked bool
		err = tx.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM kiosks WHERE id = $1`, kiosk).Scan(&revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return refuse(ErrNoKiosk, "no kiosk %s at the hub", kiosk)
		}
		if err != nil {
			return err
		}
		if revoked {
			return refuse(ErrRevoked, "kiosk %s is revoked: it connects no more", kiosk)
		}
		var status string
		err = tx.QueryRow(ctx, `SELECT status FROM txns WHERE kiosk_id = $1 AND txn_id = $2 AND rail = 'mpesa'`, kiosk, txn).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return refuse(ErrNoSale, "kiosk %s reported no M-Pesa sale %s", kiosk, txn)
		}
		if err != nil {
			return err
		}
		if payment.Status(status) == payment.StatusApproved {
			return refuse(ErrSalePaid, "sale %s at %s is already paid: this payment is a refund to make, not a payment of it", txn, kiosk)
		}
		m.Body = body
		if err := route(ctx, tx, id, kiosk, MessageMpesaAssign, MpesaAssignment{MpesaMessage: m, Txn: txn, By: operator}); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE mpesa_callbacks SET assigned_txn = $2, assigned_by = $3, assigned_at = now() WHERE id = $1`,
			id, txn, operator)
		return err
	})
	var ae *AssignError
	if err != nil && !errors.As(err, &ae) {
		return fmt.Errorf("assign M-Pesa payment %d to %s sale %s: %w", id, kiosk, txn, err)
	}
	return err
}

// unmatchedPage shows an M-Pesa payment the hub holds and, while no sale
// claims it, the form to assign it to a kiosk's sale, with the fleet's
// unpaid M-Pesa sales (those of its amount first) to pick from.
func (s *Server) unmatchedPage(w http.ResponseWriter, r *http.Request, sess Session, _ string) {
	s.assignForm(w, r, sess, http.StatusOK, "", "", "")
}

func (s *Server) assignForm(w http.ResponseWriter, r *http.Request, sess Session, code int, problem, kiosk, sale string) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	p, err := s.store.Payment(r.Context(), id)
	if errors.Is(err, ErrNoPayment) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	d := page(sess, "M-Pesa payment "+p.Key)
	d["Payment"], d["Problem"], d["Kiosk"], d["Sale"] = p, problem, kiosk, sale
	if p.Kiosk == "" {
		ks, err := s.store.Kiosks(r.Context())
		if err != nil {
			s.fail(w, err)
			return
		}
		sales, err := s.store.AssignableSales(r.Context(), p.Amount.Minor, 200)
		if err != nil {
			s.fail(w, err)
			return
		}
		d["Kiosks"], d["Sales"] = ks, sales
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	s.render(w, "unmatched.html", d)
}

// assign is the assign form's POST: the payment goes to the kiosk's sale
// (AssignPayment), or the form comes back saying why not.
func (s *Server) assign(w http.ResponseWriter, r *http.Request, sess Session, _ string) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	kiosk := strings.TrimSpace(r.PostFormValue("kiosk"))
	sale := mpesa.NormalizeReference(r.PostFormValue("sale"))
	if kiosk == "" || sale == "" || len(kiosk) > 64 || len(sale) > 64 {
		s.assignForm(w, r, sess, http.StatusBadRequest, "To assign the payment, pick a kiosk and a sale.", kiosk, sale)
		return
	}
	err = s.store.AssignPayment(r.Context(), id, kiosk, sale, sess.Operator)
	var ae *AssignError
	switch {
	case errors.As(err, &ae):
		code := http.StatusConflict
		if errors.Is(err, ErrNoPayment) || errors.Is(err, ErrNoKiosk) || errors.Is(err, ErrNoSale) {
			code = http.StatusNotFound
		}
		s.log.Info("hub dashboard: assignment refused", "operator", sess.Operator, "payment", id, "kiosk", kiosk, "sale", sale, "why", ae.Msg)
		s.assignForm(w, r, sess, code, ae.Msg+".", kiosk, sale)
		return
	case err != nil:
		s.fail(w, err)
		return
	}
	s.log.Info("hub dashboard: M-Pesa payment assigned", "operator", sess.Operator, "payment", id, "kiosk", kiosk, "sale", sale)
	http.Redirect(w, r, "/unmatched/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}
