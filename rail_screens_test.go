package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/mpesa"
	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/screens"
	"paydesk/terminal"
)

// displayClient is a customer display on a websocket: it reads the
// server's messages up to the screen wanted and acts as the customer.
type displayClient struct {
	t       *testing.T
	ws      *websocket.Conn
	flow    string
	session string // from DEVICE_INFO, to resume with
}

// dialDisplay connects a display to the page's URL (http:// or ws://),
// with opts; the connection closes when the test ends.
func dialDisplay(t *testing.T, url string, opts *websocket.DialOptions) *displayClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rest, ok := strings.CutPrefix(url, "http"); ok {
		url = "ws" + rest
	}
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &displayClient{t: t, ws: ws}
}

// frame is a message as the display received it, with its bytes.
type frame struct {
	screens.Message
	raw []byte
}

// until reads up to the screen change that satisfies ok.
func (c *displayClient) until(what string, ok func(frame) bool) frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", what, err)
		}
		var f frame
		if err := json.Unmarshal(b, &f.Message); err != nil {
			c.t.Fatal(err)
		}
		f.raw = b
		c.flow = f.TransactionID
		if id, ok := f.Data["sessionId"].(string); ok && f.MessageType == screens.TypeDeviceInfo {
			c.session = id
		}
		if f.MessageType == screens.TypeError {
			c.t.Fatalf("waiting for %s: ERROR %s", what, b)
		}
		if f.MessageType == screens.TypeScreenChange && ok(f) {
			return f
		}
	}
}

// screen reads up to screen s.
func (c *displayClient) screen(s screens.Screen) frame {
	c.t.Helper()
	return c.until(string(s), func(f frame) bool { return f.Screen == s })
}

func (c *displayClient) act(screen, data string) {
	c.t.Helper()
	msg := fmt.Sprintf(`{"messageType":"USER_ACTION","screen":%q,"data":%s,"transactionId":%q,"timestamp":%d}`, screen, data, c.flow, time.Now().UnixMilli())
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// The demo starts the customer display against its simulated POS and
// prints the page's URL; a display pays there and the payment is
// journaled like any other.
func TestDemoCustomerDisplay(t *testing.T) {
	dir := t.TempDir()
	journal := filepath.Join(dir, "journal.db")
	cmd, stdin, out := startPaydesk(t, nil, "demo", "--plain", "--journal", journal, "--screens-step", "50ms")
	url := out.waitFor(t, regexp.MustCompile(`Customer display: open (http://127\.0\.0\.1:\d+/) in a browser`))[1]

	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `<script src="app.js">`) {
		t.Fatalf("GET %s: %d\n%s", url, resp.StatusCode, page)
	}

	c := dialDisplay(t, url, nil)
	c.screen(screens.ScreenAmountSelect)
	c.act("AMOUNT_SELECT", `{"selectedAmount":40,"selectionMethod":"PRESET_BUTTON"}`)
	c.screen(screens.ScreenPaymentMethod)
	c.act("PAYMENT_METHOD", `{"selectionMethod":"PAY_BY_BANK"}`)
	c.screen(screens.ScreenSuccess)
	c.screen(screens.ScreenThankYou)
	c.screen(screens.ScreenAmountSelect)
	io.WriteString(stdin, "7\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exit: %v\n%s", err, out.String())
	}
	j, _, err := payment.OpenJournal(journal, payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	txns, err := j.Recent(context.Background(), 5)
	if err != nil || len(txns) != 1 || txns[0].Mode != payment.ModeDuitNowQR || txns[0].Amount.Minor != 4000 || txns[0].Status != payment.StatusApproved {
		t.Fatalf("journal: %+v %v", txns, err)
	}
}

