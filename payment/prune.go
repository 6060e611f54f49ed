package payment

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// pruneChunk is how many events one pruning transaction deletes, so the
// journal's writer never waits long for it.
const pruneChunk = 1000

// Prune deletes the journal's events that a replica (the hub) holds and
// that are past a retention window: those with a sequence up to upTo
// that were journaled before before, and whose payment, if any, ended
// (approved, declined, cancelled, timed out, failed) before before.
// It never deletes an event of a payment that is unknown or in flight,
// nor the journal's last event (its sequence says how far the journal
// goes, for the hub and for the next append). The payments' rows (table
// txns) stay: a pruned payment keeps its status, amount and times, so
// the counts per status and the day totals are unchanged; only its
// history is gone. It deletes in transactions of a thousand events and
// returns how many it deleted.
func (j *Journal) Prune(ctx context.Context, upTo int64, before time.Time) (int, error) {
	if j.readOnly {
		return 0, ErrReadOnly
	}
	done, err := j.use()
	if err != nil {
		return 0, fmt.Errorf("prune the journal: %w", err)
	}
	defer done()
	finals := make([]string, 0, len(Statuses))
	args := []any{upTo, before.UnixMilli()}
	for _, s := range Statuses {
		if s.Final() {
			finals = append(finals, "?")
			args = append(args, string(s))
		}
	}
	args = append(args, before.UnixMilli(), pruneChunk)
	q := `DELETE FROM events WHERE seq IN (SELECT seq FROM events
		WHERE seq <= ? AND at < ? AND seq < (SELECT max(seq) FROM events)
		AND (txn_id = '' OR txn_id NOT IN (SELECT id FROM txns WHERE status NOT IN (` + strings.Join(finals, ",") + `) OR updated_at >= ?))
		ORDER BY seq LIMIT ?)`
	total := 0
	for {
		res, err := j.db.ExecContext(ctx, q, args...)
		if err != nil {
			return total, fmt.Errorf("prune the journal: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune the journal: %w", err)
		}
		total += int(n)
		if n < pruneChunk {
			return total, nil
		}
	}
}
