//go:build !race

// A load test: the race detector's overhead would be measured, not the
// hub's, so it is built only without -race.

package hub

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestCallbackDeliveryLoad measures how long a Safaricom Daraja STK result
// takes from its POST to a hub replica until the link of the kiosk that
// owns the push receives it, with two replicas on one PostgreSQL (the
// throwaway cluster, fsync off). PAYDESK_LOAD_KIOSKS kiosks (half linked
// to each replica; default 100) journal PAYDESK_LOAD_CALLBACKS STK pushes
// between them, each acknowledged with its CheckoutRequestID, and
// replicate them to the hub; then one callback per push is posted to a
// replica picked at random, PAYDESK_LOAD_RATE a second (default 100). The
// replicas' message poll is an hour: a callback reaches a kiosk on the
// other replica only by NOTIFY. It reports p50/p99/max and fails if p99 is
// 200 ms or more. With PAYDESK_LOAD_TRAFFIC=D every kiosk also takes a
// sale about every D (card and M-Pesa in turn) while the callbacks come,
// and its link replicates them beside the callbacks. Not run unless asked:
//
//	PAYDESK_LOAD_CALLBACKS=2000 go test -run TestCallbackDeliveryLoad -v -timeout 10m ./hub/
//	PAYDESK_LOAD_CALLBACKS=2000 PAYDESK_LOAD_TRAFFIC=200ms go test -run TestCallbackDeliveryLoad -v -timeout 10m ./hub/
func TestCallbackDeliveryLoad(t *testing.T) {
	m, _ := strconv.Atoi(os.Getenv("PAYDESK_LOAD_CALLBACKS"))
	if m <= 0 {
		t.Skip("a load test: set PAYDESK_LOAD_CALLBACKS (and PAYDESK_LOAD_KIOSKS, PAYDESK_LOAD_RATE)")
	}
	k := envInt(t, "PAYDESK_LOAD_KIOSKS", 100)
	rate := envInt(t, "PAYDESK_LOAD_RATE", 100)
	var traffic time.Duration
	if s := os.Getenv("PAYDESK_LOAD_TRAFFIC"); s != "" {
		var err error
		if traffic, err = time.ParseDuration(s); err != nil {
			t.Fatalf("PAYDESK_LOAD_TRAFFIC=%q: %v", s, err)
		}
	}
	r := runCallbackLoad(t, k, m, rate, traffic)
	t.Logf("%d callbacks to %d kiosks on 2 replicas at %d/s, the kiosks replicating %.0f events/s of their own meanwhile: delivered p50 %v p99 %v max %v; hub answered Daraja p50 %v p99 %v; load average %s",
		m, k, rate, r.journaled, r.p50, r.p99, r.max, r.answerP50, r.answerP99, loadavg())
	if r.p99 >= 200*time.Millisecond {
		t.Fatalf("p99 %v, the target is under 200 ms", r.p99)
	}
}
