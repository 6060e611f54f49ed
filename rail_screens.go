package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/screens"
)

// screensSettings configure the customer display server (the PintoAndroid
// display protocol). It
// is off unless an address is given (the demo turns it on).
type screensSettings struct {
	listen     string
	tlsCert    string
	tlsKey     string
	presets    string
	currency   string
	min, max   int
	dailyLimit int
	noOther    bool
	receipt    bool
	idle       time.Duration
	step       time.Duration
	methods    string
	provider   string
	localWait  time.Duration
}

// defaultScreenMethods maps the protocol's two methods to the MobyPay POS:
// a card payment, and "pay by bank" as DuitNow QR.
const defaultScreenMethods = "DEBIT_CARD=pos:card,PAY_BY_BANK=pos:duitnow_qr"

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
	fs.StringVar(&s.listen, "screens-listen", env("SCREENS_LISTEN", ""), "address of the customer display WebSocket server, e.g. :5001 (the Android app's port); empty turns it off. The token is the secret PAYDESK_SCREENS_TOKEN (PAYDESK_SCREENS_LISTEN)")
	fs.StringVar(&s.tlsCert, "screens-tls-cert", env("SCREENS_TLS_CERT", ""), "TLS certificate for wss:// (PAYDESK_SCREENS_TLS_CERT)")
	fs.StringVar(&s.tlsKey, "screens-tls-key", env("SCREENS_TLS_KEY", ""), "TLS key for wss:// (PAYDESK_SCREENS_TLS_KEY)")
	fs.StringVar(&s.presets, "screens-presets", env("SCREENS_PRESETS", "20,40,60,80,100"), "preset amounts on the display, whole units, comma-separated (PAYDESK_SCREENS_PRESETS)")
	fs.StringVar(&s.currency, "screens-currency", env("SCREENS_CURRENCY", payment.DefaultCurrency), "currency of the display's amounts, ISO 4217 (PAYDESK_SCREENS_CURRENCY)")
	fs.IntVar(&s.min, "screens-min", envInt(fs.Output(), "SCREENS_MIN", screens.DefaultMin), "smallest amount a customer may pay, whole units (PAYDESK_SCREENS_MIN)")
	fs.IntVar(&s.max, "screens-max", envInt(fs.Output(), "SCREENS_MAX", screens.DefaultMax), "largest amount a customer may pay, whole units (PAYDESK_SCREENS_MAX)")
	fs.IntVar(&s.dailyLimit, "screens-daily-limit", envInt(fs.Output(), "SCREENS_DAILY_LIMIT", 0), "the day's takings on the display's rails above which the display shows LIMIT_ERROR, whole units; 0 = no limit (PAYDESK_SCREENS_DAILY_LIMIT)")
	fs.BoolVar(&s.noOther, "screens-no-other", env("SCREENS_NO_OTHER", "") != "", "offer only the preset amounts, no keypad (PAYDESK_SCREENS_NO_OTHER)")
	fs.BoolVar(&s.receipt, "screens-receipt-question", env("SCREENS_RECEIPT_QUESTION", "") != "", "after SUCCESS ask RECEIPT_QUESTION and wait for the customer's answer before PRINT_TICKET (PAYDESK_SCREENS_RECEIPT_QUESTION)")
	fs.DurationVar(&s.idle, "screens-idle-timeout", envDuration(fs.Output(), "SCREENS_IDLE_TIMEOUT", screens.DefaultIdleTimeout), "a customer idle this long mid-flow gets ERROR/TIMEOUT (PAYDESK_SCREENS_IDLE_TIMEOUT)")
	fs.DurationVar(&s.step, "screens-step", envDuration(fs.Output(), "SCREENS_STEP", screens.DefaultStepDelay), "how long SUCCESS, PRINT_TICKET, COLLECT_TICKET and THANK_YOU each stay up (PAYDESK_SCREENS_STEP)")
	fs.StringVar(&s.provider, "screens-payment-provider", env("SCREENS_PAYMENT_PROVIDER", screens.DefaultPaymentProvider), "the terminal the Android app drives for the methods it pays itself (DEBIT_CARD, PAY_BY_BANK): integra, nnsmart, newland or mock; sent in DEVICE_INFO (PAYDESK_SCREENS_PAYMENT_PROVIDER)")
	fs.DurationVar(&s.localWait, "screens-local-timeout", envDuration(fs.Output(), "SCREENS_LOCAL_TIMEOUT", screens.DefaultLocalTimeout), "how long the Android app may pay on its own terminal, from the method tap to its card check and from the card check to its PAYMENT_RESULT, before the payment is marked unknown (PAYDESK_SCREENS_LOCAL_TIMEOUT)")
	fs.StringVar(&s.methods, "screens-methods", env("SCREENS_METHODS", defaultScreenMethods), "payment methods offered and their rails: NAME=RAIL[:MODE][@POS], RAIL pos, terminal, mpesa or display (the Android app's own terminal: use DEBIT_CARD=display,PAY_BY_BANK=display with the app), MODE card, bnpl or duitnow_qr (pos), c2b (mpesa: paybill/till with the reference shown; needs --screens-currency KES) (PAYDESK_SCREENS_METHODS)")
}

