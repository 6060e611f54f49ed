// Package hub is the fleet service kiosks connect out to: it authenticates
// each kiosk by its own token, stores every journal event the kiosk sends
// exactly once in PostgreSQL, and holds messages for kiosks. It keeps no
// state of its own, so replicas can run side by side on one database.
//
// A Store is the database; a Server is the kiosks' link over WebSocket.
// The kiosk side of the link is package hub/link; the frames are in
// hub/wire.
package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"paydesk/hub/wire"
	"paydesk/payment"
)

// Errors of the store. Callers test them with errors.Is.
var (
	// ErrBadToken is returned for a token that is unknown or revoked.
	ErrBadToken = errors.New("unknown or revoked kiosk token")
	// ErrRevoked is returned when a kiosk's token was revoked while it
	// was connected.
	ErrRevoked = errors.New("kiosk revoked")
	// ErrKioskExists is returned by AddKiosk for an id already in use.
	ErrKioskExists = errors.New("kiosk already exists")
	// ErrNoKiosk is returned for a kiosk id the hub does not know (or,
	// for RevokeKiosk, one already revoked).
	ErrNoKiosk = errors.New("no such kiosk")
	// ErrBadKioskID is returned for an id that is not 1 to 64 letters,
	// digits, '.', '_' or '-'.
	ErrBadKioskID = errors.New("kiosk id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	// ErrNoMessage is returned by AckMessage for a message that is not
	// this kiosk's or does not exist.
	ErrNoMessage = errors.New("no such message for this kiosk")
)

// tokenPrefix marks a paydesk hub token, so one found in a file is
// recognisable.
const tokenPrefix = "pdh_"

// Store is the hub's PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	// ingest holds a token per batch being stored: at most a third of
	// the pool's connections store kiosks' batches at once, so a fleet
	// catching up never leaves a Daraja callback, a message's delivery or
	// the dashboard waiting for a connection.
	ingest chan struct{}
	now    func() time.Time
	// bcryptCost hashes operators' passwords (lowered by tests).
	bcryptCost int
}

// Open connects a serving hub to the database at dsn and applies the
// embedded migrations (under an advisory lock, so replicas may start
// together). Its pool is made ahead: see serving.
func Open(ctx context.Context, dsn string) (*Store, error) { return open(ctx, dsn, true) }

// OpenForCommand is Open for a one-shot command ('hub report', 'hub
// kiosk add', …): a pool of at most two connections, none made ahead.
func OpenForCommand(ctx context.Context, dsn string) (*Store, error) { return open(ctx, dsn, false) }

func open(ctx context.Context, dsn string, serving bool) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, errors.New("hub: the database URL does not parse (postgres://user@host:port/db?sslmode=…)")
	}
	if !serving {
		cfg.MaxConns, cfg.MinConns = 2, 0
	} else if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default, max(4, CPUs), is few for a hub: a link stores
		// a batch while others' callbacks and messages wait.
		cfg.MaxConns = max(cfg.MaxConns, 12)
	}
	if serving && !strings.Contains(dsn, "pool_min_conns") {
		// Connections made ahead: one made while a callback waits costs
		// it a fork and a login at PostgreSQL, 100 ms on a busy server.
		cfg.MinConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("hub: connect to the database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("hub: connect to the database: %w", err)
	}
	if _, err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool, ingest: make(chan struct{}, max(1, cfg.MaxConns/3)), now: time.Now, bcryptCost: bcrypt.DefaultCost}, nil
}

// Close closes the connections.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// AddKiosk registers a kiosk and returns its token. The token is shown
// this once: the hub keeps only its SHA-256 (a token is 256 random bits,
// so a fast hash is enough to make a stolen table useless).
func (s *Store) AddKiosk(ctx context.Context, id string) (string, error) {
	if !wire.KioskIDRE.MatchString(id) {
		return "", ErrBadKioskID
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make token: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	_, err := s.pool.Exec(ctx, `INSERT INTO kiosks (id, token_hash) VALUES ($1, $2)`, id, hashToken(token))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return "", fmt.Errorf("%s: %w", id, ErrKioskExists)
	}
	if err != nil {
		return "", fmt.Errorf("add kiosk %s: %w", id, err)
	}
	return token, nil
}

