package payment

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// queryPlan is SQLite's plan for q, one step a line.
func queryPlan(t *testing.T, j *Journal, q string, args ...any) string {
	t.Helper()
	rows, err := j.db.Query(`EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "\n")
}

// TestStartupQueriesUseIndexes checks that what start-up, the console's
// first screen and 'paydesk journal' ask of the journal is answered from
// an index: none reads every transaction (SCAN txns), so their cost does
// not grow with the journal (BenchmarkStartup measures it).
func TestStartupQueriesUseIndexes(t *testing.T) {
	j, _ := openTestJournal(t)
	ctx := context.Background()
	for i := range 50 {
		id := fmt.Sprintf("T%d", i)
		mustAppend(t, j, created(id, 100))
		mustAppend(t, j, to(id, StatusSent))
		mustAppend(t, j, to(id, StatusApproved))
	}
	from, to := Day(time.Now())
	for _, q := range []struct {
		name, sql string
		args      []any
		// limited is set for a query that may walk an index in order
		// because it stops after LIMIT rows.
		limited bool
	}{
		{"recovery: payments in flight", `SELECT id FROM txns ` + inflightWhere, inflightArgs, false},
		{"recovery and 'r': unknown payments", `SELECT id FROM txns ` + unresolvedWhere, []any{StatusUnknown}, false},
		{"paydesk journal: the latest", `SELECT id FROM txns ` + recentWhere, []any{20}, true},
		{"journal totals --day", totalsSQL, []any{from.UnixMilli(), to.UnixMilli()}, false},
		{"status: counts per status", countsSQL, nil, false},
	} {
		plan := queryPlan(t, j, q.sql, q.args...)
		switch {
		case q.limited && (!strings.Contains(plan, "USING INDEX") || strings.Contains(plan, "TEMP B-TREE FOR ORDER BY")):
			t.Errorf("%s: not read in index order, so every row is sorted:\n%s", q.name, plan)
		case !q.limited && strings.Contains(plan, "SCAN txns"):
			t.Errorf("%s reads every transaction:\n%s", q.name, plan)
		}
	}
	if _, err := j.Counts(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenMigratesAnEarlierJournal opens a journal as an earlier paydesk
// left it (no kept counts, user_version 0), with payments in it: it opens,
// its counts are right, and they stay right as payments move.
func TestOpenMigratesAnEarlierJournal(t *testing.T) {
	ctx := context.Background()
	j, path := openTestJournal(t)
	for i, st := range []Status{StatusApproved, StatusDeclined, StatusApproved, StatusSent} {
		id := fmt.Sprintf("T%d", i)
		mustAppend(t, j, created(id, 100))
		mustAppend(t, j, to(id, StatusSent))
		if st != StatusSent {
			mustAppend(t, j, to(id, st))
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// Back to what an earlier version wrote.
	raw, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER txn_counts_insert`, `DROP TRIGGER txn_counts_update`, `DROP TRIGGER txn_counts_delete`,
		`DROP TABLE txn_counts`, `PRAGMA user_version = 0`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	want := map[Status]int{StatusApproved: 2, StatusDeclined: 1, StatusUnknown: 1}
	ro, err := OpenJournalReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ro.Counts(ctx)
	ro.Close()
	if err != nil || fmt.Sprint(got) != fmt.Sprint(map[Status]int{StatusApproved: 2, StatusDeclined: 1, StatusSent: 1}) {
		t.Errorf("read-only counts of an earlier journal = %v, %v", got, err)
	}

	j2, rec, err := OpenJournal(path, JournalOptions{})
	if err != nil {
		t.Fatalf("an earlier journal does not open: %v", err)
	}
	defer j2.Close()
	if len(rec.Recovered) != 1 {
		t.Errorf("recovered %d, want the one in flight", len(rec.Recovered))
	}
	if got, err := j2.Counts(ctx); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts after migration = %v, %v; want %v", got, err, want)
	}
	mustAppend(t, j2, created("N", 5))
	mustAppend(t, j2, to("N", StatusSent))
	mustAppend(t, j2, Event{Kind: KindTransition, Rail: RailPOS, TxnID: "T3", Status: StatusApproved, Flag: FlagResolved})
	want = map[Status]int{StatusApproved: 3, StatusDeclined: 1, StatusSent: 1}
	if got, err := j2.Counts(ctx); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts after new payments = %v, %v; want %v", got, err, want)
	}
	var scan map[Status]int
	scan, err = j2.countsBy(ctx, countsScanSQL)
	if err != nil || fmt.Sprint(scan) != fmt.Sprint(want) {
		t.Errorf("kept counts %v differ from the journal's rows %v (%v)", want, scan, err)
	}
}