// Outside the demo the display is off unless configured; the config file
// sets it up, the token comes from the environment, never a flag.
func TestCustomerDisplayFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "paydesk.toml")
	os.WriteFile(cfg, []byte("[screens]\nlisten = \"127.0.0.1:0\"\npresets = [10, 15]\ncurrency = \"gbp\"\nmethods = \"DEBIT_CARD=pos\"\ndaily-limit = 500\n"), 0o600)
	cmd, stdin, out := startPaydesk(t, []string{"PAYDESK_SCREENS_TOKEN=tok3n", "XDG_CONFIG_HOME=" + dir},
		"--plain", "--listen", "127.0.0.1:0", "--journal", filepath.Join(dir, "j.db"), "--config", cfg)
	url := out.waitFor(t, regexp.MustCompile(`Customer display: open (http://127\.0\.0\.1:\d+/)\?token=<PAYDESK_SCREENS_TOKEN>`))[1]
	if strings.Contains(out.String(), "tok3n") {
		t.Fatal("the token was printed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(url, "http")
	if _, resp, err := websocket.Dial(ctx, wsURL, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %v", err)
	}
	c := dialDisplay(t, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer tok3n"}}})
	m := c.screen(screens.ScreenAmountSelect)
	if fmt.Sprint(m.Data["amounts"]) != "[10 15]" || m.Data["currency"] != "£" {
		t.Fatalf("AMOUNT_SELECT %v", m.Data)
	}
	// No POS is connected: the method's rail is down.
	c.act("AMOUNT_SELECT", `{"selectedAmount":15,"selectionMethod":"PRESET_BUTTON"}`)
	c.screen(screens.ScreenPaymentMethod)
	c.act("PAYMENT_METHOD", `{"selectionMethod":"DEBIT_CARD"}`)
	c.screen(screens.ScreenDeviceError)
	io.WriteString(stdin, "7\n")
	stdin.Close()
	cmd.Wait()
}

// The display's methods name the rails main starts, each of which says
// which modes a display may use on it (payment.DisplayOffer; the rules
// and their tests are the rails': protocol, terminal, mpesa, screens).
func TestScreenMethodsOnTheConsoleRails(t *testing.T) {
	var pos payment.Starter = (*protocol.Server)(nil)
	var term payment.Starter = &terminal.Rail{}
	var mr payment.Starter = (*mpesa.Rail)(nil)
	for name, r := range map[string]payment.Starter{"pos": pos, "terminal": term, "mpesa": mr} {
		if _, ok := r.(payment.DisplayOffer); !ok {
			t.Errorf("the %s rail does not say which modes a display may use", name)
		}
	}
	rails := map[string]payment.Starter{"pos": pos, "terminal": term, "mpesa": nil}
	set := screens.Settings{Presets: "20", Currency: "MYR", Min: 10, Max: 300, IdleTimeout: time.Minute, StepDelay: time.Second, Rails: rails}
	for spec, want := range map[string]string{
		"debit_card=terminal, PAY_BY_BANK=pos:duitnow_qr, BNPL=pos:bnpl@POS002": "",
		"DEBIT_CARD":             "want NAME=RAIL",
		"X=pos:ipp":              "ipp needs a plan choice",
		"X=terminal:bnpl":        "terminal takes only card",
		"X=mpesa":                "mpesa rail is not configured",
		"X=paypal":               "unknown rail",
		"":                       "no methods",
		"X=terminal,Y=nowhere:x": "unknown rail",
	} {
		set.Methods = spec
		if err := set.Validate(); want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
	}
	rails["terminal"] = nil // off: the terminal's row leaves it known
	set.Methods = "X=terminal"
	if err := set.Validate(); err == nil || !strings.Contains(err.Error(), "terminal rail is not configured") {
		t.Errorf("terminal off: %v", err)
	}
	rails["mpesa"] = mr
	set.Methods = "DEBIT_CARD=pos,MPESA=mpesa"
	if err := set.Validate(); err == nil || !strings.Contains(err.Error(), "MPESA is paid by M-Pesa in Kenyan shillings, but the display is in MYR: set --screens-currency KES") {
		t.Errorf("M-Pesa on a ringgit display: %v", err)
	}
	set.Currency = "KES"
	for _, spec := range []string{"DEBIT_CARD=pos,MPESA=mpesa", "MPESA=mpesa:c2b"} {
		set.Methods = spec
		if err := set.Validate(); err != nil {
			t.Errorf("%q on a shilling display: %v", spec, err)
		}
	}
}

// stubStarter is a rail that does nothing.
type stubStarter struct{}

func (stubStarter) Start(context.Context, payment.Request) (string, error) { return "", nil }
func (stubStarter) Cancel(string) error                                    { return nil }

// A rail that is off stays known to the display, so a method naming it is
// told it is not configured rather than unknown.
func TestRailsOffStayKnownToTheDisplay(t *testing.T) {
	e := &railEnv{log: slog.New(slog.DiscardHandler), displayRails: map[string]payment.Starter{}}
	for _, r := range []railSettings{&terminalSettings{}, &mpesaSettings{}} {
		if err := r.startRail(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"terminal", "mpesa"} {
		if r, known := e.displayRails[name]; !known || r != nil {
			t.Errorf("%s off: %v (known %v), want a nil rail", name, r, known)
		}
	}
}
