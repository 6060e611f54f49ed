package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"

	"paydesk/payment"
	"paydesk/screens"
)

// screensSettings bind screens.Settings to flags: the customer display
// server (the PintoAndroid display protocol), off unless an address is
// given (the demo turns it on). Its token is a secret:
// PAYDESK_SCREENS_TOKEN (or its _FILE form, or the config file's
// [screens] table), never a flag.
type screensSettings struct {
	screens.Settings
}

func (s *screensSettings) secrets() []string { return []string{"screens-token"} }

// startRail starts the customer display (see start) on the rails started
// before it.
func (s *screensSettings) startRail(_ context.Context, e *railEnv) error {
	d, err := s.start(e, e.displayRails)
	if err != nil || d == nil {
		return err
	}
	e.displays = d
	return nil
}

// register adds the customer display's flags to fs, with defaults from
// PAYDESK_SCREENS_*.
func (s *screensSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&s.Listen, "screens-listen", env("SCREENS_LISTEN", ""), "address of the customer display WebSocket server, e.g. :5001 (the Android app's port); empty turns it off. The token is the secret PAYDESK_SCREENS_TOKEN (PAYDESK_SCREENS_LISTEN)")
	fs.StringVar(&s.CertFile, "screens-tls-cert", env("SCREENS_TLS_CERT", ""), "TLS certificate for wss:// (PAYDESK_SCREENS_TLS_CERT)")
	fs.StringVar(&s.KeyFile, "screens-tls-key", env("SCREENS_TLS_KEY", ""), "TLS key for wss:// (PAYDESK_SCREENS_TLS_KEY)")
	fs.StringVar(&s.Presets, "screens-presets", env("SCREENS_PRESETS", "20,40,60,80,100"), "preset amounts on the display, whole units, comma-separated (PAYDESK_SCREENS_PRESETS)")
	fs.StringVar(&s.Currency, "screens-currency", env("SCREENS_CURRENCY", payment.DefaultCurrency), "currency of the display's amounts, ISO 4217 (PAYDESK_SCREENS_CURRENCY)")
	fs.IntVar(&s.Min, "screens-min", envInt(fs.Output(), "SCREENS_MIN", screens.DefaultMin), "smallest amount a customer may pay, whole units (PAYDESK_SCREENS_MIN)")
	fs.IntVar(&s.Max, "screens-max", envInt(fs.Output(), "SCREENS_MAX", screens.DefaultMax), "largest amount a customer may pay, whole units (PAYDESK_SCREENS_MAX)")
	fs.IntVar(&s.DailyLimit, "screens-daily-limit", envInt(fs.Output(), "SCREENS_DAILY_LIMIT", 0), "the day's takings on the display's rails above which the display shows LIMIT_ERROR, whole units; 0 = no limit (PAYDESK_SCREENS_DAILY_LIMIT)")
	fs.BoolVar(&s.NoOther, "screens-no-other", env("SCREENS_NO_OTHER", "") != "", "offer only the preset amounts, no keypad (PAYDESK_SCREENS_NO_OTHER)")
	fs.BoolVar(&s.ReceiptQuestion, "screens-receipt-question", env("SCREENS_RECEIPT_QUESTION", "") != "", "after SUCCESS ask RECEIPT_QUESTION and wait for the customer's answer before PRINT_TICKET (PAYDESK_SCREENS_RECEIPT_QUESTION)")
	fs.DurationVar(&s.IdleTimeout, "screens-idle-timeout", envDuration(fs.Output(), "SCREENS_IDLE_TIMEOUT", screens.DefaultIdleTimeout), "a customer idle this long mid-flow gets ERROR/TIMEOUT (PAYDESK_SCREENS_IDLE_TIMEOUT)")
	fs.DurationVar(&s.StepDelay, "screens-step", envDuration(fs.Output(), "SCREENS_STEP", screens.DefaultStepDelay), "how long SUCCESS, PRINT_TICKET, COLLECT_TICKET and THANK_YOU each stay up (PAYDESK_SCREENS_STEP)")
	fs.StringVar(&s.PaymentProvider, "screens-payment-provider", env("SCREENS_PAYMENT_PROVIDER", screens.DefaultPaymentProvider), "the terminal the Android app drives for the methods it pays itself (DEBIT_CARD, PAY_BY_BANK): integra, nnsmart, newland or mock; sent in DEVICE_INFO (PAYDESK_SCREENS_PAYMENT_PROVIDER)")
	fs.DurationVar(&s.LocalTimeout, "screens-local-timeout", envDuration(fs.Output(), "SCREENS_LOCAL_TIMEOUT", screens.DefaultLocalTimeout), "how long the Android app may pay on its own terminal, from the method tap to its card check and from the card check to its PAYMENT_RESULT, before the payment is marked unknown (PAYDESK_SCREENS_LOCAL_TIMEOUT)")
	fs.StringVar(&s.Methods, "screens-methods", env("SCREENS_METHODS", screens.DefaultMethods), "payment methods offered and their rails: NAME=RAIL[:MODE][@POS], RAIL pos, terminal, mpesa or display (the Android app's own terminal: use DEBIT_CARD=display,PAY_BY_BANK=display with the app), MODE card, bnpl or duitnow_qr (pos), c2b (mpesa: paybill/till with the reference shown; needs --screens-currency KES) (PAYDESK_SCREENS_METHODS)")
}

// lanURLs are the display's URLs on this machine's network addresses when
// it listens on all of them, for pointing a tablet at it.
func lanURLs(srv *screens.Server) []string {
	a, ok := srv.Addr().(*net.TCPAddr)
	if !ok || !a.IP.IsUnspecified() {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	scheme := strings.SplitN(srv.URL(), ":", 2)[0]
	var out []string
	for _, ia := range addrs {
		ipn, ok := ia.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, fmt.Sprintf("%s://%s/", scheme, net.JoinHostPort(ipn.IP.String(), strconv.Itoa(a.Port))))
		if len(out) == 3 {
			break
		}
	}
	return out
}

// start runs the customer display server on the console's rails and
// returns it, or nil when it is not configured.
func (s *screensSettings) start(e *railEnv, rails map[string]payment.Starter) (*screens.Server, error) {
	set := s.Settings
	if set.Listen == "" && !e.demo {
		return nil, nil
	}
	if set.Listen == "" {
		set.Listen = "127.0.0.1:0"
	}
	token, err := e.file.secret("screens-token")
	if err != nil {
		return nil, err
	}
	set.Token, set.Rails = token, rails
	srv, ln, err := set.Open(e.bus, e.log)
	if err != nil {
		return nil, err
	}
	// Serve closes the server when its context ends; Close after it is
	// for a Serve that failed early.
	e.goRun("customer display server", func(ctx context.Context) error { return srv.Serve(ctx, ln) }, func() { srv.Close() })
	url := srv.URL()
	if token != "" {
		url += "?token=<PAYDESK_SCREENS_TOKEN>"
	}
	methods := srv.Methods()
	names := make([]string, len(methods))
	for i, m := range methods {
		names[i] = fmt.Sprintf("%s→%s:%s", m.Name, m.RailName, m.Mode)
	}
	e.log.Info("customer display server started", "url", srv.URL(), "methods", strings.Join(names, " "))
	e.note("Customer display: open "+url+" in a browser (Android app: ws on the same port)",
		"  methods "+strings.Join(names, " "))
	if lan := lanURLs(srv); len(lan) > 0 {
		e.note("  from a tablet: " + strings.Join(lan, "  "))
	}
	e.brief("Customer display: " + url)
	return srv, nil
}
