package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"paydesk/hub/wire"
	"paydesk/mpesa"
	"paydesk/payment"
)

// Kinds of M-Pesa callback the hub stores, and the kinds of the messages
// it routes them to kiosks in.
const (
	CallbackSTK           = mpesa.HubSTK
	CallbackC2BConfirm    = mpesa.HubC2BConfirmation
	CallbackC2BValidation = "c2b_validation"

	// MessageMpesa is the kind of a message carrying a Daraja callback
	// to the kiosk that owns it; its body is a MpesaMessage.
	MessageMpesa = "mpesa.callback"
)

// notifyChannel is the PostgreSQL channel a replica that queues a message
// notifies, with the kiosk's id as payload; every replica listens, and the
// one holding the kiosk's link sends it at once.
const notifyChannel = "paydesk_messages"

// Routing a callback and storing the events that route it lock the
// callback's key (queueRouteLocks: a CheckoutRequestID, a reference, or
// a till payment's amount), so a callback and the event naming its kiosk,
// arriving together on two replicas, cannot miss each other; those of
// other keys do not wait for each other. Each takes routeLock shared
// first: whatever must route with nothing else routing (an operator's
// assignment, AssignPayment) takes it exclusively.
const routeLock = 0x70647270 // "pdrp"

// Advisory lock spaces (the first of pg_advisory_xact_lock's two keys):
// a routing key's, and a kiosk's messages'.
const (
	routeKeySpace = 0x70647274 // "pdrt"
	messageSpace  = 0x7064716d // "pdqm"
)

// lockKey is key's advisory lock within a space: its FNV-1a hash.
// Two keys may share a lock, which costs a wait, never a miss.
func lockKey(kind, key string) int32 {
	h := fnv.New32a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return int32(h.Sum32())
}

// queueRouteLocks queues the two statements that take routeLock shared,
// then the locks of the CheckoutRequestIDs, sale references and till
// amounts in ascending order (so two transactions sharing keys cannot
// deadlock).
//
// A till payment (no reference) is matched by amount (tillOwner), so its
// key is its amount: lockKey("till", amount), taken by the callback and by
// every batch that records a paybill/till sale of that amount. Without it
// a payment and the sale it pays, stored together, each miss the other
// (neither sees the other's uncommitted row), and two kiosks' sales of
// one amount stored together both take a waiting payment (each sees only
// its own sale). Not routeLock taken exclusively: in a fleet of tills
// every payment is one of these, and it would stop every replica's
// ingest while it waits.
func queueRouteLocks(b *pgx.Batch, checkouts, refs []string, tills []int64) {
	keys := make([]int32, 0, len(checkouts)+len(refs)+len(tills))
	for _, c := range checkouts {
		keys = append(keys, lockKey(CallbackSTK, c))
	}
	for _, r := range refs {
		keys = append(keys, lockKey("ref", r))
	}
	for _, m := range tills {
		keys = append(keys, tillLock(m))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, routeLock)
	// unnest yields the array in its order: the locks are taken in it.
	b.Queue(`SELECT count(pg_advisory_xact_lock($1, k)) FROM unnest($2::int4[]) AS k`, routeKeySpace, keys)
}

// tillLock is the routing key of till payments and paybill/till sales of
// amount minor.
func tillLock(minor int64) int32 { return lockKey("till", strconv.FormatInt(minor, 10)) }

// MpesaMessage is a Daraja callback as the hub hands it to a kiosk: the
// body as Daraja posted it, where from, and whether the allow-list holds
// that address.
type MpesaMessage struct {
	Kind    string          `json:"kind"` // CallbackSTK or CallbackC2BConfirm
	Body    json.RawMessage `json:"body"`
	Source  string          `json:"source"`
	Allowed bool            `json:"allowed"`
}

// Callback is one Daraja callback as the hub received it.
type Callback struct {
	Kind    string
	Key     string    // CheckoutRequestID or TransID
	Ref     string    // normalised bill reference (C2B)
	Minor   int64     // amount paid, 0 if none
	Code    string    // ResultCode (STK)
	Paid    time.Time // TransTime (C2B), zero if none
	Body    []byte    // as received, for the kiosk
	Raw     []byte    // phone numbers masked, for the record
	Source  string
	Allowed bool
}

// StoredCallback is the outcome of StoreCallback.
type StoredCallback struct {
	ID        int64
	Duplicate bool   // stored before: nothing new queued
	Kiosk     string // the kiosk it was routed to, "" if none
}

