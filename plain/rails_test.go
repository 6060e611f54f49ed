package plain_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/desk"
	"paydesk/payment"
	"paydesk/plain"
	"paydesk/protocol"
)

// approvingRail journals each payment's whole life through the bus, as
// every rail must, and approves it with a reference.
type approvingRail struct {
	bus  *payment.Bus
	rail payment.Rail
	id   string

	mu   sync.Mutex
	reqs []payment.Request
}

func (r *approvingRail) Start(ctx context.Context, req payment.Request) (string, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	id := r.id
	go func() {
		for _, ev := range []payment.Event{
			{Kind: payment.KindTransition, Status: payment.StatusCreated, Mode: req.Mode, Amount: req.Amount},
			{Kind: payment.KindTransition, Status: payment.StatusSent, Detail: "request sent"},
			{Kind: payment.KindTransition, Status: payment.StatusApproved, Detail: "approved", Result: &payment.Result{RemoteID: "REF" + id}},
		} {
			ev.Rail, ev.TxnID = r.rail, id
			r.bus.Publish(context.Background(), ev)
		}
	}()
	return id, nil
}

func (r *approvingRail) Cancel(string) error { return nil }

func TestOtherRailItems(t *testing.T) {
	k := newKiosk(t, protocol.Options{})
	term := &approvingRail{bus: k.bus, rail: payment.RailTerminal, id: "TXN8"}
	mp := &approvingRail{bus: k.bus, rail: payment.RailMPesa, id: "TXN9"}
	got := k.runWith(t, plain.Config{}, desk.Config{Rails: rails(term, mp)},
		"8\n12.34\n9\n\n9\n0712345678\n150\n7\n")
	for _, s := range []string{
		"RESULT TXN8 approved 12.34 pos_txn=REFTXN8",
		"Customer's phone number",
		"ERROR no phone number: payment not started",
		"Enter amount (KES, whole shillings)",
		"RESULT TXN9 approved 150.00 pos_txn=REFTXN9",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q:\n%s", s, got)
		}
	}
	if len(term.reqs) != 1 || term.reqs[0].Mode != payment.ModeCard || term.reqs[0].Amount.Minor != 1234 {
		t.Errorf("terminal got %+v, want one card payment of 1234", term.reqs)
	}
	if len(mp.reqs) != 1 || mp.reqs[0].Mode != payment.ModeSTKPush || mp.reqs[0].Phone != "0712345678" ||
		mp.reqs[0].Amount != (payment.Money{Minor: 15000, Currency: "KES"}) {
		t.Errorf("M-Pesa got %+v, want one STK Push of KES 150.00 to 0712345678", mp.reqs)
	}
}

// phoneRail is an approving rail that checks phone numbers the way the
// M-Pesa rail does (payment.PhoneChecker).
type phoneRail struct{ approvingRail }

func (r *phoneRail) CheckPhone(phone string) error {
	if !strings.HasPrefix(phone, "07") || len(phone) != 10 {
		return errors.New("not a Kenyan mobile number")
	}
	return nil
}

// A refused number ends the item at once: the next line is a menu choice
// again, not taken for the amount.
func TestPhoneRefusedBeforeTheAmount(t *testing.T) {
	k := newKiosk(t, protocol.Options{})
	mp := &phoneRail{approvingRail{bus: k.bus, rail: payment.RailMPesa, id: "TXN9"}}
	got := k.runWith(t, plain.Config{}, desk.Config{Rails: rails(nil, mp)}, "9\n123\n9\n0712345678\n150\n7\n")
	for _, s := range []string{
		"ERROR phone number refused: not a Kenyan mobile number: payment not started",
		"RESULT TXN9 approved 150.00 pos_txn=REFTXN9",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q:\n%s", s, got)
		}
	}
	if n := strings.Count(got, "Enter amount"); n != 1 {
		t.Errorf("asked for an amount %d times, want once (not after the refused number):\n%s", n, got)
	}
	if len(mp.reqs) != 1 || mp.reqs[0].Phone != "0712345678" {
		t.Errorf("M-Pesa got %+v, want one payment to 0712345678", mp.reqs)
	}
}

// askingRail answers a question about a payment's outcome as the M-Pesa
// rail does: it journals what Daraja said, then says it in words.
type askingRail struct{ approvingRail }

func (r *askingRail) CheckOutcome(ctx context.Context, id string) (string, error) {
	_, err := r.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: payment.RailMPesa, TxnID: id,
		Status: payment.StatusCancelled, Detail: "STK query: ResultCode 1032"})
	if err != nil {
		return "", err
	}
	return "Daraja: the customer cancelled the prompt (ResultCode 1032)", nil
}

