package tui

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"paydesk/payment"
)

// scriptRail is a rail that journals a payment's life through the bus the
// way every rail must: created, sent, acknowledged, then the outcome. It
// records the requests and cancels it was given.
type scriptRail struct {
	bus    *payment.Bus
	rail   payment.Rail
	health payment.Health
	// sent is the detail of the sent transition, as the rail words it.
	sent string

	mu      sync.Mutex
	reqs    []payment.Request
	cancels []string
}

func (r *scriptRail) Start(ctx context.Context, req payment.Request) (string, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	id := "TXN-" + string(r.rail)
	for _, ev := range []payment.Event{
		{Kind: payment.KindTransition, Status: payment.StatusCreated, Mode: req.Mode, Amount: req.Amount, Detail: "created"},
		{Kind: payment.KindTransition, Status: payment.StatusSent, Detail: r.sent},
		{Kind: payment.KindTransition, Status: payment.StatusAcknowledged, Detail: "peer accepted"},
	} {
		ev.Rail, ev.TxnID = r.rail, id
		if _, err := r.bus.Publish(ctx, ev); err != nil {
			return "", err
		}
	}
	return id, nil
}

func (r *scriptRail) Cancel(id string) error {
	r.mu.Lock()
	r.cancels = append(r.cancels, id)
	r.mu.Unlock()
	_, err := r.bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: r.rail, TxnID: id,
		Status: payment.StatusCancelled, Detail: "cancelled by operator", Result: &payment.Result{Reason: "cancelled by operator"}})
	return err
}

func (r *scriptRail) Health() payment.Health { return r.health }

func (r *scriptRail) Deadline(id string) (string, time.Time, bool) {
	return "the customer", clock.Add(42 * time.Second), true
}

func (r *scriptRail) approve(t *testing.T, id string) {
	t.Helper()
	_, err := r.bus.Publish(context.Background(), payment.Event{Kind: payment.KindTransition, Rail: r.rail, TxnID: id,
		Status: payment.StatusApproved, Detail: "approved", Result: &payment.Result{RemoteID: "RCPT0001", Card: "4242"}})
	if err != nil {
		t.Fatal(err)
	}
}

