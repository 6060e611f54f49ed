package payment

import "testing"

func TestTransitions(t *testing.T) {
	legal := [][2]Status{
		{"", StatusCreated},
		{StatusCreated, StatusSent},
		{StatusSent, StatusAcknowledged},
		{StatusSent, StatusPlansOffered},
		{StatusAcknowledged, StatusPlansOffered},
		{StatusPlansOffered, StatusPlanSelected},
		{StatusPlanSelected, StatusApproved},
		{StatusAcknowledged, StatusTimedOut},
		{StatusSent, StatusUnknown},
		{StatusUnknown, StatusApproved},
		{StatusUnknown, StatusDeclined},
	}
	for _, tr := range legal {
		if !CanTransition(tr[0], tr[1]) {
			t.Errorf("%q → %q should be legal", tr[0], tr[1])
		}
	}
	illegal := [][2]Status{
		{"", StatusSent},
		{StatusCreated, StatusCreated},
		{StatusApproved, StatusDeclined},
		{StatusCancelled, StatusApproved},
		{StatusTimedOut, StatusUnknown},
		{StatusUnknown, StatusUnknown},
		{StatusAcknowledged, StatusSent},
		{StatusPlanSelected, StatusPlansOffered},
		{StatusCreated, StatusPlanSelected},
		{StatusSent, "bogus"},
	}
	for _, tr := range illegal {
		if CanTransition(tr[0], tr[1]) {
			t.Errorf("%q → %q should be illegal", tr[0], tr[1])
		}
	}
	for _, s := range Statuses {
		if s.Final() {
			for _, to := range Statuses {
				if CanTransition(s, to) {
					t.Errorf("final status %s may not move to %s", s, to)
				}
			}
		}
	}
}
