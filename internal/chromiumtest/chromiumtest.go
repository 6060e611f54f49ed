// Package chromiumtest starts headless Chromium for the browser tests of
// the customer display page and the hub's dashboard, and drives one page
// over the DevTools protocol.
package chromiumtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Page drives one headless Chromium page over the DevTools protocol, on
// the WebSocket library paydesk already uses, so the browser tests need
// no other dependency.
type Page struct {
	t       testing.TB
	ws      *websocket.Conn
	next    atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan reply
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// chromium starts headless Chromium and returns its first page. It skips
// when Chromium is not installed, unless CI=true, where that fails.
func Start(t *testing.T, width, height int) *Page {
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
		t.Skip("chromium is not installed: the browser tests need it (apt-get install chromium)")
	}
	// A headless Chromium now and then crashes as it starts on a machine
	// running two test suites at once: a crash before it is up is retried
	// with a fresh profile, and the third one fails the test with what
	// Chromium said.
	var browserURL string
	for attempt := 1; browserURL == ""; attempt++ {
		url, said := launch(t, bin, width, height)
		switch {
		case url != "":
			browserURL = url
		case attempt == 3:
			t.Fatalf("%s exited %d times before it reported its DevTools address; the last time it said:\n%s",
				bin, attempt, strings.Join(said, "\n"))
		default:
			t.Logf("%s exited before it reported its DevTools address (attempt %d); starting it again", bin, attempt)
		}
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
	d := &Page{t: t, ws: ws, pending: map[int64]chan reply{}}
	go d.read()
	t.Cleanup(func() { ws.CloseNow() })
	return d
}

func (d *Page) read() {
	for {
		_, b, err := d.ws.Read(context.Background())
		if err != nil {
			return
		}
		var m struct {
			ID int64 `json:"id"`
			reply
		}
		if json.Unmarshal(b, &m) != nil || m.ID == 0 {
			continue // an event
		}
		d.mu.Lock()
		c := d.pending[m.ID]
		delete(d.pending, m.ID)
		d.mu.Unlock()
		if c != nil {
			c <- m.reply
		}
	}
}

// Call sends one DevTools command and decodes its result into out.
func (d *Page) Call(method string, params any, out any) {
	d.t.Helper()
	id := d.next.Add(1)
	c := make(chan reply, 1)
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

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and returns its value.
func (d *Page) Eval(expr string, out any) {
	d.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	d.Call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.ExceptionDetails != nil {
		d.t.Fatalf("eval %s: %s", expr, r.ExceptionDetails.Text)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			d.t.Fatalf("eval %s: %v (%s)", expr, err, r.Result.Value)
		}
	}
}

// launch starts Chromium with a profile of its own and returns its
// DevTools address, or "" and the last lines Chromium wrote if it exited
// before it gave one. The browser is stopped when the test ends.
func launch(t *testing.T, bin string, width, height int) (url string, said []string) {
	t.Helper()
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
		"--user-data-dir="+profile, "--remote-debugging-port=0", fmt.Sprintf("--window-size=%d,%d", width, height), "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	// The address comes on stderr; if Chromium exits first, what it said
	// is the reason.
	found := make(chan string, 1)
	exited := make(chan []string, 1)
	go func() {
		var said []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "DevTools listening on "); ok {
				found <- url
				for sc.Scan() { // keep draining, so Chromium never blocks on a full pipe
				}
				return
			}
			said = append(said, sc.Text())
			if len(said) > 20 {
				said = said[1:]
			}
		}
		exited <- said
	}()
	select {
	case url = <-found:
		return url, nil
	case said = <-exited:
		return "", said
	case <-time.After(90 * time.Second): // generous: a cold start on a machine running two test suites at once
		t.Fatal("chromium did not report its DevTools address within 90 s")
		return "", nil
	}
}
