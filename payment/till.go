package payment

import "time"

// TillPayment is a payment a customer made to the kiosk's till or paybill
// on their own (M-Pesa C2B), as a rail reports it for the operator.
type TillPayment struct {
	// ID is the peer's receipt for it (the M-Pesa TransID).
	ID string
	// Reference is what the customer typed as the account ("" on a till).
	Reference string
	Amount    Money
	// Payer is the payer as the peer shows it: a masked number or a name,
	// never a full phone number.
	Payer string
	Time  time.Time
	// TxnID is the sale it paid, "" while unmatched.
	TxnID string
	// Note says how it was matched, or why not (wrong amount, unknown
	// reference).
	Note string
}

// Unmatched reports whether the payment still waits for the operator to
// assign it to a sale.
func (p TillPayment) Unmatched() bool { return p.TxnID == "" }

// Till is implemented by rails that receive payments customers start on
// their own (an M-Pesa till or paybill): the console lists them as they
// arrive and lets the operator assign one that matched nothing to a sale.
type Till interface {
	// TillPayments returns the payments received, newest first.
	TillPayments() []TillPayment
	// AssignTill assigns the payment id to the sale txnID; the assignment
	// is journaled.
	AssignTill(id, txnID string) error
}
