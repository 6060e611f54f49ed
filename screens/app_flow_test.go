package screens

import (
	"testing"

	"paydesk/payment"
)

// cardMethods is DEBIT_CARD on a fake terminal rail.
func cardMethods(rail *fakeRail) []Method {
	return []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}
}

// Without paymentProvider the app takes nnsmart; it is sent every time,
// with the configured value (integra unless set).
func TestDeviceInfoCarriesThePaymentProvider(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	for _, tc := range []struct{ set, want string }{{"", "integra"}, {"NNSmart", "nnsmart"}, {"mock", "mock"}} {
		_, url := startServer(t, bus, quick(Options{PaymentProvider: tc.set, Methods: cardMethods(rail)}))
		a := dialApp(t, url, "10.0.0.21")
		n := 0
		for n < 2 { // once on connect, again in answer to the app's DEVICE_INFO
			m := a.until("DEVICE_INFO", func(m Message) bool { return m.MessageType == TypeDeviceInfo })
			if m.Data["paymentProvider"] != tc.want {
				t.Fatalf("set %q: DEVICE_INFO %v, want paymentProvider %q", tc.set, m.Data, tc.want)
			}
			n++
		}
	}
	if _, err := NewServer(bus, Options{PaymentProvider: "planet", Methods: cardMethods(rail)}); err == nil {
		t.Fatal("a payment provider the app does not know was accepted")
	}
}

// The app's Int is 32 bits: a daily limit above 2,147,483,647 would make
// it refuse every LIMIT_ERROR frame.
func TestDailyLimitMustFitTheAppsInt(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	if _, err := NewServer(bus, Options{DailyLimit: 2_147_483_648, Methods: cardMethods(rail)}); err == nil {
		t.Fatal("a daily limit of 2,147,483,648 was accepted")
	}
	if _, err := NewServer(bus, Options{DailyLimit: 2_147_483_647, Methods: cardMethods(rail)}); err != nil {
		t.Fatalf("the largest Int refused: %v", err)
	}
}

// The app labels PRESET_BUTTON only for 20, 40, 60, 80, 100, whatever the
// server's buttons: the amount is judged, not the label.
func TestAmountsJudgedNotTheAppsLabels(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	t.Run("presets 10,25,50,150: a keypad 40 is an amount in range", func(t *testing.T) {
		_, url := startServer(t, bus, quick(Options{Presets: []int64{10, 25, 50, 150}, Methods: cardMethods(rail)}))
		a := dialApp(t, url, "10.0.0.22")
		a.settle()
		a.tapAmount(40, false) // PRESET_BUTTON by the app's list, not a button here
		a.screen(ScreenPaymentMethod)
	})
	t.Run("no other amounts: the presets, whatever the label", func(t *testing.T) {
		_, url := startServer(t, bus, quick(Options{Presets: []int64{10, 25, 50, 150}, NoOther: true, Methods: cardMethods(rail)}))
		a := dialApp(t, url, "10.0.0.23")
		a.settle()
		a.tapAmount(25, false) // CUSTOM by the app's list
		a.screen(ScreenPaymentMethod)
		a.userAction("RESET", `{}`)
		a.screen(ScreenAmountSelect)
		a.tapAmount(40, false) // PRESET_BUTTON by the app's list, but not offered
		m := a.until("ERROR", func(m Message) bool { return m.MessageType == TypeError })
		if m.Data["errorCode"] != CodeInvalidAmount {
			t.Fatalf("40 without a 40 button: %v", m.Data)
		}
	})
	t.Run("v1.x: Other is -1 with CUSTOM", func(t *testing.T) {
		_, url := startServer(t, bus, quick(Options{Methods: cardMethods(rail)}))
		a := dialApp(t, url, "10.0.0.24")
		a.settle()
		a.tapAmount(-1, true)
		a.screen(ScreenKeypad)
	})
}

// INFO_SCREEN carries an id of its own; an app before v2.0 keeps it and
// used it for its next tap. After the connect burst the last id a display
// has seen is the flow's.
func TestTheFlowsIDIsTheLastADisplaySees(t *testing.T) {
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal}
	_, url := startServer(t, bus, quick(Options{Methods: cardMethods(rail)}))
	a := dialApp(t, url, "10.0.0.25")
	scr := a.settle()
	if a.id() != scr.TransactionID {
		t.Fatalf("the last id seen is %q, the flow's is %q", a.id(), scr.TransactionID)
	}
	a.tapAmount(60, false)
	a.screen(ScreenPaymentMethod)
}
