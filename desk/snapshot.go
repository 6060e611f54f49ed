package desk

import (
	"context"
	"fmt"
	"time"

	"paydesk/payment"
)

// NamedHealth is a rail's health under its name.
type NamedHealth struct {
	Rail payment.Rail
	payment.Health
}

// Snapshot is what the consoles show of the kiosk at one moment: the
// rails' state and the journal's figures. A console takes one with
// Desk.Snapshot outside its event loop (the full-screen console in a
// tea.Cmd) and draws from it.
type Snapshot struct {
	// Peers are the connected POS terminals in the order they connected;
	// Default is the POS a payment goes to when none is chosen.
	Peers   []payment.Peer
	Default string
	// Flights are the POS payments in flight, oldest first.
	Flights []payment.Flight
	// Health is each configured rail's own account of itself, for those
	// that give one, in menu order; not the POS link's (Peers say it).
	Health []NamedHealth
	// Hub is the hub link's state in a few words; "" without a hub.
	Hub string
	// Displays are the customer displays; nil when their server is off.
	Displays []payment.Display
	// Tills are the till payments, newest first; nil without a till rail.
	Tills []payment.TillPayment
	// Counts are the journal's payments by status; Totals the day's
	// takings. Err says why they could not be read (they are then empty).
	Counts map[payment.Status]int
	Totals []payment.Total
	Err    error
}

// Snapshot reads the rails' state and the journal's counts and the day's
// totals. It reads the journal: call it outside a console's event loop.
func (d *Desk) Snapshot(ctx context.Context) Snapshot {
	s := d.Live()
	j := d.Journal()
	c, err := j.Counts(ctx)
	if err != nil {
		s.Err = fmt.Errorf("journal counts: %w", err)
		return s
	}
	from, to := payment.Day(d.cfg.Now())
	t, err := j.Totals(ctx, from, to)
	if err != nil {
		s.Err = fmt.Errorf("journal totals: %w", err)
		return s
	}
	s.Counts, s.Totals = c, t
	return s
}

// Live is the part of the snapshot the rails keep in memory, without the
// journal's figures: cheap enough for a line console's status between two
// lines.
func (d *Desk) Live() Snapshot {
	var s Snapshot
	if p := d.cfg.POS; p != nil {
		s.Peers, s.Default, s.Flights = p.Peers(), p.DefaultTarget(), p.InFlight()
	}
	for _, r := range d.rails {
		if r.Name == payment.RailPOS {
			continue // its state is its connected POS terminals, shown as such
		}
		if h, ok := r.Starter.(payment.HealthReporter); ok && r.Starter != nil {
			s.Health = append(s.Health, NamedHealth{r.Name, h.Health()})
		}
	}
	if d.cfg.Hub != nil {
		s.Hub = d.cfg.Hub()
	}
	if d.cfg.Displays != nil {
		s.Displays = d.cfg.Displays.Displays()
	}
	if t := d.Till(); t != nil {
		s.Tills = t.TillPayments()
	}
	return s
}

// Flight returns the POS payment id among those in flight.
func (s Snapshot) Flight(id string) (payment.Flight, bool) {
	for _, f := range s.Flights {
		if f.ID == id {
			return f, true
		}
	}
	return payment.Flight{}, false
}

// Deadline is what payment id on rail waits for and until when, for a
// console's countdown; ok is false when it waits for nothing the rail can
// time (or the rail does not say).
func (d *Desk) Deadline(rail payment.Rail, id string) (waiting string, at time.Time, ok bool) {
	if rail == payment.RailPOS {
		if d.cfg.POS == nil {
			return "", time.Time{}, false
		}
		for _, f := range d.cfg.POS.InFlight() {
			if f.ID == id && !f.Deadline.IsZero() {
				return f.Waiting, f.Deadline, true
			}
		}
		return "", time.Time{}, false
	}
	r, _ := d.Rail(rail)
	if dl, isD := r.Starter.(payment.Deadliner); isD && r.Starter != nil {
		return dl.Deadline(id)
	}
	return "", time.Time{}, false
}
