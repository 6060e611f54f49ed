package hub

import (
	"bufio"
	"context"
	"encoding/csv"
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
)

// devtools drives one headless Chromium page over the DevTools protocol,
// on the WebSocket library the link uses (as the customer display's
// browser test does).
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
		t.Skip("chromium is not installed: the dashboard's browser test needs it (apt-get install chromium)")
	}
	// Chromium's helper processes may still write to their profile just
	// after the browser exits, so the profile is removed with retries.
	profile, err := os.MkdirTemp("", "paydesk-hub-chromium-")
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
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--window-size=1280,900", "about:blank")
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
	case <-time.After(30 * time.Second): // generous: a cold start on a loaded machine
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
	ws.SetReadLimit(64 << 20)
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
	// Generous: two test binaries share two busy cores.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

// eval evaluates a JavaScript expression in the page (awaiting a promise)
// and returns its value.
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
	d.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.ExceptionDetails != nil {
		d.t.Fatalf("eval %s: %s", expr, r.ExceptionDetails.Text)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			d.t.Fatalf("eval %s: %v (%s)", expr, err, r.Result.Value)
		}
	}
}

// waitPage waits until the page at path has loaded and shows heading as
// its h1.
func (d *devtools) waitPage(path, heading string) {
	d.t.Helper()
	var got string
	// Generous: a page load on a loaded machine.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		d.eval(`document.readyState === "complete" && document.querySelector("h1") ? location.pathname + " " + document.querySelector("h1").textContent : ""`, &got)
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
	d.eval(fmt.Sprintf(`(function(){var e=document.querySelector(%q); if(!e||e.offsetParent===null) return []; e.scrollIntoView({block:"center"}); var r=e.getBoundingClientRect(); return [r.x+r.width/2, r.y+r.height/2];})()`, selector), &box)
	if len(box) != 2 {
		d.t.Fatalf("no visible %s on the page", selector)
	}
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		d.call("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": box[0], "y": box[1], "button": "left", "clickCount": 1}, nil)
	}
}

func (d *devtools) text(selector string) string {
	d.t.Helper()
	var s string
	d.eval(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, selector), &s)
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

	b.call("Page.navigate", map[string]any{"url": d.ts.URL + "/"}, nil)
	b.waitPage("/login", "Log in")
	b.eval(fmt.Sprintf(`document.getElementById("name").value = "ann"; document.getElementById("password").value = %q; true`, testPassword), nil)
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
	b.eval(`Array.from(document.querySelectorAll("tr.payment")).map(r => r.textContent).find(t => t.includes("SALE-LOST")) || ""`, &row)
	if !strings.Contains(row, "K1") || !strings.Contains(row, "unknown") || !strings.Contains(row, "RM49.90") {
		t.Fatalf("the unknown payment's row: %q", row)
	}
	// Its kiosk link leads to the kiosk to call.
	b.eval(`Array.from(document.querySelectorAll("tr.payment")).find(r => r.textContent.includes("SALE-LOST")).querySelector("a.kiosk").id = "call-kiosk"; true`, nil)
	b.click("#call-kiosk")
	b.waitPage("/kiosks/K1", "Kiosk K1")

	b.click("#nav-totals")
	b.waitPage("/totals", "Totals")
	if s := b.text("#totals"); !strings.Contains(s, "approved") || !strings.Contains(s, "19.50") {
		t.Fatalf("totals table: %q", s)
	}
	// The CSV link downloads a file the browser saves.
	dir := t.TempDir()
	b.call("Page.setDownloadBehavior", map[string]any{"behavior": "allow", "downloadPath": dir}, nil)
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
	b.call("Page.navigate", map[string]any{"url": d.ts.URL + "/payments"}, nil)
	b.waitPage("/login", "Log in")
}
