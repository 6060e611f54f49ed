package desk

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/payment/journaltest"
)

// fakePOS stands for the MobyPay POS link: it records what it was asked.
type fakePOS struct {
	reqs     []payment.Request
	cancels  []string
	selected []string
}

func (f *fakePOS) Start(_ context.Context, req payment.Request) (string, error) {
	f.reqs = append(f.reqs, req)
	return "TXN1", nil
}
func (f *fakePOS) Cancel(id string) error { f.cancels = append(f.cancels, id); return nil }
func (f *fakePOS) SelectPlan(id, plan string) error {
	f.selected = append(f.selected, id+":"+plan)
	return nil
}
func (f *fakePOS) Peers() []payment.Peer {
	return []payment.Peer{{ID: "POS001", Addr: "10.0.0.5:4000"}}
}
func (f *fakePOS) DefaultTarget() string      { return "POS001" }
func (f *fakePOS) Health() payment.Health     { return payment.Health{Up: true, Detail: "ready"} }
func (f *fakePOS) InFlight() []payment.Flight { return nil }

// fakeMPesa stands for a rail with every optional capability.
type fakeMPesa struct {
	reqs  []payment.Request
	asked []string
	bus   *payment.Bus
}

func (f *fakeMPesa) Start(_ context.Context, req payment.Request) (string, error) {
	f.reqs = append(f.reqs, req)
	return "MP1", nil
}
func (f *fakeMPesa) Cancel(string) error    { return nil }
func (f *fakeMPesa) Currency() string       { return "KES" }
func (f *fakeMPesa) Health() payment.Health { return payment.Health{Up: true, Detail: "ready"} }
func (f *fakeMPesa) CheckPhone(p string) error {
	if len(p) < 10 {
		return errors.New("too short")
	}
	return nil
}
func (f *fakeMPesa) CheckOutcome(ctx context.Context, id string) (string, error) {
	f.asked = append(f.asked, id)
	_, err := f.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: payment.RailMPesa, TxnID: id,
		Status: payment.StatusApproved, Detail: "query: paid"})
	return "the query says paid", err
}

// testBus is a journal and a bus on it for one test.
func testBus(t *testing.T) *payment.Bus { return journaltest.Bus(t) }

// unknownTxn journals a payment on rail that ends unknown.
func unknownTxn(t *testing.T, bus *payment.Bus, rail payment.Rail, id string) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range []payment.Event{
		{Kind: payment.KindTransition, Rail: rail, TxnID: id, Status: payment.StatusCreated, Mode: payment.ModeSTKPush,
			Amount: payment.Money{Minor: 15000, Currency: "KES"}},
		{Kind: payment.KindTransition, Rail: rail, TxnID: id, Status: payment.StatusSent},
		{Kind: payment.KindTransition, Rail: rail, TxnID: id, Status: payment.StatusUnknown, Detail: "no answer"},
	} {
		if _, err := bus.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestItemsKeepKioskPyNumbersAndSayWhyOff(t *testing.T) {
	d := New(Config{POS: &fakePOS{}}, testBus(t))
	var keys []string
	for _, it := range d.Items() {
		keys = append(keys, it.Key+"="+it.Name)
	}
	if got, want := strings.Join(keys, " "), "1=card 2=bnpl 3=qr 4=ipp 8=terminal 9=mpesa"; got != want {
		t.Fatalf("items %q, want %q", got, want)
	}
	it, _ := d.Item("8")
	if got := d.Unavailable(it); got != "not configured (set --terminal-port)" {
		t.Fatalf("terminal unavailable = %q", got)
	}
	it, _ = d.Item("1")
	if got := d.Unavailable(it); got != "" {
		t.Fatalf("card unavailable = %q", got)
	}
	if _, err := d.Start(context.Background(), Item{Key: "8", Rail: payment.RailTerminal, Mode: payment.ModeCard}, payment.Request{}, ""); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("start on an unconfigured rail: %v", err)
	}
}

func TestStartGoesToTheItemsRailWithItsModeAndTarget(t *testing.T) {
	pos, mp := &fakePOS{}, &fakeMPesa{}
	d := New(Config{POS: pos, Rails: map[payment.Rail]payment.Starter{payment.RailMPesa: mp}, MaxMinor: 1_000_000}, testBus(t))
	ctx := context.Background()
	ipp, _ := d.Item("4")
	amt, err := d.ParseAmount(ipp.Rail, "25.50")
	if err != nil || amt != (payment.Money{Minor: 2550, Currency: "MYR"}) {
		t.Fatalf("POS amount %v, %v", amt, err)
	}
	if id, err := d.Start(ctx, ipp, payment.Request{Amount: amt}, "POS002"); err != nil || id != "TXN1" {
		t.Fatalf("start: %q %v", id, err)
	}
	if r := pos.reqs[0]; r.Mode != payment.ModeIPP || r.Target != "POS002" {
		t.Fatalf("POS request %+v", r)
	}
	stk, _ := d.Item("9")
	if _, err := d.ParseAmount(stk.Rail, "150.50"); err == nil || err.Error() != "M-Pesa takes whole shillings: enter 150, not 150.50" {
		t.Fatalf("M-Pesa fraction: %v", err)
	}
	amt, err = d.ParseAmount(stk.Rail, "150")
	if err != nil || amt != (payment.Money{Minor: 15000, Currency: "KES"}) {
		t.Fatalf("M-Pesa amount %v, %v", amt, err)
	}
	if err := d.CheckPhone(stk.Rail, "0712"); err == nil || !strings.Contains(err.Error(), "phone number refused: too short") {
		t.Fatalf("short phone: %v", err)
	}
	if _, err := d.Start(ctx, stk, payment.Request{Amount: amt, Phone: "0712345678"}, "POS002"); err != nil {
		t.Fatal(err)
	}
	if r := mp.reqs[0]; r.Mode != payment.ModeSTKPush || r.Target != "" || r.Phone != "0712345678" {
		t.Fatalf("M-Pesa request %+v: the POS target must not leak onto another rail", r)
	}
	if err := d.SelectPlan("TXN1", "P3"); err != nil || pos.selected[0] != "TXN1:P3" {
		t.Fatalf("select plan: %v %v", err, pos.selected)
	}
	if err := d.Cancel(payment.RailPOS, "TXN1"); err != nil || pos.cancels[0] != "TXN1" {
		t.Fatalf("cancel: %v %v", err, pos.cancels)
	}
}

