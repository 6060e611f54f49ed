package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hublink "paydesk/hub/link"
	"paydesk/hub/wire"
	"paydesk/payment"
)

// TestCallbackDeliverySmall is the load test's course at a small size, so
// the harness itself stays working: every callback reaches its own kiosk
// exactly once. It asserts no timing.
func TestCallbackDeliverySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	r := runCallbackLoad(t, 4, 40, 200, 50*time.Millisecond)
	t.Logf("delivered p50 %v p99 %v max %v", r.p50, r.p99, r.max)
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

type loadResult struct {
	p50, p99, max        time.Duration
	answerP50, answerP99 time.Duration
	journaled            float64 // the kiosks' own events a second, replicated meanwhile
}

// loadKiosk is a kiosk reduced to what delivery needs: a journal the link
// replicates, and a link that notes when each callback arrives.
type loadKiosk struct {
	id  string
	j   *payment.Journal
	bus *payment.Bus
	l   *hublink.Link
}

// runCallbackLoad posts callbacks STK results at rate a second to kiosks
// that hold their pushes; with traffic > 0 every kiosk meanwhile takes a
// sale about every traffic, at random (card and M-Pesa in turn), which its link
// replicates on the same link the callbacks arrive on.
func runCallbackLoad(t *testing.T, kiosks, callbacks, rate int, traffic time.Duration) loadResult {
	f := newDarajaFixture(t)
	storeB, err := Open(context.Background(), f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(storeB.Close)
	replicas := []string{f.replica(f.store), f.replica(storeB)}

	// checkout → the kiosk it belongs to, and when its callback was posted
	// and received.
	owner := make(map[string]string, callbacks)
	var mu sync.Mutex
	posted := make(map[string]time.Time, callbacks)
	received := make(map[string]time.Duration, callbacks)
	var wrong []string
	all := make(chan struct{})

	onMessage := func(kioskID string) func(context.Context, wire.Message) error {
		return func(_ context.Context, msg wire.Message) error {
			at := time.Now()
			if msg.Kind != MessageMpesa {
				return errors.New("not an M-Pesa callback")
			}
			var cb MpesaMessage
			if err := json.Unmarshal(msg.Body, &cb); err != nil {
				return err
			}
			var stk struct {
				Body struct {
					StkCallback struct{ CheckoutRequestID string } `json:"stkCallback"`
				}
			}
			if err := json.Unmarshal(cb.Body, &stk); err != nil {
				return err
			}
			id := stk.Body.StkCallback.CheckoutRequestID
			mu.Lock()
			defer mu.Unlock()
			p, ok := posted[id]
			switch _, dup := received[id]; {
			case !ok || owner[id] != kioskID:
				wrong = append(wrong, kioskID+" got "+id)
			case dup:
				wrong = append(wrong, kioskID+" got "+id+" twice")
			default:
				received[id] = at.Sub(p)
				if len(received) == callbacks {
					close(all)
				}
			}
			return nil
		}
	}

	ctx := context.Background()
	ks := make([]*loadKiosk, kiosks)
	for i := range ks {
		id := fmt.Sprintf("K%03d", i)
		tok, err := f.store.AddKiosk(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bus := payment.NewBus(j, quiet())
		l, err := hublink.New(hublink.Options{URL: replicas[i%2], Token: tok, KioskID: id, Journal: j, Bus: bus,
			Poll: time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: quiet(),
			OnMessage: onMessage(id)})
		if err != nil {
			t.Fatal(err)
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); l.Run(lctx) }()
		t.Cleanup(func() { cancel(); <-done; bus.Close(); j.Close() })
		ks[i] = &loadKiosk{id: id, j: j, bus: bus, l: l}
	}

	// Each kiosk journals its share of the pushes as its M-Pesa rail does:
	// created, sent, acknowledged with Daraja's CheckoutRequestID.
	checkouts := make([]string, callbacks)
	for n := range callbacks {
		k := ks[n%kiosks]
		txn := fmt.Sprintf("PD%06d", n)
		checkout := fmt.Sprintf("ws_CO_LOAD%06d", n)
		for _, ev := range []payment.Event{
			{Status: payment.StatusCreated, Mode: payment.ModeSTKPush, Amount: payment.Money{Minor: 100 * 100, Currency: "KES"}},
			{Status: payment.StatusSent},
			{Status: payment.StatusAcknowledged, Result: &payment.Result{RemoteID: checkout}},
		} {
			ev.Kind, ev.Rail, ev.TxnID = payment.KindTransition, payment.RailMPesa, txn
			if _, err := k.bus.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		checkouts[n], owner[checkout] = checkout, k.id
	}
	for _, k := range ks {
		last, err := k.j.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, darajaWait)
		err = k.l.WaitAcked(wctx, last)
		cancel()
		if err != nil {
			t.Fatalf("%s: the hub did not acknowledge its journal up to %d: %v", k.id, last, err)
		}
	}

	// The kiosks' own sales, replicated meanwhile.
	var sales sync.WaitGroup
	sctx, stopSales := context.WithCancel(ctx)
	defer func() { stopSales(); sales.Wait() }()
	var sold atomic.Int64
	if traffic > 0 {
		for _, k := range ks {
			sales.Go(func() {
				for i := 0; ; i++ {
					// About every traffic, at random: a fleet's
					// sales do not come in step.
					select {
					case <-sctx.Done():
						return
					case <-time.After(traffic/2 + rand.N(traffic)):
					}
					txn := fmt.Sprintf("BG-%s-%d", k.id, i)
					rail, mode, amount := payment.RailPOS, payment.ModeCard, payment.Money{Minor: 2550, Currency: "MYR"}
					if i%2 == 0 {
						rail, mode, amount = payment.RailMPesa, payment.ModeSTKPush, payment.Money{Minor: 10000, Currency: "KES"}
					}
					for _, ev := range []payment.Event{
						{Status: payment.StatusCreated, Mode: mode, Amount: amount},
						{Status: payment.StatusSent},
						{Status: payment.StatusApproved},
					} {
						ev.Kind, ev.Rail, ev.TxnID = payment.KindTransition, rail, txn
						if _, err := k.bus.Publish(sctx, ev); err != nil {
							return
						}
						sold.Add(1)
					}
				}
			})
		}
	}

	// Daraja posts the results at a steady rate, each to a replica picked
	// at random (a load balancer in front of them).
	began := time.Now()
	rand.Shuffle(len(checkouts), func(a, b int) { checkouts[a], checkouts[b] = checkouts[b], checkouts[a] })
	client := &http.Client{Timeout: darajaWait, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	answers := make([]time.Duration, callbacks)
	errs := make(chan error, callbacks)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for n, checkout := range checkouts {
		<-tick.C
		body := fmt.Sprintf(`{"Body":{"stkCallback":{"MerchantRequestID":"m-%d","CheckoutRequestID":%q,"ResultCode":0,"ResultDesc":"The service request is processed successfully.",`+
			`"CallbackMetadata":{"Item":[{"Name":"Amount","Value":100.00},{"Name":"MpesaReceiptNumber","Value":"RL%08d"},{"Name":"TransactionDate","Value":20261204120000},{"Name":"PhoneNumber","Value":254708374149}]}}}}`,
			n, checkout, n)
		url := replicas[rand.IntN(2)] + PathSTK
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			start := time.Now()
			posted[checkout] = start
			mu.Unlock()
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			answers[n] = time.Since(start)
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("%s answered %d", checkout, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(darajaWait):
		mu.Lock()
		n := len(received)
		mu.Unlock()
		t.Fatalf("%d of %d callbacks reached their kiosk within %v", n, callbacks, darajaWait)
	}
	stopSales()
	sales.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 {
		t.Fatalf("callbacks delivered wrongly: %v", wrong)
	}
	lat := make([]time.Duration, 0, callbacks)
	for _, d := range received {
		lat = append(lat, d)
	}
	slices.Sort(lat)
	slices.Sort(answers)
	return loadResult{p50: pct(lat, 50), p99: pct(lat, 99), max: lat[len(lat)-1],
		answerP50: pct(answers, 50), answerP99: pct(answers, 99),
		journaled: float64(sold.Load()) / time.Since(began).Seconds()}
}

// pct is the p-th percentile of sorted d (nearest rank).
func pct(d []time.Duration, p int) time.Duration {
	i := (len(d)*p+99)/100 - 1
	return d[max(i, 0)]
}
