package link_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	"paydesk/hub"
	"paydesk/hub/link"
	"paydesk/hub/pgtemp/pgtest"
	"paydesk/hub/wire"
	"paydesk/payment"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// wait is how long a test waits for something that takes milliseconds:
// generous, for two test suites at once on a loaded 2-core machine.
const wait = 60 * time.Second

type fixture struct {
	t     testing.TB
	dsn   string
	store *hub.Store
	addr  string
}

func newFixture(t *testing.T) *fixture { return newFixtureTB(t) }

func newFixtureTB(t testing.TB) *fixture {
	t.Helper()
	return newFixtureOn(t, pgtest.DB(t))
}

// newFixtureOn is a fixture on the database dsn.
func newFixtureOn(t testing.TB, dsn string) *fixture {
	t.Helper()
	st, err := hub.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	// Reserve an address for the hub, which may come and go on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &fixture{t: t, dsn: dsn, store: st, addr: addr}
}

func (f *fixture) url() string { return "http://" + f.addr }

// startHub serves the hub on f.addr; the returned func stops it and
// waits until every link has ended.
func (f *fixture) startHub() (stop func()) {
	f.t.Helper()
	var ln net.Listener
	var err error
	// The address was ours a moment ago; a previous hub's listener is
	// closed by the time its Serve returned.
	ln, err = net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	srv := hub.NewServer(f.store, hub.Options{MessagePoll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				f.t.Errorf("Serve: %v", err)
			}
		})
	}
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) addKiosk(id string) string {
	f.t.Helper()
	tok, err := f.store.AddKiosk(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func openJournal(t testing.TB) *payment.Journal {
	t.Helper()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// sales appends n payments of three transitions each and returns the
// journal's last sequence. Payments are appended from several goroutines,
// so the journal commits them in groups (one fsync per group).
func sales(t testing.TB, j *payment.Journal, prefix string, n int) int64 {
	t.Helper()
	ctx := context.Background()
	const workers = 8
	var mu sync.Mutex
	var last int64
	var firstErr error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("%s-%d", prefix, i)
				for _, ev := range []payment.Event{
					{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusCreated,
						Mode: payment.ModeCard, Amount: payment.Money{Minor: int64(100 + i), Currency: "MYR"}, Peer: "POS001"},
					{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusSent},
					{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: id, Status: payment.StatusApproved,
						Result: &payment.Result{AuthCode: "A1", Card: "1111"}},
				} {
					got, err := j.Append(ctx, ev)
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					last = max(last, got.Seq)
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return last
}

func (f *fixture) runLink(j *payment.Journal, kiosk, token string, tune func(*link.Options)) *link.Link {
	f.t.Helper()
	opts := link.Options{URL: f.url(), Token: token, KioskID: kiosk, Journal: j,
		Poll: 10 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	if tune != nil {
		tune(&opts)
	}
	l, err := link.New(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done })
	return l
}

// runUntilCleanup runs l until the test ends.
func runUntilCleanup(t testing.TB, l *link.Link) <-chan struct{} {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return done
}

func waitAcked(t *testing.T, l *link.Link, seq int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := l.WaitAcked(ctx, seq); err != nil {
		t.Fatalf("hub did not acknowledge seq %d: %v (status %+v)", seq, err, l.Status())
	}
}

// stored returns kiosk's events at the hub in arrival order.
func (f *fixture) stored(kiosk string) []payment.Event {
	f.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT seq, kind, txn_id, status, amount_minor, currency, result->>'auth_code'
		FROM events WHERE kiosk_id = $1 ORDER BY id`, kiosk)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (payment.Event, error) {
		var e payment.Event
		var auth *string
		err := r.Scan(&e.Seq, &e.Kind, &e.TxnID, &e.Status, &e.Amount.Minor, &e.Amount.Currency, &auth)
		if auth != nil {
			e.Result = &payment.Result{AuthCode: *auth}
		}
		return e, err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// dump returns every row of the hub's events and transactions as text.
func (f *fixture) dump() string {
	f.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var a, b string
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(e::text, E'\n' ORDER BY id), '') FROM events e`).Scan(&a); err != nil {
		f.t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(x::text, E'\n' ORDER BY kiosk_id, txn_id), '') FROM txns x`).Scan(&b); err != nil {
		f.t.Fatal(err)
	}
	return a + "\n--\n" + b
}

// checkReplica checks the hub holds exactly the journal's events, once
// each, and received them in the journal's order.
func (f *fixture) checkReplica(j *payment.Journal, kiosk string) {
	f.t.Helper()
	want, err := j.EventsSince(context.Background(), 0, 1<<30)
	if err != nil {
		f.t.Fatal(err)
	}
	got := f.stored(kiosk)
	if len(got) != len(want) {
		f.t.Fatalf("hub holds %d events of %s, the journal %d", len(got), kiosk, len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Seq != w.Seq || g.Kind != w.Kind || g.TxnID != w.TxnID || g.Status != w.Status || g.Amount != w.Amount ||
			(w.Result != nil) != (g.Result != nil) || (w.Result != nil && g.Result.AuthCode != w.Result.AuthCode) {
			f.t.Fatalf("event %d: hub has %+v, journal %+v", i, g, w)
		}
	}
}

func TestReplication(t *testing.T) {
	t.Run("the journal reaches PostgreSQL once each, in order", func(t *testing.T) {
		f := newFixture(t)
		tok := f.addKiosk("KIOSK007")
		f.startHub()
		j := openJournal(t)
		sales(t, j, "before", 200)
		bus := payment.NewBus(j, nil)
		defer bus.Close()
		l := f.runLink(j, "KIOSK007", tok, func(o *link.Options) { o.Bus, o.Batch = bus, 64 })
		// Payments made while the link runs go too.
		last := sales(t, j, "during", 200)
		waitAcked(t, l, last)
		f.checkReplica(j, "KIOSK007")
		if st := l.Status(); !st.Connected || st.Lag() != 0 {
			t.Fatalf("status %+v; want connected, no lag", st)
		}
	})

	t.Run("a hub restart mid-stream loses and repeats nothing", func(t *testing.T) {
		f := newFixture(t)
		tok := f.addKiosk("K1")
		stop := f.startHub()
		j := openJournal(t)
		last := sales(t, j, "a", 1000)
		l := f.runLink(j, "K1", tok, func(o *link.Options) { o.Batch = 20 })
		waitAcked(t, l, 60)
		stop()
		if st := l.Status(); st.AckedSeq >= last {
			t.Logf("the link finished before the hub stopped (acked %d of %d)", st.AckedSeq, last)
		}
		// The kiosk keeps taking payments while the hub is away.
		last = sales(t, j, "b", 100)
		f.startHub()
		waitAcked(t, l, last)
		f.checkReplica(j, "K1")
	})

	t.Run("a kiosk whose hub was away catches up in order", func(t *testing.T) {
		f := newFixture(t)
		tok := f.addKiosk("K1")
		j := openJournal(t)
		sales(t, j, "a", 50)
		l := f.runLink(j, "K1", tok, nil)
		last := sales(t, j, "b", 50)
		if st := l.Status(); st.Connected || st.AckedSeq != 0 {
			t.Fatalf("status without a hub: %+v", st)
		}
		f.startHub()
		waitAcked(t, l, last)
		f.checkReplica(j, "K1")
	})

	t.Run("the state file tells how far the hub has acknowledged", func(t *testing.T) {
		f := newFixture(t)
		tok := f.addKiosk("K1")
		f.startHub()
		j := openJournal(t)
		last := sales(t, j, "a", 5)
		path := link.StatePath(j.Path())
		l := f.runLink(j, "K1", tok, func(o *link.Options) { o.StatePath = path })
		waitAcked(t, l, last)
		st, err := link.ReadState(path)
		if err != nil || st.AckedSeq != last || st.KioskID != "K1" || st.Hub != f.url() {
			t.Fatalf("state = %+v, %v; want acked %d", st, err, last)
		}
	})
}

func TestReport(t *testing.T) {
	f := newFixture(t)
	f.startHub()
	ctx := context.Background()
	want := map[string]int64{}
	for _, k := range []string{"K1", "K2"} {
		tok := f.addKiosk(k)
		j := openJournal(t)
		n := 10
		if k == "K2" {
			n = 7
		}
		last := sales(t, j, k, n)
		// One declined sale in KES, which is not in the approved total.
		ev, err := j.Append(ctx, payment.Event{Kind: payment.KindTransition, Rail: payment.RailMPesa, TxnID: k + "-m",
			Status: payment.StatusCreated, Mode: payment.ModeSTKPush, Amount: payment.Money{Minor: 500, Currency: "KES"}})
		if err != nil {
			t.Fatal(err)
		}
		if ev, err = j.Append(ctx, payment.Event{Kind: payment.KindTransition, Rail: payment.RailMPesa, TxnID: k + "-m", Status: payment.StatusDeclined}); err != nil {
			t.Fatal(err)
		}
		last = max(last, ev.Seq)
		waitAcked(t, f.runLink(j, k, tok, nil), last)
		for i := range n {
			want[k] += int64(100 + i)
		}
	}
	now := time.Now()
	from, to := payment.Day(now)
	rows, err := f.store.Report(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[fmt.Sprintf("%s %s %s %s", r.Kiosk, r.Rail, r.Amount.Currency, r.Status)] = fmt.Sprintf("%d %d", r.Count, r.Amount.Minor)
	}
	wantRows := map[string]string{
		"K1 pos MYR approved":   fmt.Sprintf("10 %d", want["K1"]),
		"K2 pos MYR approved":   fmt.Sprintf("7 %d", want["K2"]),
		"K1 mpesa KES declined": "1 500",
		"K2 mpesa KES declined": "1 500",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantRows) {
		t.Fatalf("report:\n got %v\nwant %v", got, wantRows)
	}
	// The next day is empty.
	if rows, err := f.store.Report(ctx, to, to.AddDate(0, 0, 1)); err != nil || len(rows) != 0 {
		t.Fatalf("next day: %+v, %v", rows, err)
	}
}

// rawKiosk is a test's own end of the link, to send what a real kiosk
// would not.
type rawKiosk struct {
	t testing.TB
	c *websocket.Conn
}

func (f *fixture) dial(token string) (*rawKiosk, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+f.addr+wire.Path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(wire.MaxFrame)
	f.t.Cleanup(func() { c.CloseNow() })
	return &rawKiosk{t: f.t, c: c}, resp, nil
}

func (k *rawKiosk) send(fr wire.Frame) {
	k.t.Helper()
	b, _ := json.Marshal(fr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := k.c.Write(ctx, websocket.MessageText, b); err != nil {
		k.t.Fatal(err)
	}
}

func (k *rawKiosk) read() (wire.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var fr wire.Frame
	_, b, err := k.c.Read(ctx)
	if err != nil {
		return fr, err
	}
	return fr, json.Unmarshal(b, &fr)
}

func (k *rawKiosk) expect(typ string) wire.Frame {
	k.t.Helper()
	fr, err := k.read()
	if err != nil || fr.Type != typ {
		k.t.Fatalf("read %+v, %v; want %s", fr, err, typ)
	}
	return fr
}

// expectClosed reads until the hub closes the link and returns the
// error frame's reason and the close status.
func (k *rawKiosk) expectClosed() (string, websocket.StatusCode) {
	k.t.Helper()
	reason := ""
	for {
		fr, err := k.read()
		if err != nil {
			return reason, websocket.CloseStatus(err)
		}
		if fr.Type == wire.TypeError {
			reason = fr.Reason
		}
	}
}

func batchOf(j *payment.Journal, t *testing.T) []wire.Event {
	evs, err := j.EventsSince(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]wire.Event, len(evs))
	for i, e := range evs {
		out[i] = wire.FromPayment(e)
	}
	return out
}

func TestHostileKiosks(t *testing.T) {
	f := newFixture(t)
	tokA := f.addKiosk("A")
	f.addKiosk("B")
	f.startHub()
	j := openJournal(t)
	last := sales(t, j, "x", 5)
	batch := batchOf(j, t)

	t.Run("a wrong token is refused before the link opens", func(t *testing.T) {
		for _, tok := range []string{"", "pdh_nope", tokA + "x"} {
			if _, resp, err := f.dial(tok); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("token %q: err %v, response %v; want 401", tok, err, resp)
			}
		}
	})

	t.Run("kiosk A cannot write as kiosk B", func(t *testing.T) {
		k, _, err := f.dial(tokA)
		if err != nil {
			t.Fatal(err)
		}
		k.send(wire.Frame{Type: wire.TypeHello, KioskID: "B"})
		reason, code := k.expectClosed()
		if !strings.Contains(reason, "does not match") || code != websocket.StatusPolicyViolation {
			t.Fatalf("closed with %q, %v; want a refusal of the kiosk id", reason, code)
		}
		// And the real link with A's token and B's id gets nowhere.
		l := f.runLink(j, "B", tokA, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := l.WaitAcked(ctx, 1); err == nil {
			t.Fatal("the hub acknowledged events sent with A's token as B")
		}
		if st := l.Status(); !strings.Contains(st.LastError, "does not match") {
			t.Fatalf("link status %+v; want the hub's refusal", st)
		}
		if n := len(f.stored("B")) + len(f.stored("A")); n != 0 {
			t.Fatalf("%d events stored", n)
		}
	})

	t.Run("a replayed batch changes nothing", func(t *testing.T) {
		k, _, err := f.dial(tokA)
		if err != nil {
			t.Fatal(err)
		}
		k.send(wire.Frame{Type: wire.TypeHello, KioskID: "A"})
		k.expect(wire.TypeWelcome)
		k.send(wire.Frame{Type: wire.TypeEvents, Events: batch})
		if a := k.expect(wire.TypeAck); a.AckedSeq != last {
			t.Fatalf("ack %d, want %d", a.AckedSeq, last)
		}
		before := f.dump()
		for range 3 {
			k.send(wire.Frame{Type: wire.TypeEvents, Events: batch})
			if a := k.expect(wire.TypeAck); a.AckedSeq != last {
				t.Fatalf("replay ack %d, want %d", a.AckedSeq, last)
			}
		}
		if after := f.dump(); after != before {
			t.Fatalf("replays changed the events:\nbefore %v\nafter  %v", before, after)
		}
		from, to := payment.Day(time.Now())
		rows, err := f.store.Report(context.Background(), from, to)
		if err != nil || len(rows) != 1 || rows[0].Count != 5 {
			t.Fatalf("report after replays: %+v, %v; want 5 sales once", rows, err)
		}
	})

	t.Run("an oversized frame closes that link only", func(t *testing.T) {
		k, _, err := f.dial(tokA)
		if err != nil {
			t.Fatal(err)
		}
		k.send(wire.Frame{Type: wire.TypeHello, KioskID: "A"})
		k.expect(wire.TypeWelcome)
		big := []byte(`{"type":"events","events":[{"detail":"` + strings.Repeat("x", wire.MaxFrame) + `"}]}`)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		k.c.Write(ctx, websocket.MessageText, big) // the hub may close before it is all sent
		if _, code := k.expectClosed(); code != websocket.StatusMessageTooBig {
			t.Fatalf("closed with %v; want StatusMessageTooBig", code)
		}
		// The hub serves others on.
		k2, _, err := f.dial(tokA)
		if err != nil {
			t.Fatal(err)
		}
		k2.send(wire.Frame{Type: wire.TypeHello, KioskID: "A"})
		if w := k2.expect(wire.TypeWelcome); w.AckedSeq != last {
			t.Fatalf("welcome %+v", w)
		}
	})

	t.Run("a bad batch is refused with its reason", func(t *testing.T) {
		k, _, err := f.dial(tokA)
		if err != nil {
			t.Fatal(err)
		}
		k.send(wire.Frame{Type: wire.TypeHello, KioskID: "A"})
		k.expect(wire.TypeWelcome)
		bad := []wire.Event{batch[1], batch[0]}
		k.send(wire.Frame{Type: wire.TypeEvents, Events: bad})
		if reason, _ := k.expectClosed(); !strings.Contains(reason, "not increasing") {
			t.Fatalf("reason %q", reason)
		}
	})

	t.Run("a token revoked while connected ends the link", func(t *testing.T) {
		tokC := f.addKiosk("C")
		k, _, err := f.dial(tokC)
		if err != nil {
			t.Fatal(err)
		}
		k.send(wire.Frame{Type: wire.TypeHello, KioskID: "C"})
		k.expect(wire.TypeWelcome)
		if err := f.store.RevokeKiosk(context.Background(), "C"); err != nil {
			t.Fatal(err)
		}
		k.send(wire.Frame{Type: wire.TypeEvents, Events: batch})
		if reason, _ := k.expectClosed(); !strings.Contains(reason, "revoked") {
			t.Fatalf("reason %q", reason)
		}
		if _, resp, err := f.dial(tokC); err == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked token reconnecting: %v", err)
		}
		if n := len(f.stored("C")); n != 0 {
			t.Fatalf("%d events stored for a revoked kiosk", n)
		}
	})
}

func TestMessagesReachOnlyTheirKiosk(t *testing.T) {
	f := newFixture(t)
	tokA := f.addKiosk("A")
	tokB := f.addKiosk("B")
	f.startHub()
	ctx := context.Background()
	ma, _ := f.store.Enqueue(ctx, "A", "test", []byte(`{"n":1}`))
	mb, _ := f.store.Enqueue(ctx, "B", "test", []byte(`{"n":2}`))

	got := make(chan wire.Message, 10)
	f.runLink(openJournal(t), "A", tokA, func(o *link.Options) {
		o.OnMessage = func(_ context.Context, m wire.Message) error { got <- m; return nil }
	})
	select {
	case m := <-got:
		if m.ID != ma || string(m.Body) != `{"n": 1}` && string(m.Body) != `{"n":1}` {
			t.Fatalf("A got %+v; want message %d", m, ma)
		}
	case <-time.After(wait):
		t.Fatal("A's message never came")
	}
	// A acknowledged it: wait until the hub has it so.
	deadline := time.Now().Add(wait)
	for {
		p, err := f.store.Pending(ctx, "A", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's message still pending: %+v", p)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A acknowledging B's message over the wire: refused, B's stays.
	k, _, err := f.dial(tokA)
	if err != nil {
		t.Fatal(err)
	}
	k.send(wire.Frame{Type: wire.TypeHello, KioskID: "A"})
	k.expect(wire.TypeWelcome)
	k.send(wire.Frame{Type: wire.TypeMessageAck, ID: mb})
	// An events batch after it proves the hub has handled the ack.
	j := openJournal(t)
	sales(t, j, "z", 1)
	k.send(wire.Frame{Type: wire.TypeEvents, Events: batchOf(j, t)})
	k.expect(wire.TypeAck)
	p, err := f.store.Pending(ctx, "B", 0, 10)
	if err != nil || len(p) != 1 || p[0].ID != mb {
		t.Fatalf("B's pending after A's ack: %+v, %v", p, err)
	}
	select {
	case m := <-got:
		t.Fatalf("A got another message: %+v", m)
	default:
	}
	// B's own link gets it.
	gotB := make(chan wire.Message, 10)
	f.runLink(openJournal(t), "B", tokB, func(o *link.Options) {
		o.OnMessage = func(_ context.Context, m wire.Message) error { gotB <- m; return nil }
	})
	select {
	case m := <-gotB:
		if m.ID != mb {
			t.Fatalf("B got %+v; want message %d", m, mb)
		}
	case <-time.After(wait):
		t.Fatal("B's message never came")
	}
}

// TestANewJournalUnderAnOldIDStops: a kiosk id whose events at the hub go
// beyond this journal's last is another journal's; replicating would
// drop this one's events as duplicates, so the link stops and says why.
func TestANewJournalUnderAnOldIDStops(t *testing.T) {
	f := newFixture(t)
	tok := f.addKiosk("K1")
	f.startHub()
	old := openJournal(t)
	last := sales(t, old, "old", 10)
	waitAcked(t, f.runLink(old, "K1", tok, nil), last)

	fresh := openJournal(t)
	sales(t, fresh, "new", 2)
	l, err := link.New(link.Options{URL: f.url(), Token: tok, KioskID: "K1", Journal: fresh, MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := l.Run(ctx); !errors.Is(err, link.ErrForeignHistory) {
		t.Fatalf("Run = %v, want ErrForeignHistory", err)
	}
	f.checkReplica(old, "K1") // the hub still holds the old journal, untouched
}
