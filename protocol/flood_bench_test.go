package protocol_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
)

// BenchmarkHonestPayments runs card payments one after another on a
// simulated POS, each to its approval (request, ack, result; four journaled
// transitions), and reports payments/s; with flood, another connection
// meanwhile sends frames signed with a wrong secret as fast as the kiosk
// reads them, and rejected/s reports how many the kiosk refused meanwhile.
//
//	go test -run '^$' -bench HonestPayments -benchtime 200x -count 3 ./protocol
func BenchmarkHonestPayments(b *testing.B) {
	for _, flood := range []bool{false, true} {
		name := "quiet"
		if flood {
			name = "wrong-secret-flood"
		}
		b.Run(name, func(b *testing.B) {
			k := postest.New(b, protocol.Options{})
			sub := k.Bus.Subscribe(1 << 16)
			defer sub.Close()
			k.AddSim(b, possim.Options{PosID: "POS001"})
			target := k.Server.Peers()[0].Addr // known by its address until it speaks
			var sent atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if flood {
				c, err := net.Dial("tcp", k.Addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				chunk := bytes.Repeat(forged(b, 0), 64)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := c.Write(chunk); err != nil {
							return
						}
						sent.Add(64)
					}
				}()
				// Let the flood run before measuring.
				for sent.Load() < 10_000 {
					time.Sleep(time.Millisecond)
				}
			}
			rejected := func() (n int64) {
				for _, p := range k.Server.Peers() {
					n += p.Rejected
				}
				return n
			}
			b.ResetTimer()
			start, before := time.Now(), rejected()
			for i := range b.N {
				id, err := k.Server.Start(context.Background(), payment.Request{Mode: payment.ModeCard,
					Amount: payment.Money{Minor: 1000 + int64(i%50), Currency: "MYR"}, Target: target})
				if err != nil {
					b.Fatal(err)
				}
				for done := false; !done; {
					select {
					case ev := <-sub.C():
						done = ev.TxnID == id && ev.Kind == payment.KindTransition && ev.Status.Final()
						if done && ev.Status != payment.StatusApproved {
							b.Fatalf("%s became %s: %s", id, ev.Status, ev.Detail)
						}
					case <-time.After(30 * time.Second):
						b.Fatalf("%s not final after 30 s", id)
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "payments/s")
			if flood {
				b.ReportMetric(float64(rejected()-before)/elapsed.Seconds(), "rejected/s")
			}
			close(stop)
			wg.Wait()
		})
	}
}
