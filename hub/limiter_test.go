package hub

import (
	"testing"
	"time"
)

func TestRejectionsAreLoggedAtABoundedRate(t *testing.T) {
	l := &limiter{per: 10}
	t0 := time.Unix(1000, 0)
	logged := 0
	for i := range 1000 {
		if ok, _ := l.allow(t0.Add(time.Duration(i) * time.Microsecond)); ok {
			logged++
		}
	}
	if logged != 10 {
		t.Fatalf("%d of 1000 rejections in a millisecond logged, want 10", logged)
	}
	// The next second's first log says how many were not logged.
	ok, dropped := l.allow(t0.Add(time.Second + time.Millisecond))
	if !ok || dropped != 990 {
		t.Fatalf("next second: ok %v, dropped %d; want true, 990", ok, dropped)
	}
}
