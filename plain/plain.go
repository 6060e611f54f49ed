// Package plain is paydesk's line-oriented console: the kiosk.py menu,
// read one line at a time from any reader, so QA scripts written for
// kiosk.py keep working and anything can drive paydesk through a pipe.
//
// Each finished transaction prints exactly one machine-readable line:
//
//	RESULT <txn_id> <status> <amount> [key=value ...]
//
// A journal write that fails prints NOT RECORDED <txn_id>: ... at once; an
// outcome that could not be written ends the payment as unknown, and a
// RECORDED line follows if the journal's retry writes it.
package plain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"paydesk/payment"
)

// Rail is what the console needs of the POS link.
type Rail interface {
	Start(ctx context.Context, req payment.Request) (string, error)
	Cancel(id string) error
	SelectPlan(id, planID string) error
	Peers() []payment.Peer
	DefaultTarget() string
	InFlight() []payment.Flight
}

// Config is what the console shows and how it reads amounts.
type Config struct {
	KioskID  string
	Listen   string
	Currency string
	MaxMinor int64
	// Banner lines printed before the menu (warnings, demo outcomes).
	Banner []string
	// DevSecret is set while the POS link uses the public development
	// secret; status (6) says so.
	DevSecret bool
	// Terminal (item 8) and MPesa (item 9) are the other rails; nil ones
	// are not configured and their items say so.
	Terminal payment.Starter
	MPesa    payment.Starter
	// Unresolved are transactions left unknown by an earlier run.
	Unresolved []payment.Txn
	// Interactive is set when a person types the lines (stdin is a
	// terminal): then 7, q and the end of input quit at once, leaving a
	// payment in flight in the journal as it stands. A script's lines act
	// in order instead: its 7 waits for the payment before it.
	Interactive bool
	// Hub, when set (a hub is configured), says how far the hub has this
	// kiosk's journal in a few words; status (6) shows it.
	Hub func() string
	Now func() time.Time
}

// Console runs the menu. Build it with New and call Run.
type Console struct {
	cfg  Config
	rail Rail
	bus  *payment.Bus
	out  *bufio.Writer

	target   string // operator's choice; "" means the rail's default
	current  string // txn in flight started here
	plansFor string // txn whose plan choice is being asked
	plans    []payment.Plan
	pending  []string // lines held while a payment is in flight
	state    state
	mode     payment.Mode
	active   payment.Starter // the rail of the payment being entered or in flight
	phone    string          // the phone typed for an M-Pesa payment
	finished map[string]bool
	// unrecorded are the payments with a journal write that failed and
	// has not landed yet, by id, in the order they failed (order).
	unrecorded map[string]payment.Event
	order      []string
}

type state int

const (
	stMenu state = iota
	stAmount
	stPlan
	stTarget
	stResolve
	stPhone
)

// New returns a console writing to out.
func New(cfg Config, rail Rail, bus *payment.Bus, out io.Writer) *Console {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Currency == "" {
		cfg.Currency = payment.DefaultCurrency
	}
	return &Console{cfg: cfg, rail: rail, bus: bus, out: bufio.NewWriter(out), finished: make(map[string]bool),
		unrecorded: make(map[string]payment.Event)}
}

var menuItems = []struct {
	key, label string
	mode       payment.Mode
}{
	{"1", "Card Payment", payment.ModeCard},
	{"2", "Buy Now Pay Later (BNPL)", payment.ModeBNPL},
	{"3", "DuitNow QR", payment.ModeDuitNowQR},
	{"4", "Installment Payment (IPP)", payment.ModeIPP},
	{"5", "Cancel Transaction", ""},
	{"6", "Show Status", ""},
	{"7", "Exit", ""},
	{"8", "Card on unattended terminal", payment.ModeCard},
	{"9", "M-Pesa STK Push", payment.ModeSTKPush},
}

// railFor returns the rail behind a payment item.
func (c *Console) railFor(item string) payment.Starter {
	switch item {
	case "8":
		return c.cfg.Terminal
	case "9":
		return c.cfg.MPesa
	}
	return c.rail
}

// unavailable says why a payment item cannot be used; "" when it can.
func (c *Console) unavailable(item string) string {
	if (item == "8" || item == "9") && c.railFor(item) == nil {
		return "not configured"
	}
	return ""
}

