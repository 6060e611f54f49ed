package plain_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"paydesk/desk"
	"paydesk/payment"
	"paydesk/plain"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
)

// kiosk is a kiosk on loopback with simulated POS terminals connected.
type kiosk struct {
	bus *payment.Bus
	srv *protocol.Server
	ctx context.Context
}

func newKiosk(t *testing.T, opts protocol.Options, posIDs ...string) *kiosk {
	t.Helper()
	k := postest.New(t, opts)
	for _, id := range posIDs {
		k.AddSim(t, possim.Options{PosID: id})
	}
	return &kiosk{bus: k.Bus, srv: k.Server, ctx: k.Ctx}
}

// desk is the kiosk's desk over its POS link and the other rails of dc
// (dc.Rails; a missing one is not configured).
func (k *kiosk) desk(dc desk.Config) *desk.Desk {
	dc.KioskID, dc.Listen, dc.POS = "KIOSK001", "127.0.0.1:8080", k.srv
	return desk.New(dc, k.bus)
}

// rails are the desk's rails besides the POS link, by name.
func rails(terminal, mpesa payment.Starter) map[payment.Rail]payment.Starter {
	m := map[payment.Rail]payment.Starter{}
	if terminal != nil {
		m[payment.RailTerminal] = terminal
	}
	if mpesa != nil {
		m[payment.RailMPesa] = mpesa
	}
	return m
}

// run feeds script to a console on stdin and returns everything it printed.
func (k *kiosk) run(t *testing.T, script string) string {
	t.Helper()
	return k.runWith(t, plain.Config{}, desk.Config{}, script)
}

// runWith is run with a console configured by cfg over a desk configured
// by dc (its other rails, its hub).
func (k *kiosk) runWith(t *testing.T, cfg plain.Config, dc desk.Config, script string) string {
	t.Helper()
	var out bytes.Buffer
	con := plain.New(cfg, k.desk(dc), &out)
	ctx, cancel := context.WithTimeout(k.ctx, 20*time.Second)
	defer cancel()
	if err := con.Run(ctx, strings.NewReader(script)); err != nil {
		t.Fatalf("console: %v\noutput:\n%s", err, out.String())
	}
	return out.String()
}

var resultLine = regexp.MustCompile(`(?m)^RESULT (TXN\d+) (\w+) (\d+\.\d\d)(.*)$`)

func results(out string) [][]string { return resultLine.FindAllStringSubmatch(out, -1) }

