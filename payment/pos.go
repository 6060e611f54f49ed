package payment

import "time"

// Peer is one connected POS as the consoles list it. The POS link fills
// it; the consoles only read it.
type Peer struct {
	// ID is the pos_id the POS sent, empty until it sent one.
	ID      string
	Addr    string
	Since   time.Time
	LastMsg time.Time
	// Busy is the id of the transaction in flight on this POS, if any.
	Busy string
	// Rejected is how many frames from this connection were refused.
	Rejected int64
}

// Label is how the console names the POS: its id, else its address.
func (p Peer) Label() string {
	if p.ID != "" {
		return p.ID
	}
	return p.Addr
}

// Flight is a POS payment in flight, for the consoles' status: what it
// waits for and until when.
type Flight struct {
	ID       string
	Mode     Mode
	Amount   Money
	Status   Status
	Peer     string
	Deadline time.Time
	// Waiting says what the payment waits for ("ack", "result", "plan
	// choice", "cancel confirmation").
	Waiting         string
	CancelRequested bool
	Plans           []Plan
}
