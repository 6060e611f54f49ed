package screens

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
)

// devtools drives one Chromium page over the DevTools protocol, on the
// same WebSocket library the server uses.
type devtools struct {
	t       testing.TB
	ws      *websocket.Conn
	next    atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan devtoolsReply
}

type devtoolsReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// chromium starts headless Chromium and returns its first page. It skips
// when Chromium is not installed, unless CI=true, where that fails.
func chromium(t *testing.T) *devtools {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI installs it: apt-get install chromium)")
		}
		t.Skip("chromium is not installed")
	}
	// Chromium's helper processes may still write to their profile just
	// after the browser exits, so the profile is removed with retries.
	profile, err := os.MkdirTemp("", "paydesk-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--window-size=1024,768", "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "DevTools listening on "); ok {
				found <- url
			}
		}
	}()
	var browserURL string
	select {
	case browserURL = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not report its DevTools address within 30 s")
	}
	host := strings.TrimPrefix(browserURL, "ws://")
	host = host[:strings.Index(host, "/")]
	var pageURL string
	for deadline := time.Now().Add(10 * time.Second); pageURL == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + host + "/json/list")
		if err != nil {
			continue
		}
		var targets []struct{ Type, WebSocketDebuggerURL string }
		json.NewDecoder(resp.Body).Decode(&targets)
		resp.Body.Close()
		for _, tg := range targets {
			if tg.Type == "page" {
				pageURL = tg.WebSocketDebuggerURL
			}
		}
	}
	if pageURL == "" {
		t.Fatal("no page target in chromium")
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, pageURL, nil)
	if err != nil {
		t.Fatalf("devtools: %v", err)
	}
	ws.SetReadLimit(64 << 20) // screenshots
	d := &devtools{t: t, ws: ws, pending: map[int64]chan devtoolsReply{}}
	go d.read()
	t.Cleanup(func() { ws.CloseNow() })
	return d
}

func (d *devtools) read() {
	for {
		_, b, err := d.ws.Read(context.Background())
		if err != nil {
			return
		}
		var m struct {
			ID int64 `json:"id"`
			devtoolsReply
		}
		if json.Unmarshal(b, &m) != nil || m.ID == 0 {
			continue // an event
		}
		d.mu.Lock()
		c := d.pending[m.ID]
		delete(d.pending, m.ID)
		d.mu.Unlock()
		if c != nil {
			c <- m.devtoolsReply
		}
	}
}

// call sends one DevTools command and decodes its result into out.
func (d *devtools) call(method string, params any, out any) {
	d.t.Helper()
	id := d.next.Add(1)
	c := make(chan devtoolsReply, 1)
	d.mu.Lock()
	d.pending[id] = c
	d.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.ws.Write(ctx, websocket.MessageText, b); err != nil {
		d.t.Fatalf("%s: %v", method, err)
	}
	select {
	case r := <-c:
		if r.Error != nil {
			d.t.Fatalf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				d.t.Fatalf("%s: %v", method, err)
			}
		}
	case <-ctx.Done():
		d.t.Fatalf("%s: no answer", method)
	}
}

// eval evaluates a JavaScript expression in the page and returns its value.
func (d *devtools) eval(expr string, out any) {
	d.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	d.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		d.t.Fatalf("eval %s: %s", expr, r.ExceptionDetails.Text)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			d.t.Fatalf("eval %s: %v (%s)", expr, err, r.Result.Value)
		}
	}
}

// waitScreen waits until the page shows screen.
func (d *devtools) waitScreen(screen string) {
	d.t.Helper()
	var got string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		d.eval(`(document.body && document.body.dataset.screen) || ""`, &got)
		if got == screen {
			return
		}
	}
	d.t.Fatalf("page shows %q, want %s", got, screen)
}

// click presses and releases the mouse on the middle of the element
// matched by selector, as a finger on the tablet would.
func (d *devtools) click(selector string) {
	d.t.Helper()
	var box []float64
	d.eval(fmt.Sprintf(`(function(){var e=document.querySelector(%q); if(!e||e.offsetParent===null) return []; e.scrollIntoView({block:"center"}); var r=e.getBoundingClientRect(); return [r.x+r.width/2, r.y+r.height/2];})()`, selector), &box)
	if len(box) != 2 {
		d.t.Fatalf("no visible %s on the page", selector)
	}
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		d.call("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": box[0], "y": box[1], "button": "left", "clickCount": 1}, nil)
	}
}