// waitAll waits for output holding every text, as one frame may draw
// them all at once.
func waitAll(t *testing.T, tm *teatest.TestModel, texts ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, s := range texts {
			if !bytes.Contains(b, []byte(s)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

func typeText(tm *teatest.TestModel, s string) {
	for _, r := range s {
		tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

func TestOtherRails(t *testing.T) {
	bus := testBus(t)
	term := &scriptRail{bus: bus, rail: payment.RailTerminal, health: payment.Health{Up: true, Detail: "ready"}}
	mp := &scriptRail{bus: bus, rail: payment.RailMPesa, health: payment.Health{Up: false, Detail: "token refused"},
		sent: "prompt sent to 2547****678"}
	term.sent = "request sent (37 bytes)"
	tm := startWithRails(t, testRails{Terminal: term, MPesa: mp}, bus)

	// The header shows each rail's health; items 8 and 9 are enabled.
	waitText(t, tm, "rails:  terminal ready  mpesa: token refused")

	// 8: card on the terminal, approved.
	typeText(tm, "8")
	waitText(t, tm, "on the unattended terminal")
	typeText(tm, "12.00")
	enter(tm)
	waitAll(t, tm, "waiting for the customer: 42s left", "request sent (37 bytes)", "peer accepted")
	term.approve(t, "TXN-terminal")
	waitText(t, tm, "RESULT TXN-terminal approved 12.00 card=****4242 pos_txn=RCPT0001")
	typeText(tm, " ")

	// 9: M-Pesa asks the phone first, then the amount in KES; cancel says
	// what Daraja can and cannot do.
	typeText(tm, "9")
	waitText(t, tm, "Customer's phone")
	enter(tm)
	waitText(t, tm, "enter the customer's phone number")
	typeText(tm, "0712 345 678")
	enter(tm)
	waitText(t, tm, "Amount (KES)")
	typeText(tm, "150")
	enter(tm)
	// The rail's words for the sent step: the prompt went to the phone.
	waitAll(t, tm, "M-Pesa KES 150.00", "prompt sent to 2547****678", "peer accepted")
	typeText(tm, "5")
	waitText(t, tm, "Daraja cannot withdraw the prompt")
	typeText(tm, "y")
	waitText(t, tm, "CANCELLED")
	view := final(t, tm)
	if !strings.Contains(view, "RESULT TXN-mpesa cancelled 150.00") {
		t.Errorf("final view lacks the cancelled RESULT line:\n%s", view)
	}

	term.mu.Lock()
	defer term.mu.Unlock()
	mp.mu.Lock()
	defer mp.mu.Unlock()
	if len(term.reqs) != 1 || term.reqs[0].Mode != payment.ModeCard || term.reqs[0].Amount.Minor != 1200 || term.reqs[0].Target != "" {
		t.Errorf("terminal requests = %+v, want one card payment of 1200 without a POS target", term.reqs)
	}
	if len(mp.reqs) != 1 || mp.reqs[0].Mode != payment.ModeSTKPush || mp.reqs[0].Phone != "0712 345 678" ||
		mp.reqs[0].Amount.Minor != 15000 || mp.reqs[0].Amount.Currency != "KES" {
		t.Errorf("M-Pesa requests = %+v, want one STK Push of KES 150.00 to the typed phone", mp.reqs)
	}
	if len(mp.cancels) != 1 || mp.cancels[0] != "TXN-mpesa" {
		t.Errorf("M-Pesa cancels = %v, want [TXN-mpesa]", mp.cancels)
	}
}

// instantRail decides a payment before Start returns its id, as a terminal
// that refuses at once does: the console must still show the outcome.
// Start returns once the console has handled the outcome (seen).
type instantRail struct {
	scriptRail
	seen chan struct{}
}

func (r *instantRail) Start(ctx context.Context, req payment.Request) (string, error) {
	id, err := r.scriptRail.Start(ctx, req)
	if err != nil {
		return "", err
	}
	_, err = r.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: r.rail, TxnID: id,
		Status: payment.StatusDeclined, Detail: "declined by the issuer", Result: &payment.Result{Reason: "declined by the issuer"}})
	// The console sees the events first; it needs milliseconds, 10 s is
	// for a loaded machine.
	select {
	case <-r.seen:
	case <-time.After(10 * time.Second):
		return "", errors.New("test: the console did not handle the outcome within 10 s")
	}
	return id, err
}

// seenModel is the console that closes seen once it has handled a
// declined outcome.
type seenModel struct {
	testModel
	seen chan struct{}
	once *sync.Once
}

func (m seenModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	next, cmd := m.testModel.Update(msg)
	if ev, ok := msg.(eventMsg); ok && ev.Status == payment.StatusDeclined {
		m.once.Do(func() { close(m.seen) })
	}
	m.testModel = next.(testModel)
	return m, cmd
}

func TestOutcomeBeforeStartReturns(t *testing.T) {
	bus := testBus(t)
	term := &instantRail{scriptRail: scriptRail{bus: bus, rail: payment.RailTerminal, health: payment.Health{Up: true, Detail: "ready"}},
		seen: make(chan struct{})}
	cfg := testConfig()
	cfg.Rails = testRails{Terminal: term}
	tm := teatest.NewTestModel(t, seenModel{testModel{newModel(cfg, &fakeRail{}, bus)}, term.seen, &sync.Once{}}, teatest.WithInitialTermSize(80, 24))
	waitText(t, tm, "terminal ready")
	typeText(tm, "8")
	waitText(t, tm, "on the unattended terminal")
	typeText(tm, "6.01")
	enter(tm)
	waitText(t, tm, "RESULT TXN-terminal declined 6.01")
	typeText(tm, " ")
	typeText(tm, "7")
	typeText(tm, "y")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// checkingRail refuses phone numbers the way the M-Pesa rail does.
type checkingRail struct{ scriptRail }

func (r *checkingRail) CheckPhone(phone string) error {
	if len(phone) < 9 {
		return errors.New("too short for a Kenyan mobile number")
	}
	return nil
}

// A number the rail would refuse is refused as it is entered, and the
// console stays on the phone field.
func TestPhoneRefusedAsTyped(t *testing.T) {
	bus := testBus(t)
	mp := &checkingRail{scriptRail{bus: bus, rail: payment.RailMPesa, health: payment.Health{Up: true, Detail: "ready"}}}
	tm := startWithRails(t, testRails{MPesa: mp}, bus)
	typeText(tm, "9")
	waitText(t, tm, "Customer's phone")
	typeText(tm, "123")
	enter(tm)
	waitText(t, tm, "phone number refused: too short for a Kenyan mobile number")
	view := final(t, tm)
	if strings.Contains(view, "Amount (KES)") {
		t.Errorf("the amount was asked after a refused number:\n%s", view)
	}
	mp.mu.Lock()
	defer mp.mu.Unlock()
	if len(mp.reqs) != 0 {
		t.Errorf("a payment started with a refused number: %+v", mp.reqs)
	}
}

// askingRail is an M-Pesa-like rail that can be asked for an outcome: it
// journals what its peer said, as the real rail does, and answers in words.
type askingRail struct {
	scriptRail
	asked chan string
}

func (r *askingRail) CheckOutcome(ctx context.Context, id string) (string, error) {
	r.asked <- id
	_, err := r.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: payment.RailMPesa, TxnID: id,
		Status: payment.StatusCancelled, Detail: "STK query: ResultCode 1032 Request cancelled by user"})
	if err != nil {
		return "", err
	}
	return "Daraja: the customer cancelled the prompt (ResultCode 1032)", nil
}

func TestAskTheRailAboutAnUnknownPayment(t *testing.T) {
	bus := testBus(t)
	const id = "TXN1795340000009"
	for _, ev := range []payment.Event{
		{Time: clock, Kind: payment.KindTransition, TxnID: id, Status: payment.StatusCreated, Mode: payment.ModeSTKPush,
			Amount: payment.Money{Minor: 15000, Currency: "KES"}, Detail: "M-Pesa KES 150.00"},
		{Time: clock, Kind: payment.KindTransition, TxnID: id, Status: payment.StatusSent, Detail: "prompt sent"},
		{Time: clock, Kind: payment.KindTransition, TxnID: id, Status: payment.StatusUnknown, Detail: "in flight at shutdown"},
	} {
		ev.Rail = payment.RailMPesa
		if _, err := bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	mp := &askingRail{scriptRail: scriptRail{bus: bus, rail: payment.RailMPesa, health: payment.Health{Up: true, Detail: "ready"}},
		asked: make(chan string, 1)}
	tm := startWithRails(t, testRails{MPesa: mp}, bus)
	typeText(tm, "j")
	waitText(t, tm, "UNKNOWN")
	enter(tm)
	waitAll(t, tm, "UNKNOWN: k asks mpesa", "k ask the rail")
	typeText(tm, "k")
	select {
	case got := <-mp.asked:
		if got != id {
			t.Fatalf("asked about %s, want %s", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rail was never asked")
	}
	// The answer in words, and the payment as the journal now has it.
	waitAll(t, tm, "customer cancelled the prompt (ResultCode 1032)", "STK query: ResultCode 1032")
	tx, err := bus.Journal().Txn(context.Background(), id)
	if err != nil || tx.Status != payment.StatusCancelled {
		t.Errorf("journal has %+v, %v", tx, err)
	}
}
