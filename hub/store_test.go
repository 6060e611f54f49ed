package hub

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"paydesk/hub/pgtemp/pgtest"
	"paydesk/hub/wire"
	"paydesk/payment"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openStore(t *testing.T) (*Store, string) { return openStoreTB(t) }

func openStoreTB(t testing.TB) (*Store, string) {
	t.Helper()
	dsn := pgtest.DB(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, dsn
}

func TestMigrationsApplyOnceWhenReplicasStartTogether(t *testing.T) {
	dsn := pgtest.DB(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	migs, _ := Migrations()
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(migs) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(migs))
	}
}

func TestTokens(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()

	token, err := s.AddKiosk(ctx, "KIOSK007")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the token names its kiosk", func(t *testing.T) {
		id, err := s.Authenticate(ctx, token)
		if err != nil || id != "KIOSK007" {
			t.Fatalf("Authenticate = %q, %v", id, err)
		}
	})
	t.Run("only the token's hash is stored", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var dump string
		// Every column of every row, as text.
		if err := conn.QueryRow(ctx, "SELECT string_agg(k::text, ' ') FROM kiosks k").Scan(&dump); err != nil {
			t.Fatal(err)
		}
		secret := strings.TrimPrefix(token, tokenPrefix)
		if strings.Contains(dump, secret) {
			t.Fatalf("the token is stored: %s", dump)
		}
		ks, err := s.Kiosks(ctx)
		if err != nil || len(ks) != 1 || !bytes.Equal(ks[0].TokenHash, hashToken(token)) {
			t.Fatalf("kiosks = %+v, %v; want one with the token's SHA-256", ks, err)
		}
	})
	t.Run("a wrong token is refused", func(t *testing.T) {
		for _, bad := range []string{"", "pdh_", token + "x", strings.ToUpper(token), "Bearer " + token} {
			if id, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrBadToken) {
				t.Errorf("Authenticate(%q) = %q, %v; want ErrBadToken", bad, id, err)
			}
		}
	})
	t.Run("a second kiosk of the same id is refused", func(t *testing.T) {
		if _, err := s.AddKiosk(ctx, "KIOSK007"); !errors.Is(err, ErrKioskExists) {
			t.Fatalf("err = %v, want ErrKioskExists", err)
		}
		if _, err := s.AddKiosk(ctx, "../etc"); !errors.Is(err, ErrBadKioskID) {
			t.Fatalf("err = %v, want ErrBadKioskID", err)
		}
	})
	t.Run("a revoked token is refused", func(t *testing.T) {
		other, err := s.AddKiosk(ctx, "KIOSK008")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeKiosk(ctx, "KIOSK007"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, token); !errors.Is(err, ErrBadToken) {
			t.Fatalf("revoked token: err = %v, want ErrBadToken", err)
		}
		if id, err := s.Authenticate(ctx, other); err != nil || id != "KIOSK008" {
			t.Fatalf("the other kiosk's token: %q, %v", id, err)
		}
		if err := s.RevokeKiosk(ctx, "KIOSK007"); !errors.Is(err, ErrNoKiosk) {
			t.Fatalf("revoking twice: err = %v, want ErrNoKiosk", err)
		}
		if _, _, err := s.Ingest(ctx, "KIOSK007", []wire.Event{ev(1, payment.KindNotice)}); !errors.Is(err, ErrRevoked) {
			t.Fatalf("ingest for a revoked kiosk: err = %v, want ErrRevoked", err)
		}
	})
}

func ev(seq int64, kind payment.Kind) wire.Event {
	return wire.Event{Seq: seq, Time: time.Date(2026, 12, 4, 10, 0, 0, int(seq)*int(time.Millisecond), time.UTC), Kind: kind, Rail: payment.RailSystem, Detail: "e"}
}

func sale(seq int64, txn string, s payment.Status, minor int64, cur string) wire.Event {
	e := wire.Event{Seq: seq, Time: time.Date(2026, 12, 4, 10, 0, 0, int(seq)*int(time.Millisecond), time.UTC),
		Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: txn, Status: s}
	if s == payment.StatusCreated {
		e.Mode, e.Minor, e.Currency = payment.ModeCard, minor, cur
	}
	return e
}

