package payment

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestBus(t *testing.T) {
	ctx := context.Background()

	t.Run("subscribers see committed events in journal order", func(t *testing.T) {
		j, _ := openTestJournal(t)
		bus := NewBus(j, nil)
		sub := bus.Subscribe(16)
		defer sub.Close()
		ev, err := bus.Publish(ctx, created("T1", 100))
		if err != nil {
			t.Fatal(err)
		}
		got := <-sub.C()
		if got.Seq != ev.Seq || got.TxnID != "T1" {
			t.Errorf("got %+v, want seq %d", got, ev.Seq)
		}
		// On disk before it was shown.
		if _, err := j.Txn(ctx, "T1"); err != nil {
			t.Errorf("shown event not in journal: %v", err)
		}
	})

	t.Run("an illegal transition is not shown", func(t *testing.T) {
		j, _ := openTestJournal(t)
		bus := NewBus(j, nil)
		sub := bus.Subscribe(16)
		if _, err := bus.Publish(ctx, to("ghost", StatusApproved)); err == nil {
			t.Fatal("illegal transition published")
		}
		bus.Publish(ctx, Event{Kind: KindNotice, Rail: RailSystem, Detail: "marker"})
		if got := <-sub.C(); got.Detail != "marker" {
			t.Errorf("first event seen = %+v, want the marker", got)
		}
	})

	t.Run("a slow subscriber never blocks publishers and learns what it missed", func(t *testing.T) {
		j, _ := openTestJournal(t)
		bus := NewBus(j, nil)
		slow := bus.Subscribe(2)
		fast := bus.Subscribe(100)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 10 {
				bus.Publish(ctx, Event{Kind: KindNotice, Rail: RailSystem, Detail: fmt.Sprint(i)})
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("publisher blocked by a subscriber that does not read")
		}
		for i := range 10 {
			if ev := <-fast.C(); ev.Detail != fmt.Sprint(i) || ev.Missed != 0 {
				t.Fatalf("fast subscriber got %+v at %d", ev, i)
			}
		}
		first, second := <-slow.C(), <-slow.C()
		if first.Detail != "0" || second.Detail != "1" {
			t.Fatalf("slow subscriber buffer = %q %q", first.Detail, second.Detail)
		}
		bus.Publish(ctx, Event{Kind: KindNotice, Rail: RailSystem, Detail: "after"})
		ev := <-slow.C()
		if ev.Detail != "after" || ev.Missed != 8 {
			t.Errorf("after overflow got %q missed %d, want \"after\" missed 8", ev.Detail, ev.Missed)
		}
		missed, err := j.EventsSince(ctx, second.Seq, 100)
		if err != nil || len(missed) != 9 {
			t.Errorf("re-read %d events (%v), want 9", len(missed), err)
		}
	})

	t.Run("closing the bus closes every subscription", func(t *testing.T) {
		j, _ := openTestJournal(t)
		bus := NewBus(j, nil)
		sub := bus.Subscribe(1)
		bus.Close()
		if _, ok := <-sub.C(); ok {
			t.Error("channel still open")
		}
		sub.Close() // no double close
		if _, ok := <-bus.Subscribe(1).C(); ok {
			t.Error("subscription after close is open")
		}
	})
}
