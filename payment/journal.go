package payment

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver: no cgo, cross-builds everywhere
)

// MaxRaw is the most bytes of a raw message the journal keeps per event.
// Inbound frames are capped at 64 KiB by the rails; anything longer (a
// hostile frame being rejected) is kept truncated, as evidence.
const MaxRaw = 64 << 10

// ErrClosed is returned by Append and the reads after Close.
var ErrClosed = errors.New("journal closed")

// ErrNotRecorded is returned (wrapped, with the disk's error) by Append when
// the journal could not write the event: the disk is full or failing. The
// event is not on disk, so it must not be shown as done. Unless it creates
// a transaction, the journal keeps it and writes it when a retry succeeds
// (subscribers then receive it with Retried set); a payment's creation is
// not kept, since a payment whose creation failed never starts.
var ErrNotRecorded = errors.New("not recorded in the journal")

// ErrNotFound is returned when a transaction id is not in the journal.
var ErrNotFound = errors.New("not found")

// JournalOptions tunes a journal. The zero value is the production setting.
type JournalOptions struct {
	// MaxBatch is the most events committed in one SQLite transaction
	// (group commit). The default is 512.
	MaxBatch int
	// Now is the clock used for recovery events. The default is time.Now.
	Now func() time.Time
	// RetryEvery is how often the journal retries the writes that failed
	// (a full disk) while nothing new is written; every new write retries
	// them too. The default is one second.
	RetryEvery time.Duration
	// MaxBacklog is the most failed events kept for the retry; events that
	// fail beyond it are lost (their payments are unknown at the next
	// start). The default is 10000.
	MaxBacklog int
	// MaxBacklogBytes bounds the raw messages kept with those events;
	// beyond it an event is kept without its raw message (its detail says
	// so). The default is 32 MiB.
	MaxBacklogBytes int
}

// Journal is the durable record of every event and the transactions they
// build. It is an SQLite database in WAL mode with synchronous=FULL: an
// Append returns only once its event is on disk. Concurrent Appends are
// committed together (group commit), so many transitions per second cost
// one fsync per batch rather than one each.
//
// The journal enforces the transaction lifecycle: an illegal transition is
// refused with a *TransitionError and never written.
type Journal struct {
	db   *sql.DB
	path string
	opts JournalOptions
	reqs chan *appendReq

	// notify, when set (by NewBus), is called from the writer goroutine
	// with each committed batch, in commit order, and with the notices
	// (KindUnrecorded, KindRecorded) of writes that failed and were retried.
	notify func([]Event)

	// backlog holds, in order, the events whose write failed, for the
	// retry; failing is set from a failed write until one succeeds. Both
	// belong to the writer goroutine (Close reads backlog once it ended).
	backlog      []Event
	backlogBytes int
	failing      bool

	closeOnce sync.Once
	done      chan struct{}
	mu        sync.RWMutex // guards closed against Append racing Close
	closed    bool
	// users counts the reads (and prunes) in progress, which use the
	// database outside the writer goroutine: Close waits for them, so no
	// file of the journal is touched once Close has returned.
	users sync.WaitGroup

	// open holds the status of transactions that are not final, so most
	// transitions are checked without a read.
	open map[string]Status

	// insEvent and selStatus are prepared once: parsing the SQL again for
	// every event cost about as much as writing it.
	insEvent, selStatus *sql.Stmt

	// lock is held while the journal is open for writing (see ErrInUse);
	// readOnly journals take none and refuse Append.
	lock     *os.File
	readOnly bool
	// counts is the query Counts runs: countsSQL, or countsScanSQL on a
	// read-only journal of an earlier version.
	counts string

	// writeFault, when set, can fail a commit as a full disk does (see
	// SetWriteFault).
	writeFault atomic.Pointer[func([]Event) error]
	// appendHook, when set, is called by Append before it queues an
	// event (see SetAppendHook).
	appendHook atomic.Pointer[func(Event)]
	// readHook, when set, is called by every read before it queries
	// (see SetReadHook).
	readHook atomic.Pointer[func(string)]
}

// SetAppendHook makes Append call f with each event, in the caller's
// goroutine, before the event is queued for the writer: a test that
// blocks in f for one caller's events makes that caller's write slow
// without slowing the writer, so it can check that nobody else waits on
// it. SetAppendHook(nil) removes it. Nothing else calls it.
func (j *Journal) SetAppendHook(f func(ev Event)) {
	if f == nil {
		j.appendHook.Store(nil)
		return
	}
	j.appendHook.Store(&f)
}