// currency is what amounts are typed in for the payment being entered.
func (c *Console) currency() string {
	if cr, ok := c.active.(payment.Currencier); ok && cr.Currency() != "" {
		return cr.Currency()
	}
	if c.mode == payment.ModeSTKPush {
		return "KES"
	}
	return c.cfg.Currency
}

func (c *Console) printf(format string, args ...any) { fmt.Fprintf(c.out, format, args...) }

func (c *Console) menu() {
	c.printf("\nAvailable Commands:\n")
	for _, it := range menuItems {
		if why := c.unavailable(it.key); why != "" {
			c.printf("%s. %s (%s)\n", it.key, it.label, why)
			continue
		}
		c.printf("%s. %s\n", it.key, it.label)
	}
	c.printf("t. Choose target POS   r. Resolve an unknown transaction   h. Help\n")
	c.printf("Select option (1-9): ")
}

// Run reads lines from in until "7", end of input or ctx ends. On exit it
// first waits for the payment in flight to finish (it is journaled either
// way), so a piped script sees every RESULT line; an interactive console
// (Config.Interactive) and the end of ctx quit at once, leaving it in the
// journal as it stands.
func (c *Console) Run(ctx context.Context, in io.Reader) error {
	defer c.out.Flush()
	sub := c.bus.Subscribe(0)
	defer sub.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()

	c.printf("paydesk %s listening for POS terminals on %s\n", c.cfg.KioskID, c.cfg.Listen)
	for _, b := range c.cfg.Banner {
		c.printf("%s\n", b)
	}
	for _, t := range c.cfg.Unresolved {
		c.printf("UNKNOWN %s %s %s %s: %s; check %s, then 'r' to resolve\n",
			t.ID, t.Mode, t.Amount.Decimal(), t.Peer, payment.UnknownWhy(t), payment.WhereToCheck(t.Rail))
	}
	c.menu()
	c.out.Flush()
	if err := c.waitRails(ctx); err != nil {
		return err
	}

	exiting := false
	input := lines
	for {
		if exiting && c.current != "" && c.cfg.Interactive {
			c.printf("\nQuitting: %s stays in the journal as it stands; the next start shows it for checking.\n", c.current)
			c.current = ""
		}
		if exiting && c.current == "" {
			c.printf("Bye.\n")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line, ok := <-input:
			if !ok {
				input = nil
				if !exiting {
					exiting = true
					if c.current != "" && !c.cfg.Interactive {
						c.printf("\nend of input: waiting for %s to finish (Ctrl-C or SIGTERM quits now; it stays in the journal)\n", c.current)
					}
				}
				break
			}
			if c.hold(line) {
				c.pending = append(c.pending, line)
				break
			}
			if c.handle(ctx, line) {
				exiting = true
				if c.current != "" && !c.cfg.Interactive {
					c.printf("waiting for %s to finish before exit (Ctrl-C or SIGTERM quits now; it stays in the journal)\n", c.current)
				}
			}
			exiting = c.drain(ctx) || exiting
		case ev, ok := <-sub.C():
			if !ok {
				return errors.New("event bus closed")
			}
			c.event(ev)
			exiting = c.drain(ctx) || exiting
		}
		c.out.Flush()
	}
}

// starting is a rail that starts in the background (the card terminal
// opens its port and checks the terminal first): Ready is closed once it
// takes payments, or knows and says why it cannot.
type starting interface {
	Ready() <-chan struct{}
}

