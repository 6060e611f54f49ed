// Package desk is the operator's core, shared by both consoles: the rails
// the console offers and how each is used, the operator's use-cases
// (start, cancel, choose a plan, ask a rail, resolve an unknown payment,
// assign a till payment, reset a display) and a snapshot of what the
// consoles show.
//
// The full-screen console (tui) and the line console (plain) are
// presenters over a *Desk: they read its table of rails instead of
// keeping their own, and neither imports a rail package. A rail reaches
// the desk as a payment.Starter with optional capabilities
// (payment.Checker, payment.HealthReporter, payment.Till, …), which the
// desk discovers.
package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"paydesk/payment"
)

// POS is what the desk needs of the MobyPay POS link: a rail that also
// takes a plan choice and lists its connections and payments in flight.
type POS interface {
	payment.Starter
	SelectPlan(id, planID string) error
	Peers() []payment.Peer
	DefaultTarget() string
	InFlight() []payment.Flight
}

// Displays is what the consoles need of the customer-display server: the
// displays it knows and a way to put one back on the amounts.
type Displays interface {
	Displays() []payment.Display
	ResetDisplay(id string) error
}

// Item is one way to pay that the console's menu offers: a mode on a rail,
// under kiosk.py's menu number.
type Item struct {
	// Key is kiosk.py's menu number ("1"…"4", "8", "9"): the line console
	// reads it, and it is the full-screen console's default key.
	Key string
	// Name is what a keymap binds: "card", "bnpl", "qr", "ipp",
	// "terminal", "mpesa".
	Name  string
	Label string
	// Form is the title of the item's payment form: "Card payment on the
	// unattended terminal".
	Form string
	Mode payment.Mode
	Rail payment.Rail
}

// Rail is one rail the console offers, and what the consoles need to know
// to use it without knowing it.
type Rail struct {
	Name payment.Rail
	// Title names the rail in a sentence: "the card terminal".
	Title string
	// Starter is the rail; nil when it is not configured.
	Starter payment.Starter
	// Unset is the setting that configures the rail, for the reason its
	// items are disabled.
	Unset string
	// Currency is the currency its amounts are typed in when the rail does
	// not say (payment.Currencier); "" means the console's.
	Currency string
	// Phone is set when the rail takes the customer's phone number before
	// the amount (M-Pesa STK Push).
	Phone bool
	// WholeUnits, when set, names the units the rail takes whole amounts
	// of ("shillings": Daraja takes no cents).
	WholeUnits string
	// Example is an amount to show in an empty amount field.
	Example string
	// CancelNote is what the operator is asked before a cancel: what
	// cancelling does on this rail.
	CancelNote string
	// RemoteLabel names the rail's own reference on a result.
	RemoteLabel string
	// Peers is set when the rail's payments go to one of several peers,
	// those of Snapshot.Peers (the POS link): Start's target names one.
	Peers bool
	// Items are the ways to pay on it, in menu order.
	Items []Item
}

// NotConfigured is why a rail that is not configured is off, in a word
// (a menu line); Off adds the setting that configures it.
const NotConfigured = "not configured"

// Off says why the rail cannot take payments, with the setting to use;
// "" when it can.
func (r Rail) Off() string {
	if r.Starter != nil {
		return ""
	}
	return NotConfigured + " (" + r.Unset + ")"
}

