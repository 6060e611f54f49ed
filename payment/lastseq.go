package payment

import (
	"context"
	"fmt"
)

// LastSeq returns the sequence of the journal's last event (0 when it is
// empty): how far a replica of the journal (the hub) is behind.
func (j *Journal) LastSeq(ctx context.Context) (int64, error) {
	done, err := j.reading("last sequence")
	if err != nil {
		return 0, err
	}
	defer done()
	var seq int64
	if err := j.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read last sequence: %w", err)
	}
	return seq, nil
}
