// Package wire is the link between a kiosk and the hub: JSON text frames
// over one WebSocket the kiosk opens (HTTPS in production), authenticated
// by the kiosk's bearer token on the upgrade request.
//
//	kiosk → hub  hello        {kiosk_id, journal_seq, version, rails}
//	hub → kiosk  welcome      {kiosk_id, acked_seq, status_every}: the highest sequence the hub holds
//	kiosk → hub  status       {journal_seq, rails}: when they changed, if the welcome asked
//	kiosk → hub  events       {events: [...]}: the journal's next events, in order
//	hub → kiosk  ack          {acked_seq}: stored (once, whatever the replays)
//	hub → kiosk  message      {message}: something for this kiosk only
//	kiosk → hub  message_ack  {id}
//	hub → kiosk  error        {reason}, then the hub closes the link
//
// The journal is the kiosk's outbox: its sequence numbers are the keys.
// Delivery is at least once on the wire and exactly once at the hub, which
// stores an event only if it has no event of that kiosk and sequence.
package wire

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"paydesk/payment"
)

// Path is the link's URL path on the hub.
const Path = "/v1/link"

// MaxFrame is the largest frame either side reads. Kiosks keep their
// batches under MaxBatchBytes; one event's raw message is at most
// payment.MaxRaw (64 KiB, 88 KiB in base64).
const MaxFrame = 2 << 20

// MaxBatchBytes is the size a kiosk keeps a batch under (a batch holds at
// least one event).
const MaxBatchBytes = 1 << 20

// MaxBatch is the most events in one batch.
const MaxBatch = 1000

// Frame types.
const (
	TypeHello      = "hello"
	TypeWelcome    = "welcome"
	TypeEvents     = "events"
	TypeAck        = "ack"
	TypeMessage    = "message"
	TypeMessageAck = "message_ack"
	TypeError      = "error"
	TypeStatus     = "status"
)

// Frame is every message of the link; Type says which fields are set.
type Frame struct {
	Type       string   `json:"type"`
	KioskID    string   `json:"kiosk_id,omitempty"`
	JournalSeq int64    `json:"journal_seq,omitempty"`
	AckedSeq   int64    `json:"acked_seq,omitempty"`
	Events     []Event  `json:"events,omitempty"`
	Message    *Message `json:"message,omitempty"`
	ID         int64    `json:"id,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	// Version and Rails are in a hello: the kiosk's paydesk version and
	// each rail's health as the kiosk sees it ("ok", or what is wrong).
	Version string            `json:"version,omitempty"`
	Rails   map[string]string `json:"rails,omitempty"`
	// StatusEvery, in a welcome, asks the kiosk for a status frame
	// (journal_seq, rails) at most this many seconds apart when either
	// changed; 0 (a hub that predates status frames): none.
	StatusEvery int `json:"status_every,omitempty"`
}

// CheckHello bounds what a hello (or a status frame) reports of the
// kiosk.
func CheckHello(f Frame) error {
	if len(f.Version) > 64 {
		return errors.New("hello: version longer than 64 bytes")
	}
	if len(f.Rails) > 16 {
		return errors.New("hello: more than 16 rails")
	}
	for k, v := range f.Rails {
		if k == "" || len(k) > 32 || len(v) > 200 {
			return fmt.Errorf("hello: rail %q: name 1 to 32 bytes, health at most 200", truncate(k))
		}
	}
	if f.JournalSeq < 0 {
		return errors.New("hello: negative journal sequence")
	}
	return nil
}

// Message is something the hub holds for one kiosk until it acknowledges
// it (M-Pesa callbacks routed to the kiosk that reported the sale).
type Message struct {
	ID      int64     `json:"id"`
	Kind    string    `json:"kind"`
	Body    []byte    `json:"body"` // JSON
	Created time.Time `json:"created"`
}

// Event is a journal event on the wire (payment.Event without the bus's
// bookkeeping).
type Event struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"at"`
	Kind     payment.Kind    `json:"kind"`
	Rail     payment.Rail    `json:"rail"`
	TxnID    string          `json:"txn_id,omitempty"`
	Status   payment.Status  `json:"status,omitempty"`
	Peer     string          `json:"peer,omitempty"`
	Mode     payment.Mode    `json:"mode,omitempty"`
	Minor    int64           `json:"amount_minor,omitempty"`
	Currency string          `json:"currency,omitempty"`
	Detail   string          `json:"detail,omitempty"`
	Flag     string          `json:"flag,omitempty"`
	Result   *payment.Result `json:"result,omitempty"`
	Plans    []payment.Plan  `json:"plans,omitempty"`
	Raw      []byte          `json:"raw,omitempty"`
}

// FromPayment converts a journal event.
func FromPayment(ev payment.Event) Event {
	return Event{Seq: ev.Seq, Time: ev.Time.UTC(), Kind: ev.Kind, Rail: ev.Rail, TxnID: ev.TxnID, Status: ev.Status,
		Peer: ev.Peer, Mode: ev.Mode, Minor: ev.Amount.Minor, Currency: ev.Amount.Currency, Detail: ev.Detail,
		Flag: ev.Flag, Result: ev.Result, Plans: ev.Plans, Raw: ev.Raw}
}

// ErrBadBatch is wrapped by every reason Validate refuses a batch.
var ErrBadBatch = errors.New("bad batch")

var kinds = map[payment.Kind]bool{
	payment.KindTransition: true, payment.KindStep: true, payment.KindLate: true, payment.KindConnection: true,
	payment.KindRejected: true, payment.KindMessage: true, payment.KindNotice: true,
}

// maxText bounds each text field of an event.
const maxText = 64 << 10

// Validate checks a batch as the hub receives it: 1 to MaxBatch events,
// sequences positive and increasing, kinds and statuses known, fields
// bounded.
func Validate(evs []Event) error {
	if len(evs) == 0 || len(evs) > MaxBatch {
		return fmt.Errorf("%w: %d events (1 to %d)", ErrBadBatch, len(evs), MaxBatch)
	}
	var prev int64
	for i, ev := range evs {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: event %d (seq %d): %s", ErrBadBatch, i, ev.Seq, fmt.Sprintf(format, args...))
		}
		switch {
		case ev.Seq <= prev:
			return bad("sequence not increasing (after %d)", prev)
		case !kinds[ev.Kind]:
			return bad("unknown kind %q", truncate(string(ev.Kind)))
		case ev.Rail == "" || len(ev.Rail) > 32:
			return bad("rail must be 1 to 32 characters")
		case ev.Status != "" && !ev.Status.Valid():
			return bad("unknown status %q", truncate(string(ev.Status)))
		case ev.Kind == payment.KindTransition && (ev.TxnID == "" || ev.Status == ""):
			return bad("a transition needs a transaction and a status")
		case len(ev.TxnID) > 128 || len(ev.Peer) > 256 || len(ev.Mode) > 32 || len(ev.Flag) > 64:
			return bad("a field is too long")
		case ev.Currency != "" && !currencyRE.MatchString(ev.Currency):
			return bad("currency %q is not an ISO 4217 code", truncate(ev.Currency))
		case len(ev.Detail) > maxText:
			return bad("detail longer than %d bytes", maxText)
		case len(ev.Raw) > payment.MaxRaw:
			return bad("raw message longer than %d bytes", payment.MaxRaw)
		case ev.Time.IsZero():
			return bad("no time")
		}
		prev = ev.Seq
	}
	return nil
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// KioskIDRE is what a kiosk id may be: the MobyPay kiosk_id's characters.
var KioskIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