// RevokeKiosk revokes a kiosk's token: it can no longer connect, and a
// link it holds is closed at its next batch. Its events stay.
func (s *Store) RevokeKiosk(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE kiosks SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("revoke kiosk %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", id, ErrNoKiosk)
	}
	return nil
}

// Kiosk is a kiosk as the hub knows it.
type Kiosk struct {
	ID        string
	Created   time.Time
	Revoked   *time.Time
	AckedSeq  int64
	LastSeen  *time.Time
	Events    int64
	TokenHash []byte
	// What the kiosk said in its last hello: its paydesk version, its
	// journal's last sequence then, each rail's health, and when.
	Version    string
	JournalSeq int64
	Rails      map[string]string
	HelloAt    *time.Time
}

// Lag is how many events of the kiosk's journal the hub did not have when
// the kiosk last reported its journal (its hello, or a status frame while
// connected), less those stored since.
func (k Kiosk) Lag() int64 { return max(0, k.JournalSeq-k.AckedSeq) }

// Kiosks lists the registered kiosks by id.
func (s *Store) Kiosks(ctx context.Context) ([]Kiosk, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, created_at, revoked_at, acked_seq, last_seen, token_hash,
		(SELECT count(*) FROM events e WHERE e.kiosk_id = k.id), version, journal_seq, rails, hello_at
		FROM kiosks k ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list kiosks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Kiosk, error) {
		var k Kiosk
		err := r.Scan(&k.ID, &k.Created, &k.Revoked, &k.AckedSeq, &k.LastSeen, &k.TokenHash, &k.Events,
			&k.Version, &k.JournalSeq, &k.Rails, &k.HelloAt)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list kiosks: %w", err)
	}
	return out, nil
}

// Authenticate returns the kiosk a token belongs to, or ErrBadToken.
func (s *Store) Authenticate(ctx context.Context, token string) (string, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 128 {
		return "", ErrBadToken
	}
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id FROM kiosks WHERE token_hash = $1 AND revoked_at IS NULL`, hashToken(token)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrBadToken
	}
	if err != nil {
		return "", fmt.Errorf("check token: %w", err)
	}
	return id, nil
}

// Acked returns the highest journal sequence stored for kiosk.
func (s *Store) Acked(ctx context.Context, kiosk string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT acked_seq FROM kiosks WHERE id = $1`, kiosk).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%s: %w", kiosk, ErrNoKiosk)
	}
	if err != nil {
		return 0, fmt.Errorf("read acked sequence of %s: %w", kiosk, err)
	}
	return seq, nil
}