func TestMenu(t *testing.T) {
	t.Run("items 1 to 4 take the amount from the next line and print one RESULT each", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "1\n25.50\n2\n10\n3\n5.5\n4\n100\n1\n7\n")
		r := results(out)
		if len(r) != 4 {
			t.Fatalf("%d RESULT lines, want 4:\n%s", len(r), out)
		}
		want := []string{"25.50", "10.00", "5.50", "100.00"}
		for i, m := range r {
			if m[2] != "approved" || m[3] != want[i] {
				t.Errorf("RESULT %d = %q", i, m[0])
			}
		}
		if !strings.Contains(r[0][4], "auth=") || !strings.Contains(r[0][4], "card=****4242") {
			t.Errorf("RESULT lacks auth code or masked card: %q", r[0][0])
		}
		if !strings.Contains(r[3][4], "plan=IPP_3M") {
			t.Errorf("IPP RESULT lacks the plan: %q", r[3][0])
		}
		for _, s := range []string{"Available Installment Plans:", "1. Plan ID: IPP_3M", "Frequency: Monthly", "#1: RM33.33 on", "Fee: RM0.50 (1.5%)", "3. Plan ID: pay-in-full"} {
			if !strings.Contains(out, s) {
				t.Errorf("plan list lacks %q:\n%s", s, out)
			}
		}
	})

	t.Run("bad amounts print an error and the menu again", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "1\nabc\n1\n25.505\n2\n-5\n3\n0\n4\nnan\n1\ninf\n1\n\n1\n99999999\n0\nhello\n9\n8\n7\n")
		for _, s := range []string{
			`ERROR "abc" is not a number`, "ERROR 25.505 has more than two decimals", "ERROR amount must be positive, not -5",
			"ERROR amount must be more than zero", `ERROR "nan" is not a number`, `ERROR "inf" is not a number`,
			"ERROR enter an amount", "ERROR 99999999.00 is over the maximum of 50000.00",
			`ERROR unknown option "0"`, `ERROR unknown option "hello"`,
			"ERROR option 9: not configured", "ERROR option 8: not configured",
		} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q", s)
			}
		}
		if len(results(out)) != 0 {
			t.Errorf("a bad amount started a payment:\n%s", out)
		}
		if n := strings.Count(out, "Select option (1-9):"); n < 13 {
			t.Errorf("menu shown %d times, want after every error", n)
		}
	})

	t.Run("5 cancels the payment in flight", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "1\n10.62\n5\n7\n")
		r := results(out)
		if len(r) != 1 || r[0][2] != "cancelled" {
			t.Fatalf("results = %v\n%s", r, out)
		}
		if !strings.Contains(out, "Cancel requested for "+r[0][1]) {
			t.Errorf("no cancel message:\n%s", out)
		}
	})

	t.Run("5 with nothing in flight says so", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "5\n7\n")
		if !strings.Contains(out, "ERROR no transaction in flight to cancel") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("declines and POS errors carry their reason", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "1\n80.51\n1\n10.81\n7\n")
		r := results(out)
		if len(r) != 2 || r[0][2] != "declined" || r[0][4] != " reason=USER_ABORT" || r[1][2] != "failed" ||
			r[1][4] != ` reason="card reader not responding"` {
			t.Fatalf("results = %q\n%s", r, out)
		}
	})

	t.Run("q at the plan choice cancels the IPP payment", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "4\n100\nx\nq\n7\n")
		if !strings.Contains(out, `ERROR "x" is not a plan`) {
			t.Errorf("bad plan choice not refused:\n%s", out)
		}
		r := results(out)
		if len(r) != 1 || r[0][2] != "cancelled" {
			t.Fatalf("results = %v\n%s", r, out)
		}
	})

	t.Run("a payment without an answer times out", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{AckTimeout: 300 * time.Millisecond}, "POS001")
		out := k.run(t, "1\n10.61\n7\n")
		r := results(out)
		if len(r) != 1 || r[0][2] != "timed_out" || !strings.Contains(r[0][4], "no ack") {
			t.Fatalf("results = %v\n%s", r, out)
		}
	})

	t.Run("6 counts the frames refused from each connection", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		c, err := net.Dial("tcp", k.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("garbage\n{\"payload\":{}}\n"))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var n int64
			for _, p := range k.srv.Peers() {
				n += p.Rejected
			}
			if n == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d frames refused, want 2", n)
			}
		}
		if out := k.run(t, "6\n7\n"); !strings.Contains(out, ", 2 frames refused") {
			t.Errorf("status does not count the refused frames:\n%s", out)
		}
	})

	t.Run("6 shows POS, current transaction and journal counts", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "1\n1.00\n1\n10.62\n6\n5\n7\n")
		for _, s := range []string{"Connected POS terminals: 1", "POS001", "connected since", "last message"} {
			if !strings.Contains(out, s) {
				t.Errorf("status lacks %q:\n%s", s, out)
			}
		}
		// The status is asked while the second payment waits for its ack
		// or its result, whichever comes first.
		for _, re := range []string{
			`Current transaction: TXN\d+ card RM10\.62 on POS001: (sent, waiting for ack|acknowledged, waiting for result) \(\d+s left\)`,
			`Journal: 2 transactions \((sent|acknowledged) 1, approved 1\)`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("status does not match %s:\n%s", re, out)
			}
		}
	})

	t.Run("t lists the POS and sets the target", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001", "POS002")
		out := k.run(t, "t\n2\n1\n10\nt\nPOS009\n7\n")
		if !strings.Contains(out, "Target: ") || !strings.Contains(out, "ERROR no connected POS \"POS009\"") {
			t.Errorf("output:\n%s", out)
		}
		r := results(out)
		if len(r) != 1 || r[0][2] != "approved" {
			t.Fatalf("results = %v\n%s", r, out)
		}
		tx, _ := k.bus.Journal().Txn(context.Background(), r[0][1])
		if tx.Peer != k.srv.Peers()[1].Label() {
			t.Errorf("payment went to %s, want the second POS", tx.Peer)
		}
	})

	t.Run("end of input waits for the payment in flight", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "1\n3.00")
		if len(results(out)) != 1 {
			t.Fatalf("output:\n%s", out)
		}
	})

	t.Run("r resolves a transaction left unknown, and the journal keeps who did it", func(t *testing.T) {
		k := newKiosk(t, protocol.Options{}, "POS001")
		out := k.run(t, "1\n10.91\n7\n") // the POS approves another amount
		r := results(out)
		if len(r) != 1 || r[0][2] != "unknown" || !strings.Contains(r[0][4], "POS reported RM11.91 but RM10.91 was requested") {
			t.Fatalf("results = %q\n%s", r, out)
		}
		id := r[0][1]
		out = k.run(t, "r\n"+id+" maybe\nr\n"+id+" ask\nr\nTXN0 approved\nr\n"+id+" declined\nr\n7\n")
		for _, s := range []string{id + " card 10.91 POS001", "ERROR expected '<txn_id> approved', '<txn_id> declined' or '<txn_id> ask'", "that rail cannot be asked",
			`ERROR transaction "TXN0": not found`, "Resolved " + id + " as declined (journaled)", "No unknown transactions."} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q:\n%s", s, out)
			}
		}
		tx, err := k.bus.Journal().Txn(context.Background(), id)
		if err != nil || tx.Status != payment.StatusDeclined || !tx.HasFlag(payment.FlagResolved) || !tx.HasFlag(payment.FlagAmountMismatch) {
			t.Errorf("journal has %+v, %v", tx, err)
		}
	})
}

