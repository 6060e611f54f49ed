package hub

import "testing"

func TestRailHealthy(t *testing.T) {
	for h, want := range map[string]bool{"ok": true, "ok (2 POS connected)": true, "no POS connected": false,
		"okay": false, "port closed": false, "": false} {
		if got := railHealthy(h); got != want {
			t.Errorf("railHealthy(%q) = %v, want %v", h, got, want)
		}
	}
}
