package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// mpesaSettings bind mpesa.Settings to flags. The rail is off unless a
// shortcode is set (the demo sets everything, against the fake Daraja).
// The consumer key and secret, the passkey and the callback path secret
// are secrets: PAYDESK_MPESA_CONSUMER_KEY, PAYDESK_MPESA_CONSUMER_SECRET,
// PAYDESK_MPESA_PASSKEY, PAYDESK_MPESA_PATH_SECRET (or their _FILE forms,
// or the config file's [mpesa] table), never flags.
type mpesaSettings struct {
	mpesa.Settings
}

func (m *mpesaSettings) secrets() []string {
	return []string{"mpesa-consumer-key", "mpesa-consumer-secret", "mpesa-passkey", "mpesa-path-secret"}
}

// startRail starts the M-Pesa rail (see start), a rail of the console and
// of the customer display (paybill/till only, MPESA=mpesa:c2b: the display
// collects no phone number for a push); with --mpesa-via-hub it takes the
// callbacks the hub link passes on.
func (m *mpesaSettings) startRail(ctx context.Context, e *railEnv) error {
	m.HubURL = e.hubURL
	e.displayRails["mpesa"] = nil // known to the display, off unless it starts
	mr, err := m.start(ctx, e)
	if err != nil || mr == nil {
		return err
	}
	e.offer(payment.RailMPesa, mr)
	e.displayRails["mpesa"] = mr
	if m.ViaHub {
		e.viaHub = mr
	}
	return nil
}

// register adds the M-Pesa flags to fs, with defaults from PAYDESK_MPESA_*.
func (m *mpesaSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&m.Env, "mpesa-env", env("MPESA_ENV", "sandbox"), "Daraja environment: sandbox or production (PAYDESK_MPESA_ENV)")
	fs.StringVar(&m.BaseURL, "mpesa-base-url", env("MPESA_BASE_URL", ""), "Daraja base URL, overriding --mpesa-env (a fake Daraja: 'paydesk sim daraja') (PAYDESK_MPESA_BASE_URL)")
	fs.StringVar(&m.ShortCode, "mpesa-shortcode", env("MPESA_SHORTCODE", ""), "BusinessShortCode: the paybill, or for a till the store number used at Go-Live; empty turns M-Pesa off (PAYDESK_MPESA_SHORTCODE)")
	fs.StringVar(&m.Kind, "mpesa-type", env("MPESA_TYPE", "paybill"), "paybill (CustomerPayBillOnline) or till (CustomerBuyGoodsOnline) (PAYDESK_MPESA_TYPE)")
	fs.StringVar(&m.TillNumber, "mpesa-till-number", env("MPESA_TILL_NUMBER", ""), "till number (PartyB) when --mpesa-type=till (PAYDESK_MPESA_TILL_NUMBER)")
	fs.StringVar(&m.CallbackURL, "mpesa-callback-url", env("MPESA_CALLBACK_URL", ""), "public base URL Daraja reaches the callback server on, e.g. https://kiosk.example.com (PAYDESK_MPESA_CALLBACK_URL)")
	fs.StringVar(&m.Listen, "mpesa-callback-listen", env("MPESA_CALLBACK_LISTEN", "127.0.0.1:8085"), "address the callback server listens on (PAYDESK_MPESA_CALLBACK_LISTEN)")
	fs.StringVar(&m.Allow, "mpesa-allow", env("MPESA_ALLOW", ""), "callback sources allowed, comma-separated addresses or CIDRs (PAYDESK_MPESA_ALLOW; default: the 14 addresses reported for Safaricom)")
	fs.StringVar(&m.TrustedProxies, "mpesa-trusted-proxies", env("MPESA_TRUSTED_PROXIES", ""), "proxies whose X-Forwarded-For is believed, comma-separated (PAYDESK_MPESA_TRUSTED_PROXIES)")
	fs.BoolVar(&m.EnforceAllow, "mpesa-enforce-allow", env("MPESA_ENFORCE_ALLOW", "") != "", "refuse callbacks from outside the allow-list (default: journal and flag them) (PAYDESK_MPESA_ENFORCE_ALLOW)")
	fs.StringVar(&m.C2BVersion, "mpesa-c2b-version", env("MPESA_C2B_VERSION", "v2"), "C2B API version enabled on the Daraja app: v1 or v2 (PAYDESK_MPESA_C2B_VERSION)")
	fs.BoolVar(&m.RegisterC2B, "mpesa-register-c2b", env("MPESA_REGISTER_C2B", "") != "", "register the C2B confirmation and validation URLs at start (one-shot in production) (PAYDESK_MPESA_REGISTER_C2B)")
	fs.StringVar(&m.ResponseType, "mpesa-c2b-response-type", env("MPESA_C2B_RESPONSE_TYPE", "Completed"), "what Daraja does when validation does not answer: Completed or Cancelled (PAYDESK_MPESA_C2B_RESPONSE_TYPE)")
	fs.StringVar(&m.Desc, "mpesa-desc", env("MPESA_DESC", "Kiosk sale"), "TransactionDesc of each push, at most 13 characters (PAYDESK_MPESA_DESC)")
	fs.BoolVar(&m.ViaHub, "mpesa-via-hub", env("MPESA_VIA_HUB", "") != "", "Daraja posts results and C2B payments to the hub (--hub-url), which passes them to this kiosk; the kiosk still calls Daraja (PAYDESK_MPESA_VIA_HUB)")
	fs.DurationVar(&m.Wait, "mpesa-wait", envDuration(fs.Output(), "MPESA_WAIT", mpesa.DefaultPoll.Budget), "how long the console waits for the customer's PIN (PAYDESK_MPESA_WAIT)")
	fs.DurationVar(&m.C2BWait, "mpesa-c2b-wait", envDuration(fs.Output(), "MPESA_C2B_WAIT", mpesa.DefaultC2BWait), "how long a customer display's M-Pesa sale waits for the customer's paybill or till payment (PAYDESK_MPESA_C2B_WAIT)")
}

