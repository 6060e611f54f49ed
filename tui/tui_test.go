package tui

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"paydesk/desk"
	"paydesk/payment"
	"paydesk/payment/journaltest"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
)

func init() {
	lipgloss.SetColorProfile(termenv.Ascii)
	time.Local = time.UTC // the journal's times are shown in local time
}

var clock = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeRail answers like the POS link with fixed ids, so goldens are stable.
type fakeRail struct {
	cancelled, selected []string
	started             atomic.Bool // set by Start on a Cmd goroutine
}

func (f *fakeRail) Start(context.Context, payment.Request) (string, error) {
	f.started.Store(true)
	return "TXN1795340000000", nil
}
func (f *fakeRail) Cancel(id string) error { f.cancelled = append(f.cancelled, id); return nil }
func (f *fakeRail) SelectPlan(id, plan string) error {
	f.selected = append(f.selected, plan)
	return nil
}
func (f *fakeRail) Peers() []payment.Peer {
	return []payment.Peer{{ID: "POS001", Addr: "127.0.0.1:50000", Since: clock.Add(-time.Hour), LastMsg: clock.Add(-time.Minute)}}
}

// InFlight reports the started payment waiting for its ack, 8 s left.
func (f *fakeRail) InFlight() []payment.Flight {
	if !f.started.Load() {
		return nil
	}
	return []payment.Flight{{ID: "TXN1795340000000", Mode: payment.ModeCard, Amount: payment.Money{Minor: 2550, Currency: "MYR"},
		Status: payment.StatusSent, Peer: "POS001", Deadline: clock.Add(8 * time.Second), Waiting: "ack"}}
}
func (f *fakeRail) DefaultTarget() string { return "POS001" }

// testBus is a journal and a bus on it for one test.
func testBus(t *testing.T) *payment.Bus { return journaltest.Bus(t) }

// testCfg is what a test sets: the console's settings and its desk's
// rails, displays and hub.
type testCfg struct {
	Config
	Rails    testRails
	Displays desk.Displays
	Hub      func() string
}

// testRails are the rails a test's desk offers beside the POS.
type testRails struct{ Terminal, MPesa payment.Starter }

func testConfig() testCfg {
	return testCfg{Config: Config{Demo: true, DemoNotes: possim.Outcomes, Now: func() time.Time { return clock }, StillSpinner: true}}
}

// newModel is the console over a desk of pos and cfg's rails on bus.
func newModel(cfg testCfg, pos desk.POS, bus *payment.Bus) Model {
	rails := map[payment.Rail]payment.Starter{}
	if cfg.Rails.Terminal != nil {
		rails[payment.RailTerminal] = cfg.Rails.Terminal
	}
	if cfg.Rails.MPesa != nil {
		rails[payment.RailMPesa] = cfg.Rails.MPesa
	}
	d := desk.New(desk.Config{KioskID: "KIOSK001", Listen: "127.0.0.1:8080", POS: pos, Rails: rails,
		Displays: cfg.Displays, Hub: cfg.Hub, Now: cfg.Now}, bus)
	return New(cfg.Config, d)
}

// The payment's phases, as the screens the tests look for.
const (
	scrWaiting screen = 100 + iota
	scrPlans
	scrResult
)

// at is the screen the operator sees; the payment's by its phase.
func at(m Model) screen {
	if m.screen != scrPay {
		return m.screen
	}
	return map[phase]screen{phaseWaiting: scrWaiting, phasePlans: scrPlans, phaseResult: scrResult}[m.pay.phase]
}

// update hands msg to the model as the program would, with the reads it
// asks for (its Cmds that read the journal or the rails): each is run and
// its message handed back, until none is left. Other Cmds are dropped.
func update(m Model, msg tea.Msg) Model {
	var reads []tea.Cmd
	m.c.onRead = func(c tea.Cmd) { reads = append(reads, c) }
	defer func() { m.c.onRead = nil }()
	next, _ := m.Update(msg)
	m = next.(Model)
	for len(reads) > 0 {
		r := reads[0]
		reads = reads[1:]
		next, _ = m.Update(r())
		m = next.(Model)
	}
	return m
}

