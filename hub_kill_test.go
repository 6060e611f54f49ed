package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"paydesk/hub"
	"paydesk/hub/pgtemp/pgtest"
)

// TestHubReplicaSIGKILL: two 'paydesk hub' processes on one PostgreSQL,
// kiosks linked to both and paying; one replica is killed with SIGKILL
// mid-stream. Its kiosks move to the other, and every kiosk's journal,
// counted against what PostgreSQL holds, is there event for event: none
// lost, none twice, in the journal's order.
func TestHubReplicaSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two hub processes")
	}
	cl := pgtest.Own(t)
	dsn := cl.DSN("postgres")
	dir := t.TempDir()

	// The replicas: the real binary, each its own process.
	var cmds []*exec.Cmd
	var urls []string
	for i := range 2 {
		cmd, _, out := startPaydesk(t, nil, "hub", "--db", dsn, "--listen", "127.0.0.1:0",
			"--log", filepath.Join(dir, fmt.Sprintf("hub%d.log", i)))
		urls = append(urls, awaitOutput(t, out, regexp.MustCompile(`paydesk hub on (http://\S+)`), time.Minute)[1])
		cmds = append(cmds, cmd)
	}
	a, b := urls[0], urls[1]

	ctx := context.Background()
	store, err := hub.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.DiscardHandler)
	const kiosks = 6
	var ks []*simKiosk
	lctx, stopLinks := context.WithCancel(ctx)
	var links sync.WaitGroup
	defer func() {
		stopLinks()
		links.Wait()
		for _, k := range ks {
			k.close()
		}
	}()
	for i := range kiosks {
		id := fmt.Sprintf("KILL%02d", i)
		tok, err := store.AddKiosk(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		// Half the fleet lists A first, half B: both replicas serve.
		list := a + "," + b
		if i%2 == 1 {
			list = b + "," + a
		}
		k, err := newSimKiosk(dir, id, tok, list, log)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
		links.Go(func() { k.l.Run(lctx) })
	}
	// Every kiosk pays as fast as its journal takes it, until told to stop.
	sctx, stopSales := context.WithCancel(ctx)
	var sales sync.WaitGroup
	defer func() { stopSales(); sales.Wait() }()
	for _, k := range ks {
		sales.Go(func() {
			for i := 1; sctx.Err() == nil; i++ {
				for _, ev := range simSale(k.id, i) {
					if _, err := k.bus.Publish(sctx, ev); err != nil {
						return
					}
				}
			}
		})
	}
	// Mid-stream: every kiosk linked with some of its journal
	// acknowledged, half of them on A. Then A is killed.
	for _, k := range ks {
		waitAckedProc(t, k, 30)
	}
	var onA []string
	for _, k := range ks {
		if k.l.Status().Hub == a {
			onA = append(onA, k.id)
		}
	}
	if len(onA) == 0 {
		t.Fatal("no kiosk on replica A before it was killed")
	}
	behind := 0
	for _, k := range ks {
		if st := k.l.Status(); st.JournalSeq > st.AckedSeq {
			behind++
		}
	}
	if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmds[0].Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("replica A ended with %v; want killed by SIGKILL", err)
	}
	t.Logf("replica A killed with SIGKILL; %s were on it; %d of %d kiosks had events not yet acknowledged", strings.Join(onA, ", "), behind, kiosks)
	// The kiosks keep paying while they move; then they stop, and each
	// must get everything to B.
	for _, k := range ks {
		waitAckedProc(t, k, k.l.Status().AckedSeq+60)
	}
	stopSales()
	sales.Wait()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	total := 0
	for _, k := range ks {
		last, err := k.j.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitAckedProc(t, k, last)
		if st := k.l.Status(); st.Hub != b {
			t.Errorf("%s is on %s after A was killed; want B %s", k.id, st.Hub, b)
		}
		journal, err := k.j.EventsSince(ctx, 0, int(last)+1)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `SELECT seq, txn_id, status FROM events WHERE kiosk_id = $1 ORDER BY seq, id`, k.id)
		if err != nil {
			t.Fatal(err)
		}
		type ev struct {
			seq         int64
			txn, status string
		}
		stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ev, error) {
			var e ev
			return e, r.Scan(&e.seq, &e.txn, &e.status)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != len(journal) {
			t.Errorf("%s: PostgreSQL holds %d events, its journal %d", k.id, len(stored), len(journal))
		}
		for i := range min(len(stored), len(journal)) {
			j, s := journal[i], stored[i]
			if s.seq != j.Seq || s.txn != j.TxnID || s.status != string(j.Status) {
				t.Errorf("%s: event %d is seq %d %s %s in PostgreSQL, seq %d %s %s in the journal", k.id, i+1, s.seq, s.txn, s.status, j.Seq, j.TxnID, j.Status)
				break
			}
		}
		total += len(journal)
	}
	t.Logf("%d kiosks, %d journal events, each in PostgreSQL once and in order", kiosks, total)
}

// awaitOutput waits until a process's output matches re.
func awaitOutput(t *testing.T, out *lines, re *regexp.Regexp, limit time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s in output:\n%s", re, out.String())
	return nil
}

// waitAckedProc waits until the hub has acknowledged a kiosk's journal up
// to seq.
func waitAckedProc(t *testing.T, k *simKiosk, seq int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := k.l.WaitAcked(ctx, seq); err != nil {
		t.Fatalf("%s: the hub did not acknowledge up to %d: %v (%+v)", k.id, seq, err, k.l.Status())
	}
}
