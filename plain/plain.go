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
//
// The console is a presenter over a *desk.Desk: the ways to pay, their
// rails and what each rail takes come from the desk, and every action
// (start, cancel, plan choice, ask, resolve) is one of its use-cases.
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

	"paydesk/desk"
	"paydesk/payment"
)

// Config is how the console presents the desk.
type Config struct {
	// Banner lines printed before the menu (warnings, demo outcomes).
	Banner []string
	// DevSecret is set while the POS link uses the public development
	// secret; status (6) says so.
	DevSecret bool
	// Unresolved are transactions left unknown by an earlier run.
	Unresolved []payment.Txn
	// Interactive is set when a person types the lines (stdin is a
	// terminal): then 7, q and the end of input quit at once, leaving a
	// payment in flight in the journal as it stands. A script's lines act
	// in order instead: its 7 waits for the payment before it.
	Interactive bool
	// Now is the clock of the status' countdowns; time.Now when nil.
	Now func() time.Time
}

// Console runs the menu. Build it with New and call Run.
type Console struct {
	cfg Config
	d   *desk.Desk
	out *bufio.Writer

	target   string // operator's choice; "" means the rail's default
	current  string // txn in flight started here
	plansFor string // txn whose plan choice is being asked
	plans    []payment.Plan
	pending  []string // lines held while a payment is in flight
	state    state
	item     desk.Item // the way to pay being entered or in flight
	phone    string    // the phone typed for a rail that takes one (M-Pesa)
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

// New returns a console over the desk d writing to out.
func New(cfg Config, d *desk.Desk, out io.Writer) *Console {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Console{cfg: cfg, d: d, out: bufio.NewWriter(out), finished: make(map[string]bool),
		unrecorded: make(map[string]payment.Event)}
}

// commands are kiosk.py's menu lines that are not ways to pay; the desk's
// items (desk.Desk.Items) fill in the other numbers.
var commands = []struct{ key, label string }{
	{"5", "Cancel Transaction"},
	{"6", "Show Status"},
	{"7", "Exit"},
}

func (c *Console) printf(format string, args ...any) { fmt.Fprintf(c.out, format, args...) }

func (c *Console) menu() {
	type line struct{ key, label, off string }
	var lines []line
	for _, it := range c.d.Items() {
		// The menu says only why in a word; choosing the item prints the
		// whole reason, with the setting to use.
		off := ""
		if c.d.Unavailable(it) != "" {
			off = desk.NotConfigured
		}
		lines = append(lines, line{it.Key, it.Label, off})
	}
	for _, cm := range commands {
		lines = append(lines, line{cm.key, cm.label, ""})
	}
	slices.SortStableFunc(lines, func(a, b line) int { return strings.Compare(a.key, b.key) })
	c.printf("\nAvailable Commands:\n")
	for _, l := range lines {
		if l.off != "" {
			c.printf("%s. %s (%s)\n", l.key, l.label, l.off)
			continue
		}
		c.printf("%s. %s\n", l.key, l.label)
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
	sub := c.d.Bus().Subscribe(0)
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

	dc := c.d.Config()
	c.printf("paydesk %s listening for POS terminals on %s\n", dc.KioskID, dc.Listen)
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

// waitRails waits, before the first line is acted on, for the configured
// rails that start in the background, saying which one it waits for, so
// a piped script never finds a rail still starting.
func (c *Console) waitRails(ctx context.Context) error {
	var waited string // the rail waited for last, up once the next is waited for
	up := func() {
		if waited != "" {
			c.printf("%s is up\n", waited)
		}
	}
	err := c.d.WaitReady(ctx, func(r desk.Rail) {
		up()
		waited = railName(r)
		c.printf("\nwaiting for %s to start...\n", waited)
		c.out.Flush()
	})
	if err != nil {
		return err
	}
	up()
	return nil
}

// railName names a rail with its menu items: "the card terminal (item 8)".
func railName(r desk.Rail) string {
	keys := make([]string, len(r.Items))
	for i, it := range r.Items {
		keys[i] = it.Key
	}
	if len(keys) == 1 {
		return fmt.Sprintf("%s (item %s)", r.Title, keys[0])
	}
	return fmt.Sprintf("%s (items %s)", r.Title, strings.Join(keys, ", "))
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
		if err := c.d.CheckPhone(c.item.Rail, line); err != nil {
			c.state = stMenu
			c.printf("ERROR %v: payment not started\n", err)
			c.menu()
			return false
		}
		c.phone = line
		c.state = stAmount
		c.amountPrompt()
		return false
	}
	if it, ok := c.d.Item(line); ok {
		c.choose(it)
		return false
	}
	switch line {
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

// choose takes the way to pay it: the next line is the customer's phone
// on a rail that takes one, else the amount.
func (c *Console) choose(it desk.Item) {
	if why := c.d.Unavailable(it); why != "" {
		c.printf("ERROR option %s: %s\n", it.Key, why)
		c.menu()
		return
	}
	c.item, c.phone = it, ""
	if r, _ := c.d.Rail(it.Rail); r.Phone {
		c.state = stPhone
		c.printf("Customer's phone number (07…, 01…, +254…): ")
		return
	}
	c.state = stAmount
	c.amountPrompt()
}

// amountPrompt asks for the amount in the chosen rail's currency, saying
// when it takes whole units only.
func (c *Console) amountPrompt() {
	cur := currencyLabel(c.d.Currency(c.item.Rail))
	if r, _ := c.d.Rail(c.item.Rail); r.WholeUnits != "" {
		c.printf("Enter amount (%s, whole %s): ", cur, r.WholeUnits)
		return
	}
	c.printf("Enter amount (%s): ", cur)
}

func currencyLabel(cur string) string {
	if cur == "MYR" {
		return "RM"
	}
	return cur
}

func (c *Console) startPayment(ctx context.Context, line string) {
	amt, err := c.d.ParseAmount(c.item.Rail, line)
	if err != nil {
		c.printf("ERROR %v\n", err)
		return
	}
	id, err := c.d.Start(ctx, c.item, payment.Request{Amount: amt, Phone: c.phone}, c.target)
	if err != nil {
		c.printf("ERROR %v\n", err)
		return
	}
	c.current = id
	c.printf("Sending %s payment request for %s\nTransaction ID: %s\n", c.item.Mode, amt, id)
}

func (c *Console) cancel() {
	if c.current == "" {
		c.printf("ERROR no transaction in flight to cancel\n")
		return
	}
	if err := c.d.Cancel(c.item.Rail, c.current); err != nil {
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
		if err := c.d.Cancel(c.item.Rail, id); err != nil {
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
	if err := c.d.SelectPlan(id, plan); err != nil {
		c.printf("ERROR %v\n", err)
	} else {
		c.printf("Plan %s selected\n", plan)
	}
	c.prompt()
}

func (c *Console) listTargets() {
	s := c.d.Live()
	if len(s.Peers) == 0 {
		c.printf("No POS terminals connected.\n")
		c.menu()
		return
	}
	c.printf("Connected POS terminals:\n")
	for i, p := range s.Peers {
		mark := ""
		if c.targeted(p, s.Default) {
			mark = "  <- target"
		}
		c.printf("  %d. %-10s %-22s since %s%s\n", i+1, orDash(p.ID), p.Addr, p.Since.Format("15:04:05"), mark)
	}
	c.printf("Target (number or id, empty for the default): ")
	c.state = stTarget
}

// targeted reports whether payments go to p: the operator's choice, or
// the default def when there is none.
func (c *Console) targeted(p payment.Peer, def string) bool {
	return (c.target == "" && p.Label() == def) || c.target == p.Label()
}

func (c *Console) chooseTarget(line string) {
	s := c.d.Live()
	peers := s.Peers
	if line == "" {
		c.target = ""
		c.printf("Target: default (%s)\n", orDash(s.Default))
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
	ts, err := c.d.Journal().Unresolved(ctx)
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
	t, err := c.d.Journal().Txn(ctx, f[0])
	if err != nil {
		c.printf("ERROR %v\n", err)
		return
	}
	if f[1] == "ask" {
		c.ask(ctx, t)
		return
	}
	if _, err := c.d.Resolve(ctx, t.ID, payment.Status(f[1])); err != nil {
		c.printf("ERROR %v\n", err)
		return
	}
	c.printf("Resolved %s as %s (journaled)\n", t.ID, f[1])
}

// ask asks the rail of payment t for its outcome; the rail journals what
// it learns, and the payment's status is printed as the journal has it.
func (c *Console) ask(ctx context.Context, t payment.Txn) {
	if c.d.CanAsk(t.Rail) {
		c.printf("Asking %s about %s...\n", t.Rail, t.ID)
		c.out.Flush()
	}
	words, t, err := c.d.Ask(ctx, t)
	if err != nil {
		c.printf("ERROR %v\n", err)
		return
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
	s := c.d.Snapshot(ctx)
	dc := c.d.Config()
	c.printf("\nKiosk %s, listening on %s\n", dc.KioskID, dc.Listen)
	if c.cfg.DevSecret {
		c.printf("Secret: the public development secret; anyone can sign POS messages. Set PAYDESK_SECRET or --secret-file (the POS needs the same secret).\n")
	}
	c.printf("Connected POS terminals: %d\n", len(s.Peers))
	if dc.Hub != nil {
		c.printf("Hub: %s\n", s.Hub)
	}
	for _, p := range s.Peers {
		last := "never"
		if !p.LastMsg.IsZero() {
			last = p.LastMsg.Format("15:04:05")
		}
		mark := ""
		if c.targeted(p, s.Default) {
			mark = " (target)"
		}
		if p.Rejected > 0 {
			mark += fmt.Sprintf(", %d frames refused", p.Rejected)
		}
		c.printf("  %-10s %-22s connected since %s, last message %s%s\n", orDash(p.ID), p.Addr, p.Since.Format("15:04:05"), last, mark)
	}
	if len(s.Flights) == 0 {
		c.printf("Current transaction: none\n")
	}
	for _, f := range s.Flights {
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
	if s.Err != nil {
		c.printf("ERROR %v\n", s.Err)
		return
	}
	var parts []string
	total := 0
	for _, st := range payment.Statuses {
		if n := s.Counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
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
	if t, err := c.d.Journal().Txn(context.Background(), ev.TxnID); err == nil {
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
	if f, ok := c.d.Live().Flight(id); ok {
		return f.Amount
	}
	if t, err := c.d.Journal().Txn(context.Background(), id); err == nil {
		return t.Amount
	}
	return payment.Money{}
}