// SetReadHook makes every read of the journal (Recent, Txn, Unresolved,
// History, Counts, Totals, …) call f first, in the reader's goroutine,
// with what it reads ("txns", "events", "counts" or "totals"): a test
// counts the reads a piece of code makes, and so checks that a console's
// event loop makes none. SetReadHook(nil) removes it. Nothing else calls
// it.
func (j *Journal) SetReadHook(f func(what string)) {
	if f == nil {
		j.readHook.Store(nil)
		return
	}
	j.readHook.Store(&f)
}

// reading begins a read of what: it calls the read hook, if one is set,
// and counts the read in progress until done is called. It fails with
// ErrClosed once Close has begun.
func (j *Journal) reading(what string) (done func(), err error) {
	done, err = j.use()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if f := j.readHook.Load(); f != nil {
		(*f)(what)
	}
	return done, nil
}

// use begins a use of the database outside the writer goroutine (a read,
// a prune); done ends it. Close waits for the uses in progress.
func (j *Journal) use() (done func(), err error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return nil, ErrClosed
	}
	j.users.Add(1)
	return j.users.Done, nil
}

// SetWriteFault makes the journal's commits fail as a full or failing disk
// makes them fail: before each commit, f is called with the events about to
// be written, and a non-nil error rolls the commit back and is returned as
// the write's error. SetWriteFault(nil) lets writes through again. It is
// for tests of what paydesk does when the journal cannot write, which a
// real full disk makes hard to arrange; nothing else calls it.
func (j *Journal) SetWriteFault(f func(evs []Event) error) {
	if f == nil {
		j.writeFault.Store(nil)
		return
	}
	j.writeFault.Store(&f)
}

// ErrReadOnly is returned by Append on a journal opened with
// OpenJournalReadOnly.
var ErrReadOnly = errors.New("journal opened read-only")

type appendReq struct {
	ev   Event
	err  error
	done chan struct{}
}

// Recovery is what OpenJournal found left over from an earlier run.
type Recovery struct {
	// Recovered are the transactions that were in flight when paydesk
	// last stopped and have just been marked unknown.
	Recovered []Txn
	// Unresolved are all transactions in the unknown state (including
	// Recovered), waiting for the operator.
	Unresolved []Txn
}

const schema = `
CREATE TABLE IF NOT EXISTS txns (
	id           TEXT PRIMARY KEY,
	rail         TEXT NOT NULL,
	mode         TEXT NOT NULL DEFAULT '',
	amount_minor INTEGER NOT NULL DEFAULT 0,
	currency     TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL,
	peer         TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	auth_code    TEXT NOT NULL DEFAULT '',
	card         TEXT NOT NULL DEFAULT '',
	remote_id    TEXT NOT NULL DEFAULT '',
	plan_id      TEXT NOT NULL DEFAULT '',
	reason       TEXT NOT NULL DEFAULT '',
	flags        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS txns_created ON txns(created_at);
CREATE INDEX IF NOT EXISTS txns_status ON txns(status);
CREATE TABLE IF NOT EXISTS events (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	at           INTEGER NOT NULL,
	kind         TEXT NOT NULL,
	rail         TEXT NOT NULL,
	txn_id       TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL DEFAULT '',
	peer         TEXT NOT NULL DEFAULT '',
	mode         TEXT NOT NULL DEFAULT '',
	amount_minor INTEGER NOT NULL DEFAULT 0,
	currency     TEXT NOT NULL DEFAULT '',
	detail       TEXT NOT NULL DEFAULT '',
	flag         TEXT NOT NULL DEFAULT '',
	result       TEXT NOT NULL DEFAULT '',
	plans        TEXT NOT NULL DEFAULT '',
	raw          BLOB
);
CREATE INDEX IF NOT EXISTS events_txn ON events(txn_id, seq);
-- Only flagged events are indexed, so the write path of the others
-- (nearly all) does not pay for it; Flagged reads through it.
CREATE INDEX IF NOT EXISTS events_flagged ON events(flag, rail, at) WHERE flag <> '';
-- The peer's id in an event's result (an M-Pesa receipt or
-- CheckoutRequestID): ByRemoteID reads through it. Only events with a
-- result are indexed.
CREATE INDEX IF NOT EXISTS events_remote ON events(json_extract(result, '$.remote_id')) WHERE result <> '';
`

// schemaVersion is the journal's PRAGMA user_version once migrate has run.
// Version 0 is every journal before it (their tables are the same).
const schemaVersion = 1

