package screens

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paydesk/internal/chromiumtest"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
)

// devtools is a Chromium page with this test's helpers on it.
type devtools struct {
	*chromiumtest.Page
	t testing.TB
}

// chromium starts headless Chromium and returns its first page. It skips
// when Chromium is not installed, unless CI=true, where that fails.
func chromium(t *testing.T) *devtools {
	return &devtools{Page: chromiumtest.Start(t, 1024, 768), t: t}
}

// waitScreen waits until the page shows screen.
func (d *devtools) waitScreen(screen string) {
	d.t.Helper()
	var got string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		d.Eval(`(document.body && document.body.dataset.screen) || ""`, &got)
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
	d.Eval(fmt.Sprintf(`(function(){var e=document.querySelector(%q); if(!e||e.offsetParent===null) return []; e.scrollIntoView({block:"center"}); var r=e.getBoundingClientRect(); return [r.x+r.width/2, r.y+r.height/2];})()`, selector), &box)
	if len(box) != 2 {
		d.t.Fatalf("no visible %s on the page", selector)
	}
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		d.Call("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": box[0], "y": box[1], "button": "left", "clickCount": 1}, nil)
	}
}

// text is the text of the element with id.
func (d *devtools) text(id string) string {
	d.t.Helper()
	var s string
	d.Eval(fmt.Sprintf(`document.getElementById(%q).textContent`, id), &s)
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
	d.Call("Page.captureScreenshot", map[string]any{"format": "png"}, &r)
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
	page.Call("Page.navigate", map[string]any{"url": srv.URL()}, nil)
	page.waitScreen("AMOUNT_SELECT")
	var labels []string
	page.Eval(`Array.from(document.querySelectorAll("#amounts button")).map(function(b){return b.textContent})`, &labels)
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
	page.Eval(`window.beforeReload = true`, nil)
	page.Call("Page.reload", map[string]any{}, nil)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var fresh bool
		page.Eval(`!window.beforeReload && (document.body && document.body.dataset.screen) === "AMOUNT_SELECT"`, &fresh)
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

	page.Call("Page.navigate", map[string]any{"url": srv.URL() + "?device=tablet-2"}, nil)
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
