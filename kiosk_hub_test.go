package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"paydesk/hub"
	"paydesk/hub/wire"
)

// A message from the hub waits for the rails to start; an M-Pesa callback
// with no rail via the hub, or a kind this kiosk does not take, is left
// at the hub (an error: not acknowledged).
func TestHubMessagesWaitForTheRails(t *testing.T) {
	h := &hubSettings{railsUp: make(chan struct{})}
	body, _ := json.Marshal(hub.MpesaMessage{Kind: "stk", Body: json.RawMessage(`{}`), Source: "196.201.214.200", Allowed: true})
	m := wire.Message{ID: 1, Kind: hub.MessageMpesa, Body: body}
	if err := h.onMessage(context.Background(), wire.Message{ID: 2, Kind: "other"}); err == nil || !strings.Contains(err.Error(), "does not take") {
		t.Fatalf("a kind of message the kiosk does not take: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.onMessage(ctx, m); err == nil {
		t.Fatal("a callback handled before the rails started")
	}
	errc := make(chan error, 1)
	go func() { errc <- h.onMessage(context.Background(), m) }()
	h.railsStarted(nil)
	// Generous: the goroutine may be slow to run on a loaded machine.
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "M-Pesa is not running") {
			t.Fatalf("a callback with no M-Pesa rail via the hub: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the message still waits after the rails started")
	}
}