// options checks the settings and maps each method to a rail of rails.
func (s *screensSettings) options(rails map[string]payment.Starter) (screens.Options, error) {
	var o screens.Options
	for _, p := range strings.Split(s.presets, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("--screens-presets: %q is not a positive whole number", p)
		}
		o.Presets = append(o.Presets, n)
	}
	if o.Presets == nil {
		o.Presets = []int64{}
	}
	if len(s.currency) != 3 {
		return o, fmt.Errorf("--screens-currency: %q is not an ISO 4217 code like GBP", s.currency)
	}
	if s.idle <= 0 || s.step <= 0 {
		return o, errors.New("--screens-idle-timeout and --screens-step must be positive")
	}
	if s.dailyLimit < 0 || int64(s.dailyLimit) > math.MaxInt32 {
		return o, fmt.Errorf("--screens-daily-limit: %d is not between 0 and 2147483647, the largest whole number the Android app reads (a larger one makes it drop every frame that carries the limit)", s.dailyLimit)
	}
	if p := strings.ToLower(strings.TrimSpace(s.provider)); p != "" {
		if !slices.Contains(screens.PaymentProviders, p) {
			return o, fmt.Errorf("--screens-payment-provider: %q is not one the Android app knows (%s)", s.provider, strings.Join(screens.PaymentProviders, ", "))
		}
		o.PaymentProvider = p
	}
	if s.localWait < 0 {
		return o, errors.New("--screens-local-timeout must not be negative")
	}
	o.LocalTimeout = s.localWait
	o.Currency, o.Min, o.Max, o.DailyLimit = strings.ToUpper(s.currency), int64(s.min), int64(s.max), int64(s.dailyLimit)
	o.NoOther, o.IdleTimeout, o.StepDelay, o.ReceiptQuestion = s.noOther, s.idle, s.step, s.receipt
	methods, err := parseScreenMethods(s.methods, rails)
	if err != nil {
		return o, fmt.Errorf("--screens-methods: %w", err)
	}
	for _, m := range methods {
		if m.RailName == payment.RailMPesa && o.Currency != "KES" {
			return o, fmt.Errorf("--screens-methods: %s is paid by M-Pesa in Kenyan shillings, but the display is in %s: set --screens-currency KES (PAYDESK_SCREENS_CURRENCY), or drop %s", m.Name, o.Currency, m.Name)
		}
	}
	o.Methods = methods
	return o, nil
}

