package payment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request asks a rail for a payment. The console, plain mode and the
// customer screen all build the same Request.
type Request struct {
	Mode   Mode
	Amount Money
	// Target names the terminal to use (a POS id or address); empty means
	// the rail's default.
	Target string
	// Phone is the customer's phone number, for rails that push a prompt
	// to it (M-Pesa STK Push). The rail normalises and validates it.
	Phone string
	// Reference is the caller's own reference for the sale (an ECR
	// orderId, an M-Pesa account reference); empty means the rail mints
	// one.
	Reference string
}

// Starter is what every rail offers, so the console, plain mode and the
// customer screen can take a payment without knowing the rail: Start
// journals the new transaction and returns its id at once; progress and
// the outcome arrive only as events on the bus. Cancel asks the rail to
// stop a payment; the outcome (cancelled, or approved when the peer had
// already taken the money) is again an event.
type Starter interface {
	Start(ctx context.Context, req Request) (string, error)
	Cancel(id string) error
}

// ErrBusy is wrapped when a rail or terminal already has a payment in
// flight and cannot take another.
var ErrBusy = errors.New("busy")

// ErrUnavailable is wrapped when a rail is configured but cannot take a
// payment now (port unplugged, API unreachable).
var ErrUnavailable = errors.New("rail unavailable")

// ErrNoPeer is wrapped when no terminal is connected to take the payment.
var ErrNoPeer = errors.New("no terminal connected")

// MaskCard reduces anything a peer sends as a card number to its last four
// digits, so a full PAN never reaches the journal's fields, logs or screen.
// It returns "" when there are no digits.
func MaskCard(s string) string {
	var digits []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	if len(digits) > 4 {
		digits = digits[len(digits)-4:]
	}
	return string(digits)
}

// CardDisplay formats last four digits for people: "**** 4242".
func CardDisplay(last4 string) string {
	if last4 == "" {
		return ""
	}
	return "**** " + strings.TrimSpace(last4)
}

// ResultLine is the one machine-readable line every console prints for a
// finished payment, so scripts can parse any of them the same way:
//
//	RESULT <txn_id> <status> <amount> [key=value ...]
//
// Keys, when known: auth, card (****last4), pos_txn, plan, reason, paid
// (the amount actually paid, when it is not the amount asked) and flags
// (comma-separated, what needs the operator's attention). Values with
// spaces, tabs, quotes or '=' are Go-quoted.
func ResultLine(txnID string, st Status, amount Money, r *Result) string {
	return fmt.Sprintf("RESULT %s %s %s%s", txnID, st, amount.Decimal(), ResultFields(r))
}

// ResultFields is the " key=value ..." part of a RESULT line ("" for nil).
func ResultFields(r *Result) string {
	if r == nil {
		return ""
	}
	card := ""
	if r.Card != "" {
		card = "****" + r.Card
	}
	paid := ""
	if r.Paid != nil {
		paid = r.Paid.Decimal()
	}
	var b strings.Builder
	for _, kv := range [][2]string{{"auth", r.AuthCode}, {"card", card}, {"pos_txn", r.RemoteID}, {"plan", r.PlanID}, {"reason", r.Reason},
		{"paid", paid}, {"flags", strings.Join(r.Flags, ",")}} {
		k, v := kv[0], kv[1]
		if v == "" {
			continue
		}
		if strings.ContainsAny(v, " \t\"=") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

// WhereToCheck names, for the operator, where the truth about a payment
// on rail r is found when paydesk does not know it: "the POS", "the card
// terminal", "the M-Pesa statement".
func WhereToCheck(r Rail) string {
	switch r {
	case RailPOS:
		return "the POS"
	case RailTerminal:
		return "the card terminal"
	case RailMPesa:
		return "the M-Pesa statement"
	case RailScreen:
		return "the customer display's terminal"
	}
	return "the payment's peer"
}

// UnknownWhy says in a few words why t, a payment left unknown, is
// unknown: "in flight when paydesk stopped" only for one the journal
// recovered at start, else its own reason without its advice (the
// consoles add where to check, from WhereToCheck).
func UnknownWhy(t Txn) string {
	if slices.Contains(t.Flags, FlagRecovered) {
		return "in flight when paydesk stopped"
	}
	why := t.Result.Reason
	if i := strings.Index(why, ": check "); i > 0 {
		why = why[:i]
	}
	if why == "" {
		return "outcome not known"
	}
	return why
}

// Health is a rail's own account of whether it can take a payment now, for
// the consoles' headers: "ready", "port unplugged", "token refused".
type Health struct {
	// Up is true when a payment started now could reach the peer.
	Up bool
	// Detail says why in a few words.
	Detail string
}

// HealthReporter is implemented by rails that know whether their peer is
// reachable (a serial terminal answering its probe, an API that issued a
// token).
type HealthReporter interface {
	Health() Health
}

// Deadliner is implemented by rails that wait for their peer with a
// timeout, so a console can count down: what it waits for and until when.
// ok is false when id is not waiting.
type Deadliner interface {
	Deadline(id string) (waiting string, at time.Time, ok bool)
}

// PhoneChecker is implemented by rails that take the customer's phone
// number (M-Pesa STK Push), so a console refuses a number the rail would
// refuse as soon as it is typed, before it asks for the amount.
type PhoneChecker interface {
	CheckPhone(phone string) error
}

// Checker is implemented by rails that can ask their peer for a
// payment's outcome on demand (M-Pesa's STK Query), so an operator facing
// an unknown or overdue payment asks the source before deciding by hand.
// The rail applies and journals the answer like any other; the string
// says, for the operator, what the peer answered.
type Checker interface {
	CheckOutcome(ctx context.Context, id string) (string, error)
}

// Currencier is implemented by rails whose amounts are in a currency of
// their own (a card terminal set up for euros, M-Pesa in shillings), so a
// console asks for amounts in it rather than in the POS link's ringgit.
type Currencier interface {
	Currency() string
}

// PayInstructions are what a customer needs to pay from their own phone
// when the rail does not take the money itself but waits for the
// customer to send it (an M-Pesa paybill or till): a display shows them
// and the customer types them into their phone.
type PayInstructions struct {
	// Kind is "paybill" (Pay Bill: a business number and an account) or
	// "till" (Buy Goods: a till number, no account).
	Kind string
	// Number is the paybill or till number to pay.
	Number string
	// Account is the account reference the customer types; "" on a till.
	Account string
	// Amount is what to pay.
	Amount Money
	// Until is when the rail stops waiting for the payment.
	Until time.Time
}

// Instructor is implemented by rails whose payments the customer makes
// on their own device, so a display can tell them where and how to pay
// without knowing the rail. ok is false when id is not such a payment.
type Instructor interface {
	Instructions(id string) (PayInstructions, bool)
}

// DisplayMethod is a payment method of a customer display as the
// display's settings name it, NAME=RAIL[:MODE][@TARGET], with the
// display's currency.
type DisplayMethod struct {
	// Name is what the display shows, e.g. DEBIT_CARD.
	Name string
	// Mode is as written, lower case; empty asks for the rail's default.
	Mode Mode
	// Target is the peer named with @ (a POS id); empty names none.
	Target string
	// Currency is the display's, ISO 4217 upper case.
	Currency string
}

// DisplayOffer is implemented by rails a customer display may take
// payments on: the rail says which of its modes a display's method may
// use there (a display collects no phone number, offers no plan choice).
// DisplayMode returns the mode the method's payments start in, or why
// the method cannot be paid on this rail, naming the method.
type DisplayOffer interface {
	DisplayMode(m DisplayMethod) (Mode, error)
}
