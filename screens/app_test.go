package screens

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// appClient is a display that behaves as the PintoAndroid app does, not
// as paydesk's own browser page: it dials the bare ws://host:port (it
// cannot add a query string), copies the transactionId of every message
// it receives (INFO_SCREEN's included, as the app's processSocketMessage
// does) and uses the last one for its next action, answers INFO_SCREEN
// with DEVICE_IP (its LAN address) and DEVICE_SERIAL "unknown" (what
// Build.getSerial gives it on Android 8+), labels an amount PRESET_BUTTON
// only when it is one of its hard-coded 20, 40, 60, 80, 100, and sends
// nothing while its own terminal checks the card.
type appClient struct {
	t  testing.TB
	ws *websocket.Conn
	// ip is the deviceIpAddress it reports.
	ip string

	mu sync.Mutex
	// last is the last transactionId received.
	last   string
	msgs   chan Message
	closed chan error
}

// appPresets are the amounts the app labels PRESET_BUTTON, whatever
// buttons the server sent.
var appPresets = []int64{20, 40, 60, 80, 100}

func dialApp(t testing.TB, url, ip string) *appClient {
	t.Helper()
	return dialAppFrom(t, url, ip, "")
}

// dialAppFrom dials from the loopback address local (127.0.0.2, …) when
// set: a tablet seen at another address (a NAT, a changed lease).
func dialAppFrom(t testing.TB, url, ip, local string) *appClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var opts *websocket.DialOptions
	if local != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		tr := &http.Transport{DialContext: d.DialContext}
		t.Cleanup(tr.CloseIdleConnections)
		opts = &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}
	}
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	a := &appClient{t: t, ws: ws, ip: ip, msgs: make(chan Message, 256), closed: make(chan error, 1)}
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				a.closed <- err
				close(a.msgs)
				return
			}
			var m Message
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("server sent invalid JSON %q: %v", b, err)
				continue
			}
			a.mu.Lock()
			a.last = m.TransactionID
			a.mu.Unlock()
			if m.MessageType == TypeScreenChange && m.Screen == ScreenInfo {
				// The app answers at once, with the request's id.
				a.write(fmt.Sprintf(`{"messageType":"DEVICE_INFO","screen":"DEVICE_IP","data":{"deviceIpAddress":%q},"transactionId":%q,"timestamp":%d}`, a.ip, m.TransactionID, time.Now().UnixMilli()))
				a.write(fmt.Sprintf(`{"messageType":"DEVICE_INFO","screen":"DEVICE_SERIAL","data":{"deviceSerialNumber":"unknown"},"transactionId":%q,"timestamp":%d}`, m.TransactionID, time.Now().UnixMilli()))
			}
			a.msgs <- m
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	return a
}

// write sends a frame; an error is the test's to notice (the app only
// logs a failed send).
func (a *appClient) write(frame string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.ws.Write(ctx, websocket.MessageText, []byte(frame))
}

// id is the transactionId the app's next action carries.
func (a *appClient) id() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// next returns the next message, failing after 10 s (generous: a busy
// machine runs two test suites at once).
func (a *appClient) next() Message {
	a.t.Helper()
	select {
	case m, ok := <-a.msgs:
		if !ok {
			a.t.Fatalf("connection closed: %v", <-a.closed)
		}
		return m
	case <-time.After(10 * time.Second):
		a.t.Fatalf("no message within 10 s")
	}
	return Message{}
}

// screen reads until a SCREEN_CHANGE other than INFO_SCREEN, skipping
// DEVICE_INFO, and checks it is want.
func (a *appClient) screen(want Screen) Message {
	a.t.Helper()
	for {
		m := a.next()
		if m.MessageType == TypeDeviceInfo || m.Screen == ScreenInfo {
			continue
		}
		if m.MessageType != TypeScreenChange || m.Screen != want {
			a.t.Fatalf("got %s %s %v, want SCREEN_CHANGE %s", m.MessageType, m.Screen, m.Data, want)
		}
		return m
	}
}

// until reads until a message ok accepts.
func (a *appClient) until(what string, ok func(Message) bool) Message {
	a.t.Helper()
	for {
		if m := a.next(); ok(m) {
			return m
		}
	}
}

// settle reads the burst the server sends on connect: the first screen,
// the configuration and the request for the device's identity, in
// whatever order; it returns the screen.
func (a *appClient) settle() Message {
	a.t.Helper()
	var scr Message
	var info, cfg bool
	for scr.Screen == "" || !info || !cfg {
		m := a.next()
		switch {
		case m.Screen == ScreenInfo:
			info = true
		case m.MessageType == TypeDeviceInfo:
			cfg = true
		case m.MessageType == TypeScreenChange && scr.Screen == "":
			scr = m
		}
	}
	return scr
}

// userAction sends a USER_ACTION with the app's current id.
func (a *appClient) userAction(screen, data string) {
	a.t.Helper()
	if err := a.write(fmt.Sprintf(`{"messageType":"USER_ACTION","screen":%q,"data":%s,"transactionId":%q,"timestamp":%d}`,
		screen, data, a.id(), time.Now().UnixMilli())); err != nil {
		a.t.Fatalf("write: %v", err)
	}
}

// tapAmount is the app's selectAmount: -1 is "Other" (v1.x apps send it
// as CUSTOM), else PRESET_BUTTON only for the app's own presets.
func (a *appClient) tapAmount(n int64, v1 bool) {
	a.t.Helper()
	label := "CUSTOM"
	for _, p := range appPresets {
		if p == n {
			label = "PRESET_BUTTON"
		}
	}
	if n == -1 && !v1 {
		label = "OTHER"
	}
	a.userAction("AMOUNT_SELECT", fmt.Sprintf(`{"selectedAmount":%d,"selectionMethod":%q}`, n, label))
}

// cardCheck is what the app sends once its terminal has read the card
// (Integra) or taken the whole sale (NNSmart), under id.
func (a *appClient) cardCheck(id string, amount int64) {
	a.t.Helper()
	if err := a.write(fmt.Sprintf(`{"messageType":"CARD_CHECK_RESULT","screen":"PROCESSING","data":{"cardToken":"tok-9f2","selectedAmount":%d},"transactionId":%q,"timestamp":%d}`,
		amount, id, time.Now().UnixMilli())); err != nil {
		a.t.Fatalf("write: %v", err)
	}
}

// paymentResult is the app's PAYMENT_RESULT for id, SUCCESS or FAILED.
func (a *appClient) paymentResult(id string, ok bool) error {
	scr, code := "SUCCESS", "A"
	if !ok {
		scr, code = "FAILED", "D"
	}
	return a.write(fmt.Sprintf(`{"messageType":"PAYMENT_RESULT","screen":%q,"data":{"errorCode":%q,"errorMessage":null,"paymentDetails":{"Result":%q,"BankResultCode":"00","Message":"","RequesterTransRefNum":%q}},"transactionId":%q,"timestamp":%d}`,
		scr, code, code, id, id, time.Now().UnixMilli()))
}

// isCustomerText reports whether s reads as a message for a customer,
// not for a developer: no protocol field or message names.
func isCustomerText(s string) bool {
	if s == "" {
		return false
	}
	for _, w := range []string{"transactionId", "SCREEN_CHANGE", "selectedAmount", "selectionMethod", "messageType", "JSON", "USER_ACTION", "copy the", "%!", "PRESET", "CUSTOM", "KEYPAD", "AMOUNT_SELECT", "PAYMENT_METHOD", "frame"} {
		if strings.Contains(s, w) {
			return false
		}
	}
	return true
}
