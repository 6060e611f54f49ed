package payment

import (
	"time"
)

// Rail names a way of taking payments.
type Rail string

// The rails paydesk knows.
const (
	RailPOS      Rail = "pos"      // MobyPay POS terminals over TCP
	RailTerminal Rail = "terminal" // an unattended card terminal on a serial port
	RailMPesa    Rail = "mpesa"    // Safaricom Daraja
	RailScreen   Rail = "screen"   // the customer display
	RailSystem   Rail = "system"   // paydesk itself (start, recovery)
)

// Mode is how the customer pays on a rail: the MobyPay payment_mode.
type Mode string

// The MobyPay payment modes, and the modes of the other rails.
const (
	ModeCard      Mode = "card"
	ModeBNPL      Mode = "bnpl"
	ModeDuitNowQR Mode = "duitnow_qr"
	ModeIPP       Mode = "ipp"
	// ModeRefund gives money back to a card (a Concert credit).
	ModeRefund Mode = "refund"
	// ModeSTKPush is an M-Pesa payment prompted on the customer's phone.
	ModeSTKPush Mode = "stk_push"
	// ModeC2B is an M-Pesa till or paybill payment the customer made.
	ModeC2B Mode = "c2b"
)

// Kind says what an event records.
type Kind string

// The kinds of events.
const (
	// KindTransition moves a transaction to Event.Status. The journal
	// applies it only if the lifecycle allows it.
	KindTransition Kind = "transition"
	// KindStep records progress that does not change the status: an ack,
	// a plan received, a cancel requested.
	KindStep Kind = "step"
	// KindLate records a result that arrived after the transaction was
	// final (cancelled, timed out): kept and flagged, never applied.
	KindLate Kind = "late"
	// KindConnection records a peer connecting or going away.
	KindConnection Kind = "connection"
	// KindRejected records inbound input refused, with the reason.
	KindRejected Kind = "rejected"
	// KindMessage records a message in or out, summarised.
	KindMessage Kind = "message"
	// KindNotice records anything else worth showing (start, warnings).
	KindNotice Kind = "notice"
	// KindUnrecorded is never journaled: the bus tells subscribers at once
	// that the journal could not write an event (a full or failing disk).
	// TxnID, Rail and Peer are those of the unwritten event, which is in
	// Unwritten; Status stays empty, so nothing that reads statuses takes
	// it for a transition. Detail says which payment and step, and what to
	// check. Without a TxnID it says that the journal's writes failed.
	KindUnrecorded Kind = "unrecorded"
	// KindRecorded is never journaled: the journal's retry has written the
	// events that failed before (they are delivered just before it, with
	// Retried set).
	KindRecorded Kind = "recorded"
)

// Flags mark a transaction for the operator's attention.
const (
	FlagLateResult     = "late_result"
	FlagAmountMismatch = "amount_mismatch"
	FlagRecovered      = "recovered"
	FlagResolved       = "resolved_by_operator"
	FlagCancelUnconf   = "cancel_unconfirmed"
)

// Event is one thing that happened, as every rail reports it. The bus
// writes it to the journal, which assigns Seq, before anyone sees it.
type Event struct {
	// Seq is the journal's sequence number, assigned on commit.
	Seq int64
	// Time is when it happened; the bus fills it when zero.
	Time time.Time
	Kind Kind
	Rail Rail
	// TxnID is the transaction it concerns, if any.
	TxnID string
	// Status is the new status of a transition, or the status the
	// transaction was in for other kinds.
	Status Status
	// Peer identifies the other side: a POS id, else its address.
	Peer string
	// Mode and Amount are set on the created transition.
	Mode   Mode
	Amount Money
	// Detail is a one-line human summary ("ack processing", the reason of
	// a decline, a rejection's reason).
	Detail string
	// Raw is the message as received or sent, when there is one.
	Raw []byte
	// Flag marks the transaction for attention (see the Flag constants).
	Flag string
	// Result carries what a final outcome reported.
	Result *Result
	// Plans are the instalment plans offered (plans_offered).
	Plans []Plan
	// Missed is set on the first event a subscriber receives after its
	// buffer overflowed: how many events it did not get (re-read them from
	// the journal with EventsSince).
	Missed int
	// Unwritten is, on a KindUnrecorded event, the event the journal could
	// not write.
	Unwritten *Event
	// Retried is set on an event the journal wrote only when it retried:
	// its first write failed and subscribers were told (KindUnrecorded).
	Retried bool
}

// Result is what a peer said about a final outcome.
type Result struct {
	AuthCode string `json:"auth_code,omitempty"`
	// Card is a masked card number or last four digits, never a full PAN.
	Card string `json:"card,omitempty"`
	// RemoteID is the peer's own transaction id (MobyPay transaction_id).
	RemoteID string `json:"remote_id,omitempty"`
	PlanID   string `json:"plan_id,omitempty"`
	// Reason is why a payment did not succeed, in the peer's words.
	Reason string `json:"reason,omitempty"`
	// Paid is what the customer actually paid, when the peer reports an
	// amount other than the one asked (an M-Pesa underpayment).
	Paid *Money `json:"paid,omitempty"`
	// Flags mark an outcome for the operator's attention (underpaid,
	// source_not_allowed): a success that is not simply one.
	Flags []string `json:"flags,omitempty"`
}

// Plan is an instalment plan a POS offers for an IPP payment.
type Plan struct {
	ID                string        `json:"planId"`
	Frequency         string        `json:"frequency"`
	TotalInstallments int           `json:"totalInstallments"`
	Installments      []Installment `json:"installmentDetails"`
}

// Installment is one payment of a plan.
type Installment struct {
	Number int    `json:"installmentNumber"`
	Date   string `json:"date"`
	Amount Money  `json:"amount"`
	Fee    Money  `json:"installmentFee"`
	// FeePercent is the fee rate as the POS wrote it, e.g. "1.5".
	FeePercent string `json:"installmentFeePercentage"`
}

// Txn is a transaction as the journal knows it: the sum of its events.
type Txn struct {
	ID        string
	Rail      Rail
	Mode      Mode
	Amount    Money
	Status    Status
	Peer      string
	CreatedAt time.Time
	UpdatedAt time.Time
	Result    Result
	// Flags are the attention marks collected from its events.
	Flags []string
}