// migrations[v] brings a journal from version v to v+1. Each runs in the
// transaction that sets the new version, so a journal is never half
// migrated, and a journal from an earlier paydesk opens as before.
var migrations = []string{
	// 0 → 1: the count of transactions per status is kept up to date by
	// triggers, so the console's counts do not read the whole journal.
	`CREATE TABLE IF NOT EXISTS txn_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
	DELETE FROM txn_counts;
	INSERT INTO txn_counts (status, n) SELECT status, count(*) FROM txns GROUP BY status;
	CREATE TRIGGER IF NOT EXISTS txn_counts_insert AFTER INSERT ON txns BEGIN
		INSERT OR IGNORE INTO txn_counts (status, n) VALUES (NEW.status, 0);
		UPDATE txn_counts SET n = n + 1 WHERE status = NEW.status;
	END;
	CREATE TRIGGER IF NOT EXISTS txn_counts_update AFTER UPDATE OF status ON txns WHEN OLD.status IS NOT NEW.status BEGIN
		UPDATE txn_counts SET n = n - 1 WHERE status = OLD.status;
		INSERT OR IGNORE INTO txn_counts (status, n) VALUES (NEW.status, 0);
		UPDATE txn_counts SET n = n + 1 WHERE status = NEW.status;
	END;
	CREATE TRIGGER IF NOT EXISTS txn_counts_delete AFTER DELETE ON txns BEGIN
		UPDATE txn_counts SET n = n - 1 WHERE status = OLD.status;
	END;`,
}

// migrate brings the journal's schema to schemaVersion.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil) // immediate (_txlock): one migrator at a time
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v >= schemaVersion {
		return nil
	}
	for ; v < schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate from version %d: %w", v, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// DefaultJournalPath is where the journal lives when none is given: the
// user's data directory (XDG_DATA_HOME, else ~/.local/share on Unix,
// %AppData% on Windows).
func DefaultJournalPath() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		if cfg, err := os.UserConfigDir(); err == nil && filepath.Base(cfg) != ".config" {
			dir = cfg // Windows %AppData%, macOS Application Support
		} else if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".local", "share")
		} else {
			dir = os.TempDir()
		}
	}
	return filepath.Join(dir, "paydesk", "journal.db")
}

// OpenJournal opens (creating if needed) the journal at path, marks every
// transaction that was in flight when paydesk last stopped as unknown, and
// reports them. It never drops a transaction.
func OpenJournal(path string, opts JournalOptions) (*Journal, Recovery, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = time.Second
	}
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = 10000
	}
	if opts.MaxBacklogBytes <= 0 {
		opts.MaxBacklogBytes = 32 << 20
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, Recovery{}, fmt.Errorf("create journal directory %s: %w", dir, err)
		}
	}
	lock, err := lockJournal(path)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("open journal %s: %w", path, err)
	}
	j, rec, err := openLocked(path, opts)
	if err != nil {
		lock.Close()
		return nil, Recovery{}, err
	}
	j.lock = lock
	return j, rec, nil
}

