package payment

import "time"

// Display is one customer display (a tablet running the Android app or the
// browser page) as the consoles list it. The customer-screen server fills
// it; the consoles only read it.
type Display struct {
	// ID is the server-issued session id; it survives reconnects.
	ID string
	// Label names the display for people: the device serial it reported,
	// else "display-N".
	Label string
	// Addr is the remote address of its current or last connection.
	Addr string
	// Connected is false between a drop and the reconnect.
	Connected bool
	// Screen is what the display shows (AMOUNT_SELECT, PROCESSING, …).
	Screen string
	// Flow is the transactionId the server issued for the customer's
	// current selection.
	Flow string
	// TxnID is the rail's transaction of the payment in progress or just
	// finished; "" before a method is chosen.
	TxnID string
	// Amount and Method are the customer's choices so far.
	Amount Money
	Method string
	// Since is when the display first connected.
	Since time.Time
}
