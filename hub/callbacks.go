package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
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
// callback's key (queueRouteLocks), so a callback and the event naming its
// kiosk, arriving together on two replicas, cannot miss each other; those
// of other keys do not wait for each other. Each takes routeLock shared
// first: whatever must route with nothing else routing takes it
// exclusively.
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
// then the locks of the CheckoutRequestIDs and sale references in
// ascending order (so two transactions sharing keys cannot deadlock).
func queueRouteLocks(b *pgx.Batch, checkouts, refs []string) {
	keys := make([]int32, 0, len(checkouts)+len(refs))
	for _, c := range checkouts {
		keys = append(keys, lockKey(CallbackSTK, c))
	}
	for _, r := range refs {
		keys = append(keys, lockKey("ref", r))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, routeLock)
	// unnest yields the array in its order: the locks are taken in it.
	b.Queue(`SELECT count(pg_advisory_xact_lock($1, k)) FROM unnest($2::int4[]) AS k`, routeKeySpace, keys)
}

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
	Key     string // CheckoutRequestID or TransID
	Ref     string // normalised bill reference (C2B)
	Minor   int64  // amount paid, 0 if none
	Code    string // ResultCode (STK)
	Body    []byte // as received, for the kiosk
	Raw     []byte // phone numbers masked, for the record
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
	switch {
	case c.Kind == CallbackSTK:
		checkouts = []string{c.Key}
	case c.Kind == CallbackC2BConfirm && c.Ref != "":
		refs = []string{c.Ref}
	}
	queueRouteLocks(b, checkouts, refs)
	b.Queue(`INSERT INTO mpesa_callbacks (kind, key, ref, amount_minor, result_code, raw, source, allowed, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (kind, key) DO UPDATE SET duplicates = mpesa_callbacks.duplicates + 1
		RETURNING id, xmax = 0`, c.Kind, c.Key, c.Ref, c.Minor, c.Code, c.Raw, c.Source, c.Allowed, c.Body)
	// Its kiosk, asked at once (a duplicate or a validation uses no
	// answer).
	q, arg, routable := routeQuery(c.Kind, c.Key, c.Ref)
	if routable {
		b.Queue(q, arg)
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
	case c.Kind != CallbackC2BValidation && len(owners) == 1:
		out.Kiosk = owners[0]
		if err := queueRoute(b, out.ID, out.Kiosk, MpesaMessage{Kind: c.Kind, Body: c.Body, Source: c.Source, Allowed: c.Allowed}); err != nil {
			return err
		}
	}
	b.Queue(`COMMIT`)
	return conn.SendBatch(ctx, b).Close()
}

// routeOf finds the kiosk a callback belongs to: for an STK result, the
// kiosk that journaled its CheckoutRequestID; for a C2B payment, the
// kiosk that journaled a sale with its bill reference. "" when none, or
// when more than one kiosk claims it (left for head office).
func routeOf(ctx context.Context, tx pgx.Tx, kind, key, ref string) (string, error) {
	q, arg, ok := routeQuery(kind, key, ref)
	if !ok {
		return "", nil
	}
	rows, err := tx.Query(ctx, q, arg)
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
func routeQuery(kind, key, ref string) (q, arg string, ok bool) {
	switch {
	case kind == CallbackSTK:
		return `SELECT DISTINCT kiosk_id FROM events WHERE rail = 'mpesa' AND result ? 'remote_id' AND result->>'remote_id' = $1 LIMIT 2`, key, true
	case kind == CallbackC2BConfirm && ref != "":
		return `SELECT kiosk_id FROM txns WHERE rail = 'mpesa' AND txn_id = $1 LIMIT 2`, ref, true
	}
	return "", "", false
}

// route queues callback id's message for kiosk and notifies the replicas
// (the notification leaves at commit). It holds the lock of the kiosk's
// messages to the commit, so a kiosk's routed messages commit in the order
// of their ids, and a link that has sent up to id N never misses a lower
// one committed later.
func route(ctx context.Context, tx pgx.Tx, id int64, kiosk string, m MpesaMessage) error {
	b := &pgx.Batch{}
	if err := queueRoute(b, id, kiosk, m); err != nil {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// queueRoute queues route's statements: the lock, the message and the
// callback's route, the notification (one round trip).
func queueRoute(b *pgx.Batch, id int64, kiosk string, m MpesaMessage) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, messageSpace, lockKey("kiosk", kiosk))
	b.Queue(`WITH m AS (INSERT INTO messages (kiosk_id, kind, body) VALUES ($2, $3, $4) RETURNING id)
		UPDATE mpesa_callbacks SET kiosk_id = $2, message_id = (SELECT id FROM m), routed_at = now(), body = NULL WHERE id = $1`,
		id, kiosk, MessageMpesa, body)
	b.Queue(`SELECT pg_notify($1, $2)`, notifyChannel, kiosk)
	return nil
}

// routeWaiting routes the callbacks waiting for no kiosk that the new
// events of kiosk claim: STK results by CheckoutRequestID, C2B payments by
// a new sale's reference. Called inside Ingest's transaction.
func routeWaiting(ctx context.Context, tx pgx.Tx, kiosk string, checkouts, refs []string) error {
	if len(checkouts) == 0 && len(refs) == 0 {
		return nil
	}
	// Ingest holds these keys' locks already.
	rows, err := tx.Query(ctx, `SELECT id, kind, key, ref FROM mpesa_callbacks
		WHERE kiosk_id IS NULL AND (kind = 'stk' AND key = ANY($1) OR kind = 'c2b_confirmation' AND ref = ANY($2))
		ORDER BY id`, checkouts, refs)
	if err != nil {
		return err
	}
	type waiting struct {
		id             int64
		kind, key, ref string
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (waiting, error) {
		var w waiting
		return w, r.Scan(&w.id, &w.kind, &w.key, &w.ref)
	})
	if err != nil {
		return err
	}
	for _, w := range ws {
		// The whole fleet is asked again: a reference two kiosks claim
		// stays unmatched.
		owner, err := routeOf(ctx, tx, w.kind, w.key, w.ref)
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
		if err := route(ctx, tx, w.id, kiosk, m); err != nil {
			return err
		}
	}
	return nil
}

// routingKeys are what a batch's events tell the router: the
// CheckoutRequestIDs and the sale references of M-Pesa transactions.
func routingKeys(evs []wire.Event, fresh map[int64]bool) (checkouts, refs []string) {
	for _, ev := range evs {
		if !fresh[ev.Seq] || ev.Rail != payment.RailMPesa || ev.Kind != payment.KindTransition {
			continue
		}
		if ev.Result != nil && ev.Result.RemoteID != "" {
			checkouts = append(checkouts, ev.Result.RemoteID)
		}
		if ev.Status == payment.StatusCreated {
			refs = append(refs, ev.TxnID)
		}
	}
	return checkouts, refs
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

// SaleOpen answers a C2B validation from what the kiosks reported: known
// is whether exactly one kiosk reported an M-Pesa sale with reference ref,
// closed whether that sale has a final status.
func (s *Store) SaleOpen(ctx context.Context, ref string) (known, closed bool, err error) {
	rows, err := s.pool.Query(ctx, `SELECT status FROM txns WHERE rail = 'mpesa' AND txn_id = $1 LIMIT 2`, ref)
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
