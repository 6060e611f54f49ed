package mpesa_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/payment"
)

// fakeClock is a clock the test moves: After registers a waiter, and
// fireNext jumps to the earliest one and fires it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// fireNext waits (in real time, up to 5 s) for a waiter, moves the clock
// to the earliest and fires it. It reports false when none came, or when
// stop says the test has seen what it waits for.
func (c *fakeClock) fireNext(stop func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !stop() {
		c.mu.Lock()
		if len(c.waiters) > 0 {
			slices.SortFunc(c.waiters, func(a, b fakeWaiter) int { return a.at.Compare(b.at) })
			w := c.waiters[0]
			c.waiters = c.waiters[1:]
			if w.at.After(c.now) {
				c.now = w.at
			}
			c.mu.Unlock()
			w.ch <- w.at
			return true
		}
		c.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// policyRun pushes one payment to a stub Daraja whose query always gives
// answer, drives the rail's default query policy on a fake clock, and
// returns the query times (as offsets from the push) and when the
// payment timed out.
func policyRun(t *testing.T, status int, answer string) ([]time.Duration, time.Duration) {
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0}
	var mu sync.Mutex
	var queries []time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/oauth"):
			w.Write([]byte(`{"access_token":"tok","expires_in":"3599"}`))
		case strings.Contains(r.URL.Path, "stkpushquery"):
			mu.Lock()
			queries = append(queries, clock.Now().Sub(t0))
			mu.Unlock()
			w.WriteHeader(status)
			w.Write([]byte(answer))
		default:
			w.Write([]byte(`{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_policy","ResponseCode":"0","ResponseDescription":"Success. Request accepted for processing"}`))
		}
	}))
	defer srv.Close()
	r, j := stubRail(t, srv.URL, clock.Now, clock.After)
	id, err := r.Start(context.Background(), payment.Request{Phone: "0708374149", Amount: payment.Money{Minor: 100, Currency: "KES"}})
	if err != nil {
		t.Fatal(err)
	}
	reconciled := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(queries) > 0 && queries[len(queries)-1] >= 120*time.Second+5*time.Minute
	}
	for clock.fireNext(reconciled) {
	}
	tx, err := j.Txn(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Status != payment.StatusTimedOut {
		t.Fatalf("status %s, want timed_out", tx.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(queries), tx.UpdatedAt.Sub(t0)
}

// stubRail is a rail on a fresh journal whose client talks to the stub
// Daraja at url, on the clock now and after (nil: the real one). All of
// it is closed when the test ends.
func stubRail(t *testing.T, url string, now func() time.Time, after func(time.Duration) <-chan time.Time) (*mpesa.Rail, *payment.Journal) {
	t.Helper()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "j.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	bus := payment.NewBus(j, quietLog())
	t.Cleanup(bus.Close)
	c, err := daraja.NewClient(daraja.Config{BaseURL: url, ConsumerKey: "k", ConsumerSecret: "s", ShortCode: "174379", Passkey: "p",
		Now: now, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := mpesa.NewRail(mpesa.Options{Client: c, Bus: bus, PublicURL: "https://kiosk.example", Logger: quietLog(),
		Now: now, After: after})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, j
}

// The STK Push Query policy, on a fake clock: the first query 20 s
// after the push, then every 10 s ± 2 s while pending; timed out at
// exactly 120 s; one more query 5 minutes later.
func TestQueryPolicyPending(t *testing.T) {
	qs, out := policyRun(t, 500, `{"requestId":"r","errorCode":"500.001.1001","errorMessage":"The transaction is being processed"}`)
	if len(qs) < 2 || qs[0] != 20*time.Second {
		t.Fatalf("queries at %v, want the first at 20s", qs)
	}
	last := qs[len(qs)-1]
	if last != 120*time.Second+5*time.Minute {
		t.Errorf("reconciling query at %v, want 7m0s", last)
	}
	polls := qs[:len(qs)-1]
	for i := 1; i < len(polls); i++ {
		if gap := polls[i] - polls[i-1]; gap < 8*time.Second || gap > 12*time.Second {
			t.Errorf("gap %v between queries %d and %d (all: %v), want 10s ± 2s", gap, i-1, i, qs)
		}
	}
	if end := polls[len(polls)-1]; end > 120*time.Second || end < 108*time.Second {
		t.Errorf("last poll at %v, want within the 120 s budget and close to it", end)
	}
	if out != 120*time.Second {
		t.Errorf("timed out at %v, want 2m0s", out)
	}
}

// Under Spike Arrest the waits double (20 s, 40 s, capped at 60 s).
func TestQueryPolicyBackoff(t *testing.T) {
	qs, out := policyRun(t, 500, `{"requestId":"r","errorCode":"500.003.02","errorMessage":"Spike Arrest Violation"}`)
	want := []time.Duration{20 * time.Second, 40 * time.Second, 80 * time.Second, 7 * time.Minute}
	if !slices.Equal(qs, want) {
		t.Errorf("queries at %v, want %v", qs, want)
	}
	if out != 120*time.Second {
		t.Errorf("timed out at %v, want 2m0s", out)
	}
}