// start runs the M-Pesa rail and its callback server (in the demo,
// against the fake Daraja started in-process), or returns nil when no
// shortcode is configured. The settings' rules are mpesa.Settings'.
func (m *mpesaSettings) start(ctx context.Context, e *railEnv) (*mpesa.Rail, error) {
	s := m.Settings
	for _, sec := range []struct {
		name string
		to   *string
	}{{"mpesa-consumer-key", &s.ConsumerKey}, {"mpesa-consumer-secret", &s.ConsumerSecret}, {"mpesa-passkey", &s.Passkey}, {"mpesa-path-secret", &s.PathSecret}} {
		v, err := e.file.secret(sec.name)
		if err != nil {
			return nil, err
		}
		*sec.to = v
	}
	if e.demo && s.ShortCode == "" && s.BaseURL == "" && !demoDaraja(e, &s) {
		return nil, nil
	}
	if s.ShortCode == "" {
		return nil, nil
	}
	s.Local = e.demo
	journalDir := ""
	if e.journal != "" {
		journalDir = filepath.Dir(e.journal)
	}
	o, err := s.Open(e.bus, e.log, journalDir)
	if err != nil {
		return nil, err
	}
	rail := o.Rail
	if err := rail.Recover(ctx, e.bus.Journal()); err != nil {
		o.Listener.Close()
		rail.Close()
		return nil, err
	}
	e.goRun("M-Pesa rail", func(ctx context.Context) error { return rail.Serve(ctx, o.Listener) }, nil)
	addr := o.Listener.Addr().String()
	e.log.Info("M-Pesa rail started", "base_url", o.BaseURL, "shortcode", s.ShortCode, "type", s.Kind,
		"callback_listen", addr, "public_url", o.PublicURL)
	e.goRun("Daraja credentials check", func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := o.Client.Ping(pctx); err != nil && ctx.Err() == nil {
			e.log.Warn("Daraja refused the credentials or is unreachable", "err", err)
		}
		return nil
	}, nil)
	if s.RegisterC2B {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := rail.RegisterC2B(rctx, s.C2BVersion, s.ResponseType)
		cancel()
		if err != nil {
			e.log.Warn("C2B URL registration failed", "err", err)
			e.note("M-Pesa: C2B URLs not registered: " + err.Error())
		}
	}
	switch {
	case s.ViaHub:
		e.note("M-Pesa callbacks via the hub: " + rail.STKCallbackURL())
	case !e.demo:
		e.note("M-Pesa callbacks on " + addr + " (public " + o.PublicURL + ")")
	}
	return rail, nil
}

