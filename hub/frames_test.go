package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/hub/wire"
	"paydesk/payment"
)

// TestFramesHeldAreBounded: many kiosks catching up at once, each sending
// a large batch while the store writes none (its ingest slots all taken).
// The hub holds at most FramesHeld of their frames read and decoded; the
// other links wait with their frames unread. Once the store writes again,
// every batch is stored once and acknowledged.
func TestFramesHeldAreBounded(t *testing.T) {
	st, _ := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const kiosks, bound, batch = 12, 3, 500
	tokens := make([]string, kiosks)
	for i := range tokens {
		var err error
		if tokens[i], err = st.AddKiosk(ctx, fmt.Sprintf("K%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	late, err := st.AddKiosk(ctx, "LATE")
	if err != nil {
		t.Fatal(err)
	}
	// The store writes nothing until the test says: every slot taken.
	for range cap(st.ingest) {
		st.ingest <- struct{}{}
	}
	srv := NewServer(st, Options{FramesHeld: bound})
	changed := make(chan struct{}, 1)
	srv.frames.hook = func(int, int) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	evs := make([]wire.Event, batch)
	for i := range evs {
		evs[i] = ev(int64(i+1), payment.KindNotice)
		evs[i].Raw = bytes.Repeat([]byte{'r'}, 1000)
	}
	frame, err := json.Marshal(wire.Frame{Type: wire.TypeEvents, Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan error, kiosks)
	for i, tok := range tokens {
		go func() {
			acks <- func() error {
				c, _, err := websocket.Dial(ctx, ts.URL+wire.Path, &websocket.DialOptions{
					HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
				if err != nil {
					return err
				}
				defer c.CloseNow()
				hello, _ := json.Marshal(wire.Frame{Type: wire.TypeHello, KioskID: fmt.Sprintf("K%02d", i), Version: "test"})
				if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
					return err
				}
				if _, _, err := c.Read(ctx); err != nil { // the welcome
					return err
				}
				if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
					return err
				}
				_, b, err := c.Read(ctx)
				if err != nil {
					return err
				}
				var ack wire.Frame
				if err := json.Unmarshal(b, &ack); err != nil || ack.Type != wire.TypeAck || ack.AckedSeq != batch {
					return fmt.Errorf("kiosk %d: answer %s, want an ack of %d", i, b, batch)
				}
				return nil
			}()
		}()
	}

	// Every kiosk's batch came: held, or waiting to be read.
	for {
		srv.frames.mu.Lock()
		held, waiting, peak := srv.frames.held, srv.frames.waiting, srv.frames.peak
		srv.frames.mu.Unlock()
		if held+waiting == kiosks {
			if peak > bound {
				t.Fatalf("the hub held %d frames at once (%d waiting); the bound is %d", peak, waiting, bound)
			}
			break
		}
		select {
		case <-changed:
		case err := <-acks:
			t.Fatalf("a kiosk ended before the store wrote: %v", err)
		case <-ctx.Done():
			t.Fatalf("held %d, waiting %d of %d kiosks' batches", held, waiting, kiosks)
		}
	}

	// Meanwhile a kiosk is welcomed, and its pings answered.
	c, _, err := websocket.Dial(ctx, ts.URL+wire.Path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + late}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	hello, _ := json.Marshal(wire.Frame{Type: wire.TypeHello, KioskID: "LATE", Version: "test"})
	if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || !bytes.Contains(b, []byte(`"welcome"`)) {
		t.Fatalf("a kiosk's hello while the others' batches wait: %s, %v", b, err)
	}
	go c.Read(ctx) // reads the pong
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("a kiosk's ping while the others' batches wait: %v", err)
	}

	for range cap(st.ingest) { // the store writes again
		<-st.ingest
	}
	for range kiosks {
		if err := <-acks; err != nil {
			t.Fatal(err)
		}
	}
	srv.frames.mu.Lock()
	peak := srv.frames.peak
	srv.frames.mu.Unlock()
	if peak > bound {
		t.Errorf("the hub held %d frames at once; the bound is %d", peak, bound)
	}
	var stored, acked int64
	if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT sum(acked_seq) FROM kiosks)`).Scan(&stored, &acked); err != nil {
		t.Fatal(err)
	}
	if stored != kiosks*batch || acked != kiosks*batch {
		t.Errorf("PostgreSQL holds %d events, acked_seq sum to %d; want %d", stored, acked, kiosks*batch)
	}
}
