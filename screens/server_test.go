package screens

import (
	"context"

	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
)

// posMethods maps the protocol's two methods to the MobyPay POS link.
func posMethods(k *postest.Kiosk) []Method {
	return []Method{
		{Name: "DEBIT_CARD", Rail: k.Server, RailName: payment.RailPOS, Mode: payment.ModeCard},
		{Name: "PAY_BY_BANK", Rail: k.Server, RailName: payment.RailPOS, Mode: payment.ModeDuitNowQR},
	}
}

func TestHappyPathOnSimulatedPOS(t *testing.T) {
	k := postest.New(t, protocol.Options{})
	k.AddSim(t, possim.Options{})
	_, url := startServer(t, k.Bus, quick(Options{Methods: posMethods(k)}))
	c := dial(t, url, nil)

	m := c.screen(ScreenAmountSelect)
	if got := fmt.Sprint(m.Data["amounts"]); got != "[20 40 60 80 100]" || m.Data["currency"] != "RM" || m.Data["showOtherOption"] != true {
		t.Fatalf("AMOUNT_SELECT data = %v", m.Data)
	}
	if m.TransactionID == "" || m.TransactionID == "initial" {
		t.Fatalf("server must mint a transactionId, got %q", m.TransactionID)
	}
	info := c.next()
	if info.MessageType != TypeDeviceInfo || info.Screen != "" || info.Data["currency"] != "MYR" || info.Data["minTransactionLimit"] != float64(10) {
		t.Fatalf("DEVICE_INFO = %+v", info)
	}
	c.action("AMOUNT_SELECT", `{"selectedAmount":60,"selectionMethod":"PRESET_BUTTON"}`)
	m = c.screen(ScreenPaymentMethod)
	if fmt.Sprint(m.Data["methods"]) != "[DEBIT_CARD PAY_BY_BANK]" || m.Data["allowCancel"] != true {
		t.Fatalf("PAYMENT_METHOD data = %v", m.Data)
	}
	c.action("PAYMENT_METHOD", `{"selectionMethod":"DEBIT_CARD"}`)
	c.screen(ScreenProcessing)
	if m := c.screen(ScreenSuccess); m.Data["showReceipt"] != true {
		t.Fatalf("SUCCESS data = %v", m.Data)
	}
	for _, s := range []Screen{ScreenPrintTicket, ScreenCollectTicket, ScreenThankYou} {
		c.screen(s)
	}
	next := c.screen(ScreenAmountSelect)
	if next.TransactionID == m.TransactionID {
		t.Fatal("a new flow must get a new transactionId")
	}
	if c.infoAsked != 1 {
		t.Fatalf("INFO_SCREEN sent %d times to a display of unknown identity, want 1", c.infoAsked)
	}

	txns, err := k.Journal.Recent(context.Background(), 5)
	if err != nil || len(txns) != 1 {
		t.Fatalf("journal: %v %v", txns, err)
	}
	tx := txns[0]
	if tx.Status != payment.StatusApproved || tx.Amount != (payment.Money{Minor: 6000, Currency: "MYR"}) || tx.Mode != payment.ModeCard {
		t.Fatalf("journaled payment = %+v", tx)
	}
	// Every screen of the payment was journaled against it.
	hist, err := k.Journal.History(context.Background(), tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, ev := range hist {
		if ev.Rail == payment.RailScreen && ev.Kind == payment.KindMessage {
			shown = append(shown, strings.TrimPrefix(ev.Detail, "display "))
		}
	}
	if got := strings.Join(shown, " "); got != "SUCCESS PRINT_TICKET COLLECT_TICKET THANK_YOU" {
		t.Fatalf("screens journaled against %s: %q", tx.ID, got)
	}
}

func TestOtherAmountBothShapes(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	// A server each: a display that leaves mid-flow is resumed by the
	// next connection from its address, and these all come from loopback.
	server := func(t *testing.T) string {
		_, url := startServer(t, bus, quick(Options{Currency: "GBP", Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
		return url
	}

	t.Run("the first document's shape: OTHER, then KEYPAD/KEYPAD, then selectedMethod", func(t *testing.T) {
		c := dial(t, server(t), nil)
		c.screen(ScreenAmountSelect)
		c.action("AMOUNT_SELECT", `{"selectedAmount":-1,"selectionMethod":"OTHER"}`)
		m := c.screen(ScreenKeypad)
		if m.Data["currency"] != "£" || m.Data["minAmount"] != float64(10) || m.Data["maxAmount"] != float64(300) {
			t.Fatalf("KEYPAD data = %v", m.Data)
		}
		c.action("KEYPAD", `{"selectedAmount":75,"selectionMethod":"KEYPAD"}`)
		c.screen(ScreenPaymentMethod)
		c.action("PAYMENT_METHOD", `{"selectedMethod":"DEBIT_CARD"}`)
		c.screen(ScreenProcessing)
		c.screen(ScreenSuccess)
	})
	t.Run("the app: AMOUNT_SELECT/CUSTOM, then selectionMethod", func(t *testing.T) {
		c := dial(t, server(t), nil)
		c.screen(ScreenAmountSelect)
		c.action("AMOUNT_SELECT", `{"selectedAmount":76,"selectionMethod":"CUSTOM"}`)
		c.screen(ScreenPaymentMethod)
		c.action("PAYMENT_METHOD", `{"selectionMethod":"DEBIT_CARD"}`)
		c.screen(ScreenProcessing)
		c.screen(ScreenSuccess)
	})
	rail.mu.Lock()
	defer rail.mu.Unlock()
	if len(rail.started) != 2 || rail.started[0].Amount != (payment.Money{Minor: 7500, Currency: "GBP"}) || rail.started[1].Amount.Minor != 7600 {
		t.Fatalf("payments started: %+v", rail.started)
	}
}

func TestLimitError(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{DailyLimit: 100, Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	c.pay(80, "DEBIT_CARD")
	c.screen(ScreenSuccess)
	c.reset()
	for m := c.next(); m.Screen != ScreenAmountSelect || m.MessageType != TypeScreenChange; m = c.next() {
	}
	c.action("AMOUNT_SELECT", `{"selectedAmount":40,"selectionMethod":"PRESET_BUTTON"}`)
	m := c.screen(ScreenLimitError)
	if m.Data["limit"] != float64(100) || m.Data["remaining"] != float64(20) || m.Data["currency"] != "RM" {
		t.Fatalf("LIMIT_ERROR data = %v", m.Data)
	}
	c.reset()
	c.screen(ScreenAmountSelect)
	c.action("AMOUNT_SELECT", `{"selectedAmount":20,"selectionMethod":"PRESET_BUTTON"}`)
	c.screen(ScreenPaymentMethod)
}

func TestIdleTimeout(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{IdleTimeout: 150 * time.Millisecond, Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	c.action("AMOUNT_SELECT", `{"selectedAmount":20,"selectionMethod":"PRESET_BUTTON"}`)
	c.screen(ScreenPaymentMethod)
	start := time.Now()
	m := c.errorMsg(CodeTimeout)
	if m.Screen != ScreenPaymentMethod || m.Data["errorMessage"] != "Transaction timed out" {
		t.Fatalf("timeout = %+v", m)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("timed out after %s, before the idle timeout", el)
	}
	c.screen(ScreenAmountSelect)
	// The timed-out flow's id is no longer accepted.
	c.send(fmt.Sprintf(`{"messageType":"USER_ACTION","screen":"PAYMENT_METHOD","data":{"selectionMethod":"DEBIT_CARD"},"transactionId":%q,"timestamp":1}`, m.TransactionID))
	c.errorMsg(CodeWrongScreen)
	if len(rail.started) != 0 {
		t.Fatal("a timed-out flow started a payment")
	}
}

func TestPingFramesAndResetWithin3s(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	first := c.screen(ScreenAmountSelect)
	c.next() // DEVICE_INFO
	for range 3 {
		c.send(`{"ping":true}`)
	}
	start := time.Now()
	c.reset()
	m := c.next()
	if m.MessageType != TypeScreenChange || m.Screen != ScreenAmountSelect {
		t.Fatalf("after pings and RESET got %+v, want AMOUNT_SELECT (pings are not answered)", m)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("RESET answered after %s, the app waits 3 s", el)
	}
	if m.TransactionID == first.TransactionID || m.TransactionID == "8d1f7a3c-0d55-4f0e-9a57-3f0b0c9d8e21" {
		t.Fatalf("RESET must get a new server-minted id, got %q", m.TransactionID)
	}
	// Mid-flow, RESET goes back to the amounts too.
	c.action("AMOUNT_SELECT", `{"selectedAmount":40,"selectionMethod":"PRESET_BUTTON"}`)
	c.screen(ScreenPaymentMethod)
	c.reset()
	c.screen(ScreenAmountSelect)
}

func TestMalformedFramesKeepTheConnection(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{MaxFrame: 4096, Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	other := dial(t, url, nil)
	other.screen(ScreenAmountSelect)
	c.screen(ScreenAmountSelect)
	flow := c.flow
	act := func(screen, data, txn string) string {
		return fmt.Sprintf(`{"messageType":"USER_ACTION","screen":%q,"data":%s,"transactionId":%q,"timestamp":1}`, screen, data, txn)
	}
	for _, tc := range []struct{ name, frame, code string }{
		{"not JSON", `hello`, CodeInvalidMessage},
		{"truncated JSON", `{"messageType":"USER_ACTION"`, CodeInvalidMessage},
		{"an array", `[1,2]`, CodeInvalidMessage},
		{"two objects", `{"ping":true}{"ping":true}`, CodeInvalidMessage},
		{"no messageType", `{"screen":"RESET"}`, CodeInvalidMessage},
		{"unknown messageType", `{"messageType":"SCREEN_CHANGE","screen":"SUCCESS","data":{},"transactionId":"x","timestamp":1}`, CodeInvalidMessage},
		{"unknown screen", act("FREE_MONEY", `{}`, flow), CodeInvalidMessage},
		{"data not an object", act("AMOUNT_SELECT", `[60]`, flow), CodeInvalidMessage},
		{"amount as a string", act("AMOUNT_SELECT", `{"selectedAmount":"60","selectionMethod":"PRESET_BUTTON"}`, flow), CodeInvalidAmount},
		{"amount with a fraction", act("AMOUNT_SELECT", `{"selectedAmount":60.5,"selectionMethod":"CUSTOM"}`, flow), CodeInvalidAmount},
		{"amount huge", act("AMOUNT_SELECT", `{"selectedAmount":1e300,"selectionMethod":"CUSTOM"}`, flow), CodeInvalidAmount},
		{"amount negative", act("AMOUNT_SELECT", `{"selectedAmount":-5,"selectionMethod":"CUSTOM"}`, flow), CodeInvalidAmount},
		{"amount missing", act("AMOUNT_SELECT", `{"selectionMethod":"PRESET_BUTTON"}`, flow), CodeInvalidAmount},
		{"under the minimum", act("AMOUNT_SELECT", `{"selectedAmount":5,"selectionMethod":"CUSTOM"}`, flow), CodeInvalidAmount},
		{"over the maximum", act("AMOUNT_SELECT", `{"selectedAmount":301,"selectionMethod":"CUSTOM"}`, flow), CodeInvalidAmount},
		{"unknown selection method", act("AMOUNT_SELECT", `{"selectedAmount":60,"selectionMethod":"MAGIC"}`, flow), CodeInvalidMessage},
		{"OTHER with an amount", act("AMOUNT_SELECT", `{"selectedAmount":60,"selectionMethod":"OTHER"}`, flow), CodeInvalidAmount},
		{"a transaction id the server did not issue", act("AMOUNT_SELECT", `{"selectedAmount":60,"selectionMethod":"PRESET_BUTTON"}`, "T123456"), CodeUnknownTransaction},
		{"a method before an amount", act("PAYMENT_METHOD", `{"selectionMethod":"DEBIT_CARD"}`, flow), CodeWrongScreen},
		{"invalid UTF-8", "{\"messageType\":\"USER_ACTION\",\"screen\":\"\xff\"}", CodeInvalidMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.send(tc.frame)
			m := c.errorMsg(tc.code)
			// The ERROR names the screen shown and carries the flow's id,
			// so a client that copies ids (as the app does) recovers.
			if m.Screen != ScreenAmountSelect || m.Data["errorMessage"] == "" || m.TransactionID != flow {
				t.Fatalf("ERROR = %+v", m)
			}
		})
	}
	// Every refusal counts against the connection's allowance of
	// maxRefusals in refusalWindow, and the table used it up: the rest on
	// a connection of its own.
	c = dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	t.Run("an unknown method once on the method screen", func(t *testing.T) {
		c.action("AMOUNT_SELECT", `{"selectedAmount":60,"selectionMethod":"PRESET_BUTTON"}`)
		c.screen(ScreenPaymentMethod)
		c.action("PAYMENT_METHOD", `{"selectionMethod":"BITCOIN"}`)
		c.errorMsg(CodeUnknownMethod)
		c.action("PAYMENT_METHOD", `{}`)
		c.errorMsg(CodeUnknownMethod)
	})
	t.Run("binary frame", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
		c.errorMsg(CodeInvalidMessage)
	})
	t.Run("still usable", func(t *testing.T) {
		c.reset()
		c.screen(ScreenAmountSelect)
	})
	t.Run("oversized frame closes that connection only", func(t *testing.T) {
		c.send(`{"messageType":"USER_ACTION","screen":"RESET","data":{"pad":"` + strings.Repeat("x", 5000) + `"}}`)
		select {
		case err := <-c.closed:
			if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Fatalf("closed with %v, want 1009", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("oversized frame did not close the connection")
		}
		waitFor(t, func() bool {
			evs, err := bus.Journal().EventsSince(context.Background(), 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.Kind == payment.KindRejected && ev.Detail == "display frame refused: frame over 4096 bytes refused" {
					return true
				}
			}
			return false
		})
		other.reset()
		other.screen(ScreenAmountSelect)
	})
	if len(rail.started) != 0 {
		t.Fatalf("bad frames started payments: %+v", rail.started)
	}
}

func TestReconnectAndResume(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal, delay: 300 * time.Millisecond}
	// A server each: a display that leaves mid-flow is resumed by the
	// next connection from its address, and these all come from loopback.
	server := func(t *testing.T) (*Server, string) {
		return startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	}

	t.Run("by the server-issued session id: the result of a payment finished meanwhile", func(t *testing.T) {
		s, url := server(t)
		c := dial(t, url, nil)
		c.screen(ScreenAmountSelect)
		c.next() // DEVICE_INFO carries the session id
		if c.session == "" {
			t.Fatal("no sessionId in DEVICE_INFO")
		}
		c.pay(40, "DEBIT_CARD")
		c.ws.Close(websocket.StatusGoingAway, "tablet lost Wi-Fi")
		waitFor(t, func() bool { return len(s.Displays()) == 1 && !s.Displays()[0].Connected })
		time.Sleep(400 * time.Millisecond) // the payment finishes while the display is away
		d := dial(t, url+"?session="+c.session, nil)
		m := d.screen(ScreenSuccess)
		if m.TransactionID != c.flow {
			t.Fatalf("resumed flow %q, want %q", m.TransactionID, c.flow)
		}
		d.screen(ScreenPrintTicket)
	})
	t.Run("by the device serial of DEVICE_INFO: back on PROCESSING", func(t *testing.T) {
		s, url := server(t)
		c := dial(t, url, nil)
		c.screen(ScreenAmountSelect)
		c.send(`{"messageType":"DEVICE_INFO","screen":"DEVICE_SERIAL","data":{"deviceSerialNumber":"SN-0042","deviceIpAddress":"10.0.0.7"},"transactionId":"","timestamp":1}`)
		c.pay(20, "DEBIT_CARD")
		c.ws.CloseNow()
		waitFor(t, func() bool {
			for _, d := range s.Displays() {
				if d.Label == "SN-0042" && !d.Connected {
					return true
				}
			}
			return false
		})
		// Back from another address (its address is not its identity):
		d := dialFrom(t, url, "127.0.0.2")
		d.screen(ScreenAmountSelect) // a new connection starts fresh…
		d.send(`{"messageType":"DEVICE_INFO","screen":"","data":{"deviceSerialNumber":"SN-0042"},"transactionId":"","timestamp":1}`)
		for { // …until the device says who it is
			m := d.next()
			if m.MessageType == TypeScreenChange {
				if m.Screen != ScreenProcessing && m.Screen != ScreenSuccess {
					t.Fatalf("resumed on %s", m.Screen)
				}
				break
			}
		}
		for m := d.next(); m.Screen != ScreenSuccess; m = d.next() {
		}
		for _, disp := range s.Displays() {
			if disp.Label == "SN-0042" && (!disp.Connected || disp.TxnID == "") {
				t.Fatalf("display after resume: %+v", disp)
			}
		}
	})
}

func TestReconnectReplacesAHalfOpenConnection(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal, delay: 300 * time.Millisecond}
	_, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	old := dial(t, url, nil)
	old.screen(ScreenAmountSelect)
	old.send(`{"messageType":"DEVICE_INFO","screen":"","data":{"deviceSerialNumber":"SN-7"},"transactionId":"","timestamp":1}`)
	old.action("AMOUNT_SELECT", `{"selectedAmount":20,"selectionMethod":"PRESET_BUTTON"}`)
	old.screen(ScreenPaymentMethod)
	old.action("PAYMENT_METHOD", `{"selectionMethod":"DEBIT_CARD"}`)
	old.screen(ScreenProcessing)
	// The tablet lost Wi-Fi; the server has not noticed. It reconnects.
	d := dial(t, url, nil)
	d.screen(ScreenAmountSelect)
	d.send(`{"messageType":"DEVICE_INFO","screen":"","data":{"deviceSerialNumber":"SN-7"},"transactionId":"","timestamp":1}`)
	for m := d.next(); m.Screen != ScreenSuccess; m = d.next() {
	}
	select {
	case err := <-old.closed:
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("old connection closed with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the old connection was not closed")
	}
}

func TestUnansweredPingsCloseTheConnection(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	s, url := startServer(t, bus, quick(Options{PingInterval: 100 * time.Millisecond, Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	// A client that reads answers pings (the library replies to them).
	live := dial(t, url, nil)
	live.screen(ScreenAmountSelect)
	// One that never reads does not.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dead, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.CloseNow()
	waitFor(t, func() bool {
		n := 0
		for _, d := range s.Displays() {
			if d.Connected {
				n++
			}
		}
		return len(s.Displays()) == 2 && n == 1
	})
	time.Sleep(300 * time.Millisecond)
	live.reset()
	live.screen(ScreenAmountSelect)
}

func TestDeviceErrorWhenTheRailIsDown(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	rail.down.Store(true)
	k := postest.New(t, protocol.Options{}) // no POS connected
	_, url := startServer(t, bus, quick(Options{Methods: []Method{
		{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard},
		// The POS link without its Health (which says down with no POS
		// connected): a rail whose Start fails.
		{Name: "PAY_BY_BANK", Rail: struct{ payment.Starter }{k.Server}, RailName: payment.RailPOS, Mode: payment.ModeDuitNowQR},
	}}))
	c := dial(t, url, nil)
	for _, method := range []string{"DEBIT_CARD", "PAY_BY_BANK"} {
		c.screen(ScreenAmountSelect)
		c.action("AMOUNT_SELECT", `{"selectedAmount":20,"selectionMethod":"PRESET_BUTTON"}`)
		c.screen(ScreenPaymentMethod)
		c.action("PAYMENT_METHOD", fmt.Sprintf(`{"selectionMethod":%q}`, method))
		if method == "PAY_BY_BANK" {
			c.screen(ScreenProcessing)
		}
		m := c.screen(ScreenDeviceError)
		if m.Data["errorCode"] != "TERMINAL_ERROR" || m.Data["errorMessage"] == "" {
			t.Fatalf("%s: DEVICE_ERROR data = %v", method, m.Data)
		}
	}
}

func TestFailedPayment(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal, delay: 10 * time.Millisecond,
		outcome: func(payment.Request) (payment.Status, string) {
			return payment.StatusDeclined, "Card declined by issuer"
		}}
	_, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	c.pay(20, "DEBIT_CARD")
	m := c.screen(ScreenFailed)
	// The customer is told in their words; the issuer's are journaled.
	if m.Data["errorCode"] != "CARD_DECLINED" || m.Data["errorMessage"] != "Payment declined. Please try another card or ask staff" {
		t.Fatalf("FAILED data = %v", m.Data)
	}
	c.screen(ScreenAmountSelect)
	if txns, _ := bus.Journal().Recent(context.Background(), 1); len(txns) != 1 || txns[0].Result.Reason != "Card declined by issuer" {
		t.Fatalf("journaled: %+v", txns)
	}
}

func TestTokenAuthentication(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Token: "s3cret", Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, u := range []string{url, url + "?token=wrong"} {
		_, resp, err := websocket.Dial(ctx, u, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: err %v, want 401", u, err)
		}
	}
	dial(t, url+"any/path/at/all?token=s3cret", nil).screen(ScreenAmountSelect) // upgrades on any path
	dial(t, url, http.Header{"Authorization": {"Bearer s3cret"}}).screen(ScreenAmountSelect)
}

func TestOperatorReset(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal, delay: time.Hour}
	s, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	c.action("AMOUNT_SELECT", `{"selectedAmount":20,"selectionMethod":"PRESET_BUTTON"}`)
	c.screen(ScreenPaymentMethod)
	ds := s.Displays()
	if len(ds) != 1 || ds[0].Screen != "PAYMENT_METHOD" || ds[0].Amount.Minor != 2000 || !ds[0].Connected {
		t.Fatalf("displays = %+v", ds)
	}
	if err := s.ResetDisplay(ds[0].ID); err != nil {
		t.Fatal(err)
	}
	c.screen(ScreenAmountSelect)
	c.pay(20, "DEBIT_CARD")
	waitFor(t, func() bool { return s.Displays()[0].TxnID != "" })
	if err := s.ResetDisplay(ds[0].ID); err == nil {
		t.Fatal("reset of a display with a payment in flight was allowed")
	}
	if err := s.ResetDisplay("nope"); err == nil {
		t.Fatal("reset of an unknown display was allowed")
	}
	// The customer's RESET mid-payment keeps PROCESSING.
	c.reset()
	c.screen(ScreenProcessing)
}

func TestNewServerRefusesBadOptions(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	ok := []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}
	for name, o := range map[string]Options{
		"no methods":          {},
		"preset over max":     {Methods: ok, Presets: []int64{500}},
		"min over max":        {Methods: ok, Min: 50, Max: 20},
		"repeated method":     {Methods: append(append([]Method{}, ok...), ok...)},
		"method without rail": {Methods: []Method{{Name: "X"}}},
		"negative limit":      {Methods: ok, DailyLimit: -1},
	} {
		if _, err := NewServer(bus, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Pinto's local-payment mode: the app reads the card on its own terminal,
// asks the daily limit with CARD_CHECK_RESULT, takes the payment and
// reports it with PAYMENT_RESULT; paydesk journals it and runs the steps.
func TestAppsOwnTerminalPayment(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	s, url := startServer(t, bus, quick(Options{Currency: "GBP", DailyLimit: 100, LocalTimeout: 200 * time.Millisecond,
		Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	c.action("AMOUNT_SELECT", `{"selectedAmount":60,"selectionMethod":"PRESET_BUTTON"}`)
	c.screen(ScreenPaymentMethod)
	cardCheck := func(amount int) {
		c.send(fmt.Sprintf(`{"messageType":"CARD_CHECK_RESULT","screen":"PROCESSING","data":{"cardToken":"tok-abc","selectedAmount":%d},"transactionId":%q,"timestamp":1}`, amount, c.flow))
	}
	cardCheck(60)
	m := c.next()
	if m.MessageType != TypeLimitCheckResult || m.Screen != "APPROVED" {
		t.Fatalf("card check answered %+v", m)
	}
	c.send(fmt.Sprintf(`{"messageType":"PAYMENT_RESULT","screen":"SUCCESS","data":{"paymentDetails":{"Result":"A","BankResultCode":"00","RequesterTransRefNum":"R-77"}},"transactionId":%q,"timestamp":1}`, c.flow))
	c.screen(ScreenSuccess)
	c.screen(ScreenPrintTicket)
	for m := c.next(); m.Screen != ScreenAmountSelect; m = c.next() {
	}
	txns, _ := bus.Journal().Recent(context.Background(), 5)
	if len(txns) != 1 || txns[0].Rail != payment.RailScreen || txns[0].Status != payment.StatusApproved ||
		txns[0].Amount != (payment.Money{Minor: 6000, Currency: "GBP"}) || txns[0].Result.RemoteID != "R-77" {
		t.Fatalf("journal: %+v", txns)
	}

	// 60 taken, 40 remain of 100: a second 60 is refused with the figures.
	c.action("AMOUNT_SELECT", `{"selectedAmount":60,"selectionMethod":"PRESET_BUTTON"}`)
	c.screen(ScreenLimitError)
	c.reset()
	c.screen(ScreenAmountSelect)
	cardCheck(60)
	m = c.next()
	if m.MessageType != TypeLimitCheckResult || m.Screen != ScreenLimitError || m.Data["remaining"] != float64(40) {
		t.Fatalf("over the limit: %+v", m)
	}

	// A payment the app never reports becomes unknown for the operator.
	cardCheck(20)
	if m := c.next(); m.Screen != "APPROVED" {
		t.Fatalf("card check: %+v", m)
	}
	m = c.screen(ScreenFailed)
	if m.Data["errorCode"] != "OUTCOME_UNKNOWN" {
		t.Fatalf("unreported payment: %v", m.Data)
	}
	un, _ := bus.Journal().Unresolved(context.Background())
	if len(un) != 1 || un[0].Amount.Minor != 2000 {
		t.Fatalf("unresolved: %+v", un)
	}
	if ds := s.Displays(); ds[0].TxnID != un[0].ID {
		t.Fatalf("display shows payment %q, want %q", ds[0].TxnID, un[0].ID)
	}
}

func TestAFloodOfGarbageClosesOnlyThatConnection(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	good := dial(t, url, nil)
	good.screen(ScreenAmountSelect)
	bad := dial(t, url, nil)
	bad.screen(ScreenAmountSelect)
	for range maxRefusals {
		bad.send("garbage")
		bad.errorMsg(CodeInvalidMessage)
	}
	bad.send("garbage")
	select {
	case err := <-bad.closed:
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("closed with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the flood did not close the connection")
	}
	good.reset()
	good.screen(ScreenAmountSelect)
}

func TestUnknownSerialsDoNotShareASession(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	s, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	a, b := dial(t, url, nil), dial(t, url, nil)
	for _, c := range []*client{a, b} {
		c.screen(ScreenAmountSelect)
		c.send(`{"messageType":"DEVICE_INFO","screen":"DEVICE_SERIAL","data":{"deviceSerialNumber":"unknown"},"transactionId":"info-1","timestamp":1}`)
	}
	a.action("AMOUNT_SELECT", `{"selectedAmount":20,"selectionMethod":"PRESET_BUTTON"}`)
	a.screen(ScreenPaymentMethod)
	b.reset()
	b.screen(ScreenAmountSelect)
	if ds := s.Displays(); len(ds) != 2 || !ds[0].Connected || !ds[1].Connected {
		t.Fatalf("displays %+v", ds)
	}
}

func TestWholeAmountsInAZeroDecimalCurrency(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Currency: "JPY", Presets: []int64{1000, 2000}, Min: 500, Max: 10000,
		Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	c.pay(2000, "DEBIT_CARD")
	c.screen(ScreenSuccess)
	rail.mu.Lock()
	defer rail.mu.Unlock()
	if got := rail.started[0].Amount; got != (payment.Money{Minor: 2000, Currency: "JPY"}) {
		t.Fatalf("¥2000 became %+v", got)
	}
}

func TestReceiptQuestion(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{ReceiptQuestion: true, IdleTimeout: 300 * time.Millisecond,
		Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	c := dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	if info := c.next(); info.Data["requireCardReceipt"] != true {
		t.Fatalf("DEVICE_INFO %v", info.Data)
	}
	buy := func() {
		c.pay(20, "DEBIT_CARD")
		c.screen(ScreenSuccess)
		c.screen(ScreenReceiptQuestion)
	}
	buy()
	c.action("RECEIPT_RESPONSE", `{"selectionMethod":"YES"}`)
	c.screen(ScreenPrintTicket)
	c.screen(ScreenCollectTicket)
	c.screen(ScreenThankYou)
	c.screen(ScreenAmountSelect)
	txns, _ := bus.Journal().Recent(context.Background(), 1)
	hist, _ := bus.Journal().History(context.Background(), txns[0].ID)
	found := false
	for _, ev := range hist {
		found = found || (ev.Kind == payment.KindStep && ev.Detail == "the customer wants a card receipt")
	}
	if !found {
		t.Fatal("the receipt answer is not journaled against the payment")
	}
	// A customer who walks away from the question still gets the ticket.
	buy()
	c.screen(ScreenPrintTicket)
}

// A tablet that vanished never answers the close of its old connection:
// its reconnect, and the other displays, must not wait for that close.
func TestReconnectDoesNotWaitForADeadConnection(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	s, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dead, _, err := websocket.Dial(ctx, url+"?device=SN-9", nil) // never reads again
	if err != nil {
		t.Fatal(err)
	}
	defer dead.CloseNow()
	waitFor(t, func() bool { ds := s.Displays(); return len(ds) == 1 && ds[0].Connected })
	t0 := time.Now()
	d := dial(t, url+"?device=SN-9", nil)
	d.screen(ScreenAmountSelect)
	if took := time.Since(t0); took > time.Second {
		t.Fatalf("the reconnected display got its screen after %s: it waited for the dead connection's close", took)
	}
	t0 = time.Now()
	if err := s.ResetDisplay(s.Displays()[0].ID); err != nil {
		t.Fatal(err)
	}
	d.screen(ScreenAmountSelect)
	if took := time.Since(t0); took > time.Second {
		t.Fatalf("the display's lock was held %s after the reconnect", took)
	}
}

// Close tells the displays paydesk is going away (1001), without waiting
// long for a tablet that no longer answers.
func TestCloseSaysGoingAway(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	s, url := startServer(t, bus, quick(Options{Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dead, _, err := websocket.Dial(ctx, url, nil) // never reads again
	if err != nil {
		t.Fatal(err)
	}
	defer dead.CloseNow()
	c := dial(t, url, nil)
	c.screen(ScreenAmountSelect)
	waitFor(t, func() bool { return len(s.Displays()) == 2 })
	t0 := time.Now()
	s.Close()
	if took := time.Since(t0); took > 3*time.Second {
		t.Errorf("Close took %s", took)
	}
	select {
	case err := <-c.closed:
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("display closed with %v, want 1001 going away", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the display's connection was not closed")
	}
}