// OpenJournalReadOnly opens an existing journal to read it while a
// paydesk may be writing it: nothing is recovered or written, and Append
// fails with ErrReadOnly.
func OpenJournalReadOnly(path string) (*Journal, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	db.SetMaxOpenConns(2)
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'txns'`).Scan(&n); err != nil || n == 0 {
		db.Close()
		if err == nil {
			err = errors.New("not a paydesk journal (no txns table)")
		}
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	j := &Journal{db: db, path: path, readOnly: true, done: make(chan struct{}), open: map[string]Status{}, counts: countsSQL}
	// A journal no paydesk of this version has written yet is read as
	// it is: its counts are counted.
	var v int
	if err := db.QueryRowContext(context.Background(), `PRAGMA user_version`).Scan(&v); err != nil || v < 1 {
		j.counts = countsScanSQL
	}
	return j, nil
}

// openLocked opens the journal once its lock is held.
func openLocked(path string, opts JournalOptions) (*Journal, Recovery, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?"+q.Encode())
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("open journal %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, Recovery{}, fmt.Errorf("open journal %s: create schema: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, Recovery{}, fmt.Errorf("open journal %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, Recovery{}, fmt.Errorf("open journal %s: WAL mode not available (got %q): %v", path, mode, err)
	}
	j := &Journal{
		db:     db,
		path:   path,
		opts:   opts,
		reqs:   make(chan *appendReq, 1024),
		done:   make(chan struct{}),
		open:   make(map[string]Status),
		counts: countsSQL,
	}
	if j.insEvent, err = db.PrepareContext(ctx, insertEventSQL); err == nil {
		j.selStatus, err = db.PrepareContext(ctx, `SELECT status FROM txns WHERE id = ?`)
	}
	if err != nil {
		db.Close()
		return nil, Recovery{}, fmt.Errorf("open journal %s: prepare: %w", path, err)
	}
	rec, err := j.recover(ctx)
	if err != nil {
		db.Close()
		return nil, Recovery{}, fmt.Errorf("open journal %s: recover: %w", path, err)
	}
	go j.writer()
	return j, rec, nil
}

// Path is the journal's file name.
func (j *Journal) Path() string { return j.path }

// recover marks every transaction that is not final and not already unknown
// as unknown, in one durable transaction, before the writer starts.
func (j *Journal) recover(ctx context.Context) (Recovery, error) {
	var rec Recovery
	inflight, err := j.queryTxns(ctx, inflightWhere, inflightArgs...)
	if err != nil {
		return rec, err
	}
	if len(inflight) > 0 {
		now := j.opts.Now()
		tx, err := j.begin(ctx)
		if err != nil {
			return rec, err
		}
		for _, t := range inflight {
			ev := Event{
				Time:   now,
				Kind:   KindTransition,
				Rail:   t.Rail,
				TxnID:  t.ID,
				Status: StatusUnknown,
				Peer:   t.Peer,
				Flag:   FlagRecovered,
				Detail: fmt.Sprintf("was %s when paydesk stopped: check %s and resolve", t.Status, WhereToCheck(t.Rail)),
			}
			if err := j.apply(ctx, tx, &ev, map[string]Status{t.ID: t.Status}); err != nil {
				tx.Rollback()
				return rec, err
			}
			t.Status = StatusUnknown
			t.Flags = addFlag(t.Flags, FlagRecovered)
			rec.Recovered = append(rec.Recovered, t)
		}
		if err := tx.Commit(); err != nil {
			return rec, err
		}
	}
	rec.Unresolved, err = j.queryTxns(ctx, unresolvedWhere, StatusUnknown)
	if err != nil {
		return rec, err
	}
	for _, t := range rec.Unresolved {
		j.open[t.ID] = t.Status
	}
	return rec, nil
}

// Append writes ev durably and returns it with Seq (and Time, if it was
// zero) filled in. Concurrent calls share one commit. A transition the
// lifecycle forbids returns a *TransitionError and writes nothing.
func (j *Journal) Append(ctx context.Context, ev Event) (Event, error) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if j.readOnly {
		return ev, ErrReadOnly
	}
	if f := j.appendHook.Load(); f != nil {
		(*f)(ev)
	}
	r := &appendReq{ev: ev, done: make(chan struct{})}
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return ev, ErrClosed
	}
	select {
	case j.reqs <- r:
		j.mu.RUnlock()
	case <-ctx.Done():
		j.mu.RUnlock()
		return ev, fmt.Errorf("journal append: %w", ctx.Err())
	}
	// Once queued the event will be committed or fail; wait for that even
	// if ctx ends, so the caller never shows something that is not on disk.
	<-r.done
	return r.ev, r.err
}

// writer is the single goroutine that writes: it takes every request
// waiting, commits them in one transaction, then answers them all. While
// writes that failed wait in the backlog it retries them every RetryEvery.
func (j *Journal) writer() {
	defer close(j.done)
	batch := make([]*appendReq, 0, j.opts.MaxBatch)
	var retry *time.Timer
	var retryC <-chan time.Time
	for {
		switch {
		case len(j.backlog) > 0 && retry == nil:
			retry = time.NewTimer(j.opts.RetryEvery)
			retryC = retry.C
		case len(j.backlog) == 0 && retry != nil:
			retry.Stop()
			retry, retryC = nil, nil
		}
		select {
		case first, ok := <-j.reqs:
			if !ok {
				if retry != nil {
					retry.Stop()
				}
				if len(j.backlog) > 0 {
					j.commit(nil) // a last try before closing
				}
				return
			}
			batch = append(batch[:0], first)
		drain:
			for len(batch) < j.opts.MaxBatch {
				select {
				case r, ok := <-j.reqs:
					if !ok {
						break drain
					}
					batch = append(batch, r)
				default:
					break drain
				}
			}
			j.commit(batch)
		case <-retryC:
			retry, retryC = nil, nil
			j.commit(nil)
		}
	}
}

// commit writes the backlog of failed writes, then batch, in one
// transaction. If the write fails, every event of batch that is not
// refused by the lifecycle joins the backlog (see ErrNotRecorded).
func (j *Journal) commit(batch []*appendReq) {
	ctx := context.Background()
	tx, err := j.begin(ctx)
	if err != nil {
		j.failed(batch, err)
		return
	}
	overlay := make(map[string]Status)
	committed := make([]Event, 0, len(j.backlog)+len(batch))
	var dropped []Event
	for _, ev := range j.backlog {
		if err := j.apply(ctx, tx, &ev, overlay); err != nil {
			var te *TransitionError
			if !errors.As(err, &te) {
				tx.Rollback()
				j.failed(batch, err)
				return
			}
			// Not expected: each was checked in this order when it
			// failed. Said, not silently lost.
			dropped = append(dropped, ev)
			continue
		}
		ev.Retried = true
		committed = append(committed, ev)
	}
	retried := len(committed)
	for _, r := range batch {
		if err := j.apply(ctx, tx, &r.ev, overlay); err != nil {
			var te *TransitionError
			if !errors.As(err, &te) {
				tx.Rollback()
				j.failed(batch, err)
				return
			}
			r.err = err
			continue
		}
		committed = append(committed, r.ev)
	}
	if f := j.writeFault.Load(); f != nil {
		if err := (*f)(committed); err != nil {
			tx.Rollback()
			j.failed(batch, err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		j.failed(batch, err)
		return
	}
	for id, st := range overlay {
		if st.Final() {
			delete(j.open, id)
		} else {
			j.open[id] = st
		}
	}
	notices := committed
	if j.failing {
		j.failing = false
		for _, ev := range dropped {
			notices = append(notices, unrecorded(ev, j.opts.Now(), "refused by the lifecycle when retried", false))
		}
		notices = append(notices, Event{Time: j.opts.Now(), Kind: KindRecorded, Rail: RailSystem,
			Detail: fmt.Sprintf("journal writable again: %d event(s) that had failed written now", retried)})
	}
	j.backlog, j.backlogBytes = nil, 0
	if j.notify != nil && len(notices) > 0 {
		j.notify(notices)
	}
	for _, r := range batch {
		close(r.done)
	}
}

// failed answers a batch whose write failed: each event joins the backlog
// for the retry (unless it creates a payment, or the backlog is full),
// subscribers are told, and the callers get ErrNotRecorded.
func (j *Journal) failed(batch []*appendReq, cause error) {
	now := j.opts.Now()
	var notices []Event
	if !j.failing {
		j.failing = true
		notices = append(notices, Event{Time: now, Kind: KindUnrecorded, Rail: RailSystem,
			Detail: fmt.Sprintf("journal write failed (%v): paydesk keeps what it could not write and retries", cause)})
	}
	for _, r := range batch {
		if r.err != nil {
			continue // refused by the lifecycle: never to be written
		}
		r.ev.Seq = 0 // its insert was rolled back
		creates := r.ev.Kind == KindTransition && r.ev.Status == StatusCreated
		kept := !creates && len(j.backlog) < j.opts.MaxBacklog
		if kept {
			ev := r.ev
			if n := min(len(ev.Raw), MaxRaw); j.backlogBytes+n > j.opts.MaxBacklogBytes {
				ev.Raw = nil
				ev.Detail += " (raw message not kept: too much waited for the disk)"
			} else {
				j.backlogBytes += n
			}
			j.backlog = append(j.backlog, ev)
		}
		switch {
		case kept:
			r.err = fmt.Errorf("journal write failed, retrying: %w: %w", ErrNotRecorded, cause)
		case creates:
			r.err = fmt.Errorf("journal write failed: %w: %w", ErrNotRecorded, cause)
		default:
			r.err = fmt.Errorf("journal write failed, too many writes waiting to keep it for the retry: %w: %w", ErrNotRecorded, cause)
		}
		if r.ev.TxnID != "" && !creates {
			notices = append(notices, unrecorded(r.ev, now, cause.Error(), kept))
		}
	}
	if j.notify != nil && len(notices) > 0 {
		j.notify(notices)
	}
	for _, r := range batch {
		close(r.done)
	}
}

// unrecorded is the notice that ev could not be written: which payment,
// which step, and what to check, in the words of its rail. An outcome
// is not named: nothing says approved without the durable record.
func unrecorded(ev Event, now time.Time, why string, kept bool) Event {
	step := ""
	switch {
	case ev.Kind == KindTransition && (ev.Status.Final() || ev.Status == StatusUnknown):
	case ev.Kind == KindTransition:
		step = " at step " + string(ev.Status)
	case ev.Detail != "":
		step = fmt.Sprintf(" at step %q", ev.Detail)
	default:
		step = " at a " + string(ev.Kind)
	}
	after := "paydesk retries the write"
	if !kept {
		after = "it is lost: the payment will be unknown at the next start"
	}
	unwritten := ev
	return Event{Time: now, Kind: KindUnrecorded, Rail: ev.Rail, TxnID: ev.TxnID, Peer: ev.Peer, Unwritten: &unwritten,
		Detail: fmt.Sprintf("%s: journal write failed%s (%s): outcome not recorded: check %s; %s",
			ev.TxnID, step, why, WhereToCheck(ev.Rail), after)}
}

// writeTx is one write transaction with the journal's prepared statements
// bound to it once, rather than once per event.
type writeTx struct {
	*sql.Tx
	insEvent, selStatus *sql.Stmt
}

// begin starts a write transaction.
func (j *Journal) begin(ctx context.Context) (*writeTx, error) {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &writeTx{Tx: tx, insEvent: tx.StmtContext(ctx, j.insEvent), selStatus: tx.StmtContext(ctx, j.selStatus)}, nil
}

// status returns the current status of a transaction as this batch sees it.
func (j *Journal) status(ctx context.Context, tx *writeTx, id string, overlay map[string]Status) (Status, error) {
	if st, ok := overlay[id]; ok {
		return st, nil
	}
	if st, ok := j.open[id]; ok {
		return st, nil
	}
	var st string
	err := tx.selStatus.QueryRowContext(ctx, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return Status(st), err
}

// apply writes one event inside tx, checking and applying a transition.
func (j *Journal) apply(ctx context.Context, tx *writeTx, ev *Event, overlay map[string]Status) error {
	at := ev.Time.UnixMilli()
	if ev.TxnID != "" {
		cur, err := j.status(ctx, tx, ev.TxnID, overlay)
		if err != nil {
			return err
		}
		if ev.Kind == KindTransition {
			if !CanTransition(cur, ev.Status) {
				return &TransitionError{TxnID: ev.TxnID, From: cur, To: ev.Status}
			}
			if ev.Status == StatusCreated {
				_, err = tx.ExecContext(ctx, `INSERT INTO txns
					(id, rail, mode, amount_minor, currency, status, peer, created_at, updated_at)
					VALUES (?,?,?,?,?,?,?,?,?)`,
					ev.TxnID, ev.Rail, ev.Mode, ev.Amount.Minor, ev.Amount.Currency, ev.Status, ev.Peer, at, at)
			} else {
				var r Result
				if ev.Result != nil {
					r = *ev.Result
				}
				_, err = tx.ExecContext(ctx, `UPDATE txns SET status = ?, updated_at = ?,
					peer = CASE WHEN ? <> '' THEN ? ELSE peer END,
					auth_code = CASE WHEN ? <> '' THEN ? ELSE auth_code END,
					card = CASE WHEN ? <> '' THEN ? ELSE card END,
					remote_id = CASE WHEN ? <> '' THEN ? ELSE remote_id END,
					plan_id = CASE WHEN ? <> '' THEN ? ELSE plan_id END,
					reason = CASE WHEN ? <> '' THEN ? ELSE reason END
					WHERE id = ?`,
					ev.Status, at, ev.Peer, ev.Peer, r.AuthCode, r.AuthCode, r.Card, r.Card,
					r.RemoteID, r.RemoteID, r.PlanID, r.PlanID, r.Reason, r.Reason, ev.TxnID)
			}
			if err != nil {
				return err
			}
			overlay[ev.TxnID] = ev.Status
		} else {
			if ev.Status == "" {
				ev.Status = cur
			}
			if ev.Kind == KindStep && cur == StatusApproved && ev.Result != nil && ev.Result.RemoteID != "" {
				// The peer's id learnt after the approval (the M-Pesa
				// receipt that follows a query's answer) completes the row.
				if _, err := tx.ExecContext(ctx, `UPDATE txns SET remote_id = ? WHERE id = ?`, ev.Result.RemoteID, ev.TxnID); err != nil {
					return err
				}
			}
		}
		flag := ev.Flag
		if ev.Kind == KindLate && flag == "" {
			flag = FlagLateResult
		}
		if flag != "" {
			_, err = tx.ExecContext(ctx, `UPDATE txns SET
				flags = CASE WHEN instr(','||flags||',', ','||?||',') > 0 THEN flags
				             WHEN flags = '' THEN ? ELSE flags||','||? END
				WHERE id = ?`, flag, flag, flag, ev.TxnID)
			if err != nil {
				return err
			}
			ev.Flag = flag
		}
	}
	var result, plans string
	if ev.Result != nil {
		b, _ := json.Marshal(ev.Result)
		result = string(b)
	}
	if len(ev.Plans) > 0 {
		b, _ := json.Marshal(ev.Plans)
		plans = string(b)
	}
	raw := ev.Raw
	if len(raw) > MaxRaw {
		raw = raw[:MaxRaw]
	}
	res, err := tx.insEvent.ExecContext(ctx,
		at, ev.Kind, ev.Rail, ev.TxnID, ev.Status, ev.Peer, ev.Mode, ev.Amount.Minor, ev.Amount.Currency,
		ev.Detail, ev.Flag, result, plans, raw)
	if err != nil {
		return err
	}
	ev.Seq, err = res.LastInsertId()
	return err
}

const insertEventSQL = `INSERT INTO events
	(at, kind, rail, txn_id, status, peer, mode, amount_minor, currency, detail, flag, result, plans, raw)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

// Close stops the writer after the requests already queued are committed
// and closes the database.
func (j *Journal) Close() error {
	var err error
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closed = true
		if !j.readOnly {
			close(j.reqs)
		}
		j.mu.Unlock()
		// The reads in progress finish first, on their own connections.
		j.users.Wait()
		if j.readOnly {
			err = j.db.Close()
			return
		}
		<-j.done
		if n := len(j.backlog); n > 0 {
			err = fmt.Errorf("close journal: %d event(s) not recorded (the disk would not take them): their payments are unknown at the next start", n)
		}
		j.insEvent.Close()
		j.selStatus.Close()
		err = errors.Join(err, j.db.Close())
		// The lock goes last: the next writer starts from a closed file.
		if j.lock != nil {
			j.lock.Close()
		}
	})
	return err
}

