package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"paydesk/hub/pgtemp/pgtest"
)

// TestSimFleet runs 'paydesk sim fleet' against a running hub: kiosks
// registered with --create-tokens take payments on every rail, and the
// hub stores at least what the fleet's links say it acknowledged.
func TestSimFleet(t *testing.T) {
	cl := pgtest.Own(t)
	dsn := cl.DSN("postgres")
	ctx := context.Background()
	url := serveHub(t, dsn)

	fleetCtx, stopFleet := context.WithCancel(ctx)
	out := &lines{}
	fleetDone := make(chan error, 1)
	go func() {
		fleetDone <- run(fleetCtx, []string{"sim", "fleet", "--kiosks", "3", "--hub", url, "--create-tokens", "--db", dsn,
			"--every", "20ms", "--report", "50ms"}, nil, out, io.Discard)
	}()
	// 60 payments' events acknowledged across the fleet, all connected.
	re := regexp.MustCompile(`connected 3/3, events journaled \d+, acknowledged (\d{3,})`)
	m := out.waitFor(t, re)
	stopFleet()
	if err := <-fleetDone; err != nil {
		t.Fatalf("sim fleet: %v\n%s", err, out)
	}
	acked, _ := strconv.Atoi(m[1])

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var kiosks, events, rails int
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT kiosk_id), count(*), count(DISTINCT rail) FROM events
		WHERE kiosk_id IN ('SIM00001', 'SIM00002', 'SIM00003')`).Scan(&kiosks, &events, &rails); err != nil {
		t.Fatal(err)
	}
	if kiosks != 3 || events < acked || rails != 3 {
		t.Fatalf("the hub holds %d events of %d kiosks on %d rails; want ≥ %d acknowledged, of 3 kiosks, on pos, terminal and mpesa\n%s",
			events, kiosks, rails, acked, out)
	}
	// The journals were in a temporary directory, removed on exit.
	dir := regexp.MustCompile(`journals in (\S+)`).FindStringSubmatch(out.String())
	if dir == nil {
		t.Fatalf("no journals' directory in:\n%s", out)
	}
	if _, err := os.Stat(filepath.Clean(dir[1])); !os.IsNotExist(err) {
		t.Errorf("journals' directory %s left behind: %v", dir[1], err)
	}

	// The same ids again: refused, their journals would not be these.
	err = run(ctx, []string{"sim", "fleet", "--kiosks", "1", "--hub", url, "--create-tokens", "--db", dsn}, nil, io.Discard, io.Discard)
	if err == nil || !regexp.MustCompile(`SIM00001 is already registered`).MatchString(err.Error()) {
		t.Fatalf("sim fleet with ids in use: %v", err)
	}
}

// TestSimFleetBacklog: with --backlog the kiosks' journals hold their
// sales before the links start, and the fleet catches the hub up with
// them, every event once (--every 0: nothing new meanwhile).
func TestSimFleetBacklog(t *testing.T) {
	cl := pgtest.Own(t)
	dsn := cl.DSN("postgres")
	ctx := context.Background()
	url := serveHub(t, dsn)

	fleetCtx, stopFleet := context.WithCancel(ctx)
	out := &lines{}
	fleetDone := make(chan error, 1)
	go func() {
		fleetDone <- run(fleetCtx, []string{"sim", "fleet", "--kiosks", "3", "--hub", url, "--create-tokens", "--db", dsn,
			"--backlog", "40", "--every", "0", "--report", "50ms", "--prefix", "BL"}, nil, out, io.Discard)
	}()
	out.waitFor(t, regexp.MustCompile(`fleet: 360 events journaled as a backlog \(40 sales a kiosk\)`))
	out.waitFor(t, regexp.MustCompile(`connected 3/3, events journaled 360, acknowledged 360, lag 0`))
	stopFleet()
	if err := <-fleetDone; err != nil {
		t.Fatalf("sim fleet: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var events, distinct, sales int
	var maxSeq int64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT (kiosk_id, seq)), max(seq), count(DISTINCT (kiosk_id, txn_id)) FROM events
		WHERE kiosk_id LIKE 'BL%'`).Scan(&events, &distinct, &maxSeq, &sales); err != nil {
		t.Fatal(err)
	}
	if events != 360 || distinct != 360 || maxSeq != 120 || sales != 120 {
		t.Fatalf("the hub holds %d events (%d distinct, last seq %d) of %d sales; want 360 of 120, seqs 1…120 a kiosk\n%s", events, distinct, maxSeq, sales, out)
	}
}
