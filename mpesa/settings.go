package mpesa

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"paydesk/mpesa/daraja"
	"paydesk/payment"
)

// Settings are the M-Pesa rail as an operator configures it (flags,
// PAYDESK_MPESA_* variables, the config file's [mpesa] table); errors
// name each setting by its flag. Validate checks them; Open builds the
// rail from them.
type Settings struct {
	// Env is "sandbox" or "production"; BaseURL, when set, overrides it
	// (a fake Daraja) and lifts the production rules.
	Env, BaseURL string
	// ShortCode is the BusinessShortCode; Kind is "paybill" or "till",
	// and TillNumber the till's PartyB.
	ShortCode, Kind, TillNumber string
	// ConsumerKey, ConsumerSecret and Passkey are the Daraja app's
	// secrets.
	ConsumerKey, ConsumerSecret, Passkey string
	// PathSecret is the callback paths' secret segment. Empty, it is kept
	// in PathSecretFile beside the journal (see Open).
	PathSecret string
	// CallbackURL is the public base URL Daraja reaches the callback
	// server on (HTTPS in production); Listen is the address that server
	// listens on.
	CallbackURL, Listen string
	// Allow and TrustedProxies are comma-separated addresses or CIDRs:
	// the callback sources allowed (empty: DefaultAllowList) and the
	// proxies whose X-Forwarded-For is believed. EnforceAllow refuses
	// callbacks from elsewhere.
	Allow, TrustedProxies string
	EnforceAllow          bool
	// RegisterC2B registers the C2B URLs at start, for C2BVersion ("v1"
	// or "v2") with ResponseType ("Completed" or "Cancelled").
	RegisterC2B              bool
	C2BVersion, ResponseType string
	// Desc is each push's TransactionDesc.
	Desc string
	// Wait is how long a push waits for the customer (the query policy's
	// budget); C2BWait how long a paybill or till sale waits.
	Wait, C2BWait time.Duration
	// Poll is the query policy (zero: DefaultPoll); Wait replaces its
	// budget.
	Poll PollPolicy
	// Local lets the callbacks reach the listen address itself when no
	// CallbackURL is given (the demo).
	Local bool
	// ViaHub has Daraja post callbacks to the hub at HubURL (the kiosk's
	// [hub] url), which routes them to this kiosk over its link: the
	// push's CallBackURL and the C2B URLs are the hub's. The kiosk still
	// calls Daraja itself.
	ViaHub bool
	HubURL string
}

// Validate checks s: the environment and type offered, the address
// lists, the waits, and production's rules (an HTTPS callback URL; a
// fixed path secret before the one-shot C2B registration).
func (s Settings) Validate() error {
	_, err := s.resolve()
	return err
}

// resolved are the settings as the rail takes them.
type resolved struct {
	base           string
	till           bool
	allow, proxies []netip.Prefix
	poll           PollPolicy
}

func (s Settings) resolve() (resolved, error) {
	var v resolved
	v.base = s.BaseURL
	if v.base == "" {
		switch s.Env {
		case "sandbox":
			v.base = daraja.SandboxURL
		case "production":
			v.base = daraja.ProductionURL
		default:
			return v, fmt.Errorf("--mpesa-env must be sandbox or production, not %q", s.Env)
		}
	}
	if s.ViaHub && s.HubURL == "" {
		return v, errors.New("--mpesa-via-hub needs the hub's URL (--hub-url)")
	}
	if s.Env == "production" && s.BaseURL == "" && s.ViaHub {
		if !strings.HasPrefix(s.HubURL, "https://") {
			return v, fmt.Errorf("--mpesa-via-hub: the hub's URL must be https:// in production, not %q", s.HubURL)
		}
	} else if s.Env == "production" && s.BaseURL == "" {
		if !strings.HasPrefix(s.CallbackURL, "https://") {
			return v, fmt.Errorf("--mpesa-callback-url must be an https:// URL in production, not %q", s.CallbackURL)
		}
		if s.RegisterC2B && s.PathSecret == "" {
			return v, errors.New("registering C2B URLs in production is one-shot: set PAYDESK_MPESA_PATH_SECRET so the registered URLs stay valid across restarts")
		}
	}
	switch s.Kind {
	case "paybill":
	case "till":
		v.till = true
	default:
		return v, fmt.Errorf("--mpesa-type must be paybill or till, not %q", s.Kind)
	}
	var err error
	v.allow = DefaultAllowList
	if s.Allow != "" {
		if v.allow, err = ParsePrefixes(s.Allow); err != nil {
			return v, fmt.Errorf("--mpesa-allow: %w", err)
		}
	}
	if v.proxies, err = ParsePrefixes(s.TrustedProxies); err != nil {
		return v, fmt.Errorf("--mpesa-trusted-proxies: %w", err)
	}
	if s.Wait <= 0 {
		return v, fmt.Errorf("--mpesa-wait must be positive, got %s", s.Wait)
	}
	if s.C2BWait <= 0 {
		return v, fmt.Errorf("--mpesa-c2b-wait must be positive, got %s", s.C2BWait)
	}
	v.poll = s.Poll
	if v.poll == (PollPolicy{}) {
		v.poll = DefaultPoll
	}
	v.poll.Budget = s.Wait
	return v, nil
}