func waitText(t *testing.T, tm *teatest.TestModel, text string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(text)) },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

func enter(tm *teatest.TestModel) { tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) }

// final quits and returns the model's last view.
func final(t *testing.T, tm *teatest.TestModel) string {
	t.Helper()
	tm.Send(finishMsg{})
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).View()
}

// finishMsg makes the program quit in tests without changing the screen.
type finishMsg struct{}

func (m testModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if _, ok := msg.(finishMsg); ok {
		return m, tea.Quit
	}
	next, cmd := m.Model.Update(msg)
	return testModel{next.(Model)}, cmd
}

type testModel struct{ Model }

func startTest(t *testing.T, rail desk.POS, bus *payment.Bus) *teatest.TestModel {
	t.Helper()
	return teatest.NewTestModel(t, testModel{newModel(testConfig(), rail, bus)}, teatest.WithInitialTermSize(80, 24))
}

// startWithRails is startTest with the other rails (terminal, M-Pesa).
func startWithRails(t *testing.T, rails testRails, bus *payment.Bus) *teatest.TestModel {
	t.Helper()
	cfg := testConfig()
	cfg.Rails = rails
	return teatest.NewTestModel(t, testModel{newModel(cfg, &fakeRail{}, bus)}, teatest.WithInitialTermSize(80, 24))
}

func (m testModel) View() string { return m.Model.View() }

func TestGoldenViews(t *testing.T) {
	plans := []payment.Plan{
		{ID: "IPP_3M", Frequency: "Monthly", TotalInstallments: 3, Installments: []payment.Installment{
			{Number: 1, Date: "2026-12-15", Amount: payment.Money{Minor: 3333, Currency: "MYR"}, Fee: payment.Money{Minor: 50, Currency: "MYR"}, FeePercent: "1.5"},
			{Number: 2, Date: "2027-01-15", Amount: payment.Money{Minor: 3333, Currency: "MYR"}, Fee: payment.Money{Minor: 50, Currency: "MYR"}, FeePercent: "1.5"},
			{Number: 3, Date: "2027-02-15", Amount: payment.Money{Minor: 3334, Currency: "MYR"}, Fee: payment.Money{Minor: 50, Currency: "MYR"}, FeePercent: "1.5"}}},
		{ID: "pay-in-full"},
	}
	const id = "TXN1795340000000"
	tr := func(st payment.Status, r *payment.Result, detail string) eventMsg {
		return eventMsg{Kind: payment.KindTransition, TxnID: id, Status: st, Result: r, Detail: detail}
	}
	cases := []struct {
		name  string
		drive func(tm *teatest.TestModel)
	}{
		{"menu", func(tm *teatest.TestModel) { waitText(t, tm, "Exit") }},
		{"help", func(tm *teatest.TestModel) { tm.Type("?") }},
		{"amount with an error", func(tm *teatest.TestModel) {
			tm.Type("125.505")
			waitText(t, tm, "more than two decimals")
		}},
		{"waiting", func(tm *teatest.TestModel) {
			tm.Type("125.50")
			enter(tm)
			waitText(t, tm, id)
			tm.Send(eventMsg{Kind: payment.KindStep, TxnID: id, Detail: "ack processing"})
		}},
		{"ipp picker", func(tm *teatest.TestModel) {
			tm.Type("4100")
			enter(tm)
			waitText(t, tm, id)
			tm.Send(eventMsg{Kind: payment.KindTransition, TxnID: id, Status: payment.StatusPlansOffered, Plans: plans, Detail: "2 plan(s) offered"})
			waitText(t, tm, "IPP_3M")
		}},
		{"approved", func(tm *teatest.TestModel) {
			tm.Type("125.50")
			enter(tm)
			waitText(t, tm, id)
			tm.Send(tr(payment.StatusApproved, &payment.Result{AuthCode: "AUTH409", Card: "4242", RemoteID: "000410"}, "approved"))
		}},
		{"declined", func(tm *teatest.TestModel) {
			tm.Type("180.51")
			enter(tm)
			waitText(t, tm, id)
			tm.Send(tr(payment.StatusDeclined, &payment.Result{Reason: "USER_ABORT"}, "declined: USER_ABORT"))
		}},
		{"cancelled", func(tm *teatest.TestModel) {
			tm.Type("110.62")
			enter(tm)
			waitText(t, tm, id)
			tm.Send(tr(payment.StatusCancelled, &payment.Result{Reason: "cancelled: POS confirmed"}, ""))
		}},
		{"timed out", func(tm *teatest.TestModel) {
			tm.Type("110.61")
			enter(tm)
			waitText(t, tm, id)
			tm.Send(tr(payment.StatusTimedOut, &payment.Result{Reason: "no ack from POS within 10s"}, ""))
		}},
		{"failed", func(tm *teatest.TestModel) {
			tm.Type("110.81")
			enter(tm)
			waitText(t, tm, id)
			tm.Send(tr(payment.StatusFailed, &payment.Result{Reason: "card reader not responding"}, ""))
		}},
		{"status", func(tm *teatest.TestModel) { tm.Type("6") }},
		{"quit asks while a payment is in flight", func(tm *teatest.TestModel) {
			tm.Type("125.50")
			enter(tm)
			waitText(t, tm, id)
			tm.Type("q")
			waitText(t, tm, "Quit? y/n")
		}},
		{"connect qr", func(tm *teatest.TestModel) { tm.Type("w") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm := startTest(t, &fakeRail{}, testBus(t))
			c.drive(tm)
			// No sleep: Type and Send hand their messages to the program in
			// order, so final's quit is handled after the last of them.
			golden.RequireEqual(t, []byte(final(t, tm)))
		})
	}
}

