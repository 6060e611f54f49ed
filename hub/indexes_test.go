package hub

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRoutingLookupsUseIndexes: the lookups routing does for every
// callback and every batch of new sales find their rows through an index
// on what they look up, not by reading a table or a whole index: a C2B
// payment's sale by reference (routeQuery, SaleOpen), an STK result's
// kiosk by CheckoutRequestID, a till payment's open sales by amount
// (tillOwner), and the callbacks waiting for a batch's keys
// (routeWaiting), over a fleet's worth of sales and unrouted callbacks.
func TestRoutingLookupsUseIndexes(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	for _, k := range []string{"K1", "K2"} {
		if _, err := st.AddKiosk(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO txns (kiosk_id, txn_id, rail, mode, amount_minor, currency, status, status_seq, created_at, updated_at)
			SELECT CASE WHEN i % 2 = 0 THEN 'K1' ELSE 'K2' END, 'PD' || i, CASE WHEN i % 3 = 0 THEN 'pos' ELSE 'mpesa' END,
				CASE WHEN i % 3 = 1 THEN 'c2b' ELSE 'stk_push' END, 100 * (i % 500), 'KES',
				CASE WHEN i % 7 = 0 THEN 'sent' ELSE 'approved' END, 1, now(), now()
			FROM generate_series(1, 20000) AS i`,
		`INSERT INTO mpesa_callbacks (kind, key, ref, amount_minor, raw, body, source, allowed, received_at)
			SELECT CASE WHEN i % 2 = 0 THEN 'stk' ELSE 'c2b_confirmation' END, 'CB' || i,
				CASE WHEN i % 4 = 1 THEN 'WRONG' || i ELSE '' END, 100 * (i % 500), '\x7b7d', '\x7b7d', '127.0.0.1', true,
				now() - i * interval '1 minute'
			FROM generate_series(1, 5000) AS i`,
		`ANALYZE txns`,
		`ANALYZE mpesa_callbacks`,
	} {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	paid := time.Now()
	type lookup struct {
		name string
		q    string
		args []any
		want []string // the indexes it must use
	}
	lookups := []lookup{
		{"SaleOpen", saleOpenQuery, []any{"PD1"}, []string{"txns_mpesa_txn"}},
		{"routeWaiting", waitingQuery, []any{[]string{"ws_CO_1"}, []string{"PD1"}, "K1", tillWaiting},
			[]string{"mpesa_callbacks_kind_key_key", "mpesa_callbacks_waiting"}},
	}
	for _, r := range []struct {
		name, kind, key, ref string
		minor                int64
		want                 string
	}{
		{"routeQuery STK", CallbackSTK, "ws_CO_1", "", 0, "events_remote_id"},
		{"routeQuery C2B", CallbackC2BConfirm, "TX1", "PD1", 100, "txns_mpesa_txn"},
		{"routeQuery till", CallbackC2BConfirm, "TX2", "", 700, "txns_open_c2b"},
	} {
		q, args, ok := routeQuery(r.kind, r.key, r.ref, r.minor, &paid)
		if !ok {
			t.Fatalf("%s: nothing routes it", r.name)
		}
		lookups = append(lookups, lookup{r.name, q, args, []string{r.want}})
	}
	for _, l := range lookups {
		rows, err := st.pool.Query(ctx, `EXPLAIN `+l.q, l.args...)
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		plan := strings.Join(lines, "\n")
		for _, ix := range l.want {
			if !strings.Contains(plan, " on "+ix) && !strings.Contains(plan, " using "+ix) {
				t.Errorf("%s does not use index %s:\n%s", l.name, ix, plan)
			}
		}
		if strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s reads a table:\n%s", l.name, plan)
		}
	}
}