// parseScreenMethods reads "DEBIT_CARD=terminal,PAY_BY_BANK=pos:duitnow_qr".
func parseScreenMethods(spec string, rails map[string]payment.Starter) ([]screens.Method, error) {
	var out []screens.Method
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, target, ok := strings.Cut(item, "=")
		name = strings.ToUpper(strings.TrimSpace(name))
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want NAME=RAIL[:MODE][@POS]", item)
		}
		target, pos, _ := strings.Cut(strings.TrimSpace(target), "@")
		railName, mode, _ := strings.Cut(target, ":")
		railName = strings.ToLower(railName)
		if railName == "display" {
			// The Android app's own terminal (Planet/Integra, NNSmart):
			// the tap journals the payment as started there, the app's
			// CARD_CHECK_RESULT and PAYMENT_RESULT carry it on.
			if (mode != "" && mode != string(payment.ModeCard)) || pos != "" {
				return nil, fmt.Errorf("%s: the display's own terminal takes only card, and has no terminal to name with @", name)
			}
			out = append(out, screens.Method{Name: name, RailName: payment.RailScreen, Mode: payment.ModeCard})
			continue
		}
		rail := rails[railName]
		if rail == nil {
			switch railName {
			case "pos", "terminal", "mpesa":
				return nil, fmt.Errorf("%s: the %s rail is not configured", name, railName)
			}
			return nil, fmt.Errorf("%s: unknown rail %q (pos, terminal, mpesa or display)", name, railName)
		}
		m := screens.Method{Name: name, Rail: rail, RailName: payment.Rail(railName), Mode: payment.Mode(strings.ToLower(mode)), Target: pos}
		switch railName {
		case "pos":
			switch m.Mode {
			case "":
				m.Mode = payment.ModeCard
			case payment.ModeCard, payment.ModeBNPL, payment.ModeDuitNowQR:
			default:
				return nil, fmt.Errorf("%s: mode %q on the POS must be card, bnpl or duitnow_qr (ipp needs a plan choice the display does not offer)", name, mode)
			}
		case "terminal":
			if m.Mode != "" && m.Mode != payment.ModeCard {
				return nil, fmt.Errorf("%s: the terminal takes only card", name)
			}
			m.Mode = payment.ModeCard
		case "mpesa":
			// The display collects no phone number, so no STK Push: the
			// customer pays the paybill (or till) from their own phone
			// with the reference the display shows.
			switch m.Mode {
			case "", payment.ModeC2B:
				m.Mode = payment.ModeC2B
			case payment.ModeSTKPush:
				return nil, fmt.Errorf("%s: STK Push needs the customer's phone number, which the display does not collect; use %s=mpesa:c2b (the customer pays the paybill or till with the reference shown)", name, name)
			default:
				return nil, fmt.Errorf("%s: mode %q on M-Pesa must be c2b (paybill or till)", name, mode)
			}
			if pos != "" {
				return nil, fmt.Errorf("%s: M-Pesa has no terminal to name with @", name)
			}
		default:
			return nil, fmt.Errorf("%s: unknown rail %q", name, railName)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("no methods")
	}
	return out, nil
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

// posRail is the POS link as a display method sees it: up while a POS is
// connected.
type posRail struct{ *protocol.Server }

// Health reports whether a POS is connected to take the payment.
func (p posRail) Health() payment.Health {
	if len(p.Peers()) == 0 {
		return payment.Health{Up: false, Detail: "no POS connected"}
	}
	return payment.Health{Up: true, Detail: "ready"}
}

// start runs the customer display server on the console's rails and
// returns it, or nil when it is not configured.
func (s *screensSettings) start(e *railEnv, rails map[string]payment.Starter) (*screens.Server, error) {
	if s.listen == "" && !e.demo {
		return nil, nil
	}
	if s.listen == "" {
		s.listen = "127.0.0.1:0"
	}
	token, err := e.file.secret("screens-token")
	if err != nil {
		return nil, err
	}
	o, err := s.options(rails)
	if err != nil {
		return nil, err
	}
	o.Addr, o.Token, o.Logger = s.listen, token, e.log
	if s.tlsCert != "" || s.tlsKey != "" {
		if s.tlsCert == "" || s.tlsKey == "" {
			return nil, errors.New("the customer display's TLS needs both --screens-tls-cert and --screens-tls-key")
		}
		cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("customer display TLS: %w", err)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := screens.NewServer(e.bus, o)
	if err != nil {
		return nil, err
	}
	ln, err := srv.Listen()
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
	names := make([]string, len(o.Methods))
	for i, m := range o.Methods {
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
