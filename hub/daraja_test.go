package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	hublink "paydesk/hub/link"
	"paydesk/hub/wire"
	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// darajaWait is how long a test waits for something that takes
// milliseconds: generous, for two test suites at once on a loaded 2-core
// machine.
const darajaWait = 60 * time.Second

// noPoll is the links' message poll in these tests: an hour, so a message
// arrives promptly only if NOTIFY woke the link.
const noPoll = time.Hour

// slowQuery keeps the kiosk's rail from asking Daraja before the test is
// over: the payment's outcome must come by callback, through the hub.
var slowQuery = mpesa.PollPolicy{First: 10 * time.Minute, Every: 10 * time.Minute, MaxBackoff: 10 * time.Minute,
	Budget: 20 * time.Minute, Reconcile: 10 * time.Minute}

type darajaFixture struct {
	t     *testing.T
	store *Store
	dsn   string
	fake  *sandbox.Server
	daraj string // the fake Daraja's URL
}

func newDarajaFixture(t *testing.T) *darajaFixture {
	t.Helper()
	st, dsn := openStore(t)
	fake := sandbox.New(sandbox.Options{PromptDelay: 50 * time.Millisecond, PromptTTL: time.Second, C2BVersion: "any", Validation: true})
	fs := httptest.NewServer(fake.Handler())
	t.Cleanup(func() { fake.Close(); fs.Close() })
	return &darajaFixture{t: t, store: st, dsn: dsn, fake: fake, daraj: fs.URL}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// replica serves a hub on store (a replica of its own when store is a
// second Store on the same database) and returns its URL.
func (f *darajaFixture) replica(store *Store) string {
	f.t.Helper()
	return f.replicaWith(store, Options{})
}

// replicaWith is replica with opts (the test's message poll, allow-list
// and logger set).
func (f *darajaFixture) replicaWith(store *Store, opts Options) string {
	f.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	opts.MessagePoll, opts.MpesaAllow, opts.Logger = noPoll, mustAllow(f.t, "127.0.0.0/8"), quiet()
	srv := NewServer(store, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func mustAllow(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := mpesa.ParsePrefixes(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// kiosk is a paydesk kiosk with the M-Pesa rail via the hub: its rail
// calls the fake Daraja and gives the hub's URL as its callback URL; its
// link delivers the hub's messages to the rail.
type kiosk struct {
	f     *darajaFixture
	id    string
	token string
	hub   string // the URL its rail gives Daraja
	j     *payment.Journal
	bus   *payment.Bus
	rail  *mpesa.Rail

	mu         sync.Mutex
	stop       func()
	current    *hublink.Link
	lastAssign wire.Message // the last assignment its link received
}

func (f *darajaFixture) kiosk(id, darajaHub string, configure ...func(*daraja.Config)) *kiosk {
	t := f.t
	t.Helper()
	tok, err := f.store.AddKiosk(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, quiet())
	cfg := daraja.Config{BaseURL: f.daraj, ConsumerKey: sandbox.DefaultKey, ConsumerSecret: sandbox.DefaultSecret,
		ShortCode: sandbox.DefaultShortCode, Passkey: sandbox.DefaultPasskey, Logger: quiet(),
		HTTP: &http.Client{Timeout: 10 * time.Second}}
	for _, c := range configure {
		c(&cfg)
	}
	c, err := daraja.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := mpesa.NewRail(mpesa.Options{Client: c, Bus: bus, PublicURL: "http://" + ln.Addr().String(), HubURL: darajaHub,
		AllowList: mustAllow(t, "127.0.0.0/8"), Poll: slowQuery, Logger: quiet(), PushTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Recover(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(context.Background(), ln) }()
	k := &kiosk{f: f, id: id, token: tok, hub: darajaHub, j: j, bus: bus, rail: r}
	t.Cleanup(func() {
		k.disconnect()
		r.Close()
		<-served
		bus.Close()
		j.Close()
	})
	return k
}

// connect links the kiosk to the hub at url (its link's replica).
func (k *kiosk) connect(url string) *hublink.Link {
	k.f.t.Helper()
	l, err := hublink.New(hublink.Options{URL: url, Token: k.token, KioskID: k.id, Journal: k.j, Bus: k.bus,
		Poll: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: quiet(),
		OnMessage: func(ctx context.Context, m wire.Message) error {
			if m.Kind == MessageMpesaAssign {
				k.mu.Lock()
				k.lastAssign = m
				k.mu.Unlock()
			}
			return ApplyMessage(ctx, k.rail, m)
		}})
	if err != nil {
		k.f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	k.mu.Lock()
	k.stop = func() { cancel(); <-done }
	k.current = l
	k.mu.Unlock()
	return l
}

// disconnect ends the kiosk's link (the kiosk goes offline).
func (k *kiosk) disconnect() {
	k.mu.Lock()
	stop := k.stop
	k.stop = nil
	k.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// replicated waits until the hub holds the kiosk's whole journal.
func (k *kiosk) replicated() {
	k.f.t.Helper()
	last, err := k.j.LastSeq(context.Background())
	if err != nil {
		k.f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), darajaWait)
	defer cancel()
	k.mu.Lock()
	l := k.current
	k.mu.Unlock()
	if err := l.WaitAcked(ctx, last); err != nil {
		k.f.t.Fatalf("%s: the hub did not acknowledge its journal up to %d: %v", k.id, last, err)
	}
}

// waitStatus waits until the kiosk's txn has status want.
func (k *kiosk) waitStatus(txn string, want payment.Status) payment.Txn {
	k.f.t.Helper()
	var got payment.Txn
	waitFor(k.f.t, k.id+" "+txn+" "+string(want), func() bool {
		var err error
		got, err = k.j.Txn(context.Background(), txn)
		return err == nil && got.Status == want
	})
	return got
}

// waitFor polls cond, which reads state the test waits on, until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(darajaWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", darajaWait, what)
		}
		<-tick.C
	}
}

// count runs a count(*) query.
func (f *darajaFixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.store.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (k *kiosk) c2bSale(shillings int64) string {
	k.f.t.Helper()
	id, err := k.rail.Start(context.Background(), payment.Request{Mode: payment.ModeC2B, Amount: payment.Money{Minor: shillings * 100, Currency: "KES"}})
	if err != nil {
		k.f.t.Fatal(err)
	}
	k.waitStatus(id, payment.StatusSent)
	return id
}

func (k *kiosk) registerC2B() {
	k.f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), darajaWait)
	defer cancel()
	if _, err := k.rail.RegisterC2B(ctx, "v2", "Completed"); err != nil {
		k.f.t.Fatal(err)
	}
}

func TestSTKPushViaTheHubEndsApproved(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k := f.kiosk("K1", hubURL)
	k.connect(hubURL)
	id, err := k.rail.Start(context.Background(), payment.Request{Mode: payment.ModeSTKPush, Phone: sandbox.TestPhone,
		Amount: payment.Money{Minor: 10000, Currency: "KES"}})
	if err != nil {
		t.Fatal(err)
	}
	txn := k.waitStatus(id, payment.StatusApproved)
	var receipt, checkout string
	if err := f.store.pool.QueryRow(context.Background(), `SELECT c.key, m.acked_at IS NOT NULL, c.kiosk_id
		FROM mpesa_callbacks c JOIN messages m ON m.id = c.message_id WHERE c.kind = 'stk'`).Scan(&checkout, new(bool), new(string)); err != nil {
		t.Fatalf("the hub holds no routed STK callback: %v", err)
	}
	receipt = txn.Result.RemoteID
	if receipt == "" || receipt == checkout {
		t.Fatalf("approved without the receipt: result %+v", txn.Result)
	}
	// The kiosk acknowledged it once journaled.
	waitFor(t, "the callback acknowledged", func() bool {
		return f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K1' AND acked_at IS NOT NULL`) == 1
	})
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks WHERE kiosk_id = 'K1' AND key = $1 AND body IS NULL`, checkout); n != 1 {
		t.Fatalf("callback %s not routed to K1 (or its body kept): %d", checkout, n)
	}
	// Delivered, the payer's number is nowhere at the hub in full.
	if n := f.count(`SELECT count(*) FROM messages WHERE position($1 in body::text) > 0`, sandbox.TestPhone); n != 0 {
		t.Fatalf("%d acknowledged messages keep the payer's number", n)
	}
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks WHERE position($1::bytea in raw) > 0`, []byte(sandbox.TestPhone)); n != 0 {
		t.Fatalf("%d stored callbacks keep the payer's number", n)
	}
}

func TestC2BPaymentReachesTheKioskOfItsReference(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k1, k2 := f.kiosk("K1", hubURL), f.kiosk("K2", hubURL)
	k1.connect(hubURL)
	k2.connect(hubURL)
	k2.registerC2B()
	other := k1.c2bSale(250)
	ref := k2.c2bSale(250)
	k1.replicated()
	k2.replicated()
	if _, status, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "250", BillRef: strings.ToLower(ref)}); err != nil || status != http.StatusOK {
		t.Fatalf("C2B payment: status %d, %v", status, err)
	}
	k2.waitStatus(ref, payment.StatusApproved)
	if tx, _ := k1.j.Txn(context.Background(), other); tx.Status != payment.StatusSent {
		t.Fatalf("K1's sale is %s: another kiosk's payment reached it", tx.Status)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K1'`); n != 0 {
		t.Fatalf("%d messages for K1", n)
	}
	// Validation came first, answered by the hub, and stored.
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks WHERE kind = 'c2b_validation' AND ref = $1`, ref); n != 1 {
		t.Fatalf("%d validations stored", n)
	}
}

func TestValidationRefusesAClosedSale(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k := f.kiosk("K1", hubURL)
	k.connect(hubURL)
	k.registerC2B()
	ref := k.c2bSale(100)
	k.replicated()
	post := func(ref, trans string) string {
		body := `{"TransactionType":"Pay Bill","TransID":"` + trans + `","TransTime":"20261204120000","TransAmount":"100.00","BusinessShortCode":"174379","BillRefNumber":"` + ref + `","MSISDN":"2547 ***** 149"}`
		resp, err := http.Post(hubURL+PathC2BValidation, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("validation answered %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if a := post(ref, "TXOPEN01"); !strings.Contains(a, `"0"`) {
		t.Fatalf("an open sale's payment refused: %s", a)
	}
	if err := k.rail.Cancel(ref); err != nil {
		t.Fatal(err)
	}
	k.waitStatus(ref, payment.StatusCancelled)
	k.replicated()
	if a := post(ref, "TXCLOSED1"); !strings.Contains(a, "C2B00012") {
		t.Fatalf("a payment for a closed sale accepted: %s", a)
	}
}

func TestCallbackForAnOfflineKioskWaitsForItsLink(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k := f.kiosk("K1", hubURL)
	k.connect(hubURL)
	k.registerC2B()
	ref := k.c2bSale(300)
	k.replicated()
	k.disconnect()
	if _, status, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "300", BillRef: ref}); err != nil || status != http.StatusOK {
		t.Fatalf("C2B payment: status %d, %v", status, err)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K1' AND acked_at IS NULL`); n != 1 {
		t.Fatalf("%d messages waiting for the offline kiosk, want 1", n)
	}
	if tx, _ := k.j.Txn(context.Background(), ref); tx.Status != payment.StatusSent {
		t.Fatalf("offline, the sale is %s", tx.Status)
	}
	k.connect(hubURL)
	k.waitStatus(ref, payment.StatusApproved)
	waitFor(t, "the callback acknowledged", func() bool {
		return f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K1' AND acked_at IS NULL`) == 0
	})
}

