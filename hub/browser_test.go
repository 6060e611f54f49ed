package hub

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"paydesk/internal/chromiumtest"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// devtools is a Chromium page with this test's helpers on it.
type devtools struct {
	*chromiumtest.Page
	t testing.TB
}

// chromium starts headless Chromium and returns its first page. It skips
// when Chromium is not installed, unless CI=true, where that fails.
func chromium(t *testing.T) *devtools {
	return &devtools{Page: chromiumtest.Start(t, 1280, 900), t: t}
}

// waitPage waits until the page at path has loaded and shows heading as
// its h1.
func (d *devtools) waitPage(path, heading string) {
	d.t.Helper()
	var got string
	// Generous: a page load on a loaded machine.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		d.Eval(`document.readyState === "complete" && document.querySelector("h1") ? location.pathname + " " + document.querySelector("h1").textContent : ""`, &got)
		if got == path+" "+heading {
			return
		}
	}
	d.t.Fatalf("page shows %q, want %s %s", got, path, heading)
}

// click clicks the element matched by selector with the mouse.
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

// waitText waits until the element matched by selector says want.
func (d *devtools) waitText(selector, want string) {
	d.t.Helper()
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = d.text(selector); strings.Contains(got, want) {
			return
		}
	}
	d.t.Fatalf("%s says %q, want %q", selector, got, want)
}

func (d *devtools) text(selector string) string {
	d.t.Helper()
	var s string
	d.Eval(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, selector), &s)
	return s
}

// TestDashboardInChromium logs in to the dashboard in headless Chromium
// and clicks through it: the kiosks, a kiosk, the unknown payment
// replicated from its journal and the kiosk to call, the totals and their
// CSV (downloaded by the browser), and logs out.
func TestDashboardInChromium(t *testing.T) {
	b := chromium(t)
	d := newDash(t, Options{})
	d.replicate()

	b.Call("Page.navigate", map[string]any{"url": d.ts.URL + "/"}, nil)
	b.waitPage("/login", "Log in")
	b.Eval(fmt.Sprintf(`document.getElementById("name").value = "ann"; document.getElementById("password").value = %q; true`, testPassword), nil)
	b.click("#login")
	b.waitPage("/", "Kiosks")
	if s := b.text("#kiosks"); !strings.Contains(s, "K1") || !strings.Contains(s, "paydesk test-1.2") || !strings.Contains(s, "mpesa: down: no route to Daraja") {
		t.Fatalf("kiosks table: %q", s)
	}

	b.click("#kiosk-K1")
	b.waitPage("/kiosks/K1", "Kiosk K1")
	if v, lag := b.text("#version"), b.text("#lag"); v != "paydesk test-1.2" || lag != "0" {
		t.Fatalf("kiosk K1: version %q, lag %q", v, lag)
	}

	b.click("#nav-payments")
	b.waitPage("/payments", "Unknown and flagged payments")
	var row string
	b.Eval(`Array.from(document.querySelectorAll("tr.payment")).map(r => r.textContent).find(t => t.includes("SALE-LOST")) || ""`, &row)
	if !strings.Contains(row, "K1") || !strings.Contains(row, "unknown") || !strings.Contains(row, "RM49.90") {
		t.Fatalf("the unknown payment's row: %q", row)
	}
	// Its kiosk link leads to the kiosk to call.
	b.Eval(`Array.from(document.querySelectorAll("tr.payment")).find(r => r.textContent.includes("SALE-LOST")).querySelector("a.kiosk").id = "call-kiosk"; true`, nil)
	b.click("#call-kiosk")
	b.waitPage("/kiosks/K1", "Kiosk K1")

	b.click("#nav-totals")
	b.waitPage("/totals", "Totals")
	if s := b.text("#totals"); !strings.Contains(s, "approved") || !strings.Contains(s, "19.50") {
		t.Fatalf("totals table: %q", s)
	}
	// The CSV link downloads a file the browser saves.
	dir := t.TempDir()
	b.Call("Page.setDownloadBehavior", map[string]any{"behavior": "allow", "downloadPath": dir}, nil)
	b.click("#csv")
	var file string
	for deadline := time.Now().Add(30 * time.Second); file == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		names, _ := filepath.Glob(filepath.Join(dir, "paydesk-totals-*.csv"))
		if len(names) == 1 {
			file = names[0]
		}
	}
	if file == "" {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("the browser saved no CSV (download directory holds %v)", entries)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("the downloaded CSV does not parse: %v", err)
	}
	day := time.Now().UTC().Format("2006-01-02")
	want := fmt.Sprintf("%q", [][]string{{"day", "kiosk", "rail", "currency", "status", "count", "amount"},
		{day, "K1", "pos", "MYR", "approved", "2", "19.50"}, {day, "K1", "pos", "MYR", "unknown", "1", "49.90"}})
	if fmt.Sprintf("%q", recs) != want {
		t.Fatalf("downloaded CSV:\n got %q\nwant %s", recs, want)
	}

	b.click("#logout")
	b.waitPage("/login", "Log in")
	b.Call("Page.navigate", map[string]any{"url": d.ts.URL + "/payments"}, nil)
	b.waitPage("/login", "Log in")
}

