//go:build !race

// The race detector caps live goroutines at 8,128; 1,000 POS with their
// simulators need more, so this load test runs without -race.

package protocol_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
)

// TestThousandPOS connects 1,000 simulated POS terminals at once, runs a
// payment on every one of them concurrently, and checks that every one is
// approved: no message lost. It reports the memory the connections cost.
//
//	go test -run TestThousandPOS -v ./protocol
func TestThousandPOS(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const n = 1000
	h := newHarness(t, protocol.Options{})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := rssKiB()

	sims := make([]*possim.Sim, n)
	for i := range sims {
		sims[i] = possim.New(possim.Options{Addr: h.addr, Secret: secret, PosID: "POS" + strconv.Itoa(1000+i)})
		go sims[i].Run(h.ctx)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(h.srv.Peers()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d POS connected", len(h.srv.Peers()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var connected runtime.MemStats
	runtime.ReadMemStats(&connected)
	rssConnected := rssKiB()

	start := time.Now()
	ids := make([]string, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range h.srv.Peers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := h.srv.Start(context.Background(), payment.Request{Mode: payment.ModeCard,
				Amount: payment.Money{Minor: 2550, Currency: "MYR"}, Target: p.Addr})
			if err != nil {
				t.Errorf("start on %s: %v", p.Addr, err)
				return
			}
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// The journal is the record: wait until it holds every outcome.
	var counts map[payment.Status]int
	for {
		var err error
		if counts, err = h.j.Counts(context.Background()); err != nil {
			t.Fatal(err)
		}
		final := 0
		for st, c := range counts {
			if st.Final() {
				final += c
			}
		}
		if final == n {
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("after 60 s only %d of %d payments are final: %v", final, n, counts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if counts[payment.StatusApproved] != n || len(ids) != n {
		t.Fatalf("approved %d of %d (%v)", counts[payment.StatusApproved], n, counts)
	}
	var handled int64
	for _, s := range sims {
		handled += s.Handled()
	}
	if handled != n {
		t.Errorf("simulators accepted %d kiosk messages, want %d", handled, n)
	}
	perConn := float64(connected.HeapInuse-before.HeapInuse) / n
	t.Logf("%d POS connected: heap in use +%.1f KiB per connection (server and simulator sides), RSS %d → %d KiB, %d goroutines",
		n, perConn/1024, rssBefore, rssConnected, runtime.NumGoroutine())
	t.Logf("%d concurrent payments (request, ack, result; %d journaled transitions) in %s: %.0f payments/s",
		n, 4*n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
}

// rssKiB is this process's resident set size from /proc, or 0 elsewhere.
func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.Atoi(f[0])
				return v
			}
		}
	}
	return 0
}