// StoreCallback stores a callback once per kind and key (a repeat only
// counts as a duplicate) and, for an STK result or a C2B confirmation,
// routes it to the kiosk that reported its sale: a message is queued for
// that kiosk and the replicas are notified, all in one transaction. It
// returns once the callback is durable.
func (s *Store) StoreCallback(ctx context.Context, c Callback) (StoredCallback, error) {
	var out StoredCallback
	err := s.storeCallback(ctx, c, &out)
	if err != nil {
		return StoredCallback{}, fmt.Errorf("store %s callback %s: %w", c.Kind, c.Key, err)
	}
	return out, nil
}

// storeCallback is StoreCallback's transaction in two round trips to
// PostgreSQL, under load what Daraja and the kiosk wait for: the BEGIN,
// the locks, the insert and the question of its kiosk in one; the route
// (or the duplicate's kiosk) and the COMMIT in the other.
func (s *Store) storeCallback(ctx context.Context, c Callback, out *StoredCallback) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection left inside a transaction is closed by the pool on
	// release, never reused.
	defer conn.Release()
	defer func() {
		if err != nil {
			conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	// Daraja is answered 200 once this commits: the commit must be in
	// the write-ahead log by then, whatever synchronous_commit the
	// server or role has (as Ingest does for the kiosks' events).
	b.Queue(`SET LOCAL synchronous_commit = on`)
	var checkouts, refs []string
	var tills []int64
	switch {
	case c.Kind == CallbackSTK:
		checkouts = []string{c.Key}
	case c.Kind == CallbackC2BConfirm && c.Ref != "":
		refs = []string{c.Ref}
	case c.Kind == CallbackC2BConfirm && c.Minor > 0:
		tills = []int64{c.Minor} // matched by amount: see queueRouteLocks
	}
	queueRouteLocks(b, checkouts, refs, tills)
	var paid *time.Time
	if !c.Paid.IsZero() {
		paid = &c.Paid
	}
	b.Queue(`INSERT INTO mpesa_callbacks (kind, key, ref, amount_minor, result_code, raw, source, allowed, body, paid_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (kind, key) DO UPDATE SET duplicates = mpesa_callbacks.duplicates + 1
		RETURNING id, xmax = 0`, c.Kind, c.Key, c.Ref, c.Minor, c.Code, c.Raw, c.Source, c.Allowed, c.Body, paid)
	// Its kiosk, asked at once (a duplicate uses no answer). An
	// unreadable callback (no body) is kept for the record, never routed.
	q, args, routable := routeQuery(c.Kind, c.Key, c.Ref, c.Minor, paid)
	routable = routable && c.Body != nil
	if routable {
		b.Queue(q, args...)
	}
	var inserted bool
	var owners []string
	err = func() error {
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		for range 4 { // the BEGIN, the SET and the two locks
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if err := br.QueryRow().Scan(&out.ID, &inserted); err != nil {
			return err
		}
		if routable {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			if owners, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		return br.Close()
	}()
	if err != nil {
		return err
	}
	b = &pgx.Batch{}
	switch {
	case !inserted:
		out.Duplicate = true
		b.Queue(`SELECT coalesce(kiosk_id, '') FROM mpesa_callbacks WHERE id = $1`, out.ID).QueryRow(func(r pgx.Row) error {
			return r.Scan(&out.Kiosk)
		})
	case routable && len(owners) == 1:
		out.Kiosk = owners[0]
		if err := queueRoute(b, out.ID, out.Kiosk, MessageMpesa, MpesaMessage{Kind: c.Kind, Body: c.Body, Source: c.Source, Allowed: c.Allowed}); err != nil {
			return err
		}
	}
	b.Queue(`COMMIT`)
	return conn.SendBatch(ctx, b).Close()
}

// routeOf finds the kiosk a callback belongs to: for an STK result, the
// kiosk that journaled its CheckoutRequestID; for a C2B payment, the
// kiosk that journaled a sale with its bill reference, or, for one with
// no reference (Buy Goods), the kiosk of the one open paybill/till sale
// of its amount (see tillOwner). "" when none, or when more than one
// kiosk or sale claims it (left for head office).
func routeOf(ctx context.Context, tx pgx.Tx, kind, key, ref string, minor int64, paid *time.Time) (string, error) {
	q, args, ok := routeQuery(kind, key, ref, minor, paid)
	if !ok {
		return "", nil
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return "", err
	}
	ks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ks) != 1 {
		return "", err
	}
	return ks[0], nil
}

// routeQuery is routeOf's query: the kiosks (two at most) that claim a
// callback; ok is false for a callback nothing routes.
func routeQuery(kind, key, ref string, minor int64, paid *time.Time) (q string, args []any, ok bool) {
	switch {
	case kind == CallbackSTK:
		return `SELECT DISTINCT kiosk_id FROM events WHERE rail = 'mpesa' AND result ? 'remote_id' AND result->>'remote_id' = $1 LIMIT 2`, []any{key}, true
	case kind == CallbackC2BConfirm && ref != "":
		return `SELECT kiosk_id FROM txns WHERE rail = 'mpesa' AND txn_id = $1 LIMIT 2`, []any{ref}, true
	case kind == CallbackC2BConfirm && minor > 0:
		q, args := tillOwner(minor, paid)
		return q, args, true
	}
	return "", nil, false
}

// tillSkew is how much earlier than its sale a till payment may be
// stamped and still pay it, as a kiosk allows (mpesa's matchTill):
// Daraja's TransTime has whole seconds and is another clock.
const tillSkew = 2 * time.Minute

// tillOwner is the query that matches a payment without an account
// reference (Buy Goods has none; a paybill customer may leave it empty)
// as a kiosk matches one to its own sales: the one open paybill/till sale
// across the fleet, as the kiosks reported them, of exactly that amount,
// that existed when it was paid. Two or more such sales (at one kiosk or
// at several) are ambiguous and no sale of that amount names none: both
// leave it unmatched for head office, never guessed. The kiosk matches it
// again against its own sales when it arrives. Its caller holds the
// amount's lock (tillLock).
func tillOwner(minor int64, paid *time.Time) (string, []any) {
	return `SELECT kiosk_id FROM txns
		WHERE rail = 'mpesa' AND mode = 'c2b' AND amount_minor = $1
		AND status NOT IN ('approved', 'declined', 'cancelled', 'timed_out', 'failed')
		AND ($2::timestamptz IS NULL OR created_at IS NULL OR created_at - $3::interval <= $2)
		LIMIT 2`, []any{minor, paid, tillSkew}
}

// route queues callback id's message (of kind, body m) for kiosk and
// notifies the replicas (the notification leaves at commit). It holds the
// lock of the kiosk's messages to the commit, so a kiosk's routed messages
// commit in the order of their ids, and a link that has sent up to id N
// never misses a lower one committed later.
func route(ctx context.Context, tx pgx.Tx, id int64, kiosk, kind string, m any) error {
	b := &pgx.Batch{}
	if err := queueRoute(b, id, kiosk, kind, m); err != nil {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// queueRoute queues route's statements: the lock, the message and the
// callback's route, the notification (one round trip).
func queueRoute(b *pgx.Batch, id int64, kiosk, kind string, m any) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, messageSpace, lockKey("kiosk", kiosk))
	b.Queue(`WITH m AS (INSERT INTO messages (kiosk_id, kind, body) VALUES ($2, $3, $4) RETURNING id)
		UPDATE mpesa_callbacks SET kiosk_id = $2, message_id = (SELECT id FROM m), routed_at = now(), body = NULL WHERE id = $1`,
		id, kiosk, kind, body)
	b.Queue(`SELECT pg_notify($1, $2)`, notifyChannel, kiosk)
	return nil
}

// routeWaiting routes the callbacks waiting for no kiosk that the new
// events of kiosk claim: STK results by CheckoutRequestID, C2B payments by
// a new sale's reference, and a recent till payment without a reference
// by a new paybill/till sale of its amount (when it is then the only
// open one: see tillOwner). Called inside Ingest's transaction.
func routeWaiting(ctx context.Context, tx pgx.Tx, kiosk string, checkouts, refs []string) error {
	if len(checkouts) == 0 && len(refs) == 0 {
		return nil
	}
	// Ingest holds these keys' locks already (and the amounts' of its
	// new paybill/till sales).
	rows, err := tx.Query(ctx, waitingQuery, checkouts, refs, kiosk, tillWaiting)
	if err != nil {
		return err
	}
	type waiting struct {
		id             int64
		kind, key, ref string
		minor          int64
		paid           *time.Time
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (waiting, error) {
		var w waiting
		return w, r.Scan(&w.id, &w.kind, &w.key, &w.ref, &w.minor, &w.paid)
	})
	if err != nil {
		return err
	}
	for _, w := range ws {
		// The whole fleet is asked again: a reference two kiosks claim
		// stays unmatched.
		owner, err := routeOf(ctx, tx, w.kind, w.key, w.ref, w.minor, w.paid)
		if err != nil {
			return err
		}
		if owner != kiosk {
			continue
		}
		var m MpesaMessage
		var raw []byte
		if err := tx.QueryRow(ctx, `SELECT body, source, allowed FROM mpesa_callbacks WHERE id = $1`,
			w.id).Scan(&raw, &m.Source, &m.Allowed); err != nil {
			return err
		}
		m.Kind, m.Body = w.kind, raw
		if err := route(ctx, tx, w.id, kiosk, MessageMpesa, m); err != nil {
			return err
		}
	}
	return nil
}

// waitingQuery is routeWaiting's: the unrouted, readable callbacks that
// CheckoutRequestIDs $1 or references $2 name, and the recent till
// payments of the amounts of kiosk $3's paybill/till sales $2.
const waitingQuery = `SELECT id, kind, key, ref, amount_minor, paid_at FROM mpesa_callbacks
	WHERE kiosk_id IS NULL AND body IS NOT NULL AND (kind = 'stk' AND key = ANY($1) OR kind = 'c2b_confirmation' AND ref = ANY($2)
		OR kind = 'c2b_confirmation' AND ref = '' AND received_at > now() - $4::interval AND amount_minor IN (
			SELECT amount_minor FROM txns WHERE kiosk_id = $3 AND rail = 'mpesa' AND mode = 'c2b' AND txn_id = ANY($2)))
	ORDER BY id`

// tillWaiting is how long a till payment no sale claimed is matched again
// against the new sales kiosks report: a sale replicated after its payment
// reached the hub. Later, head office assigns it.
const tillWaiting = 10 * time.Minute

// routingKeys are what a batch's events tell the router: the
// CheckoutRequestIDs and the sale references of M-Pesa transactions, and
// the amounts of its paybill/till sales (which till payments match).
func routingKeys(evs []wire.Event, fresh map[int64]bool) (checkouts, refs []string, tills []int64) {
	for _, ev := range evs {
		if !fresh[ev.Seq] || ev.Rail != payment.RailMPesa || ev.Kind != payment.KindTransition {
			continue
		}
		if ev.Result != nil && ev.Result.RemoteID != "" {
			checkouts = append(checkouts, ev.Result.RemoteID)
		}
		if ev.Status == payment.StatusCreated {
			refs = append(refs, ev.TxnID)
			if ev.Mode == payment.ModeC2B && ev.Minor > 0 {
				tills = append(tills, ev.Minor)
			}
		}
	}
	return checkouts, refs, tills
}

// Unmatched is a Daraja payment that no kiosk's sale claims, for head
// office to settle.
type Unmatched struct {
	ID       int64
	Kind     string
	Key      string // CheckoutRequestID or receipt (TransID)
	Ref      string
	Amount   payment.Money
	Code     string
	Source   string
	Allowed  bool
	Received time.Time
}

// UnmatchedCallbacks lists, newest first, at most limit STK results and
// C2B confirmations routed to no kiosk.
func (s *Store) UnmatchedCallbacks(ctx context.Context, limit int) ([]Unmatched, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, kind, key, ref, amount_minor, result_code, source, allowed, received_at
		FROM mpesa_callbacks WHERE kiosk_id IS NULL AND kind <> 'c2b_validation'
		ORDER BY received_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("unmatched M-Pesa payments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Unmatched, error) {
		var u Unmatched
		err := r.Scan(&u.ID, &u.Kind, &u.Key, &u.Ref, &u.Amount.Minor, &u.Code, &u.Source, &u.Allowed, &u.Received)
		u.Amount.Currency = "KES"
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("unmatched M-Pesa payments: %w", err)
	}
	return out, nil
}

// saleOpenQuery is SaleOpen's: the statuses of the M-Pesa sales (two at
// most) of reference $1.
const saleOpenQuery = `SELECT status FROM txns WHERE rail = 'mpesa' AND txn_id = $1 LIMIT 2`

// SaleOpen answers a C2B validation from what the kiosks reported: known
// is whether exactly one kiosk reported an M-Pesa sale with reference ref,
// closed whether that sale has a final status.
func (s *Store) SaleOpen(ctx context.Context, ref string) (known, closed bool, err error) {
	rows, err := s.pool.Query(ctx, saleOpenQuery, ref)
	if err != nil {
		return false, false, fmt.Errorf("look up sale %s: %w", ref, err)
	}
	sts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, false, fmt.Errorf("look up sale %s: %w", ref, err)
	}
	if len(sts) != 1 {
		return false, false, nil
	}
	return true, payment.Status(sts[0]).Final(), nil
}