// demoDaraja starts the fake Daraja in-process and points s at it; it
// reports false (with a note) when the fake could not start.
func demoDaraja(e *railEnv, s *mpesa.Settings) bool {
	fake := sandbox.New(sandbox.Options{Addr: "127.0.0.1:0", Logger: e.log, PromptDelay: 3 * time.Second, PromptTTL: 20 * time.Second, C2BVersion: "any"})
	ln, err := fake.Listen()
	if err != nil {
		e.note("No fake Daraja: " + err.Error())
		return false
	}
	e.goRun("fake Daraja", func(ctx context.Context) error { return fake.Serve(ctx, ln) }, nil)
	url := "http://" + ln.Addr().String()
	s.BaseURL, s.ShortCode, s.ConsumerKey, s.ConsumerSecret, s.Passkey = url, sandbox.DefaultShortCode, sandbox.DefaultKey, sandbox.DefaultSecret, sandbox.DefaultPasskey
	s.Listen, s.CallbackURL, s.RegisterC2B = "127.0.0.1:0", "", true
	if s.Allow == "" {
		s.Allow = "127.0.0.0/8,::1/128"
	}
	// The demo's customer answers in 3 s: ask Daraja sooner than a real
	// kiosk would.
	s.Poll = mpesa.DefaultPoll
	s.Poll.First, s.Poll.Every = 5*time.Second, 3*time.Second
	e.note("Fake Daraja (item 9, KES) on "+url+"; the phone's last 4 digits choose the outcome:", "  "+strings.ReplaceAll(sandbox.Outcomes, "\n", "\n  "))
	e.note("A customer paying the till: curl -d amount=100 -d ref=<sale reference> " + url + "/sandbox/c2b")
	e.brief("Demo M-Pesa (9), phone ending: 0001 no funds  1032 cancelled  2001 wrong PIN")
	return true
}

// runSimDaraja runs the fake Daraja on a port and prints how to point
// paydesk at it. Lines on stdin simulate till payments:
// "c2b <amount> [reference]" or "till <amount>".
func runSimDaraja(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("paydesk sim daraja", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", sandbox.DefaultAddr, "address to serve the fake Daraja on")
	delay := fs.Duration("delay", 2*time.Second, "how long the virtual customer takes to answer a prompt")
	promptTTL := fs.Duration("prompt-ttl", 30*time.Second, "when an unanswered prompt ends (phones ending 1037)")
	tokenTTL := fs.Duration("token-ttl", 3599*time.Second, "life of an access token")
	invalidate := fs.Bool("invalidate-old", false, "each new token revokes the earlier ones")
	queryRate := fs.Int("query-rate", 0, "STK queries per second before Spike Arrest (500.003.02); 0 is no limit")
	c2b := fs.String("c2b-version", "v2", "C2B API product on the app: v1, v2 or any")
	validation := fs.Bool("validation", false, "send C2B validation requests before confirmations")
	retry := fs.Bool("retry", false, "re-send a callback answered with another status than 200")
	production := fs.Bool("production", false, "C2B registration is one-shot, as in production")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: paydesk sim daraja [flags]\n\nA fake Safaricom Daraja: OAuth, STK Push, STK Push Query, C2B register and simulate,\nwith callbacks. Credentials: key %s, secret %s, shortcode %s and the public sandbox passkey.\nOn stdin, 'c2b <amount> [reference]' or 'till <amount>' simulates a customer paying.\n\n%s\n\nFlags:\n",
			sandbox.DefaultKey, sandbox.DefaultSecret, sandbox.DefaultShortCode, sandbox.Outcomes)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, logf, err := openSimLog("daraja", stdout)
	if err != nil {
		return err
	}
	defer logf.Close()
	fake := sandbox.New(sandbox.Options{Addr: *listen, PromptDelay: *delay, PromptTTL: *promptTTL, TokenTTL: *tokenTTL, InvalidateOld: *invalidate,
		QueryRate: *queryRate, C2BVersion: *c2b, Validation: *validation, RetryOnNon200: *retry, Production: *production, Logger: log})
	ln, err := fake.Listen()
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "daraja on %s\n", url)
	fmt.Fprintf(stdout, "run: PAYDESK_MPESA_CONSUMER_KEY=%s PAYDESK_MPESA_CONSUMER_SECRET=%s PAYDESK_MPESA_PASSKEY=%s paydesk --mpesa-base-url %s --mpesa-shortcode %s --mpesa-allow 127.0.0.1 --mpesa-register-c2b\n",
		sandbox.DefaultKey, sandbox.DefaultSecret, sandbox.DefaultPasskey, url, sandbox.DefaultShortCode)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || (f[0] != "c2b" && f[0] != "till") {
				fmt.Fprintln(stdout, "want: c2b <amount> [reference] | till <amount>")
				continue
			}
			p := sandbox.C2B{Amount: f[1], Till: f[0] == "till"}
			if len(f) > 2 {
				p.BillRef = f[2]
			}
			id, status, err := fake.SimulateC2B(ctx, p)
			if err != nil {
				fmt.Fprintf(stdout, "c2b %s: %v\n", id, err)
				continue
			}
			fmt.Fprintf(stdout, "c2b %s sent: confirmation answered %d\n", id, status)
		}
	}()
	return fake.Serve(ctx, ln)
}
