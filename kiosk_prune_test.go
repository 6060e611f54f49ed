package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paydesk/hub/link"
	"paydesk/payment"
)

func TestHubRetainSetting(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "0": 0, "off": 0, "30d": 30 * 24 * time.Hour, "168h": 7 * 24 * time.Hour, "7d": 7 * 24 * time.Hour} {
		got, err := parseRetain(in)
		if err != nil || got != want {
			t.Errorf("parseRetain(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"6d", "1h", "-30d", "thirty days", "1.5d"} {
		if _, err := parseRetain(in); err == nil || !strings.Contains(err.Error(), "hub-retain") {
			t.Errorf("parseRetain(%q) accepted (%v)", in, err)
		}
	}
}

// The kiosk prunes its journal of what the hub confirmed past the
// retention window, only with an acknowledgement from the hub it is
// linked to now (not one left in the link's state file by an earlier
// run, perhaps from another hub).
func TestHubPrunerPrunesOnlyWhatTheLinkedHubConfirmed(t *testing.T) {
	ctx := context.Background()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	old := time.Now().Add(-40 * 24 * time.Hour)
	var last payment.Event
	for i := range 4 {
		id := fmt.Sprintf("T%d", i)
		for _, st := range []payment.Status{payment.StatusCreated, payment.StatusApproved} {
			ev := payment.Event{Time: old, Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: st}
			if st == payment.StatusCreated {
				ev.Mode, ev.Amount = payment.ModeCard, payment.Money{Minor: 100, Currency: "MYR"}
			}
			if last, err = j.Append(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := link.Status{Connected: false, AckedSeq: last.Seq}
	p := hubPruner{j: j, status: func() link.Status { return st }, retain: 30 * 24 * time.Hour, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if n, err := p.once(ctx); err != nil || n != 0 {
		t.Fatalf("not linked, pruned %d (%v)", n, err)
	}
	st = link.Status{Connected: true, AckedSeq: 4} // the hub has T0 and T1
	if n, err := p.once(ctx); err != nil || n != 4 {
		t.Fatalf("linked, pruned %d (%v), want T0's and T1's 4 events", n, err)
	}
	if h, _ := j.History(ctx, "T2"); len(h) != 2 {
		t.Fatalf("T2, which the hub lacks, keeps %d events", len(h))
	}
	p.retain = 50 * 24 * time.Hour
	st.AckedSeq = last.Seq
	if n, err := p.once(ctx); err != nil || n != 0 {
		t.Fatalf("within a 50-day window, pruned %d (%v)", n, err)
	}
}

// Daraja is given one hub URL: the first of a list of replicas, with the
// hub's callback path secret when there is one.
func TestMpesaHubBase(t *testing.T) {
	for _, c := range []struct{ urls, secret, want string }{
		{"https://hub.example.com", "", "https://hub.example.com"},
		{"https://hub.example.com/", "", "https://hub.example.com"},
		{" https://a.example.com , https://b.example.com", "", "https://a.example.com"},
		{"https://a.example.com,https://b.example.com", "k3y", "https://a.example.com/k3y"},
	} {
		if got := mpesaHubBase(c.urls, c.secret); got != c.want {
			t.Errorf("mpesaHubBase(%q, %q) = %q, want %q", c.urls, c.secret, got, c.want)
		}
	}
}

// [hub] retain and [hub] mpesa-path-secret are settings of the config
// file: the one a flag's, the other a secret's.
func TestHubConfigFileRetainAndPathSecret(t *testing.T) {
	path := writeConfig(t, `
[hub]
url = "https://hub.example.com"
retain = "30d"
mpesa-path-secret = "fleetsecret0123456"
`)
	t.Setenv("PAYDESK_HUB_RETAIN", "")
	t.Setenv("PAYDESK_HUB_MPESA_PATH_SECRET", "")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var h hubSettings
	h.register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	fc, err := loadFileConfig(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.apply(fs, h.secrets()...); err != nil {
		t.Fatal(err)
	}
	if d, err := parseRetain(h.retain); err != nil || d != 30*24*time.Hour {
		t.Errorf("[hub] retain = %q: %v, %v", h.retain, d, err)
	}
	if s, err := fc.secret("hub-mpesa-path-secret"); err != nil || s != "fleetsecret0123456" {
		t.Errorf("[hub] mpesa-path-secret = %q, %v", s, err)
	}
}