// kiosk is the real POS link with a simulator, for flows.
func kiosk(t *testing.T, opts protocol.Options) *postest.Kiosk {
	k := postest.New(t, opts)
	k.AddSim(t, possim.Options{})
	return k
}

func flow(t *testing.T, k *postest.Kiosk, keys string, want string) Model {
	t.Helper()
	cfg := testConfig()
	cfg.Now = time.Now
	tm := teatest.NewTestModel(t, testModel{newModel(cfg, k.Server, k.Bus)}, teatest.WithInitialTermSize(80, 24))
	tm.Type(keys)
	enter(tm)
	waitText(t, tm, want)
	tm.Send(finishMsg{})
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(testModel).Model
}

func TestFlows(t *testing.T) {
	t.Run("a card payment is approved", func(t *testing.T) {
		m := flow(t, kiosk(t, protocol.Options{}), "125.50", "APPROVED")
		if m.pay.result.Status != payment.StatusApproved || m.pay.result.Result.Card != "4242" {
			t.Errorf("result = %+v", m.pay.result)
		}
	})

	t.Run("a declined payment shows the reason", func(t *testing.T) {
		m := flow(t, kiosk(t, protocol.Options{}), "180.51", "DECLINED")
		if m.pay.result.Result.Reason != "USER_ABORT" {
			t.Errorf("result = %+v", m.pay.result.Result)
		}
	})

	t.Run("a payment with no answer times out", func(t *testing.T) {
		m := flow(t, kiosk(t, protocol.Options{AckTimeout: 300 * time.Millisecond}), "110.61", "TIMED OUT")
		if m.pay.result.Status != payment.StatusTimedOut {
			t.Errorf("result = %+v", m.pay.result)
		}
	})

	t.Run("IPP shows the plans and the chosen one is approved", func(t *testing.T) {
		k := kiosk(t, protocol.Options{})
		cfg := testConfig()
		cfg.Now = time.Now
		tm := teatest.NewTestModel(t, testModel{newModel(cfg, k.Server, k.Bus)}, teatest.WithInitialTermSize(80, 24))
		tm.Type("4100")
		enter(tm)
		waitText(t, tm, "IPP_6M")
		tm.Send(tea.KeyMsg{Type: tea.KeyDown})
		enter(tm)
		waitText(t, tm, "APPROVED")
		tm.Send(finishMsg{})
		m := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(testModel).Model
		if m.pay.result.Result.PlanID != "IPP_6M" {
			t.Errorf("plan = %q", m.pay.result.Result.PlanID)
		}
	})

	t.Run("cancel asks first, then waits for the POS", func(t *testing.T) {
		k := kiosk(t, protocol.Options{})
		cfg := testConfig()
		cfg.Now = time.Now
		tm := teatest.NewTestModel(t, testModel{newModel(cfg, k.Server, k.Bus)}, teatest.WithInitialTermSize(80, 24))
		tm.Type("110.62")
		enter(tm)
		waitText(t, tm, "ack processing")
		tm.Type("5")
		waitText(t, tm, "Cancel this payment?")
		tm.Type("y")
		waitText(t, tm, "CANCELLED")
		tm.Send(finishMsg{})
		m := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(testModel).Model
		if m.pay.result.Status != payment.StatusCancelled {
			t.Errorf("result = %+v", m.pay.result)
		}
	})
}

