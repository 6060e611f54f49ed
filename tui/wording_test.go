package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
)

// An M-Pesa payment's peer is a masked phone: the journal list shows it
// whole, as the history does, under a header that fits every rail, and
// the history's long details are read whole at 80 columns.
func TestJournalShowsPhoneWhole(t *testing.T) {
	bus := testBus(t)
	detail := "STK Push of KES 150 to 2547****149, reference PD75GWE5QK, waiting for the customer to enter the M-Pesa PIN"
	for _, ev := range []payment.Event{
		{Time: clock, Kind: payment.KindTransition, TxnID: "PD75GWE5QK", Rail: payment.RailMPesa, Status: payment.StatusCreated,
			Mode: payment.Mode("stk_push"), Amount: payment.Money{Minor: 15000, Currency: "KES"}, Peer: "2547****149", Detail: detail},
		{Time: clock.Add(time.Second), Kind: payment.KindTransition, TxnID: "PD75GWE5QK", Rail: payment.RailMPesa, Status: payment.StatusApproved},
	} {
		if _, err := bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	m := New(testConfig(), &fakeRail{}, bus)
	m = press(m, "j")
	v := m.View()
	if !strings.Contains(v, "2547****149") || strings.Contains(v, "2547***…") {
		t.Errorf("the journal list cuts the masked phone:\n%s", v)
	}
	if strings.Contains(v, " POS \n") || !strings.Contains(v, "Peer") {
		t.Errorf("the journal list's peer column is headed POS:\n%s", v)
	}
	if err := m.journal.openSelected(bus.Journal()); err != nil {
		t.Fatal(err)
	}
	v = m.View()
	if flat := strings.Join(strings.Fields(v), " "); !strings.Contains(flat, detail) {
		t.Errorf("the history cuts a detail:\n%s", v)
	}
	for _, l := range strings.Split(v, "\n") {
		if w := len([]rune(l)); w > 80 {
			t.Errorf("line of %d columns: %q", w, l)
		}
	}
}
