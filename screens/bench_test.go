package screens

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/payment"
)

// BenchmarkResetRoundTrip is one display's RESET → AMOUNT_SELECT over
// loopback, the answer journaled (fsync'd) before it is sent.
//
//	go test -run XXX -bench ResetRoundTrip ./screens
func BenchmarkResetRoundTrip(b *testing.B) {
	bus := newBus(b)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(b, bus, Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.CloseNow()
	for range 3 { // AMOUNT_SELECT, DEVICE_INFO, INFO_SCREEN (the server asks an unnamed display its serial)
		if _, _, err := ws.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		frame := fmt.Sprintf(`{"messageType":"USER_ACTION","screen":"RESET","data":{},"transactionId":"r-%d","timestamp":1}`, i)
		if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			b.Fatal(err)
		}
		_, raw, err := ws.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var m Message
		if err := json.Unmarshal(raw, &m); err != nil || m.Screen != ScreenAmountSelect {
			b.Fatalf("got %s", raw)
		}
	}
}

// BenchmarkDecode is the inbound decoder on the app's method choice.
func BenchmarkDecode(b *testing.B) {
	frame := []byte(`{"messageType":"USER_ACTION","screen":"PAYMENT_METHOD","data":{"selectionMethod":"DEBIT_CARD"},"transactionId":"5b3c1d52-7f0e-4e0a-9a57-3f0b0c9d8e21","timestamp":1619456794000}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}