func TestUnmatchedPaymentListedForHeadOffice(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k := f.kiosk("K1", hubURL)
	k.connect(hubURL)
	k.registerC2B()
	k.c2bSale(100)
	k.replicated()
	id, status, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "120", BillRef: "NOSUCHSALE"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("C2B payment: status %d, %v", status, err)
	}
	un, err := f.store.UnmatchedCallbacks(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || un[0].Key != id || un[0].Ref != mpesa.NormalizeReference("NOSUCHSALE") || un[0].Amount.Minor != 12000 {
		t.Fatalf("unmatched list %+v, want payment %s of KES 120", un, id)
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("%d messages for an unmatched payment", n)
	}
}

func TestDuplicateCallbackStoredAndDeliveredOnce(t *testing.T) {
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	k := f.kiosk("K1", hubURL)
	k.connect(hubURL)
	k.registerC2B()
	ref := k.c2bSale(100)
	k.replicated()
	id, _, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "100", BillRef: ref, Duplicates: 3})
	if err != nil {
		t.Fatal(err)
	}
	k.waitStatus(ref, payment.StatusApproved)
	var dups int
	if err := f.store.pool.QueryRow(context.Background(), `SELECT duplicates FROM mpesa_callbacks WHERE kind = 'c2b_confirmation' AND key = $1`, id).Scan(&dups); err != nil {
		t.Fatal(err)
	}
	if dups != 3 {
		t.Fatalf("stored with %d duplicates counted, want 3", dups)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE kiosk_id = 'K1'`); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}
	waitFor(t, "the callback acknowledged", func() bool {
		return f.count(`SELECT count(*) FROM messages WHERE acked_at IS NULL`) == 0
	})
	evs, err := k.j.EventsSince(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Flag == mpesa.FlagDuplicate {
			t.Fatalf("the kiosk saw the payment twice: %+v", ev)
		}
	}
}

func TestAKioskCannotAcknowledgeAnotherKiosksCallback(t *testing.T) {
	f := newDarajaFixture(t)
	ctx := context.Background()
	hubURL := f.replica(f.store)
	k1 := f.kiosk("K1", hubURL)
	k1.connect(hubURL)
	k1.registerC2B()
	ref := k1.c2bSale(100)
	k1.replicated()
	k1.disconnect()
	if _, _, err := f.fake.SimulateC2B(ctx, sandbox.C2B{Amount: "100", BillRef: ref}); err != nil {
		t.Fatal(err)
	}
	var msg int64
	if err := f.store.pool.QueryRow(ctx, `SELECT message_id FROM mpesa_callbacks WHERE kind = 'c2b_confirmation'`).Scan(&msg); err != nil {
		t.Fatal(err)
	}
	// K2 acknowledges K1's callback over its own link: refused, and the
	// link stays.
	tok2, err := f.store.AddKiosk(ctx, "K2")
	if err != nil {
		t.Fatal(err)
	}
	raw := dialRaw(t, hubURL, tok2, "K2")
	raw.send(wire.Frame{Type: wire.TypeMessageAck, ID: msg})
	raw.send(wire.Frame{Type: wire.TypeStatus, JournalSeq: 1})
	waitFor(t, "K2's status stored after its refused ack", func() bool {
		return f.count(`SELECT count(*) FROM kiosks WHERE id = 'K2' AND journal_seq = 1`) == 1
	})
	if n := f.count(`SELECT count(*) FROM messages WHERE id = $1 AND acked_at IS NULL`, msg); n != 1 {
		t.Fatal("K1's callback was acknowledged by K2")
	}
	k1.connect(hubURL)
	k1.waitStatus(ref, payment.StatusApproved)
}

func TestCallbackAtOneReplicaReachesAKioskOnAnother(t *testing.T) {
	f := newDarajaFixture(t)
	storeB, err := Open(context.Background(), f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(storeB.Close)
	a, b := f.replica(f.store), f.replica(storeB)
	// Daraja reaches replica A; the kiosk's link is on replica B. The
	// links poll once an hour: only NOTIFY brings the callback in time.
	k := f.kiosk("K1", a)
	k.connect(b)
	k.registerC2B()
	ref := k.c2bSale(100)
	k.replicated()
	if _, _, err := f.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "100", BillRef: ref}); err != nil {
		t.Fatal(err)
	}
	k.waitStatus(ref, payment.StatusApproved)
	// And an STK push, whose callback may reach A before the kiosk's
	// CheckoutRequestID reaches B: routed when it does.
	id, err := k.rail.Start(context.Background(), payment.Request{Mode: payment.ModeSTKPush, Phone: sandbox.TestPhone,
		Amount: payment.Money{Minor: 5000, Currency: "KES"}})
	if err != nil {
		t.Fatal(err)
	}
	k.waitStatus(id, payment.StatusApproved)
}

// rawKiosk is a kiosk's link spoken by hand.
type rawKiosk struct {
	t *testing.T
	c *websocket.Conn
}

func dialRaw(t *testing.T, hubURL, token, id string) *rawKiosk {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), darajaWait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hubURL, "http")+wire.Path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	k := &rawKiosk{t: t, c: c}
	k.send(wire.Frame{Type: wire.TypeHello, KioskID: id})
	var f wire.Frame
	_, b, err := c.Read(ctx)
	if err != nil || json.Unmarshal(b, &f) != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("no welcome: %s %v", b, err)
	}
	// Read on, so the hub's writes never block.
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return k
}

func (k *rawKiosk) send(f wire.Frame) {
	k.t.Helper()
	b, _ := json.Marshal(f)
	ctx, cancel := context.WithTimeout(context.Background(), darajaWait)
	defer cancel()
	if err := k.c.Write(ctx, websocket.MessageText, b); err != nil {
		k.t.Fatal(err)
	}
}

// serveHub serves a hub with opts on store and returns its URL.
func serveHub(t *testing.T, store *Store, opts Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(store, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func postBody(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const stkBody = `{"Body":{"stkCallback":{"MerchantRequestID":"m-1","CheckoutRequestID":"ws_CO_HARDEN1","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}`

func TestCallbackHardening(t *testing.T) {
	st, _ := openStore(t)
	// 127.0.0.1 is not Safaricom's: refused when the allow-list is
	// enforced, and nothing stored.
	enforced := serveHub(t, st, Options{MessagePoll: noPoll, MpesaEnforceAllow: true, Logger: quiet()})
	if code, _ := postBody(t, enforced+PathSTK, stkBody); code != http.StatusForbidden {
		t.Fatalf("a callback from outside the allow-list answered %d, want 403", code)
	}
	open := serveHub(t, st, Options{MessagePoll: noPoll, Logger: quiet()})
	big := `{"Body":{"stkCallback":{"CheckoutRequestID":"x","ResultCode":0,"ResultDesc":"` + strings.Repeat("a", 17<<10) + `"}}}`
	if code, _ := postBody(t, open+PathSTK, big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 17 KiB body answered %d, want 413", code)
	}
	if code, _ := postBody(t, open+PathSTK, `{"Body":{}}`); code != http.StatusBadRequest {
		t.Fatalf("a malformed STK callback answered %d, want 400", code)
	}
	var n int
	if err := st.pool.QueryRow(context.Background(), `SELECT count(*) FROM mpesa_callbacks`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d callbacks stored from refused requests (%v)", n, err)
	}
	// Not enforced: stored, marked as from outside the list (the kiosk
	// flags it), answered.
	if code, body := postBody(t, open+PathSTK, stkBody); code != http.StatusOK || !strings.Contains(body, `"ResultCode":0`) {
		t.Fatalf("answered %d %s", code, body)
	}
	var allowed bool
	if err := st.pool.QueryRow(context.Background(), `SELECT allowed FROM mpesa_callbacks WHERE key = 'ws_CO_HARDEN1'`).Scan(&allowed); err != nil || allowed {
		t.Fatalf("stored allowed=%v (%v), want false", allowed, err)
	}
}

func TestNoAnswer200WithoutTheDatabase(t *testing.T) {
	st, _ := openStore(t)
	url := serveHub(t, st, Options{MessagePoll: noPoll, MpesaAllow: mustAllow(t, "127.0.0.0/8"), Logger: quiet()})
	st.pool.Close() // the database is gone
	for _, p := range []string{PathSTK, PathC2BConfirmation, PathC2BValidation} {
		body := stkBody
		if p != PathSTK {
			body = `{"TransactionType":"Pay Bill","TransID":"TXDOWN1","TransAmount":"10.00","BillRefNumber":"ABC"}`
		}
		if code, answer := postBody(t, url+p, body); code == http.StatusOK {
			t.Fatalf("%s answered 200 (%s) with nothing stored", p, answer)
		}
	}
}

func TestDashboardListsUnmatchedMpesaPayments(t *testing.T) {
	d := newDash(t, Options{MpesaAllow: mustAllow(t, "127.0.0.0/8"), Logger: quiet()})
	body := `{"TransactionType":"Pay Bill","TransID":"UNM4TCH3D1","TransTime":"20261204120000","TransAmount":"75.00","BusinessShortCode":"174379","BillRefNumber":"WRONGREF","MSISDN":"2547 ***** 149"}`
	if code, answer := postBody(t, d.ts.URL+PathC2BConfirmation, body); code != http.StatusOK {
		t.Fatalf("confirmation answered %d %s", code, answer)
	}
	c := d.client()
	c.mustLogin()
	_, page := c.get("/payments")
	for _, want := range []string{`id="unmatched"`, "UNM4TCH3D1", mpesa.NormalizeReference("WRONGREF"), "KES 75.00"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the payments page lacks %q:\n%s", want, page)
		}
	}
}

// Callbacks routed while the same kiosk's batches that route callbacks
// are stored: neither waits for the other in a cycle (PostgreSQL would
// abort one as a deadlock, and Daraja or the kiosk would have to retry).
func TestRoutingAndIngestDoNotDeadlock(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	if _, err := st.AddKiosk(ctx, "K1"); err != nil {
		t.Fatal(err)
	}
	const rounds = 40
	at := time.Now()
	if _, _, err := st.Ingest(ctx, "K1", []wire.Event{{Seq: 1, Time: at, Kind: payment.KindTransition, Rail: payment.RailMPesa,
		TxnID: "PDSALE", Status: payment.StatusCreated, Mode: payment.ModeC2B, Minor: 100, Currency: "KES"}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range rounds {
			ev := wire.Event{Seq: int64(i + 2), Time: at, Kind: payment.KindTransition, Rail: payment.RailMPesa,
				TxnID: "PDSALE", Status: payment.StatusAcknowledged, Result: &payment.Result{RemoteID: fmt.Sprintf("ws_CO_%d", i)}}
			if _, _, err := st.Ingest(ctx, "K1", []wire.Event{ev}); err != nil {
				errs <- err
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range rounds {
			key := fmt.Sprintf("T%d", i)
			body := []byte(`{"TransID":"` + key + `","TransAmount":"1.00","BillRefNumber":"PDSALE"}`)
			if _, err := st.StoreCallback(ctx, Callback{Kind: CallbackC2BConfirm, Key: key, Ref: "PDSALE",
				Body: body, Raw: body, Source: "127.0.0.1", Allowed: true}); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestAnUnroutedCallbackKeepsNoPhoneNumber(t *testing.T) {
	// A callback no kiosk has claimed yet waits at the hub, perhaps for
	// good (an unmatched payment): what waits must not hold the payer's
	// number in full, as nothing at rest does.
	f := newDarajaFixture(t)
	hubURL := f.replica(f.store)
	body := `{"Body":{"stkCallback":{"MerchantRequestID":"29115-1","CheckoutRequestID":"ws_CO_NOBODYS","ResultCode":0,` +
		`"ResultDesc":"ok","CallbackMetadata":{"Item":[{"Name":"Amount","Value":150.00},{"Name":"MpesaReceiptNumber","Value":"NLJ7RT61SV"},` +
		`{"Name":"TransactionDate","Value":20261204102115},{"Name":"PhoneNumber","Value":254708374149}]}}}}`
	resp, err := http.Post(hubURL+"/v1/daraja/stk/result", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks WHERE key = 'ws_CO_NOBODYS'`); n != 1 {
		t.Fatalf("%d stored callbacks, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM mpesa_callbacks WHERE position('254708374149'::bytea in coalesce(body, ''::bytea)) > 0
		OR position('254708374149'::bytea in raw) > 0`); n != 0 {
		t.Fatalf("%d stored callbacks keep the payer's number in full", n)
	}
}

// TestCallbackAndItsEventTogetherNeverMissEachOther: an STK result and
// the journal event naming its CheckoutRequestID stored at the same time,
// on two replicas: each callback ends routed to its kiosk, whichever
// committed first, while batches and callbacks of other keys go on.
func TestCallbackAndItsEventTogetherNeverMissEachOther(t *testing.T) {
	st, dsn := openStore(t)
	stB, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stB.Close)
	ctx := context.Background()
	for _, k := range []string{"K1", "K2"} {
		if _, err := st.AddKiosk(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	const rounds = 60
	at := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for _, k := range []string{"K1", "K2"} {
		wg.Go(func() {
			for i := range rounds {
				ev := wire.Event{Seq: int64(i + 1), Time: at, Kind: payment.KindTransition, Rail: payment.RailMPesa,
					TxnID: fmt.Sprintf("PD%s%d", k, i), Status: payment.StatusCreated, Mode: payment.ModeSTKPush, Minor: 100, Currency: "KES",
					Result: &payment.Result{RemoteID: fmt.Sprintf("ws_CO_%s_%d", k, i)}}
				if _, _, err := st.Ingest(ctx, k, []wire.Event{ev}); err != nil {
					errs <- err
				}
			}
		})
		wg.Go(func() {
			for i := range rounds {
				key := fmt.Sprintf("ws_CO_%s_%d", k, i)
				body := []byte(`{"Body":{"stkCallback":{"CheckoutRequestID":"` + key + `","ResultCode":0}}}`)
				if _, err := stB.StoreCallback(ctx, Callback{Kind: CallbackSTK, Key: key, Code: "0",
					Body: body, Raw: body, Source: "127.0.0.1", Allowed: true}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rows, err := st.pool.Query(ctx, `SELECT key, coalesce(kiosk_id, '') FROM mpesa_callbacks ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type routed struct{ key, kiosk string }
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (routed, error) {
		var x routed
		return x, r.Scan(&x.key, &x.kiosk)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*rounds {
		t.Fatalf("%d callbacks stored, want %d", len(got), 2*rounds)
	}
	for _, x := range got {
		if want := strings.Split(x.key, "_")[2]; x.kiosk != want {
			t.Errorf("callback %s routed to %q, want %s", x.key, x.kiosk, want)
		}
	}
	var msgs int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&msgs); err != nil {
		t.Fatal(err)
	}
	if msgs != 2*rounds {
		t.Errorf("%d messages queued, want %d (one per callback)", msgs, 2*rounds)
	}
}