func TestIngestIsIdempotent(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	if _, err := s.AddKiosk(ctx, "K1"); err != nil {
		t.Fatal(err)
	}
	batch := []wire.Event{sale(1, "T1", payment.StatusCreated, 2550, "MYR"), sale(2, "T1", payment.StatusSent, 0, ""),
		ev(3, payment.KindStep), sale(4, "T1", payment.StatusApproved, 0, "")}
	acked, added, err := s.Ingest(ctx, "K1", batch)
	if err != nil || acked != 4 || added != 4 {
		t.Fatalf("Ingest = %d, %d, %v; want 4, 4", acked, added, err)
	}
	before := dump(t, dsn)
	// The same batch again, and a part of it: nothing changes.
	for _, b := range [][]wire.Event{batch, batch[1:3]} {
		acked, added, err = s.Ingest(ctx, "K1", b)
		if err != nil || acked != 4 || added != 0 {
			t.Fatalf("replay: Ingest = %d, %d, %v; want 4, 0", acked, added, err)
		}
	}
	if after := dump(t, dsn); after != before {
		t.Fatalf("a replayed batch changed the database:\nbefore %s\nafter  %s", before, after)
	}
	rows, err := s.Report(ctx, time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	if err != nil || len(rows) != 1 || rows[0].Count != 1 || rows[0].Amount.Minor != 2550 || rows[0].Status != payment.StatusApproved {
		t.Fatalf("report = %+v, %v; want one approved sale of 2550", rows, err)
	}
}

func TestIngestRefusesBadBatches(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	if _, err := s.AddKiosk(ctx, "K1"); err != nil {
		t.Fatal(err)
	}
	long := ev(1, payment.KindNotice)
	long.Raw = make([]byte, payment.MaxRaw+1)
	noTxn := sale(1, "", payment.StatusCreated, 1, "MYR")
	for name, b := range map[string][]wire.Event{
		"empty":              nil,
		"out of order":       {ev(2, payment.KindNotice), ev(1, payment.KindNotice)},
		"a repeated seq":     {ev(1, payment.KindNotice), ev(1, payment.KindNotice)},
		"seq zero":           {ev(0, payment.KindNotice)},
		"unknown kind":       {ev(1, "drop table")},
		"raw over the limit": {long},
		"no transaction":     {noTxn},
	} {
		if _, _, err := s.Ingest(ctx, "K1", b); !errors.Is(err, wire.ErrBadBatch) {
			t.Errorf("%s: err = %v, want ErrBadBatch", name, err)
		}
	}
	if acked, err := s.Acked(ctx, "K1"); err != nil || acked != 0 {
		t.Fatalf("acked = %d, %v after refused batches", acked, err)
	}
}

func TestMessagesAreTheKiosksOwn(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	for _, k := range []string{"A", "B"} {
		if _, err := s.AddKiosk(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	ma, err := s.Enqueue(ctx, "A", "test", []byte(`{"for":"A"}`))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := s.Enqueue(ctx, "B", "test", []byte(`{"for":"B"}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending(ctx, "A", 0, 10)
	if err != nil || len(got) != 1 || got[0].ID != ma {
		t.Fatalf("A's pending = %+v, %v; want only message %d", got, err, ma)
	}
	if err := s.AckMessage(ctx, "A", mb); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("A acknowledging B's message: err = %v, want ErrNoMessage", err)
	}
	if got, _ := s.Pending(ctx, "B", 0, 10); len(got) != 1 || got[0].ID != mb {
		t.Fatalf("B's message after A's attempt: %+v; want still pending", got)
	}
	if err := s.AckMessage(ctx, "A", ma); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Pending(ctx, "A", 0, 10); len(got) != 0 {
		t.Fatalf("A's pending after ack: %+v", got)
	}
	if _, err := s.Enqueue(ctx, "NOBODY", "test", []byte(`{}`)); !errors.Is(err, ErrNoKiosk) {
		t.Fatalf("message for an unknown kiosk: err = %v", err)
	}
}

// dump returns the events and transactions tables as text.
func dump(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var a, b string
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(e::text, E'\n' ORDER BY kiosk_id, seq), '') FROM events e`).Scan(&a); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(x::text, E'\n' ORDER BY kiosk_id, txn_id), '') FROM txns x`).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return a + "\n--\n" + b
}