// Ingest stores a batch of kiosk's journal events (validated with
// wire.Validate) in one transaction: each (kiosk, seq) once, so a replayed
// batch changes nothing. The transactions the new transitions touch are
// brought up to date. It returns the highest sequence now stored for the
// kiosk and how many events were new. A revoked kiosk gets ErrRevoked.
func (s *Store) Ingest(ctx context.Context, kiosk string, evs []wire.Event) (acked int64, added int, err error) {
	if err := wire.Validate(evs); err != nil {
		return 0, 0, err
	}
	n := len(evs)
	seqs, ats := make([]int64, n), make([]time.Time, n)
	kinds, rails, txns, statuses, peers, modes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	minors, currencies, details, flags := make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	results, plans, raws := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	for i, ev := range evs {
		seqs[i], ats[i], kinds[i], rails[i], txns[i] = ev.Seq, ev.Time, string(ev.Kind), string(ev.Rail), ev.TxnID
		statuses[i], peers[i], modes[i], minors[i], currencies[i] = string(ev.Status), ev.Peer, string(ev.Mode), ev.Minor, ev.Currency
		details[i], flags[i], raws[i] = ev.Detail, ev.Flag, ev.Raw
		if ev.Result != nil {
			results[i], _ = json.Marshal(ev.Result)
		}
		if len(ev.Plans) > 0 {
			plans[i], _ = json.Marshal(ev.Plans)
		}
	}
	all := make(map[int64]bool, n)
	for _, ev := range evs {
		all[ev.Seq] = true
	}
	checkouts, refs, tills := routingKeys(evs, all)
	select {
	case s.ingest <- struct{}{}:
		defer func() { <-s.ingest }()
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("store %d events of %s: %w", n, kiosk, ctx.Err())
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Round trips are what a batch waits for under load: the
		// statements go in two pipelined batches (and the routing of
		// waiting callbacks, when the batch may route some).
		b := &pgx.Batch{}
		// The kiosk is told these events are stored once this commits:
		// the commit must be on disk (in the write-ahead log) by then,
		// whatever the server's or the role's synchronous_commit says. With
		// it off, a crash of PostgreSQL lost events already acknowledged.
		b.Queue(`SET LOCAL synchronous_commit = on`)
		// A batch that may route M-Pesa callbacks locks its routing
		// keys (its paybill/till sales' amounts among them) before the
		// kiosk's row, as a callback being routed locks its own key;
		// batches and callbacks of other keys go on side by side.
		routing := len(checkouts) > 0 || len(refs) > 0 || len(tills) > 0
		if routing {
			queueRouteLocks(b, checkouts, refs, tills)
		}
		// The kiosk's row, locked: one batch of a kiosk at a time, so
		// acked_seq and its transactions move in step. (NO KEY UPDATE:
		// a callback routed to this kiosk meanwhile, whose message
		// refers to the row, does not wait for the batch.)
		b.Queue(`SELECT revoked_at IS NOT NULL FROM kiosks WHERE id = $1 FOR NO KEY UPDATE`, kiosk)
		b.Queue(`INSERT INTO events (kiosk_id, seq, at, kind, rail, txn_id, status, peer, mode,
				amount_minor, currency, detail, flag, result, plans, raw)
			SELECT $1, * FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::jsonb[], $15::jsonb[], $16::bytea[])
			ORDER BY 2
			ON CONFLICT (kiosk_id, seq) DO NOTHING
			RETURNING seq`,
			kiosk, seqs, ats, kinds, rails, txns, statuses, peers, modes, minors, currencies, details, flags, results, plans, raws)
		var fresh []int64
		err := func() error {
			br := tx.SendBatch(ctx, b)
			defer br.Close()
			execs := 1
			if routing {
				execs += 2
			}
			for range execs {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			var revoked bool
			err := br.QueryRow().Scan(&revoked)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%s: %w", kiosk, ErrNoKiosk)
			}
			if err != nil {
				return err
			}
			if revoked {
				return fmt.Errorf("%s: %w", kiosk, ErrRevoked)
			}
			rows, err := br.Query()
			if err != nil {
				return err
			}
			if fresh, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
				return err
			}
			return br.Close()
		}()
		if err != nil {
			return err
		}
		added = len(fresh)
		b = &pgx.Batch{}
		queueTxns(b, kiosk, evs, fresh)
		b.Queue(`UPDATE kiosks SET acked_seq = greatest(acked_seq, $2), last_seen = now()
			WHERE id = $1 RETURNING acked_seq`, kiosk, evs[n-1].Seq).QueryRow(func(r pgx.Row) error { return r.Scan(&acked) })
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		isNew := make(map[int64]bool, len(fresh))
		for _, s := range fresh {
			isNew[s] = true
		}
		checkouts, refs, _ := routingKeys(evs, isNew)
		return routeWaiting(ctx, tx, kiosk, checkouts, refs)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store %d events of %s: %w", n, kiosk, err)
	}
	return acked, added, nil
}

// txnRow is one transaction's change from a batch.
type txnRow struct {
	id, rail, mode, currency, status string
	minor, seq                       int64
	created                          *time.Time
	updated                          time.Time
}

