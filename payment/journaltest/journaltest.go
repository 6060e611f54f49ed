// Package journaltest builds large journals for benchmarks and tests: what
// a kiosk's journal looks like after years of payments, written straight
// into SQLite in seconds rather than through a million appends.
package journaltest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	"paydesk/payment"
)

// PerDay is how many transactions a generated journal holds per day.
const PerDay = 1000

// Generate creates a journal at path holding n transactions, PerDay a day,
// the last created just before now: mostly approved, one in seven
// declined, one in a thousand failed, and the last two still in flight
// (the next open recovers them: they are the journal's only unknown
// payments, as an operator resolves the others). Each has its created event and its last
// one, so the events table is twice as long. The journal is created by
// payment.OpenJournal, so it has the current schema.
func Generate(ctx context.Context, path string, n int, now time.Time) error {
	j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
	if err != nil {
		return err
	}
	if err := j.Close(); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		return fmt.Errorf("generate journal: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	step := int64(24*time.Hour/time.Millisecond) / PerDay
	first := now.UnixMilli() - int64(n)*step
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("generate journal: %w", err)
	}
	defer tx.Rollback()
	for i, q := range []string{
		`WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM i WHERE n < ?1)
		INSERT INTO txns (id, rail, mode, amount_minor, currency, status, peer, created_at, updated_at, auth_code, card)
		SELECT printf('TXN%012d', n),
			CASE n % 10 WHEN 0 THEN 'terminal' WHEN 1 THEN 'mpesa' ELSE 'pos' END,
			CASE n % 10 WHEN 1 THEN 'stk_push' ELSE 'card' END,
			100 + n % 10000,
			CASE n % 10 WHEN 0 THEN 'EUR' WHEN 1 THEN 'KES' ELSE 'MYR' END,
			CASE WHEN n > ?1 - 2 THEN 'acknowledged' WHEN n % 1000 = 0 THEN 'failed'
				WHEN n % 7 = 0 THEN 'declined' ELSE 'approved' END,
			'POS001', ?2 + n * ?3, ?2 + n * ?3 + 4000, printf('A%05d', n % 100000), '4242'
		FROM i`,
		`INSERT INTO events (at, kind, rail, txn_id, status, peer, mode, amount_minor, currency, detail)
		SELECT created_at, 'transition', rail, id, 'created', peer, mode, amount_minor, currency, 'created'
		FROM txns ORDER BY created_at`,
		`INSERT INTO events (at, kind, rail, txn_id, status, peer, detail, result)
		SELECT updated_at, 'transition', rail, id, status, peer, status, '{"auth_code":"' || auth_code || '"}'
		FROM txns ORDER BY created_at`,
	} {
		args := []any{n, first, step}
		if i > 0 {
			args = nil
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("generate journal: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("generate journal: %w", err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("generate journal: checkpoint: %w", err)
	}
	return nil
}