// The queries of start-up (recovery, the console's first screen) and of
// 'paydesk journal', named so a test can check SQLite answers each from an
// index rather than by reading the whole journal.
const (
	unresolvedWhere = `WHERE status = ? ORDER BY created_at`
	recentWhere     = `ORDER BY created_at DESC, rowid DESC LIMIT ?`
	totalsSQL       = `SELECT rail, status, currency, count(*), sum(amount_minor)
		FROM txns WHERE created_at >= ? AND created_at < ?
		GROUP BY rail, status, currency`
	countsSQL     = `SELECT status, n FROM txn_counts WHERE n > 0`
	countsScanSQL = `SELECT status, count(*) FROM txns GROUP BY status`
)

// inflightWhere finds the payments recovery marks unknown: those in a
// status that is neither final nor unknown, named one by one so SQLite
// reads them from the status index (a NOT IN would read every row).
var inflightWhere, inflightArgs = func() (string, []any) {
	var args []any
	for _, s := range Statuses {
		if !s.Final() && s != StatusUnknown {
			args = append(args, s)
		}
	}
	return `WHERE status IN (?` + strings.Repeat(",?", len(args)-1) + `) ORDER BY created_at`, args
}()

const txnCols = `id, rail, mode, amount_minor, currency, status, peer, created_at, updated_at,
	auth_code, card, remote_id, plan_id, reason, flags`