// waitRails waits, before the first line is acted on, for the configured
// rails that start in the background, saying which one it waits for, so
// a piped script never finds a rail still starting.
func (c *Console) waitRails(ctx context.Context) error {
	for _, r := range []struct {
		name string
		rail payment.Starter
	}{{"the card terminal (item 8)", c.cfg.Terminal}, {"M-Pesa (item 9)", c.cfg.MPesa}} {
		s, ok := r.rail.(starting)
		if !ok || r.rail == nil {
			continue
		}
		select {
		case <-s.Ready():
			continue
		default:
		}
		c.printf("\nwaiting for %s to start...\n", r.name)
		c.out.Flush()
		select {
		case <-s.Ready():
			c.printf("%s is up\n", r.name)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// hold reports whether a line must wait: while a payment is in flight,
// any line that would start something new waits until it finishes, and
// once one line waits every later one queues behind it, so a script's
// lines act in the order written. Cancel, status and help act at once;
// a prompt (amount, plan choice) takes its line.
func (c *Console) hold(line string) bool {
	return len(c.pending) > 0 || c.blocked(line)
}

func (c *Console) blocked(line string) bool {
	if c.cfg.Interactive && quit(line) {
		return false // a person quitting is not kept waiting
	}
	return c.current != "" && c.state == stMenu && !immediate(line)
}

func quit(line string) bool {
	switch strings.TrimSpace(line) {
	case "7", "q", "exit", "quit":
		return true
	}
	return false
}

func immediate(line string) bool {
	switch strings.TrimSpace(line) {
	case "5", "6", "h", "?", "help":
		return true
	}
	return false
}

// drain replays held lines in order until one must wait again. It reports
// whether one of them asked to exit.
func (c *Console) drain(ctx context.Context) bool {
	exit := false
	for len(c.pending) > 0 && !c.blocked(c.pending[0]) {
		line := c.pending[0]
		c.pending = c.pending[1:]
		if c.handle(ctx, line) {
			exit = true
		}
	}
	return exit
}

// handle acts on one line in the current state; it reports exit.
func (c *Console) handle(ctx context.Context, line string) bool {
	line = strings.TrimSpace(line)
	switch c.state {
	case stAmount:
		c.state = stMenu
		c.startPayment(ctx, line)
		c.prompt()
		return false
	case stPlan:
		c.choosePlan(line)
		return false
	case stTarget:
		c.state = stMenu
		c.chooseTarget(line)
		c.menu()
		return false
	case stResolve:
		c.state = stMenu
		c.resolve(ctx, line)
		c.menu()
		return false
	case stPhone:
		if line == "" {
			c.state = stMenu
			c.printf("ERROR no phone number: payment not started\n")
			c.menu()
			return false
		}
		if pc, ok := c.active.(payment.PhoneChecker); ok {
			if err := pc.CheckPhone(line); err != nil {
				c.state = stMenu
				c.printf("ERROR phone number refused: %v: payment not started\n", err)
				c.menu()
				return false
			}
		}
		c.phone = line
		c.state = stAmount
		c.printf("Enter amount (%s, whole shillings): ", c.currency())
		return false
	}
	switch line {
	case "1", "2", "3", "4", "8", "9":
		if why := c.unavailable(line); why != "" {
			c.printf("ERROR option %s: %s\n", line, why)
			c.menu()
			break
		}
		i, _ := strconv.Atoi(line)
		c.mode = menuItems[i-1].mode
		c.active = c.railFor(line)
		c.phone = ""
		if line == "9" {
			c.state = stPhone
			c.printf("Customer's phone number (07…, 01…, +254…): ")
			break
		}
		c.state = stAmount
		c.printf("Enter amount (%s): ", currencyLabel(c.currency()))
	case "5":
		c.cancel()
		c.prompt()
	case "6":
		c.status(ctx)
		c.menu()
	case "7", "q", "exit", "quit":
		return true
	case "t":
		c.listTargets()
	case "r":
		c.listUnknown(ctx)
	case "h", "?", "help":
		c.help()
		c.menu()
	case "":
		c.menu()
	default:
		c.printf("ERROR unknown option %q: choose 1-9, t, r or h\n", line)
		c.menu()
	}
	return false
}

func (c *Console) prompt() {
	if c.current != "" && c.state == stMenu {
		c.printf("Select option (5 cancels %s): ", c.current)
		return
	}
	if c.state == stMenu {
		c.menu()
	}
}

func currencyLabel(cur string) string {
	if cur == "MYR" {
		return "RM"
	}
	return cur
}

func (c *Console) startPayment(ctx context.Context, line string) {
	amt, err := payment.ParseAmount(line, c.currency(), c.cfg.MaxMinor)
	if err != nil {
		c.printf("ERROR %v\n", err)
		return
	}
	req := payment.Request{Mode: c.mode, Amount: amt, Phone: c.phone}
	if c.active == payment.Starter(c.rail) {
		req.Target = c.target
	}
	id, err := c.active.Start(ctx, req)
	if err != nil {
		c.printf("ERROR %v\n", err)
		return
	}
	c.current = id
	c.printf("Sending %s payment request for %s\nTransaction ID: %s\n", c.mode, amt, id)
}

func (c *Console) cancel() {
	if c.current == "" {
		c.printf("ERROR no transaction in flight to cancel\n")
		return
	}
	if err := c.active.Cancel(c.current); err != nil {
		c.printf("ERROR cancel %s: %v\n", c.current, err)
		return
	}
	c.printf("Cancel requested for %s: waiting for the rail to confirm\n", c.current)
}

func (c *Console) choosePlan(line string) {
	id := c.plansFor
	if line == "q" || line == "Q" {
		c.state = stMenu
		c.plansFor = ""
		if err := c.rail.Cancel(id); err != nil {
			c.printf("ERROR cancel %s: %v\n", id, err)
		} else {
			c.printf("Plan choice abandoned: cancel sent for %s\n", id)
		}
		c.prompt()
		return
	}
	var plan string
	if n, err := strconv.Atoi(line); err == nil && n >= 1 && n <= len(c.plans) {
		plan = c.plans[n-1].ID
	} else if i := slices.IndexFunc(c.plans, func(p payment.Plan) bool { return p.ID == line }); i >= 0 {
		plan = c.plans[i].ID
	} else {
		c.printf("ERROR %q is not a plan: enter 1-%d or q\nSelect plan (1-%d) or 'q' to quit: ", line, len(c.plans), len(c.plans))
		return
	}
	c.state = stMenu
	c.plansFor = ""
	if err := c.rail.SelectPlan(id, plan); err != nil {
		c.printf("ERROR %v\n", err)
	} else {
		c.printf("Plan %s selected\n", plan)
	}
	c.prompt()
}

func (c *Console) listTargets() {
	peers := c.rail.Peers()
	if len(peers) == 0 {
		c.printf("No POS terminals connected.\n")
		c.menu()
		return
	}
	def := c.rail.DefaultTarget()
	c.printf("Connected POS terminals:\n")
	for i, p := range peers {
		mark := ""
		if (c.target == "" && p.Label() == def) || c.target == p.Label() {
			mark = "  <- target"
		}
		c.printf("  %d. %-10s %-22s since %s%s\n", i+1, orDash(p.ID), p.Addr, p.Since.Format("15:04:05"), mark)
	}
	c.printf("Target (number or id, empty for the default): ")
	c.state = stTarget
}

func (c *Console) chooseTarget(line string) {
	peers := c.rail.Peers()
	if line == "" {
		c.target = ""
		c.printf("Target: default (%s)\n", orDash(c.rail.DefaultTarget()))
		return
	}
	if n, err := strconv.Atoi(line); err == nil && n >= 1 && n <= len(peers) {
		c.target = peers[n-1].Label()
	} else if slices.ContainsFunc(peers, func(p payment.Peer) bool { return p.ID == line || p.Addr == line }) {
		c.target = line
	} else {
		c.printf("ERROR no connected POS %q\n", line)
		return
	}
	c.printf("Target: %s\n", c.target)
}

func (c *Console) listUnknown(ctx context.Context) {
	ts, err := c.bus.Journal().Unresolved(ctx)
	if err != nil {
		c.printf("ERROR %v\n", err)
		c.menu()
		return
	}
	if len(ts) == 0 {
		c.printf("No unknown transactions.\n")
		c.menu()
		return
	}
	for _, t := range ts {
		c.printf("  %s %s %s %s %s: %s; check %s\n", t.ID, t.Mode, t.Amount.Decimal(), orDash(t.Peer), t.CreatedAt.Format("2006-01-02 15:04:05"),
			payment.UnknownWhy(t), payment.WhereToCheck(t.Rail))
	}
	c.printf("Resolve as '<txn_id> approved' or '<txn_id> declined' (after checking where its line says), '<txn_id> ask' to ask its rail (M-Pesa), empty to go back: ")
	c.state = stResolve
}

func (c *Console) resolve(ctx context.Context, line string) {
	if line == "" {
		return
	}
	f := strings.Fields(line)
	if len(f) != 2 || (f[1] != "approved" && f[1] != "declined" && f[1] != "ask") {
		c.printf("ERROR expected '<txn_id> approved', '<txn_id> declined' or '<txn_id> ask'\n")
		return
	}
	t, err := c.bus.Journal().Txn(ctx, f[0])
	if err != nil {
		c.printf("ERROR %v\n", err)
		return
	}
	if f[1] == "ask" {
		c.ask(ctx, t)
		return
	}
	_, err = c.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: t.Rail, TxnID: t.ID,
		Status: payment.Status(f[1]), Flag: payment.FlagResolved, Detail: "resolved by operator as " + f[1],
		Result: &payment.Result{Reason: "resolved by operator"}})
	if err != nil {
		c.printf("ERROR %v\n", err)
		return
	}
	c.printf("Resolved %s as %s (journaled)\n", t.ID, f[1])
}

// ask asks the rail of payment t for its outcome; the rail journals what
// it learns, and the payment's status is printed as the journal has it.
func (c *Console) ask(ctx context.Context, t payment.Txn) {
	var r payment.Starter
	switch t.Rail {
	case payment.RailTerminal:
		r = c.cfg.Terminal
	case payment.RailMPesa:
		r = c.cfg.MPesa
	}
	ch, ok := r.(payment.Checker)
	if !ok || r == nil {
		c.printf("ERROR %s is a %s payment; that rail cannot be asked: check the peer, then resolve it approved or declined\n", t.ID, t.Rail)
		return
	}
	c.printf("Asking %s about %s...\n", t.Rail, t.ID)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	words, err := ch.CheckOutcome(actx, t.ID)
	if err != nil {
		c.printf("ERROR could not ask: %v\n", err)
		return
	}
	if now, err := c.bus.Journal().Txn(ctx, t.ID); err == nil {
		t = now
	}
	c.printf("ASKED %s %s; now %s\n", t.ID, words, t.Status)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *Console) status(ctx context.Context) {
	now := c.cfg.Now()
	peers := c.rail.Peers()
	c.printf("\nKiosk %s, listening on %s\n", c.cfg.KioskID, c.cfg.Listen)
	if c.cfg.DevSecret {
		c.printf("Secret: the public development secret; anyone can sign POS messages. Set PAYDESK_SECRET or --secret-file (the POS needs the same secret).\n")
	}
	c.printf("Connected POS terminals: %d\n", len(peers))
	if c.cfg.Hub != nil {
		c.printf("Hub: %s\n", c.cfg.Hub())
	}
	def := c.rail.DefaultTarget()
	for _, p := range peers {
		last := "never"
		if !p.LastMsg.IsZero() {
			last = p.LastMsg.Format("15:04:05")
		}
		mark := ""
		if (c.target == "" && p.Label() == def) || c.target == p.Label() {
			mark = " (target)"
		}
		if p.Rejected > 0 {
			mark += fmt.Sprintf(", %d frames refused", p.Rejected)
		}
		c.printf("  %-10s %-22s connected since %s, last message %s%s\n", orDash(p.ID), p.Addr, p.Since.Format("15:04:05"), last, mark)
	}
	flights := c.rail.InFlight()
	if len(flights) == 0 {
		c.printf("Current transaction: none\n")
	}
	for _, f := range flights {
		wait := ""
		if !f.Deadline.IsZero() {
			wait = fmt.Sprintf(", waiting for %s (%ds left)", f.Waiting, max(0, int(f.Deadline.Sub(now).Seconds()+0.5)))
		}
		c.printf("Current transaction: %s %s %s on %s: %s%s\n", f.ID, f.Mode, f.Amount, f.Peer, f.Status, wait)
	}
	if len(c.order) > 0 {
		c.printf("Not recorded in the journal (a write failed; paydesk retries it):\n")
	}
	for _, id := range c.order {
		c.printf("  %s\n", c.unrecorded[id].Detail)
	}
	counts, err := c.bus.Journal().Counts(ctx)
	if err != nil {
		c.printf("ERROR journal: %v\n", err)
		return
	}
	var parts []string
	total := 0
	for _, s := range payment.Statuses {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
			total += n
		}
	}
	if total == 1 {
		c.printf("Journal: 1 transaction")
	} else {
		c.printf("Journal: %d transactions", total)
	}
	if len(parts) > 0 {
		c.printf(" (%s)", strings.Join(parts, ", "))
	}
	c.printf("\n")
}