// Status (6) says how far the hub has the journal when a hub is
// configured, and nothing of a hub otherwise.
func TestStatusShowsHubLag(t *testing.T) {
	k := newKiosk(t, protocol.Options{})
	dc := desk.Config{Hub: func() string { return "42 events behind" }}
	if out := k.runWith(t, plain.Config{}, dc, "6\n7\n"); !strings.Contains(out, "Hub: 42 events behind\n") {
		t.Errorf("status lacks the hub's lag:\n%s", out)
	}
	if out := k.run(t, "6\n7\n"); strings.Contains(out, "Hub:") {
		t.Errorf("status without a hub mentions one:\n%s", out)
	}
}

// The menu is kiosk.py's, byte for byte, with paydesk's items 8 and 9: QA
// scripts written for kiosk.py wait for its lines. A rail that is off
// says so briefly; choosing it says what configures it.
func TestMenuText(t *testing.T) {
	const menu = `
Available Commands:
1. Card Payment
2. Buy Now Pay Later (BNPL)
3. DuitNow QR
4. Installment Payment (IPP)
5. Cancel Transaction
6. Show Status
7. Exit
8. Card on unattended terminal (not configured)
9. M-Pesa STK Push%s
t. Choose target POS   r. Resolve an unknown transaction   h. Help
Select option (1-9): `
	k := newKiosk(t, protocol.Options{})
	off := k.run(t, "8\n1\n\n7\n")
	if want := "paydesk KIOSK001 listening for POS terminals on 127.0.0.1:8080\n" + fmt.Sprintf(menu, " (not configured)"); !strings.HasPrefix(off, want) {
		t.Errorf("menu:\n%q\nwant:\n%q", off, want)
	}
	if !strings.Contains(off, "Select option (1-9): ERROR option 8: not configured (set --terminal-port)\n") {
		t.Errorf("item 8 does not say what configures it:\n%s", off)
	}
	if !strings.Contains(off, "Select option (1-9): Enter amount (RM): ERROR enter an amount") {
		t.Errorf("item 1's prompt:\n%s", off)
	}
	mp := &approvingRail{bus: k.bus, rail: payment.RailMPesa, id: "TXN9"}
	on := k.runWith(t, plain.Config{}, desk.Config{Rails: rails(nil, mp)}, "9\n0712345678\n1\n7\n")
	if !strings.Contains(on, fmt.Sprintf(menu, "")+"Customer's phone number (07…, 01…, +254…): Enter amount (KES, whole shillings): ") {
		t.Errorf("menu and prompts with M-Pesa on:\n%s", on)
	}
}