// Opened is a rail built from Settings, with its callback listener for
// Serve and where it was told Daraja reaches it.
type Opened struct {
	Rail     *Rail
	Listener net.Listener
	Client   *daraja.Client
	// BaseURL is Daraja's; PublicURL the callback server's.
	BaseURL, PublicURL string
}

// Open validates s, opens the callback listener and returns the rail,
// which takes payments at once; Serve(ctx, Listener) runs its callback
// server. Without a PathSecret, the one kept in PathSecretFile in
// journalDir is used (made on first use), so the URLs given to Daraja
// before a restart still lead here after it; with no journalDir either,
// each start makes a new one.
func (s Settings) Open(bus *payment.Bus, log *slog.Logger, journalDir string) (*Opened, error) {
	v, err := s.resolve()
	if err != nil {
		return nil, err
	}
	client, err := daraja.NewClient(daraja.Config{BaseURL: v.base, ConsumerKey: s.ConsumerKey, ConsumerSecret: s.ConsumerSecret, ShortCode: s.ShortCode,
		Passkey: s.Passkey, Till: v.till, TillNumber: s.TillNumber, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("M-Pesa: %w (key, secret and passkey come from PAYDESK_MPESA_CONSUMER_KEY, PAYDESK_MPESA_CONSUMER_SECRET, PAYDESK_MPESA_PASSKEY or the config file)", err)
	}
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return nil, fmt.Errorf("M-Pesa callback server: %w", err)
	}
	r, public, err := s.openRail(v, client, ln, bus, log, journalDir)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Opened{Rail: r, Listener: ln, Client: client, BaseURL: v.base, PublicURL: public}, nil
}

func (s Settings) openRail(v resolved, client *daraja.Client, ln net.Listener, bus *payment.Bus, log *slog.Logger, journalDir string) (*Rail, string, error) {
	public := s.CallbackURL
	if public == "" {
		if !s.Local && s.BaseURL == "" && !s.ViaHub {
			return nil, "", errors.New("M-Pesa needs --mpesa-callback-url: the public base URL Daraja posts results to (HTTPS in production)")
		}
		public = "http://" + ln.Addr().String()
	}
	pathSecret := s.PathSecret
	if pathSecret == "" && journalDir != "" {
		file := filepath.Join(journalDir, PathSecretFile)
		var created bool
		var err error
		if pathSecret, created, err = LoadPathSecret(file); err != nil {
			return nil, "", fmt.Errorf("%w (or set PAYDESK_MPESA_PATH_SECRET)", err)
		}
		if created {
			log.Info("M-Pesa callback path secret made and kept", "file", file)
		}
	}
	hubURL := ""
	if s.ViaHub {
		hubURL = s.HubURL
	}
	r, err := NewRail(Options{Client: client, Bus: bus, PublicURL: public, HubURL: hubURL, PathSecret: pathSecret, AllowList: v.allow,
		TrustedProxies: v.proxies, EnforceAllowList: s.EnforceAllow, Poll: v.poll, Desc: s.Desc, C2BWait: s.C2BWait, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("M-Pesa: %w", err)
	}
	return r, public, nil
}

// DisplayMode is what a customer display may pay on M-Pesa: the paybill
// or till (c2b, the default), the customer paying from their own phone
// with the reference the display shows, in Kenyan shillings. No STK Push:
// the display collects no phone number.
func (*Rail) DisplayMode(m payment.DisplayMethod) (payment.Mode, error) {
	switch m.Mode {
	case "", payment.ModeC2B:
	case payment.ModeSTKPush:
		return "", fmt.Errorf("%s: STK Push needs the customer's phone number, which the display does not collect; use %s=mpesa:c2b (the customer pays the paybill or till with the reference shown)", m.Name, m.Name)
	default:
		return "", fmt.Errorf("%s: mode %q on M-Pesa must be c2b (paybill or till)", m.Name, m.Mode)
	}
	if m.Target != "" {
		return "", fmt.Errorf("%s: M-Pesa has no terminal to name with @", m.Name)
	}
	if m.Currency != "KES" {
		return "", fmt.Errorf("%s is paid by M-Pesa in Kenyan shillings, but the display is in %s: set --screens-currency KES (PAYDESK_SCREENS_CURRENCY), or drop %s", m.Name, m.Currency, m.Name)
	}
	return payment.ModeC2B, nil
}
