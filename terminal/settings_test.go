package terminal

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
)

func goodSettings() Settings {
	return Settings{Port: "/dev/ttyACM0", Baud: DefaultBaud, Format: "8n1", POS: 1, Currency: "eur", Protocol: "e+", Answer: "FULL", ResultTimeout: time.Minute, MaxMinor: 5000}
}

// Each setting's rule, named by its flag, and what the good ones become.
func TestSettingsRules(t *testing.T) {
	for _, c := range []struct {
		set  func(*Settings)
		want string
	}{
		{func(s *Settings) { s.Format = "9Z1" }, "--terminal-format"},
		{func(s *Settings) { s.Baud = 0 }, "--terminal-baud must be positive, got 0"},
		{func(s *Settings) { s.POS = 100 }, "--terminal-pos must be 1-99, got 100"},
		{func(s *Settings) { s.POS = 0 }, "--terminal-pos must be 1-99, got 0"},
		{func(s *Settings) { s.Currency = "XXY" }, "--terminal-currency"},
		{func(s *Settings) { s.Protocol = "F" }, `--terminal-protocol must be E+ or E, not "F"`},
		{func(s *Settings) { s.Answer = "long" }, `--terminal-answer must be full or short, not "long"`},
		{func(s *Settings) { s.ResultTimeout = 0 }, "--terminal-result-timeout must be positive"},
	} {
		s := goodSettings()
		c.set(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", s, err, c.want)
		}
		if _, err := s.Open(nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open %+v: %v, want %q", s, err, c.want)
		}
	}
	s := goodSettings()
	s.Protocol, s.Answer = "E", "short"
	o, err := s.options()
	if err != nil {
		t.Fatal(err)
	}
	if !o.ProtocolE || !o.ShortAnswer || o.Currency != "EUR" || o.Port.Format != "8N1" || o.ProbeInterval >= 0 || o.MaxMinor != 5000 || o.Timers.Result != time.Minute {
		t.Errorf("options %+v", o)
	}
	s.Probe = time.Minute
	if o, _ := s.options(); o.ProbeInterval != time.Minute {
		t.Errorf("probe 1m: %s", o.ProbeInterval)
	}
}

// A customer display takes only card on the terminal.
func TestDisplayMode(t *testing.T) {
	var d *Driver
	for _, mode := range []payment.Mode{"", "card"} {
		if m, err := d.DisplayMode(payment.DisplayMethod{Name: "X", Mode: mode}); err != nil || m != payment.ModeCard {
			t.Errorf("mode %q: %q %v", mode, m, err)
		}
	}
	if _, err := d.DisplayMode(payment.DisplayMethod{Name: "X", Mode: "bnpl"}); err == nil || err.Error() != "X: the terminal takes only card" {
		t.Errorf("bnpl: %v", err)
	}
}

// The driver's health in the consoles' words, and its countdown.
func TestRail(t *testing.T) {
	d, err := goodSettings().Open(nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := &Rail{d}
	var _ interface {
		payment.Starter
		payment.HealthReporter
		payment.Deadliner
		payment.Currencier
		payment.DisplayOffer
	} = r
	for _, c := range []struct {
		h    Health
		want payment.Health
	}{
		{Health{State: HealthUnknown}, payment.Health{Up: true, Detail: "checking"}},
		{Health{State: HealthOK}, payment.Health{Up: true, Detail: "ready"}},
		{Health{State: HealthOK, Busy: "TRM1"}, payment.Health{Up: true, Detail: "busy"}},
		{Health{State: HealthNoAnswer, Detail: "no ACK to ENQ within 3s"}, payment.Health{Up: false, Detail: "not answering: no ACK to ENQ within 3s"}},
		{Health{State: HealthPortClosed}, payment.Health{Up: false, Detail: "port closed"}},
	} {
		d.mu.Lock()
		d.health = c.h
		d.mu.Unlock()
		if got := r.Health(); got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.h, got, c.want)
		}
	}
	if r.Currency() != "EUR" {
		t.Errorf("currency %q", r.Currency())
	}
	if _, _, ok := r.Deadline("TRM1"); ok {
		t.Error("a deadline with no payment in flight")
	}
}
