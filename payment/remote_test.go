package payment

import (
	"context"
	"strings"
	"testing"
	"time"
)

// ByRemoteID finds the events carrying a peer's id through its index;
// a step bringing the id after an approval puts it on the row.
func TestByRemoteID(t *testing.T) {
	j, _ := openTestJournal(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for i, ev := range []Event{
		{Time: t0, Kind: KindTransition, Rail: RailMPesa, TxnID: "A", Status: StatusCreated, Amount: Money{Minor: 100, Currency: "KES"}},
		{Time: t0, Kind: KindTransition, Rail: RailMPesa, TxnID: "A", Status: StatusSent},
		{Time: t0, Kind: KindTransition, Rail: RailMPesa, TxnID: "A", Status: StatusAcknowledged, Result: &Result{RemoteID: "ws_CO_1"}},
		{Time: t0, Kind: KindTransition, Rail: RailMPesa, TxnID: "A", Status: StatusApproved},
		{Time: t0, Kind: KindStep, Rail: RailMPesa, TxnID: "A", Result: &Result{RemoteID: "RCPT000001"}},
		{Time: t0, Kind: KindNotice, Rail: RailTerminal, Result: &Result{RemoteID: "ws_CO_1"}},
	} {
		if _, err := j.Append(ctx, ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	for id, want := range map[string]Status{"ws_CO_1": StatusAcknowledged, "RCPT000001": StatusApproved} {
		evs, err := j.ByRemoteID(ctx, RailMPesa, id)
		if err != nil || len(evs) != 1 || evs[0].TxnID != "A" || evs[0].Status != want {
			t.Errorf("ByRemoteID(%s): %+v, %v", id, evs, err)
		}
	}
	if tx, _ := j.Txn(ctx, "A"); tx.Result.RemoteID != "RCPT000001" {
		t.Errorf("row's remote id %q, want the receipt the step brought", tx.Result.RemoteID)
	}
	var plan string
	rows, err := j.db.Query(`EXPLAIN QUERY PLAN SELECT seq FROM events `+byRemoteWhere, "x", RailMPesa)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "\n"
	}
	if !strings.Contains(plan, "INDEX events_remote") {
		t.Errorf("ByRemoteID's query does not use its index:\n%s", plan)
	}
}

// The RESULT line shows the amount actually paid and the flags, and a
// payment left unknown names what to check on its own rail.
func TestResultLineAttention(t *testing.T) {
	r := &Result{RemoteID: "RCPT000001", Paid: &Money{Minor: 14900, Currency: "KES"}, Flags: []string{"underpaid"}}
	if got, want := ResultLine("PD1", StatusApproved, Money{Minor: 15000, Currency: "KES"}, r), "RESULT PD1 approved 150.00 pos_txn=RCPT000001 paid=149.00 flags=underpaid"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for rail, want := range map[Rail]string{RailPOS: "the POS", RailTerminal: "the card terminal", RailMPesa: "the M-Pesa statement"} {
		if got := WhereToCheck(rail); got != want {
			t.Errorf("WhereToCheck(%s) = %q, want %q", rail, got, want)
		}
	}
}