func (c *Console) help() {
	c.printf(`
1-4  start a payment: the next line is the amount (e.g. 25.50)
8    card payment on the unattended terminal: the next line is the amount
9    M-Pesa STK Push: the next line is the customer's phone, then the amount
4    IPP: when the POS offers plans, the next line picks one (number or id; q cancels)
5    cancel the payment in flight (the POS or card terminal must confirm; an M-Pesa prompt cannot be withdrawn, paydesk stops waiting)
6    status: connected POS, current transaction, journal counts
7    exit: in a script, after the payment in flight finishes; typed at the keyboard, at once
     (the payment in flight stays in the journal and is shown for checking at the next start)
t    list connected POS and choose the target
r    resolve a transaction left unknown by a crash
While a payment is in flight, lines other than 5, 6 and h wait until it finishes.
Each finished payment prints: RESULT <txn_id> <status> <amount> [key=value ...]
If the journal cannot write (a full disk), NOT RECORDED <txn_id>: ... says so at once;
a payment whose outcome could not be written ends as unknown, and RECORDED <txn_id>
<status> ... follows if the journal's retry writes it later.
`)
}

// event prints what happened and, for a final transition of a payment
// started here, the RESULT line.
func (c *Console) event(ev payment.Event) {
	if ev.Retried {
		c.landed(ev.TxnID)
	}
	switch ev.Kind {
	case payment.KindConnection:
		c.printf("\n[%s] %s %s\n", ev.Time.Format("15:04:05"), orDash(ev.Peer), ev.Detail)
		return
	case payment.KindRejected:
		c.printf("\n[%s] REJECTED from %s: %s\n", ev.Time.Format("15:04:05"), orDash(ev.Peer), ev.Detail)
		return
	case payment.KindLate:
		c.printf("\nLATE %s %s%s\n", ev.TxnID, ev.Detail, payment.ResultFields(ev.Result))
		return
	case payment.KindNotice:
		// Notices a rail flags for the operator (an M-Pesa till payment
		// that matched no sale) are printed; others stay in the journal.
		if ev.Flag != "" && ev.TxnID == "" {
			c.printf("\n[%s] NOTICE %s\n", ev.Time.Format("15:04:05"), ev.Detail)
		}
		return
	case payment.KindUnrecorded:
		c.notRecorded(ev)
		return
	case payment.KindRecorded:
		c.printf("\n[%s] JOURNAL %s\n", ev.Time.Format("15:04:05"), ev.Detail)
		return
	case payment.KindStep:
		if ev.TxnID == c.current {
			c.printf("  %s: %s\n", ev.TxnID, ev.Detail)
		}
		return
	case payment.KindTransition:
	default:
		return
	}
	if ev.Missed > 0 {
		c.printf("\n(%d events not shown; see `paydesk journal`)\n", ev.Missed)
	}
	switch {
	case ev.Status == payment.StatusPlansOffered && ev.TxnID == c.current:
		c.showPlans(ev)
	case ev.Status.Final() || (ev.Status == payment.StatusUnknown && ev.Flag != payment.FlagRecovered):
		if c.finished[ev.TxnID] {
			if ev.Retried {
				c.printf("\nRECORDED %s %s %s%s (written to the journal when it retried)\n", ev.TxnID, ev.Status,
					c.amount(ev).Decimal(), payment.ResultFields(ev.Result))
			}
			return
		}
		c.finish(ev.TxnID, ev.Status, c.amount(ev), ev.Result, ev.Detail)
	case ev.TxnID == c.current && ev.Status != payment.StatusCreated:
		c.printf("  %s: %s\n", ev.TxnID, ev.Detail)
	}
}

