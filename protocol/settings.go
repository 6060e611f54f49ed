package protocol

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"paydesk/internal/tlsfiles"
	"paydesk/payment"
)

// Settings are the MobyPay POS link as an operator configures it (flags,
// PAYDESK_* variables, the config file); errors name each setting by its
// flag. Validate checks them; Open builds the server from them.
type Settings struct {
	// Listen is the address POS terminals connect to (--listen).
	Listen string
	// CertFile and KeyFile make the link speak TLS (--tls-cert,
	// --tls-key): both or neither.
	CertFile, KeyFile string
	// Secret is the key shared with the POS terminals: a secret, from
	// --secret-file, PAYDESK_SECRET or the config file, never a flag.
	Secret []byte
	// KioskID is sent as kiosk_id (--kiosk-id).
	KioskID string
	// AckTimeout, ResultTimeout and Window must be positive
	// (--ack-timeout, --result-timeout, --window); IdleTimeout 0 keeps a
	// quiet POS connected (--idle-timeout).
	AckTimeout, ResultTimeout, Window, IdleTimeout time.Duration
}

// Validate checks s: the waits, and the TLS certificate and key (both
// given, and loadable).
func (s Settings) Validate() error {
	_, err := s.options()
	return err
}

// options are the settings as the server takes them.
func (s Settings) options() (Options, error) {
	for _, w := range []struct {
		flag string
		d    time.Duration
	}{{"--ack-timeout", s.AckTimeout}, {"--result-timeout", s.ResultTimeout}, {"--window", s.Window}} {
		if w.d <= 0 {
			return Options{}, fmt.Errorf("%s must be positive, got %s", w.flag, w.d)
		}
	}
	o := Options{Addr: s.Listen, Secret: s.Secret, KioskID: s.KioskID, Window: s.Window,
		AckTimeout: s.AckTimeout, ResultTimeout: s.ResultTimeout, IdleTimeout: s.IdleTimeout}
	var err error
	o.TLS, err = tlsfiles.Load(s.CertFile, s.KeyFile, "--tls-cert", "--tls-key")
	return o, err
}

// Open validates s and returns the server with its listener bound (a
// busy port is reported here); Serve(ctx, ln) runs it.
func (s Settings) Open(bus *payment.Bus, log *slog.Logger) (*Server, net.Listener, error) {
	o, err := s.options()
	if err != nil {
		return nil, nil, err
	}
	o.Logger = log
	srv, err := NewServer(bus, o)
	if err != nil {
		return nil, nil, err
	}
	ln, err := srv.Listen()
	if err != nil {
		return nil, nil, err
	}
	return srv, ln, nil
}

// Health is the link as a customer display's method sees it: up while a
// POS is connected to take the payment.
func (s *Server) Health() payment.Health {
	if len(s.Peers()) == 0 {
		return payment.Health{Up: false, Detail: "no POS connected"}
	}
	return payment.Health{Up: true, Detail: "ready"}
}

// DisplayMode is what a customer display may pay on the POS: card (the
// default), BNPL or DuitNow QR, on any POS or the one named with @. IPP
// is not offered: its plan is chosen by an operator.
func (*Server) DisplayMode(m payment.DisplayMethod) (payment.Mode, error) {
	switch m.Mode {
	case "":
		return payment.ModeCard, nil
	case payment.ModeCard, payment.ModeBNPL, payment.ModeDuitNowQR:
		return m.Mode, nil
	}
	return "", fmt.Errorf("%s: mode %q on the POS must be card, bnpl or duitnow_qr (ipp needs a plan choice the display does not offer)", m.Name, m.Mode)
}