// text is the text of the element with id.
func (d *devtools) text(id string) string {
	d.t.Helper()
	var s string
	d.eval(fmt.Sprintf(`document.getElementById(%q).textContent`, id), &s)
	return s
}

// screenshotDir is where the browser tests write their screenshots:
// $PAYDESK_SCREENSHOTS, else a temporary directory.
func screenshotDir(t testing.TB) string {
	if dir := os.Getenv("PAYDESK_SCREENSHOTS"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// screenshot writes the page as a PNG and logs where.
func (d *devtools) screenshot(dir, name string) string {
	d.t.Helper()
	var r struct {
		Data string `json:"data"`
	}
	d.call("Page.captureScreenshot", map[string]any{"format": "png"}, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		d.t.Fatalf("screenshot is not a PNG (%v)", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		d.t.Fatal(err)
	}
	d.t.Logf("screenshot %s (%d bytes)", path, len(png))
	return path
}

func TestBrowserDisplayInChromium(t *testing.T) {
	page := chromium(t)
	k := postest.New(t, protocol.Options{})
	k.AddSim(t, possim.Options{})
	srv, _ := startServer(t, k.Bus, Options{StepDelay: 400 * time.Millisecond, ResultHold: 400 * time.Millisecond, Methods: posMethods(k)})
	shots := screenshotDir(t)

	// No ?device=: the page names itself when the server asks (INFO_SCREEN).
	page.call("Page.navigate", map[string]any{"url": srv.URL()}, nil)
	page.waitScreen("AMOUNT_SELECT")
	var labels []string
	page.eval(`Array.from(document.querySelectorAll("#amounts button")).map(function(b){return b.textContent})`, &labels)
	if strings.Join(labels, " ") != "RM20 RM40 RM60 RM80 RM100" {
		t.Fatalf("amount buttons %q", labels)
	}
	page.screenshot(shots, "amount_select.png")
	page.click(`#amounts button[data-amount="60"]`)
	page.waitScreen("PAYMENT_METHOD")
	page.click(`#methods button[data-method="DEBIT_CARD"]`)
	page.waitScreen("SUCCESS")
	page.screenshot(shots, "success.png")
	page.waitScreen("THANK_YOU")
	page.screenshot(shots, "thank_you.png")
	page.waitScreen("AMOUNT_SELECT")

	// An other amount on the keypad, paid by bank (DuitNow QR on the POS).
	page.click("#other")
	page.waitScreen("KEYPAD")
	page.click(`#keypad button:nth-child(7)`) // 1 2 3 / 4 5 6 / 7 8 9 / C 0 ⌫
	page.click(`#keypad button:nth-child(5)`)
	if entered := page.text("keypad-value"); entered != "75" {
		t.Fatalf("keypad shows %q after 7, 5", entered)
	}
	page.screenshot(shots, "keypad.png")
	page.click("#keypad-ok")
	page.waitScreen("PAYMENT_METHOD")
	page.click(`#methods button[data-method="PAY_BY_BANK"]`)
	page.waitScreen("SUCCESS")

	txns, err := k.Journal.Recent(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tx := range txns {
		got = append(got, fmt.Sprintf("%s %s %s", tx.Mode, tx.Amount.Decimal(), tx.Status))
	}
	if strings.Join(got, ", ") != "duitnow_qr 75.00 approved, card 60.00 approved" {
		t.Fatalf("journal: %q", got)
	}
	// A reload reconnects with the session id the server issued: the same
	// display, not a second one.
	page.waitScreen("AMOUNT_SELECT")
	page.eval(`window.beforeReload = true`, nil)
	page.call("Page.reload", map[string]any{}, nil)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var fresh bool
		page.eval(`!window.beforeReload && (document.body && document.body.dataset.screen) === "AMOUNT_SELECT"`, &fresh)
		if fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reloaded page did not show AMOUNT_SELECT")
		}
	}
	ds := srv.Displays()
	if len(ds) != 1 || !strings.HasPrefix(ds[0].Label, "browser-") || !ds[0].Connected {
		t.Fatalf("displays: %+v", ds)
	}
}

// TestBrowserShowsEveryScreen walks the page through every screen the
// server sends: a decline, the receipt question and the ticket steps, the
// daily limit, a rail that is down, and the idle timeout, clicking as a
// customer would.
func TestBrowserShowsEveryScreen(t *testing.T) {
	page := chromium(t)
	bus := newBus(t)
	rail := &fakeRail{bus: bus, rail: payment.RailTerminal, delay: 300 * time.Millisecond,
		outcome: func(r payment.Request) (payment.Status, string) {
			if r.Amount.Minor == 4000 {
				return payment.StatusDeclined, "Card declined by issuer"
			}
			return payment.StatusApproved, ""
		}}
	srv, _ := startServer(t, bus, Options{Currency: "GBP", DailyLimit: 150, IdleTimeout: 1500 * time.Millisecond, ReceiptQuestion: true,
		StepDelay: 300 * time.Millisecond, ResultHold: 600 * time.Millisecond,
		Methods: []Method{{Name: "DEBIT_CARD", Rail: rail, RailName: payment.RailTerminal, Mode: payment.ModeCard}}})
	shots := screenshotDir(t)
	pay := func(amount int) {
		page.waitScreen("AMOUNT_SELECT")
		page.click(fmt.Sprintf(`#amounts button[data-amount="%d"]`, amount))
	}

	page.call("Page.navigate", map[string]any{"url": srv.URL() + "?device=tablet-2"}, nil)
	pay(40)
	page.waitScreen("PAYMENT_METHOD")
	if got := page.text("method-amount"); got != "£40" {
		t.Fatalf("method screen shows %q", got)
	}
	page.screenshot(shots, "payment_method.png")
	page.click(`#methods button[data-method="DEBIT_CARD"]`)
	page.waitScreen("PROCESSING")
	page.waitScreen("FAILED")
	if got := page.text("failed-message"); got != "Payment declined. Please try another card or ask staff" { // the issuer's words are journaled
		t.Fatalf("FAILED shows %q", got)
	}
	page.screenshot(shots, "failed.png")

	pay(100)
	page.waitScreen("PAYMENT_METHOD")
	page.click(`#methods button[data-method="DEBIT_CARD"]`)
	page.waitScreen("PROCESSING")
	page.waitScreen("SUCCESS")
	page.waitScreen("RECEIPT_QUESTION")
	page.screenshot(shots, "receipt_question.png")
	page.click(`#screen-RECEIPT_QUESTION button[data-receipt="YES"]`)
	for _, s := range []string{"PRINT_TICKET", "COLLECT_TICKET", "THANK_YOU"} {
		page.waitScreen(s)
	}

	pay(80) // 100 of 150 taken today
	page.waitScreen("LIMIT_ERROR")
	if got := page.text("limit-message"); got != "The daily limit is £150; £50 remains today." {
		t.Fatalf("LIMIT_ERROR shows %q", got)
	}
	page.screenshot(shots, "limit_error.png")
	page.click(`#screen-LIMIT_ERROR button[data-action="reset"]`)

	rail.down.Store(true)
	pay(20)
	page.waitScreen("PAYMENT_METHOD")
	page.click(`#methods button[data-method="DEBIT_CARD"]`)
	page.waitScreen("DEVICE_ERROR")
	if got := page.text("device-code"); got != "TERMINAL_ERROR" {
		t.Fatalf("DEVICE_ERROR code %q", got)
	}
	page.screenshot(shots, "device_error.png")
	page.click(`#screen-DEVICE_ERROR button[data-action="reset"]`)
	rail.down.Store(false)

	pay(20)
	page.waitScreen("PAYMENT_METHOD")
	page.waitScreen("TIMEOUT") // the customer walked away
	page.screenshot(shots, "timeout.png")
	page.waitScreen("AMOUNT_SELECT")

	// Cancel on the method screen: the server's answer to CANCEL is the
	// amount screen, shown (and journaled) once.
	amountScreens := func() int {
		evs, err := bus.Journal().EventsSince(context.Background(), 0, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Detail == "display AMOUNT_SELECT" {
				n++
			}
		}
		return n
	}
	pay(20)
	page.waitScreen("PAYMENT_METHOD")
	before := amountScreens()
	page.click("#method-cancel")
	page.waitScreen("AMOUNT_SELECT")
	time.Sleep(300 * time.Millisecond) // a second answer would be in by now
	if n := amountScreens() - before; n != 1 {
		t.Fatalf("cancel on PAYMENT_METHOD journaled %d AMOUNT_SELECT screens, want 1", n)
	}

	txns, err := bus.Journal().Recent(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tx := range txns {
		got = append(got, fmt.Sprintf("%s %s", tx.Amount.Decimal(), tx.Status))
	}
	if strings.Join(got, ", ") != "100.00 approved, 40.00 declined" {
		t.Fatalf("journal: %q", got)
	}
}