// amount is the amount of ev's payment, as the journal has it.
func (c *Console) amount(ev payment.Event) payment.Money {
	if t, err := c.bus.Journal().Txn(context.Background(), ev.TxnID); err == nil {
		return t.Amount
	}
	return ev.Amount
}

// finish prints the end of a payment (its RESULT line) and, for the one in
// flight here, frees the console for the next.
func (c *Console) finish(id string, st payment.Status, amount payment.Money, r *payment.Result, detail string) {
	c.finished[id] = true
	if id == c.current {
		line := statusLine(st, amount, r)
		if detail != "" && detail != string(st) { // "approved" says it twice
			line += " " + detail
		}
		c.printf("\n%s\n", line)
	}
	c.printf("%s\n", payment.ResultLine(id, st, amount, r))
	if id == c.current {
		c.current = ""
		if c.plansFor == id {
			c.plansFor = ""
			c.state = stMenu
		}
		if len(c.pending) == 0 {
			c.menu()
		}
	}
}

// notRecorded says at once that a journal write failed. When it was a
// payment's outcome, the rail is done with the payment but the journal
// does not know how it ended: it ends here as unknown (never as what the
// peer said), so the console takes the next payment; the outcome is
// printed as RECORDED if the journal's retry writes it.
func (c *Console) notRecorded(ev payment.Event) {
	if ev.TxnID == "" {
		c.printf("\n[%s] JOURNAL %s\n", ev.Time.Format("15:04:05"), ev.Detail)
		return
	}
	c.printf("\nNOT RECORDED %s\n", ev.Detail)
	if _, ok := c.unrecorded[ev.TxnID]; !ok {
		c.order = append(c.order, ev.TxnID)
	}
	c.unrecorded[ev.TxnID] = ev
	u := ev.Unwritten
	if u == nil || u.Kind != payment.KindTransition || !(u.Status.Final() || u.Status == payment.StatusUnknown) || c.finished[ev.TxnID] {
		return
	}
	c.finish(ev.TxnID, payment.StatusUnknown, c.amount(ev), &payment.Result{Reason: "outcome not recorded in the journal"},
		"its outcome is not in the journal (see NOT RECORDED above)")
}

