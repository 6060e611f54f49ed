package protocol_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
)

func goodSettings() protocol.Settings {
	return protocol.Settings{Listen: "127.0.0.1:0", Secret: []byte("s"), AckTimeout: time.Second, ResultTimeout: time.Minute, Window: time.Minute}
}

// Each setting's rule, named by its flag.
func TestSettingsRules(t *testing.T) {
	for _, c := range []struct {
		set  func(*protocol.Settings)
		want string
	}{
		{func(s *protocol.Settings) { s.AckTimeout = 0 }, "--ack-timeout must be positive"},
		{func(s *protocol.Settings) { s.ResultTimeout = -time.Second }, "--result-timeout must be positive"},
		{func(s *protocol.Settings) { s.Window = 0 }, "--window must be positive"},
		{func(s *protocol.Settings) { s.CertFile = "x.pem" }, "TLS needs both --tls-cert and --tls-key"},
		{func(s *protocol.Settings) { s.KeyFile = "x.key" }, "TLS needs both --tls-cert and --tls-key"},
		{func(s *protocol.Settings) { s.CertFile, s.KeyFile = "/nonexistent/x.pem", "/nonexistent/x.key" }, "load TLS certificate"},
	} {
		s := goodSettings()
		c.set(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", s, err, c.want)
		}
		if _, _, err := s.Open(nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open %+v: %v, want %q", s, err, c.want)
		}
	}
	if err := goodSettings().Validate(); err != nil {
		t.Errorf("good settings: %v", err)
	}
}

// With a certificate and key, Open's listener speaks TLS with that
// certificate.
func TestSettingsOpenLoadsTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	s := goodSettings()
	s.CertFile, s.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(s.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(s.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	j, _, err := payment.OpenJournal(filepath.Join(dir, "j.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, nil)
	defer func() { bus.Close(); j.Close() }()
	srv, ln, err := s.Open(bus, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			c.Close()
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

// What a customer display may pay on the POS: card by default, BNPL and
// DuitNow QR; IPP needs a plan choice the display does not offer.
func TestDisplayMode(t *testing.T) {
	var pos *protocol.Server
	for mode, want := range map[payment.Mode]payment.Mode{"": payment.ModeCard, "card": payment.ModeCard, "bnpl": payment.ModeBNPL, "duitnow_qr": payment.ModeDuitNowQR} {
		if got, err := pos.DisplayMode(payment.DisplayMethod{Name: "X", Mode: mode, Target: "POS002"}); err != nil || got != want {
			t.Errorf("mode %q: %q %v, want %q", mode, got, err, want)
		}
	}
	for _, mode := range []payment.Mode{"ipp", "c2b"} {
		if _, err := pos.DisplayMode(payment.DisplayMethod{Name: "X", Mode: mode}); err == nil || !strings.Contains(err.Error(), "X: mode \""+string(mode)+"\" on the POS must be card, bnpl or duitnow_qr") ||
			!strings.Contains(err.Error(), "ipp needs a plan choice") {
			t.Errorf("mode %q: %v", mode, err)
		}
	}
}

// The link is up for a display's method while a POS is connected.
func TestHealth(t *testing.T) {
	k := postest.New(t, protocol.Options{})
	if h := k.Server.Health(); h.Up || h.Detail != "no POS connected" {
		t.Errorf("no POS: %+v", h)
	}
	k.AddSim(t, possim.Options{})
	if h := k.Server.Health(); !h.Up || h.Detail != "ready" {
		t.Errorf("a POS connected: %+v", h)
	}
}
