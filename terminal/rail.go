package terminal

import (
	"time"

	"paydesk/payment"
)

// Rail is the driver as the consoles and the customer display take
// payments on it: a payment.Starter that also reports its health in the
// consoles' words (payment.HealthReporter), its countdown
// (payment.Deadliner), its currency (payment.Currencier) and the modes a
// display may use (payment.DisplayOffer).
type Rail struct{ *Driver }

// Health is the terminal's state in the consoles' header.
func (r *Rail) Health() payment.Health {
	h := r.Driver.Health()
	switch h.State {
	case HealthOK:
		if h.Busy != "" {
			return payment.Health{Up: true, Detail: "busy"}
		}
		return payment.Health{Up: true, Detail: "ready"}
	case HealthUnknown:
		return payment.Health{Up: true, Detail: "checking"}
	}
	detail := string(h.State)
	if h.Detail != "" {
		detail += ": " + h.Detail
	}
	return payment.Health{Up: false, Detail: detail}
}

// Deadline is what the driver waits for on txn id, and until when.
func (r *Rail) Deadline(id string) (string, time.Time, bool) {
	f, ok := r.Current()
	if !ok || f.ID != id || f.Deadline.IsZero() {
		return "", time.Time{}, false
	}
	return f.Waiting, f.Deadline, true
}
