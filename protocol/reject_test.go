package protocol_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/wire"
)

// forged is an ack signed with the wrong secret, padded to about size bytes.
func forged(t testing.TB, size int) []byte {
	t.Helper()
	p := wire.Payload{"type": "ack", "txn_id": "TXN1", "status": "processing", "pos_id": "EVIL",
		"timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "nonce": "n"}
	if size > 200 {
		p["pad"] = strings.Repeat("x", size-200)
	}
	env, err := wire.Sign(p, []byte("not the secret"))
	if err != nil {
		t.Fatal(err)
	}
	return env.Line()
}

func TestRejectionsAreBounded(t *testing.T) {
	h := newHarness(t, protocol.Options{})
	bad := dialRaw(t, h.addr)
	h.waitConn()
	const n = 2000
	bad.write(t, bytes.Repeat(forged(t, 0), n))
	bad.Close()
	h.wait(30*time.Second, "the disconnect", func(ev payment.Event) bool {
		return ev.Kind == payment.KindConnection && strings.HasPrefix(ev.Detail, "disconnected")
	})
	evs, err := h.j.EventsSince(context.Background(), 0, 10*n)
	if err != nil {
		t.Fatal(err)
	}
	rows, counted := 0, 0
	for _, ev := range evs {
		if ev.Kind != payment.KindRejected {
			continue
		}
		rows++
		var more int
		if _, err := fmt.Sscanf(ev.Detail, "%d more frames rejected", &more); err == nil {
			counted += more
			if !strings.Contains(ev.Detail, "invalid signature") {
				t.Errorf("summary does not give the reason: %q", ev.Detail)
			}
		} else {
			counted++
		}
	}
	// The first RejectBurst in full, then one count per RejectInterval; a
	// loaded machine may spread the frames over a few intervals.
	if rows > protocol.RejectBurst+3 {
		t.Errorf("%d frames rejected wrote %d journal rows", n, rows)
	}
	if counted != n {
		t.Errorf("the journal accounts for %d of %d rejected frames (%d rows)", counted, n, rows)
	}
}

func TestRejectedFrameNeverWaitsForTheJournal(t *testing.T) {
	// The pace set for refused input (RejectRate, its own test below) is
	// lifted, so all that could hold the reader back is the journal.
	h := newHarness(t, protocol.Options{RejectRate: 1 << 30})
	bad := dialRaw(t, h.addr)
	h.waitConn() // its connection is journaled before the journal is held

	// Another writer holds the journal's lock: every append now waits
	// (up to the journal's 10 s busy timeout).
	db, err := sql.Open("sqlite", "file:"+h.j.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hold, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if _, err := hold.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer hold.ExecContext(context.Background(), "ROLLBACK")

	// 8 MiB of rejected frames is far more than the socket buffers hold,
	// so the write completes only if the kiosk keeps reading. 6 s stays
	// under the busy timeout and is ample for a loaded machine.
	frame := forged(t, 60<<10)
	flood := bytes.Repeat(frame, (8<<20)/len(frame))
	bad.SetWriteDeadline(time.Now().Add(6 * time.Second))
	if _, err := bad.Write(flood); err != nil {
		t.Fatalf("the kiosk stopped reading rejected frames while the journal was busy: %v", err)
	}
}

func TestRefusedInputIsPaced(t *testing.T) {
	const rate = 64 << 10
	h := newHarness(t, protocol.Options{RejectRate: rate})
	bad := dialRaw(t, h.addr)
	h.waitConn()
	// 4 budgets' worth of refused frames take at least 3 s to be read:
	// the first second's worth is free.
	frame := forged(t, 4<<10)
	n := 4 * rate / (len(frame) + 512)
	start := time.Now()
	go bad.Write(bytes.Repeat(frame, n))
	for deadline := start.Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var got int64
		for _, p := range h.srv.Peers() {
			got += p.Rejected
		}
		if got >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d frames refused after 30 s", got, n)
		}
	}
	if d := time.Since(start); d < 2500*time.Millisecond {
		t.Errorf("%d refused frames of %d bytes were read in %s at a pace of %d B/s", n, len(frame), d, rate)
	}
}