func (j *Journal) queryTxns(ctx context.Context, where string, args ...any) ([]Txn, error) {
	done, err := j.reading("txns")
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := j.db.QueryContext(ctx, `SELECT `+txnCols+` FROM txns `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query transactions: %w", err)
	}
	defer rows.Close()
	var out []Txn
	for rows.Next() {
		var t Txn
		var created, updated int64
		var flags string
		if err := rows.Scan(&t.ID, &t.Rail, &t.Mode, &t.Amount.Minor, &t.Amount.Currency, &t.Status, &t.Peer,
			&created, &updated, &t.Result.AuthCode, &t.Result.Card, &t.Result.RemoteID, &t.Result.PlanID,
			&t.Result.Reason, &flags); err != nil {
			return nil, fmt.Errorf("read transaction: %w", err)
		}
		t.CreatedAt = time.UnixMilli(created)
		t.UpdatedAt = time.UnixMilli(updated)
		if flags != "" {
			t.Flags = strings.Split(flags, ",")
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Recent returns the latest transactions, newest first.
func (j *Journal) Recent(ctx context.Context, limit int) ([]Txn, error) {
	if limit <= 0 {
		limit = 20
	}
	return j.queryTxns(ctx, recentWhere, limit)
}

// Txn returns one transaction, or an error wrapping ErrNotFound.
func (j *Journal) Txn(ctx context.Context, id string) (Txn, error) {
	ts, err := j.queryTxns(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Txn{}, err
	}
	if len(ts) == 0 {
		return Txn{}, fmt.Errorf("transaction %q: %w", id, ErrNotFound)
	}
	return ts[0], nil
}

// Unresolved returns the transactions in the unknown state, oldest first.
func (j *Journal) Unresolved(ctx context.Context) ([]Txn, error) {
	return j.queryTxns(ctx, unresolvedWhere, StatusUnknown)
}

const eventCols = `seq, at, kind, rail, txn_id, status, peer, mode, amount_minor, currency, detail, flag, result, plans, raw`

func (j *Journal) queryEvents(ctx context.Context, where string, args ...any) ([]Event, error) {
	done, err := j.reading("events")
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := j.db.QueryContext(ctx, `SELECT `+eventCols+` FROM events `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var ev Event
		var at int64
		var result, plans string
		if err := rows.Scan(&ev.Seq, &at, &ev.Kind, &ev.Rail, &ev.TxnID, &ev.Status, &ev.Peer, &ev.Mode,
			&ev.Amount.Minor, &ev.Amount.Currency, &ev.Detail, &ev.Flag, &result, &plans, &ev.Raw); err != nil {
			return nil, fmt.Errorf("read event: %w", err)
		}
		ev.Time = time.UnixMilli(at)
		if result != "" {
			ev.Result = new(Result)
			if err := json.Unmarshal([]byte(result), ev.Result); err != nil {
				return nil, fmt.Errorf("read event %d result: %w", ev.Seq, err)
			}
		}
		if plans != "" {
			if err := json.Unmarshal([]byte(plans), &ev.Plans); err != nil {
				return nil, fmt.Errorf("read event %d plans: %w", ev.Seq, err)
			}
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// History returns every event of one transaction in order.
func (j *Journal) History(ctx context.Context, id string) ([]Event, error) {
	return j.queryEvents(ctx, `WHERE txn_id = ? ORDER BY seq`, id)
}

// Flagged returns the events of one rail carrying flag, from since on,
// in order: how a rail finds, at start, what it left for the operator
// (M-Pesa's unmatched till payments). It reads the index of flagged
// events (the "flag <> ”" term lets SQLite use that partial index).
func (j *Journal) Flagged(ctx context.Context, rail Rail, flag string, since time.Time) ([]Event, error) {
	return j.queryEvents(ctx, flaggedWhere, flag, rail, since.UnixMilli())
}

// ByRemoteID returns the events of one rail whose result carries the
// peer's id (an M-Pesa receipt or CheckoutRequestID), in order: how a
// rail recognises a callback about a payment it no longer holds in
// memory. It reads through the index of those ids.
func (j *Journal) ByRemoteID(ctx context.Context, rail Rail, id string) ([]Event, error) {
	return j.queryEvents(ctx, byRemoteWhere, id, rail)
}

const byRemoteWhere = `WHERE result <> '' AND json_extract(result, '$.remote_id') = ? AND rail = ? ORDER BY seq`

const flaggedWhere = `WHERE flag <> '' AND flag = ? AND rail = ? AND at >= ? ORDER BY seq`

// EventsSince returns up to limit events with Seq > seq, in order: how a
// subscriber that fell behind catches up.
func (j *Journal) EventsSince(ctx context.Context, seq int64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	return j.queryEvents(ctx, `WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
}

// Total is the count and sum of transactions of one rail in one status.
type Total struct {
	Rail   Rail
	Status Status
	Count  int
	Amount Money
}

// Totals sums the transactions created in [from, to) per rail, status and
// currency, in a stable order.
func (j *Journal) Totals(ctx context.Context, from, to time.Time) ([]Total, error) {
	done, err := j.reading("totals")
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := j.db.QueryContext(ctx, totalsSQL, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("query totals: %w", err)
	}
	defer rows.Close()
	var out []Total
	for rows.Next() {
		var t Total
		if err := rows.Scan(&t.Rail, &t.Status, &t.Amount.Currency, &t.Count, &t.Amount.Minor); err != nil {
			return nil, fmt.Errorf("read totals: %w", err)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Total) int {
		if c := strings.Compare(string(a.Rail), string(b.Rail)); c != 0 {
			return c
		}
		return slices.Index(Statuses, a.Status) - slices.Index(Statuses, b.Status)
	})
	return out, rows.Err()
}

// Counts returns how many transactions the journal holds in each status.
func (j *Journal) Counts(ctx context.Context) (map[Status]int, error) {
	return j.countsBy(ctx, j.counts)
}

func (j *Journal) countsBy(ctx context.Context, q string) (map[Status]int, error) {
	done, err := j.reading("counts")
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := j.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("query counts: %w", err)
	}
	defer rows.Close()
	out := make(map[Status]int)
	for rows.Next() {
		var s Status
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("read counts: %w", err)
		}
		out[s] = n
	}
	return out, rows.Err()
}

// Day returns the local calendar day containing t, as [start, end).
func Day(t time.Time) (time.Time, time.Time) {
	y, m, d := t.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	return start, start.AddDate(0, 0, 1)
}

func addFlag(flags []string, f string) []string {
	if slices.Contains(flags, f) {
		return flags
	}
	return append(flags, f)
}

// HasFlag reports whether the transaction carries flag f.
func (t Txn) HasFlag(f string) bool { return slices.Contains(t.Flags, f) }
