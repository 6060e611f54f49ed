package link_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/hub/link"
	"paydesk/hub/wire"
	"paydesk/payment"
)

// TestASilentHubIsLeft: a hub that welcomes the kiosk and then goes
// silent (it reads nothing more, so answers no ping, as a connection a NAT
// forgot) is left, and the link connects again.
func TestASilentHubIsLeft(t *testing.T) {
	conns := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		conns <- struct{}{}
		if _, _, err := c.Read(r.Context()); err != nil { // the hello
			return
		}
		b, _ := json.Marshal(wire.Frame{Type: wire.TypeWelcome, KioskID: "K1"})
		c.Write(r.Context(), websocket.MessageText, b)
		<-r.Context().Done() // silent from now on
	}))
	defer srv.Close()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "j.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	l, err := link.New(link.Options{URL: srv.URL, Token: "pdh_x", KioskID: "K1", Journal: j,
		Keepalive: 20 * time.Millisecond, AckTimeout: 200 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := range 2 {
		select {
		case <-conns:
		case <-time.After(wait):
			t.Fatalf("connection %d never came (status %+v)", i+1, l.Status())
		}
	}
}