func TestResolveJournalsTheOperatorsDecisionOnlyForUnknown(t *testing.T) {
	bus := testBus(t)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	d := New(Config{POS: &fakePOS{}, Now: func() time.Time { return now }}, bus)
	ctx := context.Background()
	unknownTxn(t, bus, payment.RailPOS, "TXN9")
	if _, err := d.Resolve(ctx, "TXN9", payment.StatusCancelled); err == nil {
		t.Fatal("resolved as cancelled")
	}
	if _, err := d.Resolve(ctx, "TXN9", payment.StatusDeclined); err != nil {
		t.Fatal(err)
	}
	got, err := d.Journal().Txn(ctx, "TXN9")
	if err != nil || got.Status != payment.StatusDeclined {
		t.Fatalf("journal has %+v, %v", got, err)
	}
	hist, _ := d.Journal().History(ctx, "TXN9")
	last := hist[len(hist)-1]
	if last.Flag != payment.FlagResolved || last.Detail != "resolved by operator as declined" {
		t.Fatalf("last event %+v", last)
	}
	if _, err := d.Resolve(ctx, "TXN9", payment.StatusApproved); err == nil || !strings.Contains(err.Error(), "not unknown") {
		t.Fatalf("resolved twice: %v", err)
	}
}

func TestAskTheRailThatCanAndRefuseTheOneThatCannot(t *testing.T) {
	bus := testBus(t)
	mp := &fakeMPesa{bus: bus}
	d := New(Config{POS: &fakePOS{}, Rails: map[payment.Rail]payment.Starter{payment.RailMPesa: mp}}, bus)
	ctx := context.Background()
	unknownTxn(t, bus, payment.RailMPesa, "MP7")
	unknownTxn(t, bus, payment.RailPOS, "TXN7")
	if !d.CanAsk(payment.RailMPesa) || d.CanAsk(payment.RailPOS) {
		t.Fatal("CanAsk wrong")
	}
	pos, _ := d.Journal().Txn(ctx, "TXN7")
	if _, _, err := d.Ask(ctx, pos); !errors.Is(err, ErrCannotAsk) {
		t.Fatalf("asked the POS link: %v", err)
	}
	t7, _ := d.Journal().Txn(ctx, "MP7")
	words, now, err := d.Ask(ctx, t7)
	if err != nil || words != "the query says paid" || now.Status != payment.StatusApproved {
		t.Fatalf("ask: %q %+v %v", words, now, err)
	}
}

func TestSnapshotReadsRailsAndJournal(t *testing.T) {
	bus := testBus(t)
	mp := &fakeMPesa{bus: bus}
	d := New(Config{POS: &fakePOS{}, Rails: map[payment.Rail]payment.Starter{payment.RailMPesa: mp},
		Hub: func() string { return "up to date" }}, bus)
	unknownTxn(t, bus, payment.RailMPesa, "MP8")
	s := d.Snapshot(context.Background())
	if s.Err != nil {
		t.Fatal(s.Err)
	}
	if len(s.Peers) != 1 || s.Default != "POS001" || s.Hub != "up to date" || s.Counts[payment.StatusUnknown] != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	if len(s.Health) != 1 || s.Health[0].Rail != payment.RailMPesa || s.Health[0].Detail != "ready" {
		t.Fatalf("health %+v", s.Health)
	}
	if s.Displays != nil || s.Tills != nil {
		t.Fatalf("displays %v tills %v without their rails", s.Displays, s.Tills)
	}
	if d.Currency(payment.RailMPesa) != "KES" || d.Currency(payment.RailTerminal) != payment.DefaultCurrency {
		t.Fatal("currencies")
	}
}

// Every way to pay names its form, and only the POS link's payments go to
// one of several peers.
func TestItemsNameTheirFormAndOnlyThePOSHasPeers(t *testing.T) {
	d := New(Config{POS: &fakePOS{}}, testBus(t))
	for _, it := range d.Items() {
		if it.Form == "" {
			t.Errorf("item %s has no form title", it.Name)
		}
	}
	if it, _ := d.Item("8"); it.Form != "Card payment on the unattended terminal" {
		t.Errorf("terminal form %q", it.Form)
	}
	for _, r := range d.Rails() {
		if r.Peers != (r.Name == payment.RailPOS) {
			t.Errorf("rail %s: Peers %v", r.Name, r.Peers)
		}
	}
}