// seed journals one approved and one unknown transaction at fixed times.
func seed(t *testing.T, bus *payment.Bus) {
	t.Helper()
	pub := func(ev payment.Event) {
		ev.Rail = payment.RailPOS
		if _, err := bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range []payment.Status{payment.StatusApproved, payment.StatusUnknown} {
		id := fmt.Sprintf("TXN179534000000%d", i)
		at := clock.Add(time.Duration(i) * time.Minute)
		pub(payment.Event{Time: at, Kind: payment.KindTransition, TxnID: id, Status: payment.StatusCreated, Mode: payment.ModeCard,
			Amount: payment.Money{Minor: 2550 + int64(i), Currency: "MYR"}, Peer: "POS001", Detail: "card RM25.50 to POS001"})
		pub(payment.Event{Time: at, Kind: payment.KindTransition, TxnID: id, Status: payment.StatusSent, Detail: "request sent"})
		pub(payment.Event{Time: at.Add(time.Second), Kind: payment.KindTransition, TxnID: id, Status: st, Detail: "outcome " + string(st)})
	}
}

func TestStatusCounts(t *testing.T) {
	bus := testBus(t)
	seed(t, bus)
	tm := startTest(t, &fakeRail{}, bus)
	tm.Type("6")
	waitText(t, tm, "Journal: 2 transactions (approved 1, unknown 1)")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

func TestQuitWithoutPayment(t *testing.T) {
	tm := startTest(t, &fakeRail{}, testBus(t))
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

func TestJournalScreen(t *testing.T) {
	t.Run("the list golden", func(t *testing.T) {
		bus := testBus(t)
		seed(t, bus)
		tm := startTest(t, &fakeRail{}, bus)
		tm.Type("j")
		waitText(t, tm, "UNKNOWN")
		golden.RequireEqual(t, []byte(final(t, tm)))
	})

	t.Run("an unknown transaction is resolved by the operator and journaled", func(t *testing.T) {
		bus := testBus(t)
		seed(t, bus)
		tm := startTest(t, &fakeRail{}, bus)
		tm.Type("j")
		waitText(t, tm, "UNKNOWN")
		enter(tm) // newest first: the unknown one
		waitText(t, tm, "check the POS")
		tm.Type("a")
		waitText(t, tm, "journaled as your decision")
		tm.Type("y")
		waitText(t, tm, "resolved by operator as approved")
		view := final(t, tm)
		golden.RequireEqual(t, []byte(view))
		tx, err := bus.Journal().Txn(context.Background(), "TXN1795340000001")
		if err != nil || tx.Status != payment.StatusApproved || !tx.HasFlag(payment.FlagResolved) {
			t.Errorf("journal has %+v, %v", tx, err)
		}
	})
}

func TestEventLog(t *testing.T) {
	bus := testBus(t)
	tm := startTest(t, &fakeRail{}, bus)
	tm.Type("l")
	for i := range 3 {
		tm.Send(eventMsg{Time: clock, Kind: payment.KindRejected, Peer: "127.0.0.1:5000" + fmt.Sprint(i), Detail: "invalid signature"})
	}
	waitText(t, tm, "127.0.0.1:50002")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

// BenchmarkViewWithManyEvents draws the event log after 100,000 events.
//
//	go test -run '^$' -bench ViewWithManyEvents ./tui
func BenchmarkViewWithManyEvents(b *testing.B) {
	bus := testBus(&testing.T{})
	m := newModel(testConfig(), &fakeRail{}, bus)
	var tm tea.Model = m
	for i := range 100_000 {
		tm, _ = tm.Update(eventMsg{Time: clock, Kind: payment.KindMessage, Peer: "POS001", Detail: fmt.Sprintf("message %d", i)})
	}
	tm, _ = tm.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("l")})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// A new event each frame, as under load: the pane is re-laid out.
		tm, _ = tm.Update(eventMsg{Time: clock, Kind: payment.KindMessage, Peer: "POS001", Detail: fmt.Sprintf("frame %d", i)})
		_ = tm.View()
	}
}

func TestSeveralPOS(t *testing.T) {
	k := postest.New(t, protocol.Options{})
	k.AddSim(t, possim.Options{PosID: "POS001"})
	k.AddSim(t, possim.Options{PosID: "POS002"})
	cfg := testConfig()
	cfg.Now = time.Now
	tm := teatest.NewTestModel(t, testModel{newModel(cfg, k.Server, k.Bus)}, teatest.WithInitialTermSize(80, 24))
	tm.Send(tickMsg(time.Now())) // take the POS list
	tm.Type("1")
	waitText(t, tm, "2 connected; tab: next")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("10.00")
	enter(tm)
	waitText(t, tm, "APPROVED")
	final(t, tm)
	second := k.Server.Peers()[1]
	txns, err := k.Journal.Recent(context.Background(), 1)
	if err != nil || len(txns) != 1 || (txns[0].Peer != second.Label() && txns[0].Peer != "POS002") {
		t.Errorf("payment went to %+v, want the second POS %s", txns, second.Label())
	}
}

func TestDisconnectInHeader(t *testing.T) {
	k := postest.New(t, protocol.Options{})
	c, err := net.Dial("tcp", k.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Now = time.Now
	tm := teatest.NewTestModel(t, testModel{newModel(cfg, k.Server, k.Bus)}, teatest.WithInitialTermSize(80, 24))
	waitText(t, tm, "1 POS connected")
	c.Close()
	waitText(t, tm, "waiting for a POS")
	final(t, tm)
}

func TestConnectAddr(t *testing.T) {
	if got := connectAddr("127.0.0.1:8080"); got != "127.0.0.1:8080" {
		t.Errorf("a specific address changed to %q", got)
	}
	got := connectAddr("0.0.0.0:8080")
	host, port, err := net.SplitHostPort(got)
	if err != nil || port != "8080" {
		t.Fatalf("connectAddr(0.0.0.0:8080) = %q", got)
	}
	if lan := lanIP(); lan != "" && host != lan {
		t.Errorf("host = %q, want the LAN address %q", host, lan)
	}
	if ip := net.ParseIP(host); lanIP() != "" && (ip == nil || ip.IsUnspecified()) {
		t.Errorf("still unspecified: %q", got)
	}
	if qrBlock(got) == "" || strings.Count(qrBlock("127.0.0.1:8080"), "\n") != 12 {
		t.Errorf("QR for a short address should be 13 rows:\n%s", qrBlock("127.0.0.1:8080"))
	}
}