// queueTxns queues the statement that applies the batch's new transitions (those whose seq is in
// fresh) to the transactions table: the created transition fixes rail,
// mode, amount and creation time; the latest transition by sequence sets
// the status, whatever order batches came in.
func queueTxns(b *pgx.Batch, kiosk string, evs []wire.Event, fresh []int64) {
	isNew := make(map[int64]bool, len(fresh))
	for _, s := range fresh {
		isNew[s] = true
	}
	byID := map[string]*txnRow{}
	var order []string
	for _, ev := range evs {
		if !isNew[ev.Seq] || ev.Kind != payment.KindTransition {
			continue
		}
		r := byID[ev.TxnID]
		if r == nil {
			r = &txnRow{id: ev.TxnID, rail: string(ev.Rail)}
			byID[ev.TxnID] = r
			order = append(order, ev.TxnID)
		}
		if ev.Status == payment.StatusCreated {
			at := ev.Time
			r.created, r.mode, r.minor, r.currency, r.rail = &at, string(ev.Mode), ev.Minor, ev.Currency, string(ev.Rail)
		}
		r.status, r.seq, r.updated = string(ev.Status), ev.Seq, ev.Time
	}
	if len(order) == 0 {
		return
	}
	k := len(order)
	ids, rails, modes, currencies, statuses := make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k)
	minors, seqs := make([]int64, k), make([]int64, k)
	created, updated := make([]*time.Time, k), make([]time.Time, k)
	for i, id := range order {
		r := byID[id]
		ids[i], rails[i], modes[i], currencies[i], statuses[i] = r.id, r.rail, r.mode, r.currency, r.status
		minors[i], seqs[i], created[i], updated[i] = r.minor, r.seq, r.created, r.updated
	}
	b.Queue(`INSERT INTO txns AS t (kiosk_id, txn_id, rail, mode, amount_minor, currency, status, status_seq, created_at, updated_at)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bigint[],
			$9::timestamptz[], $10::timestamptz[])
		ON CONFLICT (kiosk_id, txn_id) DO UPDATE SET
			rail         = CASE WHEN excluded.created_at IS NOT NULL THEN excluded.rail ELSE t.rail END,
			mode         = CASE WHEN excluded.created_at IS NOT NULL THEN excluded.mode ELSE t.mode END,
			amount_minor = CASE WHEN excluded.created_at IS NOT NULL THEN excluded.amount_minor ELSE t.amount_minor END,
			currency     = CASE WHEN excluded.created_at IS NOT NULL THEN excluded.currency ELSE t.currency END,
			created_at   = coalesce(excluded.created_at, t.created_at),
			status       = CASE WHEN excluded.status_seq > t.status_seq THEN excluded.status ELSE t.status END,
			updated_at   = CASE WHEN excluded.status_seq > t.status_seq THEN excluded.updated_at ELSE t.updated_at END,
			status_seq   = greatest(excluded.status_seq, t.status_seq)`,
		kiosk, ids, rails, modes, minors, currencies, statuses, seqs, created, updated)
}

// ReportRow is one line of a day's report: the transactions of one kiosk,
// rail, currency and status.
type ReportRow struct {
	Kiosk  string
	Rail   payment.Rail
	Status payment.Status
	Count  int64
	Amount payment.Money
}

// Report sums the transactions created in [from, to) per kiosk, rail,
// currency and status, ordered by kiosk, rail, currency and lifecycle.
func (s *Store) Report(ctx context.Context, from, to time.Time) ([]ReportRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT kiosk_id, rail, currency, status, count(*), sum(amount_minor)::bigint
		FROM txns WHERE created_at >= $1 AND created_at < $2
		GROUP BY kiosk_id, rail, currency, status
		ORDER BY kiosk_id, rail, currency, array_position($3::text[], status), status`, from, to, statusOrder())
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReportRow, error) {
		var x ReportRow
		err := r.Scan(&x.Kiosk, &x.Rail, &x.Amount.Currency, &x.Status, &x.Count, &x.Amount.Minor)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return out, nil
}

func statusOrder() []string {
	out := make([]string, len(payment.Statuses))
	for i, s := range payment.Statuses {
		out[i] = string(s)
	}
	return out
}

// Enqueue stores a message for one kiosk and returns its id.
func (s *Store) Enqueue(ctx context.Context, kiosk, kind string, body []byte) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO messages (kiosk_id, kind, body) VALUES ($1, $2, $3) RETURNING id`,
		kiosk, kind, body).Scan(&id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return 0, fmt.Errorf("%s: %w", kiosk, ErrNoKiosk)
	}
	if err != nil {
		return 0, fmt.Errorf("queue message for %s: %w", kiosk, err)
	}
	return id, nil
}

