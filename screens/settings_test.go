package screens

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
)

// stubStarter is a rail that does nothing; name tells stubs apart (a
// pointer to an empty struct may equal another).
type stubStarter struct{ name string }

func (stubStarter) Start(context.Context, payment.Request) (string, error) { return "", nil }
func (stubStarter) Cancel(string) error                                    { return nil }

// offerRail is a rail that offers a display the modes in modes (the
// first is its default) and takes no @target.
type offerRail struct {
	stubStarter
	modes []payment.Mode
}

func (r *offerRail) DisplayMode(m payment.DisplayMethod) (payment.Mode, error) {
	if m.Target != "" {
		return "", fmt.Errorf("%s: %s has no terminal to name with @", m.Name, r.name)
	}
	if m.Mode == "" {
		return r.modes[0], nil
	}
	for _, mode := range r.modes {
		if m.Mode == mode {
			return mode, nil
		}
	}
	return "", fmt.Errorf("%s: mode %q on %s (in %s) is not offered", m.Name, m.Mode, r.name, m.Currency)
}

// Each method names a rail the settings were given and a mode that rail
// offers; the rail's own rule (payment.DisplayOffer) decides the mode.
// The rails' rules are tested beside them (protocol, terminal, mpesa).
func TestMethodsSetting(t *testing.T) {
	pos, term := &offerRail{stubStarter{"pos"}, []payment.Mode{payment.ModeCard, payment.ModeBNPL}}, &stubStarter{"terminal"}
	rails := map[string]payment.Starter{"pos": pos, "terminal": term, "mpesa": nil}
	pos.modes = append(pos.modes, payment.ModeDuitNowQR)
	ms, err := parseMethods("debit_card=terminal, PAY_BY_BANK=pos:duitnow_qr, BNPL=POS:BNPL, CARD=pos", rails, "MYR")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, m := range ms {
		got = append(got, fmt.Sprintf("%s %s %s %s", m.Name, m.RailName, m.Mode, m.Target))
		if m.Rail != rails[string(m.RailName)] {
			t.Errorf("%s is paid on %v, want the %s rail", m.Name, m.Rail, m.RailName)
		}
	}
	if strings.Join(got, "|") != "DEBIT_CARD terminal  |PAY_BY_BANK pos duitnow_qr |BNPL pos bnpl |CARD pos card " {
		t.Fatalf("methods %q", got)
	}
	// A rail that says nothing of its modes takes the target as written.
	if ms, err := parseMethods("X=terminal:card@T2", rails, "MYR"); err != nil || ms[0].Mode != payment.ModeCard || ms[0].Target != "T2" {
		t.Errorf("X=terminal:card@T2: %+v %v", ms, err)
	}
	for spec, want := range map[string]string{
		"DEBIT_CARD":             "want NAME=RAIL",
		"X=pos:ipp":              `X: mode "ipp" on pos (in MYR) is not offered`,
		"X=pos@POS002":           "X: pos has no terminal to name with @",
		"X=mpesa":                "X: the mpesa rail is not configured",
		"X=paypal":               `X: unknown rail "paypal" (mpesa, pos, terminal or display)`,
		"":                       "no methods",
		"X=terminal,Y=nowhere:x": "unknown rail",
	} {
		if _, err := parseMethods(spec, rails, "MYR"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
	}
	if _, err := parseMethods("X=terminal", map[string]payment.Starter{"pos": pos}, "MYR"); err == nil || !strings.Contains(err.Error(), `unknown rail "terminal"`) {
		t.Errorf("terminal unknown: %v", err)
	}
	// Settings name the flag.
	set := Settings{Presets: "20", Currency: "myr", Min: 10, Max: 300, IdleTimeout: time.Minute, StepDelay: time.Second, Methods: "DEBIT_CARD=pos,X=mpesa", Rails: rails}
	if err := set.Validate(); err == nil || !strings.HasPrefix(err.Error(), "--screens-methods: X: the mpesa rail is not configured") {
		t.Errorf("settings: %v", err)
	}
	set.Methods = "DEBIT_CARD=pos:bnpl"
	if o, err := set.Options(); err != nil || len(o.Methods) != 1 || o.Methods[0].Mode != payment.ModeBNPL || o.Currency != "MYR" {
		t.Errorf("settings: %+v %v", o, err)
	}
}

// The settings the Android app reads: its paymentProvider, and a daily
// limit that fits its 32-bit Int, refused at start with the reason.
func TestSettingsForTheApp(t *testing.T) {
	rails := map[string]payment.Starter{"pos": &stubStarter{"pos"}}
	set := Settings{Presets: "20", Currency: "GBP", Min: 10, Max: 300, IdleTimeout: time.Minute, StepDelay: time.Second, Methods: "DEBIT_CARD=pos", PaymentProvider: "NNSmart", Rails: rails}
	o, err := set.Options()
	if err != nil || o.PaymentProvider != "nnsmart" {
		t.Fatalf("provider nnsmart: %+v %v", o.PaymentProvider, err)
	}
	set.PaymentProvider = "planet"
	if err := set.Validate(); err == nil || !strings.Contains(err.Error(), "--screens-payment-provider") {
		t.Errorf("provider planet: %v", err)
	}
	ms, err := parseMethods("DEBIT_CARD=display,PAY_BY_BANK=display", rails, "GBP")
	if err != nil || len(ms) != 2 || ms[0].RailName != payment.RailScreen || ms[0].Rail != nil || ms[1].Mode != payment.ModeCard {
		t.Errorf("methods on the display's own terminal: %+v %v", ms, err)
	}
	if _, err := parseMethods("X=display:bnpl", rails, "GBP"); err == nil {
		t.Error("bnpl on the display's own terminal accepted")
	}
	set.PaymentProvider, set.DailyLimit = "integra", 3_000_000_000
	if err := set.Validate(); err == nil || !strings.Contains(err.Error(), "--screens-daily-limit") || !strings.Contains(err.Error(), "2147483647") {
		t.Errorf("daily limit 3,000,000,000: %v", err)
	}
}

// The other settings' rules, named by their flags.
func TestSettingsRules(t *testing.T) {
	good := Settings{Presets: "20, 40,", Currency: "GBP", Min: 10, Max: 300, IdleTimeout: time.Minute, StepDelay: time.Second,
		Methods: "DEBIT_CARD=pos", Rails: map[string]payment.Starter{"pos": &stubStarter{"pos"}}}
	if o, err := good.Options(); err != nil || fmt.Sprint(o.Presets) != "[20 40]" {
		t.Fatalf("good: %v %v", o.Presets, err)
	}
	for _, c := range []struct {
		set  func(*Settings)
		want string
	}{
		{func(s *Settings) { s.Presets = "20,x" }, `--screens-presets: "x" is not a positive whole number`},
		{func(s *Settings) { s.Presets = "0" }, `--screens-presets: "0"`},
		{func(s *Settings) { s.Currency = "POUND" }, "--screens-currency"},
		{func(s *Settings) { s.IdleTimeout = 0 }, "--screens-idle-timeout and --screens-step must be positive"},
		{func(s *Settings) { s.StepDelay = 0 }, "--screens-idle-timeout and --screens-step must be positive"},
		{func(s *Settings) { s.DailyLimit = -1 }, "--screens-daily-limit"},
		{func(s *Settings) { s.LocalTimeout = -time.Second }, "--screens-local-timeout must not be negative"},
		{func(s *Settings) { s.CertFile = "x.pem" }, "needs both --screens-tls-cert and --screens-tls-key"},
		{func(s *Settings) { s.CertFile, s.KeyFile = "/nonexistent/c.pem", "/nonexistent/k.pem" }, "customer display: load TLS certificate"},
	} {
		s := good
		c.set(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", s, err, c.want)
		}
		if _, _, err := s.Open(nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open: %v, want %q", err, c.want)
		}
	}
}
