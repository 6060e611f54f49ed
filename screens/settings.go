package screens

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"paydesk/internal/tlsfiles"
	"paydesk/payment"
)

// DefaultMethods maps the protocol's two methods to the MobyPay POS: a
// card payment, and "pay by bank" as DuitNow QR.
const DefaultMethods = "DEBIT_CARD=pos:card,PAY_BY_BANK=pos:duitnow_qr"

// Settings are the customer display as an operator configures it (flags,
// PAYDESK_SCREENS_* variables, the config file's [screens] table); errors
// name each setting by its flag. Validate checks them; Open builds the
// server from them.
type Settings struct {
	// Listen is the server's address (--screens-listen); empty, the
	// display is off.
	Listen string
	// CertFile and KeyFile serve wss:// (--screens-tls-cert,
	// --screens-tls-key): both or neither.
	CertFile, KeyFile string
	// Token, a secret (PAYDESK_SCREENS_TOKEN), must be presented by a
	// display when set.
	Token string
	// Presets are the preset amounts, whole units, comma-separated
	// (--screens-presets).
	Presets string
	// Currency is the display's, ISO 4217 (--screens-currency).
	Currency string
	// Min, Max and DailyLimit are whole units (--screens-min,
	// --screens-max, --screens-daily-limit; 0 is no limit).
	Min, Max, DailyLimit int
	// NoOther offers only the presets (--screens-no-other);
	// ReceiptQuestion asks for a receipt (--screens-receipt-question).
	NoOther, ReceiptQuestion bool
	// IdleTimeout, StepDelay and LocalTimeout: --screens-idle-timeout,
	// --screens-step, --screens-local-timeout.
	IdleTimeout, StepDelay, LocalTimeout time.Duration
	// Methods are NAME=RAIL[:MODE][@TARGET], comma-separated
	// (--screens-methods); RAIL is one of Rails, or "display" (the
	// Android app's own terminal).
	Methods string
	// PaymentProvider is one of PaymentProviders
	// (--screens-payment-provider).
	PaymentProvider string
	// Rails are the rails the methods may name, by name: nil for one
	// that is known but not configured. A rail that is a
	// payment.DisplayOffer says which modes a method may use on it.
	Rails map[string]payment.Starter
}

// Validate checks s: the amounts, the currency, the waits, the daily
// limit the Android app can read, the payment provider, each method's
// rail and mode (as the rail offers it), and the TLS certificate and key
// (both given, and loadable).
func (s Settings) Validate() error {
	_, err := s.Options()
	return err
}

// Options checks s and returns it as NewServer takes it (without a
// logger), for a caller that sets more than the operator's settings
// (tests: ResultHold); Open uses it.
func (s Settings) Options() (Options, error) {
	var o Options
	for _, p := range strings.Split(s.Presets, ",") {
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
	if len(s.Currency) != 3 {
		return o, fmt.Errorf("--screens-currency: %q is not an ISO 4217 code like GBP", s.Currency)
	}
	if s.IdleTimeout <= 0 || s.StepDelay <= 0 {
		return o, errors.New("--screens-idle-timeout and --screens-step must be positive")
	}
	if s.DailyLimit < 0 || int64(s.DailyLimit) > math.MaxInt32 {
		return o, fmt.Errorf("--screens-daily-limit: %d is not between 0 and 2147483647, the largest whole number the Android app reads (a larger one makes it drop every frame that carries the limit)", s.DailyLimit)
	}
	if p := strings.ToLower(strings.TrimSpace(s.PaymentProvider)); p != "" {
		if !slices.Contains(PaymentProviders, p) {
			return o, fmt.Errorf("--screens-payment-provider: %q is not one the Android app knows (%s)", s.PaymentProvider, strings.Join(PaymentProviders, ", "))
		}
		o.PaymentProvider = p
	}
	if s.LocalTimeout < 0 {
		return o, errors.New("--screens-local-timeout must not be negative")
	}
	o.LocalTimeout = s.LocalTimeout
	o.Currency, o.Min, o.Max, o.DailyLimit = strings.ToUpper(s.Currency), int64(s.Min), int64(s.Max), int64(s.DailyLimit)
	o.NoOther, o.IdleTimeout, o.StepDelay, o.ReceiptQuestion = s.NoOther, s.IdleTimeout, s.StepDelay, s.ReceiptQuestion
	methods, err := parseMethods(s.Methods, s.Rails, o.Currency)
	if err != nil {
		return o, fmt.Errorf("--screens-methods: %w", err)
	}
	o.Methods = methods
	o.Addr, o.Token = s.Listen, s.Token
	if o.TLS, err = tlsfiles.Load(s.CertFile, s.KeyFile, "--screens-tls-cert", "--screens-tls-key"); err != nil {
		return o, fmt.Errorf("customer display: %w", err)
	}
	return o, nil
}

// parseMethods reads "DEBIT_CARD=terminal,PAY_BY_BANK=pos:duitnow_qr":
// each method's rail is one of rails (or "display"), and its mode one the
// rail offers a display (payment.DisplayOffer).
func parseMethods(spec string, rails map[string]payment.Starter, currency string) ([]Method, error) {
	var out []Method
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
			out = append(out, Method{Name: name, RailName: payment.RailScreen, Mode: payment.ModeCard})
			continue
		}
		rail, known := rails[railName]
		if !known {
			names := make([]string, 0, len(rails))
			for n := range rails {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("%s: unknown rail %q (%s or display)", name, railName, strings.Join(names, ", "))
		}
		if rail == nil {
			return nil, fmt.Errorf("%s: the %s rail is not configured", name, railName)
		}
		m := Method{Name: name, Rail: rail, RailName: payment.Rail(railName), Mode: payment.Mode(strings.ToLower(mode)), Target: pos}
		if offer, ok := rail.(payment.DisplayOffer); ok {
			var err error
			if m.Mode, err = offer.DisplayMode(payment.DisplayMethod{Name: name, Mode: m.Mode, Target: pos, Currency: currency}); err != nil {
				return nil, err
			}
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("no methods")
	}
	return out, nil
}

// Open validates s and returns the server with its listener bound (a busy
// port is reported here); Serve(ctx, ln) runs it.
func (s Settings) Open(bus *payment.Bus, log *slog.Logger) (*Server, net.Listener, error) {
	o, err := s.Options()
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