// landed forgets a payment's failed write once the journal's retry wrote it.
func (c *Console) landed(id string) {
	if _, ok := c.unrecorded[id]; !ok {
		return
	}
	delete(c.unrecorded, id)
	c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == id })
}

func statusLine(s payment.Status, amount payment.Money, r *payment.Result) string {
	switch {
	case s == payment.StatusApproved && r != nil && len(r.Flags) > 0:
		// Money came, but not simply: say what to check.
		what := strings.Join(r.Flags, ", ")
		if r.Paid != nil {
			what += fmt.Sprintf("; paid %s of %s", r.Paid.Decimal(), amount.Decimal())
		}
		return "Payment Needs Checking (" + what + "):"
	}
	switch s {
	case payment.StatusApproved:
		return "Payment Successful!"
	case payment.StatusDeclined:
		return "Payment Declined:"
	case payment.StatusCancelled:
		return "Payment Cancelled:"
	case payment.StatusTimedOut:
		return "Payment Timed Out:"
	case payment.StatusUnknown:
		return "Payment Needs Checking:"
	}
	return "Payment Failed:"
}

func (c *Console) showPlans(ev payment.Event) {
	c.plans = ev.Plans
	c.plansFor = ev.TxnID
	c.state = stPlan
	c.printf("\nAmount: %s\nAvailable Installment Plans:\n%s\n", c.amountOf(ev.TxnID), strings.Repeat("-", 50))
	for i, p := range ev.Plans {
		c.printf("%d. Plan ID: %s\n", i+1, p.ID)
		if p.Frequency != "" {
			c.printf("   Frequency: %s\n", p.Frequency)
		}
		c.printf("   Total Installments: %d\n", p.TotalInstallments)
		if len(p.Installments) > 0 {
			c.printf("   Installment Details:\n")
		}
		for _, in := range p.Installments {
			c.printf("     #%d: %s on %s\n", in.Number, in.Amount, in.Date)
			if in.Fee.Minor > 0 {
				c.printf("       Fee: %s (%s%%)\n", in.Fee, in.FeePercent)
			}
		}
	}
	c.printf("Select plan (1-%d) or 'q' to quit: ", len(ev.Plans))
}

func (c *Console) amountOf(id string) payment.Money {
	for _, f := range c.rail.InFlight() {
		if f.ID == id {
			return f.Amount
		}
	}
	if t, err := c.bus.Journal().Txn(context.Background(), id); err == nil {
		return t.Amount
	}
	return payment.Money{}
}