// r then '<txn> ask' asks the rail behind an unknown payment, and the
// status printed is what the journal now holds.
func TestAskTheRailAboutAnUnknownPayment(t *testing.T) {
	k := newKiosk(t, protocol.Options{})
	for _, ev := range []payment.Event{
		{Kind: payment.KindTransition, Status: payment.StatusCreated, Mode: payment.ModeSTKPush, Amount: payment.Money{Minor: 15000, Currency: "KES"}},
		{Kind: payment.KindTransition, Status: payment.StatusSent, Detail: "prompt sent"},
		{Kind: payment.KindTransition, Status: payment.StatusUnknown, Detail: "in flight at shutdown"},
	} {
		ev.Rail, ev.TxnID = payment.RailMPesa, "TXN7"
		if _, err := k.bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	mp := &askingRail{approvingRail{bus: k.bus, rail: payment.RailMPesa}}
	got := k.runWith(t, plain.Config{}, desk.Config{Rails: rails(nil, mp)}, "r\nTXN7 ask\nr\n7\n")
	for _, s := range []string{
		"TXN7 stk_push 150.00",
		"'<txn_id> ask' to ask its rail",
		"Asking mpesa about TXN7...",
		"ASKED TXN7 Daraja: the customer cancelled the prompt (ResultCode 1032); now cancelled",
		"No unknown transactions.",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q:\n%s", s, got)
		}
	}
}

// startingRail is a rail that starts in the background: it refuses
// payments until ready is closed, as the terminal driver does before its
// goroutine runs.
type startingRail struct {
	approvingRail
	ready chan struct{}
}

func (r *startingRail) Ready() <-chan struct{} { return r.ready }

func (r *startingRail) Start(ctx context.Context, req payment.Request) (string, error) {
	select {
	case <-r.ready:
	default:
		return "", errors.New("start terminal payment: the terminal driver is not running: rail unavailable")
	}
	return r.approvingRail.Start(ctx, req)
}

// A script piped in acts only once the configured rails are up: line
// mode says which rail it waits for, and the first payment goes through.
func TestScriptWaitsForTheRailsToStart(t *testing.T) {
	k := newKiosk(t, protocol.Options{})
	term := &startingRail{approvingRail: approvingRail{bus: k.bus, rail: payment.RailTerminal, id: "TXN8"}, ready: make(chan struct{})}
	out := &syncBuffer{}
	// Ready once the console has said it waits, or after a second (then
	// the console must not have taken the script before).
	go func() {
		defer close(term.ready)
		for range 100 {
			if strings.Contains(out.String(), "waiting for") {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	con := plain.New(plain.Config{}, k.desk(desk.Config{Rails: rails(term, nil)}), out)
	ctx, cancel := context.WithTimeout(k.ctx, 20*time.Second)
	defer cancel()
	if err := con.Run(ctx, strings.NewReader("8\n12.00\n7\n")); err != nil {
		t.Fatalf("console: %v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.Contains(got, "RESULT TXN8 approved 12.00") || strings.Contains(got, "not running") {
		t.Errorf("the script did not wait for the terminal:\n%s", got)
	}
	if !strings.Contains(got, "waiting for the card terminal (item 8) to start") {
		t.Errorf("the console did not say what it waits for:\n%s", got)
	}
}

// silentRail journals a payment's start and then never hears back, like
// a card terminal whose customer walked away.
type silentRail struct {
	bus *payment.Bus
	id  string
}

func (r *silentRail) Start(ctx context.Context, req payment.Request) (string, error) {
	_, err := r.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: payment.RailTerminal, TxnID: r.id,
		Status: payment.StatusCreated, Mode: req.Mode, Amount: req.Amount})
	return r.id, err
}

func (r *silentRail) Cancel(string) error { return nil }

// An operator at the keyboard (interactive line mode) who quits with a
// payment in flight quits at once: the payment stays in the journal as it
// stands. A script's 7 still waits for the payment before it (see
// TestMenu).
func TestInteractiveQuitDoesNotWaitForThePayment(t *testing.T) {
	k := newKiosk(t, protocol.Options{})
	term := &silentRail{bus: k.bus, id: "TRM0000000001"}
	out := &syncBuffer{}
	con := plain.New(plain.Config{Interactive: true}, k.desk(desk.Config{Rails: rails(term, nil)}), out)
	ctx, cancel := context.WithTimeout(k.ctx, 20*time.Second)
	defer cancel()
	begin := time.Now()
	if err := con.Run(ctx, strings.NewReader("8\n12.00\n7\n")); err != nil {
		t.Fatalf("console: %v\n%s", err, out.String())
	}
	// Generous for a loaded machine: nothing is waited for.
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("quit took %s with a payment in flight, want at once", took)
	}
	if !strings.Contains(out.String(), "TRM0000000001 stays in the journal") {
		t.Errorf("the console did not say what becomes of the payment:\n%s", out.String())
	}
	tx, err := k.bus.Journal().Txn(context.Background(), "TRM0000000001")
	if err != nil || tx.Status != payment.StatusCreated {
		t.Errorf("journal: %+v %v, want created as it stood", tx, err)
	}
}

// M-Pesa takes whole shillings: an amount with cents is refused when it
// is typed, as the desk reads it, and no payment starts.
func TestMPesaAmountInWholeShillings(t *testing.T) {
	k := newKiosk(t, protocol.Options{})
	mp := &approvingRail{bus: k.bus, rail: payment.RailMPesa, id: "TXN9"}
	got := k.runWith(t, plain.Config{}, desk.Config{Rails: rails(nil, mp)}, "9\n0712345678\n150.50\n7\n")
	if !strings.Contains(got, "ERROR M-Pesa takes whole shillings: enter 150, not 150.50\n") {
		t.Errorf("output lacks the refusal:\n%s", got)
	}
	if len(mp.reqs) != 0 || len(results(got)) != 0 {
		t.Errorf("M-Pesa got %+v for 150.50, want no payment:\n%s", mp.reqs, got)
	}
}