// TestAssignInChromium clicks through assigning an M-Pesa payment no
// kiosk claimed: from the payments page to the payment, a click on the
// kiosk's unpaid sale of its amount, and the payment shown assigned, then
// delivered once the kiosk's rail has paid the sale with it.
func TestAssignInChromium(t *testing.T) {
	b := chromium(t)
	ctx := context.Background()
	f := newDarajaFixture(t)
	f.store.bcryptCost = bcrypt.MinCost
	if err := f.store.AddOperator(ctx, "ann", testPassword); err != nil {
		t.Fatal(err)
	}
	hubURL := f.replica(f.store)
	k := f.kiosk("K2", hubURL)
	k.connect(hubURL)
	k.registerC2B()
	sale := k.c2bSale(120)
	k.replicated()
	receipt, status, err := f.fake.SimulateC2B(ctx, sandbox.C2B{Amount: "120", BillRef: "WRONGREF"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("C2B payment: status %d, %v", status, err)
	}
	id := f.unmatchedID(receipt)
	path := fmt.Sprintf("/unmatched/%d", id)

	b.Call("Page.navigate", map[string]any{"url": hubURL + "/payments"}, nil)
	b.waitPage("/login", "Log in")
	b.Eval(fmt.Sprintf(`document.getElementById("name").value = "ann"; document.getElementById("password").value = %q; true`, testPassword), nil)
	b.click("#login")
	b.waitPage("/", "Kiosks")
	b.click("#nav-payments")
	b.waitPage("/payments", "Unknown and flagged payments")
	if s := b.text("#unmatched"); !strings.Contains(s, receipt) || !strings.Contains(s, "KES 120.00") {
		t.Fatalf("unmatched table: %q", s)
	}
	b.click("#assign-" + receipt)
	b.waitPage(path, "M-Pesa payment "+receipt)
	if s := b.text("#sales"); !strings.Contains(s, sale) || !strings.Contains(s, "KES 120.00") {
		t.Fatalf("unpaid sales: %q", s)
	}
	b.click("#assign-K2-" + sale)
	// The same path comes back, now saying so.
	b.waitText("#assignment", "Assigned to K2 sale "+sale+" by ann")
	b.waitPage(path, "M-Pesa payment "+receipt)
	k.waitStatus(sale, payment.StatusApproved)
	waitFor(t, "the assignment acknowledged", func() bool {
		return f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K2' AND acked_at IS NULL`) == 0
	})
	b.Call("Page.reload", map[string]any{}, nil)
	b.waitText("#assignment", "delivered to K2")
	b.click("#nav-payments")
	b.waitPage("/payments", "Unknown and flagged payments")
	if s := b.text("#assigned"); !strings.Contains(s, receipt) || !strings.Contains(s, sale) || !strings.Contains(s, "ann") {
		t.Fatalf("assigned table: %q", s)
	}
	if b.text("#unmatched") != "" {
		t.Fatalf("still listed as unmatched: %q", b.text("#unmatched"))
	}
}