// The console's rails, described: main fills in each one's Starter. The
// MobyPay POS link's modes keep kiosk.py's menu numbers 1-4.
func describe() []Rail {
	return []Rail{
		{Name: payment.RailPOS, Title: "the POS", Unset: "set --listen", Example: "e.g. 25.50",
			CancelNote:  "Cancel this payment? The POS must confirm. y/n",
			RemoteLabel: "POS transaction", Peers: true,
			Items: []Item{
				{Key: "1", Name: "card", Label: "Card Payment", Form: "Card payment", Mode: payment.ModeCard},
				{Key: "2", Name: "bnpl", Label: "Buy Now Pay Later (BNPL)", Form: "BNPL payment", Mode: payment.ModeBNPL},
				{Key: "3", Name: "qr", Label: "DuitNow QR", Form: "DuitNow QR payment", Mode: payment.ModeDuitNowQR},
				{Key: "4", Name: "ipp", Label: "Installment Payment (IPP)", Form: "IPP payment", Mode: payment.ModeIPP},
			}},
		{Name: payment.RailTerminal, Title: "the card terminal", Unset: "set --terminal-port", Example: "e.g. 25.50",
			CancelNote:  "Cancel this payment? The terminal must confirm once it has the card. y/n",
			RemoteLabel: "Terminal ref",
			Items: []Item{{Key: "8", Name: "terminal", Label: "Card on unattended terminal",
				Form: "Card payment on the unattended terminal", Mode: payment.ModeCard}}},
		{Name: payment.RailMPesa, Title: "M-Pesa", Unset: "set the M-Pesa settings", Currency: "KES", Phone: true,
			WholeUnits: "shillings", Example: "e.g. 150",
			CancelNote:  "Stop waiting for this M-Pesa payment? Daraja cannot withdraw the prompt; a late payment is still recorded. y/n",
			RemoteLabel: "M-Pesa receipt",
			Items:       []Item{{Key: "9", Name: "mpesa", Label: "M-Pesa STK Push", Form: "M-Pesa payment", Mode: payment.ModeSTKPush}}},
	}
}

