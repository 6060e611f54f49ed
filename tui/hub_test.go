package tui

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The header shows the hub link's state when a hub is configured,
// refreshed by the clock's tick, within 80×24 and 60×15; without a hub it
// says nothing of one.
func TestHeaderShowsHubLag(t *testing.T) {
	var state atomic.Value
	state.Store("up to date")
	cfg := testConfig()
	cfg.Hub = func() string { return state.Load().(string) }
	bus := testBus(t)
	for _, size := range [][2]int{{80, 24}, {60, 15}} {
		w, h := size[0], size[1]
		state.Store("up to date")
		m := sized(newModel(cfg, &fakeRail{}, bus), w, h)
		v := m.View()
		fits(t, v, w, h)
		if !strings.Contains(v, "hub: up to date") {
			t.Errorf("%dx%d: no hub state in the header:\n%s", w, h, v)
		}
		for _, want := range []string{"42 events behind", "not connected (retrying)"} {
			state.Store(want)
			m = send(m, tickMsg(clock.Add(time.Second)))
			v = m.View()
			fits(t, v, w, h)
			if !strings.Contains(v, "hub: "+want) {
				t.Errorf("%dx%d: after a tick the header lacks %q:\n%s", w, h, "hub: "+want, v)
			}
		}
	}
	if v := sized(newModel(testConfig(), &fakeRail{}, bus), 80, 24).View(); strings.Contains(v, "hub:") {
		t.Errorf("a console without a hub mentions one:\n%s", v)
	}
}
