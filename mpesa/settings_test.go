package mpesa_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/daraja"
	"paydesk/payment"
)

// valid are settings a sandbox kiosk starts with.
func validSettings() mpesa.Settings {
	return mpesa.Settings{Env: "sandbox", ShortCode: "174379", Kind: "paybill", ConsumerKey: "k", ConsumerSecret: "s", Passkey: "p",
		CallbackURL: "https://kiosk.example.com", Listen: "127.0.0.1:0", Desc: "Kiosk sale", Wait: time.Minute, C2BWait: time.Minute}
}

// Each rule of the settings refuses with the setting's flag named; a
// fake Daraja (BaseURL) lifts production's rules.
func TestSettingsValidate(t *testing.T) {
	if err := validSettings().Validate(); err != nil {
		t.Fatalf("valid settings refused: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*mpesa.Settings)
		want string
	}{
		{"env", func(s *mpesa.Settings) { s.Env = "staging" }, "--mpesa-env must be sandbox or production"},
		{"production http", func(s *mpesa.Settings) { s.Env, s.CallbackURL = "production", "http://kiosk.example.com" }, "must be an https:// URL in production"},
		{"production register", func(s *mpesa.Settings) { s.Env, s.RegisterC2B = "production", true }, "PAYDESK_MPESA_PATH_SECRET"},
		{"type", func(s *mpesa.Settings) { s.Kind = "shop" }, "--mpesa-type must be paybill or till"},
		{"allow", func(s *mpesa.Settings) { s.Allow = "not-an-ip" }, "--mpesa-allow"},
		{"proxies", func(s *mpesa.Settings) { s.TrustedProxies = "10.0.0.0/33" }, "--mpesa-trusted-proxies"},
		{"wait", func(s *mpesa.Settings) { s.Wait = 0 }, "--mpesa-wait must be positive"},
		{"c2b wait", func(s *mpesa.Settings) { s.C2BWait = -time.Second }, "--mpesa-c2b-wait must be positive"},
		{"via hub without one", func(s *mpesa.Settings) { s.ViaHub = true }, "--mpesa-via-hub needs the hub's URL"},
		{"via hub production http", func(s *mpesa.Settings) { s.Env, s.ViaHub, s.HubURL = "production", true, "http://hub.example.com" },
			"the hub's URL must be https:// in production"},
	} {
		s := validSettings()
		c.edit(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	s := validSettings()
	s.Env, s.BaseURL, s.CallbackURL, s.RegisterC2B = "production", "http://127.0.0.1:1", "http://kiosk.example.com", true
	if err := s.Validate(); err != nil {
		t.Errorf("production rules applied to a fake Daraja: %v", err)
	}
}

// Open builds the rail: without a path secret it keeps one beside the
// journal, the same on the next open; without a callback URL it needs
// Local (the demo) and then uses the listen address.
func TestSettingsOpen(t *testing.T) {
	dir := t.TempDir()
	j, _, err := payment.OpenJournal(filepath.Join(dir, "j.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	bus := payment.NewBus(j, quietLog())
	t.Cleanup(bus.Close)
	open := func(s mpesa.Settings) *mpesa.Opened {
		t.Helper()
		o, err := s.Open(bus, quietLog(), dir)
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- o.Rail.Serve(ctx, o.Listener) }()
		t.Cleanup(func() {
			stop()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
		return o
	}
	first := open(validSettings())
	if _, err := os.Stat(filepath.Join(dir, mpesa.PathSecretFile)); err != nil {
		t.Fatalf("no path secret kept: %v", err)
	}
	second := open(validSettings())
	if first.Rail.STKCallbackURL() != second.Rail.STKCallbackURL() {
		t.Errorf("callback URL changed across opens: %s, then %s", first.Rail.STKCallbackURL(), second.Rail.STKCallbackURL())
	}
	if first.BaseURL != daraja.SandboxURL || first.PublicURL != "https://kiosk.example.com" {
		t.Errorf("base %s public %s", first.BaseURL, first.PublicURL)
	}

	s := validSettings()
	s.CallbackURL = ""
	if _, err := s.Open(bus, quietLog(), dir); err == nil || !strings.Contains(err.Error(), "--mpesa-callback-url") {
		t.Errorf("no callback URL: %v", err)
	}
	s.Local = true
	local := open(s)
	if want := "http://" + local.Listener.Addr().String(); local.PublicURL != want {
		t.Errorf("local public URL %s, want %s", local.PublicURL, want)
	}
}

// Via the hub, the rail gives Daraja the hub's URLs, and needs no
// callback URL of its own.
func TestSettingsViaHub(t *testing.T) {
	dir := t.TempDir()
	j, _, err := payment.OpenJournal(filepath.Join(dir, "j.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	bus := payment.NewBus(j, quietLog())
	t.Cleanup(bus.Close)
	s := validSettings()
	s.Env, s.CallbackURL, s.ViaHub, s.HubURL = "production", "", true, "https://hub.example.com/"
	o, err := s.Open(bus, quietLog(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Listener.Close(); o.Rail.Close() })
	for got, want := range map[string]string{
		o.Rail.STKCallbackURL():  "https://hub.example.com" + mpesa.HubPathSTK,
		o.Rail.ConfirmationURL(): "https://hub.example.com" + mpesa.HubPathC2BConfirmation,
		o.Rail.ValidationURL():   "https://hub.example.com" + mpesa.HubPathC2BValidation,
	} {
		if got != want {
			t.Errorf("URL %s, want %s", got, want)
		}
	}
}

// M-Pesa on a customer display is paybill/till (c2b), in shillings: the
// display collects no phone number for a push.
func TestDisplayMode(t *testing.T) {
	var r *mpesa.Rail
	for _, mode := range []payment.Mode{"", "c2b"} {
		if m, err := r.DisplayMode(payment.DisplayMethod{Name: "MPESA", Mode: mode, Currency: "KES"}); err != nil || m != payment.ModeC2B {
			t.Errorf("mode %q: %q %v", mode, m, err)
		}
	}
	for m, want := range map[payment.DisplayMethod]string{
		{Name: "MPESA", Mode: "stk_push", Currency: "KES"}:             "STK Push needs the customer's phone number",
		{Name: "MPESA", Mode: "card", Currency: "KES"}:                 `mode "card" on M-Pesa must be c2b`,
		{Name: "MPESA", Mode: "c2b", Target: "POS01", Currency: "KES"}: "M-Pesa has no terminal",
		{Name: "MPESA", Currency: "MYR"}:                               "MPESA is paid by M-Pesa in Kenyan shillings, but the display is in MYR: set --screens-currency KES",
	} {
		if _, err := r.DisplayMode(m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", m, err, want)
		}
	}
}