// Config is what the desk is built from.
type Config struct {
	KioskID string
	// Listen is where POS terminals connect.
	Listen string
	// Currency is the POS link's currency, the default of the rails that
	// name none; payment.DefaultCurrency when empty.
	Currency string
	// MaxMinor is the largest amount any rail takes, in minor units.
	MaxMinor int64
	// POS is the MobyPay POS link.
	POS POS
	// Rails are the other rails by name (payment.RailTerminal,
	// payment.RailMPesa); a missing or nil one is not configured.
	Rails map[payment.Rail]payment.Starter
	// Displays is the customer-display server; nil when it is off.
	Displays Displays
	// Hub, when set, says how far the hub has this kiosk's journal in a
	// few words; it must not block.
	Hub func() string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Desk is the operator's core. Its methods are safe for concurrent use:
// it holds no state of its own beyond what it was built with.
type Desk struct {
	cfg   Config
	bus   *payment.Bus
	rails []Rail
}

// New returns the desk over the bus and the rails of cfg.
func New(cfg Config, bus *payment.Bus) *Desk {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Currency == "" {
		cfg.Currency = payment.DefaultCurrency
	}
	rails := describe()
	for i := range rails {
		r := &rails[i]
		if r.Name == payment.RailPOS {
			if cfg.POS != nil {
				r.Starter = cfg.POS
			}
		} else if s := cfg.Rails[r.Name]; s != nil {
			r.Starter = s
		}
		for j := range r.Items {
			r.Items[j].Rail = r.Name
		}
	}
	return &Desk{cfg: cfg, bus: bus, rails: rails}
}

// Config returns what the desk was built with.
func (d *Desk) Config() Config { return d.cfg }

// Bus is the event bus the consoles subscribe to.
func (d *Desk) Bus() *payment.Bus { return d.bus }

// Journal is the journal behind the bus.
func (d *Desk) Journal() *payment.Journal { return d.bus.Journal() }

// Rails lists the console's rails in menu order.
func (d *Desk) Rails() []Rail { return d.rails }

// Rail returns the rail named name.
func (d *Desk) Rail(name payment.Rail) (Rail, bool) {
	i := slices.IndexFunc(d.rails, func(r Rail) bool { return r.Name == name })
	if i < 0 {
		return Rail{}, false
	}
	return d.rails[i], true
}

// Items lists every way to pay, in menu order (by kiosk.py's numbers).
func (d *Desk) Items() []Item {
	var out []Item
	for _, r := range d.rails {
		out = append(out, r.Items...)
	}
	slices.SortStableFunc(out, func(a, b Item) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Item returns the way to pay under menu key k.
func (d *Desk) Item(k string) (Item, bool) {
	for _, it := range d.Items() {
		if it.Key == k {
			return it, true
		}
	}
	return Item{}, false
}

// Unavailable says why item cannot be used; "" when it can.
func (d *Desk) Unavailable(it Item) string {
	r, _ := d.Rail(it.Rail)
	return r.Off()
}

// Displays is the customer-display server; nil when it is off.
func (d *Desk) Displays() Displays { return d.cfg.Displays }

// Till is the rail that lists payments customers made on their own (an
// M-Pesa till); nil when none does.
func (d *Desk) Till() payment.Till {
	for _, r := range d.rails {
		if t, ok := r.Starter.(payment.Till); ok && r.Starter != nil {
			return t
		}
	}
	return nil
}

// Currency is the currency amounts are typed in on rail name.
func (d *Desk) Currency(name payment.Rail) string {
	r, _ := d.Rail(name)
	if c, ok := r.Starter.(payment.Currencier); ok && r.Starter != nil && c.Currency() != "" {
		return c.Currency()
	}
	if r.Currency != "" {
		return r.Currency
	}
	return d.cfg.Currency
}

// ParseAmount reads an amount typed for rail name: in its currency, at
// most the largest amount, in whole units where the rail takes only those.
func (d *Desk) ParseAmount(name payment.Rail, text string) (payment.Money, error) {
	cur := d.Currency(name)
	amt, err := payment.ParseAmount(text, cur, d.cfg.MaxMinor)
	if err != nil {
		return amt, err
	}
	r, _ := d.Rail(name)
	if unit := payment.MinorPerUnit(cur); r.WholeUnits != "" && amt.Minor%unit != 0 {
		return payment.Money{}, fmt.Errorf("%s takes whole %s: enter %d, not %s", railWord(r), r.WholeUnits, amt.Minor/unit, strings.TrimSpace(text))
	}
	return amt, nil
}

// railWord names the rail as the start of a sentence.
func railWord(r Rail) string {
	t := strings.TrimPrefix(r.Title, "the ")
	return strings.ToUpper(t[:1]) + t[1:]
}

// CheckPhone checks a customer's phone number for rail name when the rail
// checks numbers; a rail that does not refuses a bad one when it starts.
func (d *Desk) CheckPhone(name payment.Rail, phone string) error {
	if strings.TrimSpace(phone) == "" {
		return errors.New("enter the customer's phone number")
	}
	r, _ := d.Rail(name)
	if pc, ok := r.Starter.(payment.PhoneChecker); ok && r.Starter != nil {
		if err := pc.CheckPhone(phone); err != nil {
			return fmt.Errorf("phone number refused: %w", err)
		}
	}
	return nil
}

// ErrNotConfigured is returned for a rail that is not configured.
var ErrNotConfigured = errors.New("not configured")

// starter returns the rail named name, or an error saying why it is off.
func (d *Desk) starter(name payment.Rail) (payment.Starter, error) {
	r, ok := d.Rail(name)
	if !ok {
		return nil, fmt.Errorf("no rail %q: %w", name, ErrNotConfigured)
	}
	if r.Starter == nil {
		return nil, fmt.Errorf("%s: %w (%s)", r.Title, ErrNotConfigured, r.Unset)
	}
	return r.Starter, nil
}

// Start asks the rail of item for a payment of req (its Mode is the
// item's); target, for the POS link, names the POS ("" for its default).
// It returns the payment's id once the rail has journaled the request.
func (d *Desk) Start(ctx context.Context, it Item, req payment.Request, target string) (string, error) {
	s, err := d.starter(it.Rail)
	if err != nil {
		return "", err
	}
	req.Mode = it.Mode
	if it.Rail == payment.RailPOS {
		req.Target = target
	}
	return s.Start(ctx, req)
}

// Cancel asks the rail of payment id to cancel it.
func (d *Desk) Cancel(rail payment.Rail, id string) error {
	s, err := d.starter(rail)
	if err != nil {
		return err
	}
	return s.Cancel(id)
}

// SelectPlan gives the POS the instalment plan the customer chose.
func (d *Desk) SelectPlan(id, planID string) error {
	if d.cfg.POS == nil {
		return fmt.Errorf("the POS: %w", ErrNotConfigured)
	}
	return d.cfg.POS.SelectPlan(id, planID)
}

// CanAsk reports whether the rail of a payment can be asked for its
// outcome (payment.Checker).
func (d *Desk) CanAsk(rail payment.Rail) bool {
	r, _ := d.Rail(rail)
	_, ok := r.Starter.(payment.Checker)
	return ok && r.Starter != nil
}

// ErrCannotAsk is returned by Ask for a payment whose rail cannot be asked.
var ErrCannotAsk = errors.New("that rail cannot be asked")

// AskTimeout bounds how long Ask waits for a rail's answer.
const AskTimeout = 30 * time.Second

// Ask asks the rail of payment t for its outcome. The rail journals what
// it learns; Ask returns the rail's words and the payment as the journal
// now has it.
func (d *Desk) Ask(ctx context.Context, t payment.Txn) (string, payment.Txn, error) {
	r, _ := d.Rail(t.Rail)
	c, ok := r.Starter.(payment.Checker)
	if !ok || r.Starter == nil {
		return "", t, fmt.Errorf("%s is a %s payment: %w; check %s, then resolve it approved or declined",
			t.ID, t.Rail, ErrCannotAsk, payment.WhereToCheck(t.Rail))
	}
	actx, cancel := context.WithTimeout(ctx, AskTimeout)
	defer cancel()
	words, err := c.CheckOutcome(actx, t.ID)
	if err != nil {
		return "", t, fmt.Errorf("could not ask: %w", err)
	}
	if now, err := d.Journal().Txn(ctx, t.ID); err == nil {
		t = now
	}
	return words, t, nil
}

// Resolve records the operator's decision on a payment left unknown,
// after they checked it where payment.WhereToCheck says: approved or
// declined. It is journaled before it returns.
func (d *Desk) Resolve(ctx context.Context, id string, st payment.Status) (payment.Txn, error) {
	if st != payment.StatusApproved && st != payment.StatusDeclined {
		return payment.Txn{}, fmt.Errorf("resolve %s: %q is not approved or declined", id, st)
	}
	t, err := d.Journal().Txn(ctx, id)
	if err != nil {
		return payment.Txn{}, fmt.Errorf("resolve %s: %w", id, err)
	}
	if t.Status != payment.StatusUnknown {
		return t, fmt.Errorf("resolve %s: it is %s, not unknown", id, t.Status)
	}
	_, err = d.bus.Publish(ctx, payment.Event{Kind: payment.KindTransition, Rail: t.Rail, TxnID: t.ID, Time: d.cfg.Now(),
		Status: st, Flag: payment.FlagResolved, Detail: "resolved by operator as " + string(st),
		Result: &payment.Result{Reason: "resolved by operator"}})
	if err != nil {
		return t, fmt.Errorf("resolve %s: %w", id, err)
	}
	t.Status = st
	return t, nil
}

// AssignTill gives a till payment that matched no sale to the sale txnID.
func (d *Desk) AssignTill(id, txnID string) error {
	t := d.Till()
	if t == nil {
		return fmt.Errorf("till payments: %w", ErrNotConfigured)
	}
	return t.AssignTill(id, txnID)
}

// ResetDisplay puts a customer display back on the amounts.
func (d *Desk) ResetDisplay(id string) error {
	if d.cfg.Displays == nil {
		return fmt.Errorf("customer displays: %w", ErrNotConfigured)
	}
	return d.cfg.Displays.ResetDisplay(id)
}

// Starting is a rail that starts in the background (the card terminal
// opens its port and checks the terminal first): Ready is closed once it
// takes payments, or knows and says why it cannot.
type Starting interface {
	Ready() <-chan struct{}
}

// WaitReady waits for the configured rails that start in the background,
// calling waiting with each one's rail before it waits for it.
func (d *Desk) WaitReady(ctx context.Context, waiting func(Rail)) error {
	for _, r := range d.rails {
		s, ok := r.Starter.(Starting)
		if !ok || r.Starter == nil {
			continue
		}
		select {
		case <-s.Ready():
			continue
		default:
		}
		if waiting != nil {
			waiting(r)
		}
		select {
		case <-s.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
