package payment

import (
	"errors"
	"fmt"
)

// Status is where a transaction is in its life. The lifecycle is
//
//	created → sent → acknowledged → [plans_offered → plan_selected] →
//	approved | declined | cancelled | timed_out | failed
//
// plus unknown for a payment that was in flight when paydesk stopped.
type Status string

// The statuses of the lifecycle.
const (
	StatusCreated      Status = "created"
	StatusSent         Status = "sent"
	StatusAcknowledged Status = "acknowledged"
	StatusPlansOffered Status = "plans_offered"
	StatusPlanSelected Status = "plan_selected"
	StatusApproved     Status = "approved"
	StatusDeclined     Status = "declined"
	StatusCancelled    Status = "cancelled"
	StatusTimedOut     Status = "timed_out"
	StatusFailed       Status = "failed"
	// StatusUnknown marks a transaction that was not final when paydesk
	// stopped: the outcome must be checked on the peer and resolved by the
	// operator (or by a late result).
	StatusUnknown Status = "unknown"
)

// Statuses lists every status in lifecycle order, for totals and help.
var Statuses = []Status{
	StatusCreated, StatusSent, StatusAcknowledged, StatusPlansOffered,
	StatusPlanSelected, StatusApproved, StatusDeclined, StatusCancelled,
	StatusTimedOut, StatusFailed, StatusUnknown,
}

// Final reports whether no further transition may leave s (unknown is not
// final: it waits for reconciliation).
func (s Status) Final() bool {
	switch s {
	case StatusApproved, StatusDeclined, StatusCancelled, StatusTimedOut, StatusFailed:
		return true
	}
	return false
}

// Valid reports whether s is one of the lifecycle's statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

var endings = []Status{StatusApproved, StatusDeclined, StatusCancelled, StatusTimedOut, StatusFailed}

// transitions lists, for each status, where a transaction may go next.
// Any status that is not final may also become unknown (on recovery).
var transitions = map[Status][]Status{
	StatusCreated:      append([]Status{StatusSent}, endings...),
	StatusSent:         append([]Status{StatusAcknowledged, StatusPlansOffered}, endings...),
	StatusAcknowledged: append([]Status{StatusPlansOffered}, endings...),
	StatusPlansOffered: append([]Status{StatusPlanSelected}, endings...),
	StatusPlanSelected: endings,
	StatusUnknown:      endings,
}

// ErrIllegalTransition is wrapped by TransitionError.
var ErrIllegalTransition = errors.New("illegal transition")

// TransitionError reports a transition the lifecycle forbids. It is never
// applied: the journal refuses it and the caller logs it.
type TransitionError struct {
	TxnID    string
	From, To Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("transaction %s: illegal transition %s → %s", e.TxnID, e.From, e.To)
}

// Unwrap lets errors.Is(err, ErrIllegalTransition) match.
func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }

// CanTransition reports whether the lifecycle allows from → to. A new
// transaction starts with from == "" and to == created.
func CanTransition(from, to Status) bool {
	if from == "" {
		return to == StatusCreated
	}
	if to == StatusUnknown {
		return !from.Final() && from != StatusUnknown
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}