// Pending returns up to limit of kiosk's unacknowledged messages with an
// id above after, oldest first. Only that kiosk's.
func (s *Store) Pending(ctx context.Context, kiosk string, after int64, limit int) ([]wire.Message, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, kind, body, created_at FROM messages
		WHERE kiosk_id = $1 AND acked_at IS NULL AND id > $2 ORDER BY id LIMIT $3`, kiosk, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", kiosk, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wire.Message, error) {
		var m wire.Message
		err := r.Scan(&m.ID, &m.Kind, &m.Body, &m.Created)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", kiosk, err)
	}
	return out, nil
}

// AckMessage marks kiosk's message id delivered (an M-Pesa callback's
// body is then dropped: the callback is kept masked). A message of another
// kiosk is refused with ErrNoMessage and stays pending for its kiosk.
// Acknowledging twice is not an error.
func (s *Store) AckMessage(ctx context.Context, kiosk string, id int64) error {
	// A delivered M-Pesa callback holds the payer's number: once the
	// kiosk has journaled it (masked), the hub keeps only its masked copy
	// in mpesa_callbacks.
	tag, err := s.pool.Exec(ctx, `UPDATE messages SET acked_at = coalesce(acked_at, now()),
		body = CASE WHEN kind = ANY($3) THEN '{}'::jsonb ELSE body END WHERE id = $1 AND kiosk_id = $2`, id, kiosk,
		[]string{MessageMpesa, MessageMpesaAssign})
	if err != nil {
		return fmt.Errorf("acknowledge message %d of %s: %w", id, kiosk, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("message %d, kiosk %s: %w", id, kiosk, ErrNoMessage)
	}
	return nil
}

// Hello records what a kiosk said in its hello: its version, its journal's
// last sequence and its rails' health (nil keeps what it said before).
func (s *Store) Hello(ctx context.Context, kiosk, version string, journalSeq int64, rails map[string]string) error {
	_, err := s.pool.Exec(ctx, `UPDATE kiosks SET version = $2, journal_seq = $3, rails = coalesce($4, rails),
		hello_at = now(), last_seen = now() WHERE id = $1`, kiosk, version, journalSeq, rails)
	if err != nil {
		return fmt.Errorf("record hello of %s: %w", kiosk, err)
	}
	return nil
}

// Status records a kiosk's status frame: its journal's last sequence and
// its rails' health (nil keeps what it said before).
func (s *Store) Status(ctx context.Context, kiosk string, journalSeq int64, rails map[string]string) error {
	_, err := s.pool.Exec(ctx, `UPDATE kiosks SET journal_seq = greatest(journal_seq, $2), rails = coalesce($3, rails),
		last_seen = now() WHERE id = $1`, kiosk, journalSeq, rails)
	if err != nil {
		return fmt.Errorf("record status of %s: %w", kiosk, err)
	}
	return nil
}

// Attention is a payment an operator should look at: its status is
// unknown, or one of its events carries a flag and none says an operator
// resolved it.
type Attention struct {
	Kiosk   string
	TxnID   string
	Rail    payment.Rail
	Mode    payment.Mode
	Status  payment.Status
	Amount  payment.Money
	Flags   []string
	Created *time.Time
	Updated time.Time
}

// NeedsAttention lists, across the fleet, the payments whose status is
// unknown or that carry a flag (from the replicated journals), newest
// first, at most limit.
func (s *Store) NeedsAttention(ctx context.Context, kiosk string, limit int) ([]Attention, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.kiosk_id, t.txn_id, t.rail, t.mode, t.status, t.amount_minor, t.currency,
			coalesce(f.flags, '{}'), t.created_at, t.updated_at
		FROM txns t
		LEFT JOIN LATERAL (SELECT array_agg(DISTINCT e.flag ORDER BY e.flag) AS flags FROM events e
			WHERE e.kiosk_id = t.kiosk_id AND e.txn_id = t.txn_id AND e.flag <> '') f ON true
		WHERE (t.status = 'unknown' OR f.flags IS NOT NULL AND NOT $3 = ANY(f.flags)) AND ($1 = '' OR t.kiosk_id = $1)
		ORDER BY coalesce(t.created_at, t.updated_at) DESC, t.kiosk_id, t.txn_id
		LIMIT $2`, kiosk, limit, payment.FlagResolved)
	if err != nil {
		return nil, fmt.Errorf("payments needing attention: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attention, error) {
		var a Attention
		err := r.Scan(&a.Kiosk, &a.TxnID, &a.Rail, &a.Mode, &a.Status, &a.Amount.Minor, &a.Amount.Currency,
			&a.Flags, &a.Created, &a.Updated)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("payments needing attention: %w", err)
	}
	return out, nil
}
