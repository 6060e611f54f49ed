package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
	"paydesk/screens"
)

// kenyaKiosk is a kiosk with an M-Pesa paybill and a customer display in
// shillings, all real: the fake Daraja over HTTP, the rail and its
// callback server, the display server configured by the same settings
// as paydesk's flags, and a SQLite journal.
type kenyaKiosk struct {
	fake *sandbox.Server
	rail *mpesa.Rail
	j    *payment.Journal
	url  string
}

func newKenyaKiosk(t *testing.T, wait time.Duration) *kenyaKiosk {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, log)
	fake := sandbox.New(sandbox.Options{Logger: log})
	fs := httptest.NewServer(fake.Handler())
	client, err := daraja.NewClient(daraja.Config{BaseURL: fs.URL, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
		ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	prefixes, _ := mpesa.ParsePrefixes("127.0.0.0/8")
	rail, err := mpesa.NewRail(mpesa.Options{Client: client, Bus: bus, PublicURL: "http://" + ln.Addr().String(),
		AllowList: prefixes, C2BWait: wait, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- rail.Serve(context.Background(), ln) }()
	if _, err := rail.RegisterC2B(context.Background(), "v2", "Completed"); err != nil {
		t.Fatal(err)
	}
	set := screens.Settings{Presets: "50,100,200", Currency: "kes", Min: 10, Max: 1000, IdleTimeout: time.Minute, StepDelay: 20 * time.Millisecond,
		Methods: "MPESA=mpesa", Rails: map[string]payment.Starter{"pos": stubStarter{}, "mpesa": rail}}
	o, err := set.Options()
	if err != nil {
		t.Fatal(err)
	}
	o.Addr, o.Logger, o.ResultHold = "127.0.0.1:0", log, 50*time.Millisecond
	srv, err := screens.NewServer(bus, o)
	if err != nil {
		t.Fatal(err)
	}
	sln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(context.Background(), sln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		rail.Close()
		if err := <-served; err != nil {
			t.Errorf("M-Pesa rail: %v", err)
		}
		fake.Close()
		fs.Close()
		bus.Close()
		j.Close()
	})
	return &kenyaKiosk{fake: fake, rail: rail, j: j, url: "ws://" + sln.Addr().String() + "/"}
}

func (k *kenyaKiosk) dial(t *testing.T, query string) *displayClient {
	t.Helper()
	return dialDisplay(t, k.url+query, nil)
}

// choose picks amount and MPESA and returns the PROCESSING screen that
// tells the customer where to pay.
func (d *displayClient) choose(amount string) frame {
	d.t.Helper()
	d.screen(screens.ScreenAmountSelect)
	d.act("AMOUNT_SELECT", `{"selectedAmount":`+amount+`,"selectionMethod":"PRESET_BUTTON"}`)
	if m := d.screen(screens.ScreenPaymentMethod); !strings.Contains(string(m.raw), `"methods":["MPESA"]`) {
		d.t.Fatalf("methods offered: %s", m.raw)
	}
	d.act("PAYMENT_METHOD", `{"selectionMethod":"MPESA"}`)
	return d.until("where to pay", func(f frame) bool { return f.Screen == screens.ScreenProcessing && f.Data["accountNumber"] != nil })
}

var instructionsRE = regexp.MustCompile(`"accountNumber":"(PD[0-9A-Z]{8})"`)

// The customer display offers M-Pesa: the customer chooses KSh 100 and
// MPESA, the display shows the paybill, the account (the sale's
// reference) and the amount as integers, the customer pays that paybill
// from their own phone typing the reference in lower case, and the
// display shows SUCCESS with the sale approved in the journal under the
// M-Pesa receipt. Paid short, the sale is flagged underpaid and the
// display keeps waiting until the rail's wait ends: FAILED. A reference
// typed one character wrong pays no sale (kept for the operator); the
// customer cancels on the display.
func TestDisplayMPesaPaybill(t *testing.T) {
	k := newKenyaKiosk(t, 2*time.Second)
	d := k.dial(t, "")
	ctx := context.Background()

	p := d.choose("100")
	for _, want := range []string{`"screen":"PROCESSING"`, `"payTo":"PAYBILL"`, `"businessNumber":` + sandbox.DefaultShortCode + `,`,
		`"amount":100,`, `"currency":"KSh"`, `"paymentMethod":"MPESA"`} {
		if !strings.Contains(string(p.raw), want) {
			t.Errorf("instructions lack %s: %s", want, p.raw)
		}
	}
	if !regexp.MustCompile(`"expiresIn":[12][,}]`).Match(p.raw) {
		t.Errorf("expiresIn is not the whole seconds left: %s", p.raw)
	}
	ref := instructionsRE.FindSubmatch(p.raw)
	if ref == nil {
		t.Fatalf("no account reference: %s", p.raw)
	}
	id := string(ref[1])
	typed := strings.ToLower(id[:5] + " " + id[5:])
	receipt, st, err := k.fake.SimulateC2B(ctx, sandbox.C2B{Amount: "100", BillRef: typed})
	if err != nil || st != http.StatusOK {
		t.Fatalf("customer's payment: %d %v", st, err)
	}
	d.screen(screens.ScreenSuccess)
	tx, err := k.j.Txn(ctx, id)
	if err != nil || tx.Status != payment.StatusApproved || tx.Mode != payment.ModeC2B || tx.Result.RemoteID != receipt ||
		tx.Amount != (payment.Money{Minor: 10000, Currency: "KES"}) {
		t.Fatalf("journal: %+v %v", tx, err)
	}
	// Journal before show: the instructions the display got are on record
	// under the sale.
	evs, _ := k.j.History(ctx, id)
	shown := false
	for _, e := range evs {
		shown = shown || (e.Detail == "display PROCESSING" && strings.Contains(string(e.Raw), `"accountNumber":"`+id+`"`))
	}
	if !shown {
		t.Error("the instructions screen was not journaled under the sale")
	}

	// Paid short: flagged, still waiting, then FAILED when the wait ends.
	p = d.choose("200")
	id = string(instructionsRE.FindSubmatch(p.raw)[1])
	if _, _, err := k.fake.SimulateC2B(ctx, sandbox.C2B{Amount: "150", BillRef: id}); err != nil {
		t.Fatal(err)
	}
	f := d.until("the end of the wait", func(f frame) bool {
		return f.Screen == screens.ScreenFailed || f.Screen == screens.ScreenSuccess
	})
	if f.Screen != screens.ScreenFailed || f.Data["errorCode"] != "PAYMENT_TIMEOUT" || !strings.Contains(f.Data["errorMessage"].(string), "part of the amount") {
		t.Errorf("after an underpayment: %s", f.raw)
	}
	tx, _ = k.j.Txn(ctx, id)
	if tx.Status != payment.StatusTimedOut || !tx.HasFlag(mpesa.FlagUnderpaid) {
		t.Errorf("underpaid sale: %+v", tx)
	}

	// One character wrong: no sale is guessed; the customer gives up.
	p = d.choose("50")
	id = string(instructionsRE.FindSubmatch(p.raw)[1])
	wrong := id[:9] + map[bool]string{true: "X", false: "Y"}[id[9] != 'X']
	if _, _, err := k.fake.SimulateC2B(ctx, sandbox.C2B{Amount: "50", BillRef: wrong}); err != nil {
		t.Fatal(err)
	}
	tills := k.rail.TillPayments()
	if len(tills) != 3 || !tills[0].Unmatched() || !strings.Contains(tills[0].Note, "did the customer mean "+id+"?") {
		t.Fatalf("till list %+v", tills)
	}
	d.act("CANCEL", `null`)
	f = d.screen(screens.ScreenFailed)
	if f.Data["errorCode"] != "CANCELLED" {
		t.Errorf("cancelled: %s", f.raw)
	}
	if tx, _ = k.j.Txn(ctx, id); tx.Status != payment.StatusCancelled {
		t.Errorf("cancelled sale: %+v", tx)
	}
}

// Nobody pays: the display shows FAILED when the rail's wait ends; a
// display that resets or reconnects meanwhile is shown where to pay
// again.
func TestDisplayMPesaTimeout(t *testing.T) {
	k := newKenyaKiosk(t, 1500*time.Millisecond)
	d := k.dial(t, "")
	p := d.choose("50")
	id := string(instructionsRE.FindSubmatch(p.raw)[1])
	d.act("RESET", `null`)
	again := d.screen(screens.ScreenProcessing)
	if !strings.Contains(string(again.raw), `"accountNumber":"`+id+`"`) {
		t.Errorf("after RESET: %s", again.raw)
	}
	if d.session == "" {
		t.Fatal("no session id in DEVICE_INFO")
	}
	d.ws.Close(websocket.StatusNormalClosure, "tablet asleep")
	d = k.dial(t, "?session="+d.session)
	again = d.screen(screens.ScreenProcessing)
	if !strings.Contains(string(again.raw), `"accountNumber":"`+id+`"`) {
		t.Errorf("after a reconnect: %s", again.raw)
	}
	f := d.screen(screens.ScreenFailed)
	if f.Data["errorCode"] != "PAYMENT_TIMEOUT" {
		t.Errorf("timed out: %s", f.raw)
	}
	if tx, _ := k.j.Txn(context.Background(), id); tx.Status != payment.StatusTimedOut {
		t.Errorf("journal: %+v", tx)
	}
}

// The demo's display is in ringgit; started in shillings with the MPESA
// method, as the README shows, the demo pays a display's M-Pesa sale
// through its fake Daraja: the customer's paybill payment (the demo's
// curl line) turns the display to SUCCESS and the console prints the
// RESULT with the M-Pesa receipt.
func TestDemoDisplayMPesa(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin, out := startPaydesk(t, []string{"XDG_CONFIG_HOME=" + dir, "PAYDESK_LOG=" + filepath.Join(dir, "paydesk.log")},
		"demo", "--plain", "--screens-currency", "KES", "--screens-methods", "MPESA=mpesa", "--screens-step", "50ms")
	daraja := out.waitFor(t, regexp.MustCompile(`curl -d amount=100 -d ref=<sale reference> (http://\S+)/sandbox/c2b`))[1]
	url := out.waitFor(t, regexp.MustCompile(`Customer display: open (http://127\.0\.0\.1:\d+/) in a browser`))[1]
	out.waitFor(t, regexp.MustCompile(`methods MPESA→mpesa:c2b`))
	d := dialDisplay(t, url, nil)
	p := d.choose("60")
	ref := instructionsRE.FindSubmatch(p.raw)
	if ref == nil || !strings.Contains(string(p.raw), `"businessNumber":`+sandbox.DefaultShortCode) {
		t.Fatalf("instructions: %s", p.raw)
	}
	resp, err := http.PostForm(daraja+"/sandbox/c2b", neturl.Values{"amount": {"60"}, "ref": {string(ref[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	d.screen(screens.ScreenSuccess)
	out.waitFor(t, regexp.MustCompile(`RESULT `+string(ref[1])+` approved 60\.00 pos_txn=[0-9A-Z]{10}`))
	io.WriteString(stdin, "7\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exit: %v\n%s", err, out.String())
	}
}
