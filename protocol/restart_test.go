package protocol_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/wire"
)

// run is one run of a kiosk on a journal file, stopped by stop.
type run struct {
	j    *payment.Journal
	srv  *protocol.Server
	addr string
	stop func()
}

func startRun(t *testing.T, path string) *run {
	t.Helper()
	j, _, err := payment.OpenJournal(path, payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, nil)
	srv, err := protocol.NewServer(bus, protocol.Options{Addr: "127.0.0.1:0", Secret: secret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	r := &run{j: j, srv: srv, addr: ln.Addr().String()}
	var once bool
	r.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		srv.Close()
		<-done
		bus.Close()
		j.Close()
	}
	t.Cleanup(r.stop)
	return r
}

// waitPeers waits until the kiosk has n connections.
func (r *run) waitPeers(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(r.srv.Peers()) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections", len(r.srv.Peers()), n)
		}
	}
}

// waitHistory waits until txn id has an event of one of kinds after seq.
func (r *run) waitHistory(t *testing.T, id string, after int64, kinds ...payment.Kind) payment.Event {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		hist, err := r.j.History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range hist {
			for _, k := range kinds {
				if ev.Seq > after && ev.Kind == k {
					return ev
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v event of %s: %+v", kinds, id, hist)
		}
	}
}

func TestReplayRefusedAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	first := startRun(t, path)
	a := dialRaw(t, first.addr)
	first.waitPeers(t, 1)
	id, err := first.srv.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: 500, Currency: "MYR"}})
	if err != nil {
		t.Fatal(err)
	}
	a.request(t)
	a.send(t, wire.Payload{"type": "ack", "txn_id": id, "status": "processing", "pos_id": "POSA"})
	result := a.send(t, wire.Payload{"type": "transaction_result", "txn_id": id, "status": "success", "pos_id": "POSA", "authorization_code": "AUTH1"})
	approved := first.waitHistory(t, id, 0, payment.KindTransition)
	for approved.Status != payment.StatusApproved {
		approved = first.waitHistory(t, id, approved.Seq, payment.KindTransition)
	}
	a.Close()
	first.stop()

	// Restarted within the 60 s window: the same signed result is replayed.
	second := startRun(t, path)
	b := dialRaw(t, second.addr)
	second.waitPeers(t, 1)
	b.write(t, result)
	ev := second.waitHistory(t, id, approved.Seq, payment.KindRejected, payment.KindLate)
	if ev.Kind != payment.KindRejected {
		t.Fatalf("the replayed result was %s: %q", ev.Kind, ev.Detail)
	}
	tx, _ := second.j.Txn(context.Background(), id)
	if tx.HasFlag(payment.FlagLateResult) || tx.Status != payment.StatusApproved {
		t.Errorf("the clean payment is now %s %v", tx.Status, tx.Flags)
	}

	t.Run("payments of the new run are answered as before", func(t *testing.T) {
		done := b.answer(t, "POSA")
		next, err := second.srv.Start(context.Background(), payment.Request{Mode: payment.ModeCard, Amount: payment.Money{Minor: 700, Currency: "MYR"}})
		if err != nil {
			t.Fatal(err)
		}
		<-done
		for ev := second.waitHistory(t, next, 0, payment.KindTransition); ev.Status != payment.StatusApproved; {
			if ev.Status.Final() {
				t.Fatalf("%s became %s: %s", next, ev.Status, ev.Detail)
			}
			ev = second.waitHistory(t, next, ev.Seq, payment.KindTransition)
		}
	})
}
