package hub

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"paydesk/hub/wire"

	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// till makes a kiosk's M-Pesa a Buy Goods till: its sales carry no
// account, and a payment is matched by amount.
func till(c *daraja.Config) { c.Till, c.TillNumber = true, "5201314" }

// A Buy Goods payment carries no account: the hub routes it, as a kiosk
// matches its own, to the one open till sale of its amount across the
// fleet; two such sales (at one kiosk or two) leave it unmatched, and so
// does an amount no open sale asks.
func TestTillPaymentMatchedByAmountAtTheHub(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k1, k2 := f.kiosk("K1", hubURL, till), f.kiosk("K2", hubURL, till)
	k1.connect(hubURL)
	k2.connect(hubURL)
	k2.registerC2B()
	other := k1.c2bSale(250)
	sale := k2.c2bSale(300)
	k1.replicated()
	k2.replicated()
	pay := func(amount string) string {
		t.Helper()
		id, status, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: amount, Till: true})
		if err != nil || status != http.StatusOK {
			t.Fatalf("till payment: status %d, %v", status, err)
		}
		return id
	}
	pay("300")
	k2.waitStatus(sale, payment.StatusApproved)
	if tx, _ := k1.j.Txn(context.Background(), other); tx.Status != payment.StatusSent {
		t.Fatalf("K1's sale of another amount is %s", tx.Status)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K1'`); n != 0 {
		t.Fatalf("%d messages for K1", n)
	}

	// Ambiguous: one open sale of 400 at each kiosk.
	a1, a2 := k1.c2bSale(400), k2.c2bSale(400)
	k1.replicated()
	k2.replicated()
	amb := pay("400")
	// No amount: nothing open asks 999.
	none := pay("999")
	un, err := f.store.UnmatchedCallbacks(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, u := range un {
		keys[u.Key] = true
	}
	if len(un) != 2 || !keys[amb] || !keys[none] {
		t.Fatalf("unmatched list %+v, want the ambiguous %s and the unclaimed %s", un, amb, none)
	}
	for _, s := range []struct {
		k  *kiosk
		id string
	}{{k1, a1}, {k2, a2}, {k1, other}} {
		if tx, _ := s.k.j.Txn(context.Background(), s.id); tx.Status != payment.StatusSent {
			t.Fatalf("%s's sale %s is %s: a till payment was guessed", s.k.id, s.id, tx.Status)
		}
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 1 {
		t.Fatalf("%d messages, want only the one for K2's sale", n)
	}
}

// A till payment that reaches the hub before its sale (the kiosk's events
// not replicated yet) waits unmatched and is routed when the sale arrives.
func TestTillPaymentBeforeItsSaleIsRoutedWhenTheSaleArrives(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k := f.kiosk("K1", hubURL, till)
	k.registerC2B()
	sale := k.c2bSale(410) // journaled, not replicated: no link yet
	id, status, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "410", Till: true})
	if err != nil || status != http.StatusOK {
		t.Fatalf("till payment: status %d, %v", status, err)
	}
	f.unmatchedID(id)
	k.connect(hubURL)
	k.waitStatus(sale, payment.StatusApproved)
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks WHERE key = $1 AND kiosk_id = 'K1'`, id); n != 1 {
		t.Fatalf("payment %s not routed to K1", id)
	}
}

// TestTillCallbackAndItsSaleTogetherNeverMissEachOther: a till payment
// (no reference, matched by amount) and the kiosk's sale of that amount
// stored at the same time, on two replicas, never miss each other: each
// payment ends routed to its sale's kiosk. And two kiosks' sales of one
// amount stored beside a payment of it never both take it: it reaches one
// kiosk at most, once.
func TestTillCallbackAndItsSaleTogetherNeverMissEachOther(t *testing.T) {
	st, dsn := openStore(t)
	stB, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stB.Close)
	ctx := context.Background()
	kiosks := []string{"K1", "K2"}
	for _, k := range kiosks {
		if _, err := st.AddKiosk(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now()
	seq := map[string]int64{}
	sale := func(k string, minor int64) func() error {
		seq[k]++
		ev := wire.Event{Seq: seq[k], Time: at, Kind: payment.KindTransition, Rail: payment.RailMPesa,
			TxnID: fmt.Sprintf("PD%s%d", k, seq[k]), Status: payment.StatusCreated, Mode: payment.ModeC2B, Minor: minor, Currency: "KES"}
		return func() error { _, _, err := st.Ingest(ctx, k, []wire.Event{ev}); return err }
	}
	pay := func(key string, minor int64) func() error {
		body := []byte(`{"TransID":"` + key + `","TransAmount":"` + strconv.FormatInt(minor/100, 10) + `","BillRefNumber":""}`)
		return func() error {
			_, err := stB.StoreCallback(ctx, Callback{Kind: CallbackC2BConfirm, Key: key, Minor: minor, Paid: at,
				Body: body, Raw: body, Source: "127.0.0.1", Allowed: true})
			return err
		}
	}
	together := func(fs ...func() error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(fs))
		for i, f := range fs {
			wg.Go(func() { errs[i] = f() })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	const rounds = 60
	for i := range int64(rounds) {
		// A sale and its payment at each kiosk, every amount its own.
		a1, a2 := 100_000+200*i, 100_100+200*i
		together(sale("K1", a1), pay(fmt.Sprintf("TA%dK1", i), a1), sale("K2", a2), pay(fmt.Sprintf("TA%dK2", i), a2))
		// One amount, a sale at each kiosk and one payment.
		a := 500_000 + 100*i
		together(sale("K1", a), sale("K2", a), pay(fmt.Sprintf("TB%d", i), a))
	}
	for i := range rounds {
		for _, k := range kiosks {
			key := fmt.Sprintf("TA%d%s", i, k)
			var owner string
			if err := st.pool.QueryRow(ctx, `SELECT coalesce(kiosk_id, '') FROM mpesa_callbacks WHERE key = $1`, key).Scan(&owner); err != nil {
				t.Fatal(err)
			}
			if owner != k {
				t.Errorf("till payment %s routed to %q, want %s", key, owner, k)
			}
		}
	}
	rows, err := st.pool.Query(ctx, `SELECT c.key, coalesce(c.kiosk_id, ''), count(m.id), coalesce(min(m.kiosk_id), '')
		FROM mpesa_callbacks c LEFT JOIN messages m ON m.body->'body'->>'TransID' = c.key
		GROUP BY c.id ORDER BY c.id`)
	if err != nil {
		t.Fatal(err)
	}
	type routed struct {
		key, kiosk, to string
		msgs           int
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (routed, error) {
		var x routed
		return x, r.Scan(&x.key, &x.kiosk, &x.msgs, &x.to)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3*rounds {
		t.Fatalf("%d payments stored, want %d", len(got), 3*rounds)
	}
	for _, x := range got {
		if x.msgs > 1 || x.msgs == 1 && x.to != x.kiosk || x.msgs == 0 && x.kiosk != "" {
			t.Errorf("till payment %s: routed to %q, %d messages (to %q)", x.key, x.kiosk, x.msgs, x.to)
		}
	}
}
