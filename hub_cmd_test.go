package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"paydesk/hub"
	"paydesk/hub/pgtemp/pgtest"
	"paydesk/protocol"
)

// TestHubWithAKiosk runs the hub and a kiosk (the demo console with
// --hub-url) as a user would: a kiosk registered with 'hub kiosk add',
// payments made at the kiosk reach the hub, 'paydesk journal' says the hub
// is up to date, and 'hub report' shows the day's totals.
func TestHubWithAKiosk(t *testing.T) {
	cl := pgtest.Own(t)
	dsn := cl.DSN("postgres")
	ctx := context.Background()
	hubCmd := func(args ...string) string {
		t.Helper()
		var out, errs bytes.Buffer
		if err := run(ctx, append([]string{"hub"}, args...), nil, &out, &errs); err != nil {
			t.Fatalf("hub %v: %v\n%s", args, err, errs.String())
		}
		return out.String()
	}
	added := hubCmd("kiosk", "add", "KIOSK001", "--db", dsn)
	token := regexp.MustCompile(`pdh_[A-Za-z0-9_-]{43}`).FindString(added)
	if token == "" {
		t.Fatalf("no token in:\n%s", added)
	}
	if out := hubCmd("kiosk", "list", "--db", dsn); !regexp.MustCompile(`KIOSK001 +active +0 +0 +-`).MatchString(out) {
		t.Fatalf("kiosk list:\n%s", out)
	}

	url := serveHub(t, dsn)

	dir := t.TempDir()
	journal := filepath.Join(dir, "journal.db")
	_, stdin, out := startPaydesk(t, []string{"PAYDESK_SECRET=" + protocol.DevSecret, "PAYDESK_HUB_TOKEN=" + token},
		"demo", "--plain", "--journal", journal, "--hub-url", url)
	io.WriteString(stdin, "1\n25.50\n2\n80.51\n")
	// Two payments, each with a RESULT line (a simulated POS answers in
	// well under a second; waitFor's limit is generous).
	out.waitFor(t, regexp.MustCompile(`(?s)RESULT .*RESULT `))

	journalOut := func() string {
		var b bytes.Buffer
		if err := run(ctx, []string{"journal", "--journal", journal}, nil, &b, io.Discard); err != nil {
			t.Fatalf("journal: %v", err)
		}
		return b.String()
	}
	// Wait for the hub to have every event; a minute is generous for a
	// link that catches up in milliseconds, on a loaded machine.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(journalOut(), "up to date") {
		if time.Now().After(deadline) {
			t.Fatalf("the hub never caught up:\n%s\nkiosk:\n%s", journalOut(), out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := journalOut(); !strings.Contains(got, "Hub "+url+": up to date") {
		t.Fatalf("journal:\n%s", got)
	}
	// The console's status (6) says so too, and the kiosk's hello gave
	// the hub each running rail's health (the demo runs them all).
	io.WriteString(stdin, "6\n")
	out.waitFor(t, regexp.MustCompile(`Hub: up to date`))
	stdin.Close()
	store, err := hub.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ks, err := store.Kiosks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 {
		t.Fatalf("%d kiosks at the hub, want 1", len(ks))
	}
	t.Logf("rails at the hub: %v", ks[0].Rails)
	for _, rail := range []string{"pos", "terminal", "mpesa", "display"} {
		if ks[0].Rails[rail] == "" {
			t.Errorf("the hub has no health of the %s rail: %v", rail, ks[0].Rails)
		}
	}
	if p := ks[0].Rails["pos"]; p != "no POS connected" && !regexp.MustCompile(`^ok \(\d+ POS connected\)$`).MatchString(p) {
		t.Errorf("pos health %q", p)
	}

	report := hubCmd("report", "--db", dsn)
	for _, want := range []string{`KIOSK001 +pos +MYR +approved +1 +25\.50`, `KIOSK001 +pos +MYR +declined +1 +80\.51`, `Approved, all kiosks: RM25\.50`} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("report lacks %s:\n%s", want, report)
		}
	}
	if out := hubCmd("report", "--db", dsn, "--day", "2001-01-01"); !strings.Contains(out, "No transactions.") {
		t.Errorf("a day without sales:\n%s", out)
	}
	if out := hubCmd("kiosk", "revoke", "KIOSK001", "--db", dsn); !strings.Contains(out, "revoked") {
		t.Errorf("revoke: %s", out)
	}
	if out := hubCmd("kiosk", "list", "--db", dsn); !strings.Contains(out, "KIOSK001  revoked") {
		t.Errorf("kiosk list after revoke:\n%s", out)
	}
}

// serveHub runs 'paydesk hub' on dsn (with extra flags) on a loopback
// port until the test ends, and returns its URL. The hub must stop
// cleanly.
func serveHub(t *testing.T, dsn string, extra ...string) string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	out := &lines{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"hub", "--db", dsn, "--listen", "127.0.0.1:0"}, extra...), nil, out, io.Discard)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	})
	return out.waitFor(t, regexp.MustCompile(`paydesk hub on (http://\S+)`))[1]
}
