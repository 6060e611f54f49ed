package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/concert"
	"paydesk/terminal/ecr"
	"paydesk/terminal/termsim"
)

// terminalSettings configure the unattended card terminal on a serial
// port (the Concert protocol). The rail is off unless a port is named.
type terminalSettings struct {
	port          string
	baud          int
	format        string
	pos           int
	currency      string
	protocol      string
	answer        string
	forceOnline   bool
	probe         time.Duration
	resultTimeout time.Duration

	// HiPay's unattended ECR connector API, served locally, and its notifications.
	configTxt   string
	apiListen   string
	apiLogin    string
	notifyURL   string
	notifyLogin string
	outboxDir   string
}

func (t *terminalSettings) secrets() []string {
	return []string{"terminal-api-password", "terminal-notify-password"}
}

// startRail starts the terminal (see start), a rail of the console and of
// the customer display.
func (t *terminalSettings) startRail(_ context.Context, e *railEnv) error {
	tr, err := t.start(e)
	if err != nil || tr == nil {
		return err
	}
	e.offer(payment.RailTerminal, tr)
	e.displayRails["terminal"] = tr
	return nil
}

// register adds the terminal's flags to fs, with defaults from PAYDESK_*.
func (t *terminalSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&t.port, "terminal-port", env("TERMINAL_PORT", ""), "serial port of the card terminal, e.g. /dev/ttyACM0 or COM8; empty turns the terminal off (PAYDESK_TERMINAL_PORT)")
	fs.IntVar(&t.baud, "terminal-baud", envInt(fs.Output(), "TERMINAL_BAUD", terminal.DefaultBaud), "the terminal's line speed (PAYDESK_TERMINAL_BAUD)")
	fs.StringVar(&t.format, "terminal-format", env("TERMINAL_FORMAT", terminal.DefaultFormat), "data bits, parity, stop bits: 8N1 for USB, 7E1 for RS-232 (PAYDESK_TERMINAL_FORMAT)")
	fs.IntVar(&t.pos, "terminal-pos", envInt(fs.Output(), "TERMINAL_POS", terminal.DefaultPOS), "cash register number sent to the terminal, 1-99 (PAYDESK_TERMINAL_POS)")
	fs.StringVar(&t.currency, "terminal-currency", env("TERMINAL_CURRENCY", terminal.DefaultCurrency), "currency the terminal is set up for, ISO 4217 (PAYDESK_TERMINAL_CURRENCY)")
	fs.StringVar(&t.protocol, "terminal-protocol", env("TERMINAL_PROTOCOL", "E+"), "Concert protocol: E+ (V2 E+, the default) or E for older terminals (PAYDESK_TERMINAL_PROTOCOL)")
	fs.StringVar(&t.answer, "terminal-answer", env("TERMINAL_ANSWER", "full"), "answer asked of the terminal: full (80 bytes, with the card report) or short (25) (PAYDESK_TERMINAL_ANSWER)")
	fs.BoolVar(&t.forceOnline, "terminal-force-online", env("TERMINAL_FORCE_ONLINE", "") != "", "ask online authorisation for every payment (B011) (PAYDESK_TERMINAL_FORCE_ONLINE)")
	fs.DurationVar(&t.probe, "terminal-probe", envDuration(fs.Output(), "TERMINAL_PROBE", terminal.DefaultProbeInterval), "how often an idle terminal is checked with ENQ/EOT; 0 turns it off (PAYDESK_TERMINAL_PROBE)")
	fs.StringVar(&t.configTxt, "terminal-config-txt", env("TERMINAL_CONFIG_TXT", ""), "a HiPay ECR connector config.txt whose keys fill the terminal settings left unset (PAYDESK_TERMINAL_CONFIG_TXT)")
	fs.StringVar(&t.apiListen, "terminal-api-listen", env("TERMINAL_API_LISTEN", ""), "address of the local HTTP API for kiosk software, e.g. 127.0.0.1:8081; empty turns it off unless config.txt has LOCAL_PORT (PAYDESK_TERMINAL_API_LISTEN)")
	fs.StringVar(&t.apiLogin, "terminal-api-login", env("TERMINAL_API_LOGIN", ""), "Basic Auth login of the local HTTP API, TERMINAL_MANAGER_LOGIN; the password is the secret PAYDESK_TERMINAL_API_PASSWORD (PAYDESK_TERMINAL_API_LOGIN)")
	fs.StringVar(&t.notifyURL, "terminal-notify-url", env("TERMINAL_NOTIFY_URL", ""), "URL each API payment's result is POSTed to, through a durable outbox; empty sends none (PAYDESK_TERMINAL_NOTIFY_URL)")
	fs.StringVar(&t.notifyLogin, "terminal-notify-login", env("TERMINAL_NOTIFY_LOGIN", ""), "Basic Auth login for the notifications, HIPAY_LOGIN; the password is the secret PAYDESK_TERMINAL_NOTIFY_PASSWORD (PAYDESK_TERMINAL_NOTIFY_LOGIN)")
	fs.StringVar(&t.outboxDir, "terminal-outbox", env("TERMINAL_OUTBOX", ""), "directory of the notification outbox (PAYDESK_TERMINAL_OUTBOX; default: terminal-outbox next to the journal)")
	fs.DurationVar(&t.resultTimeout, "terminal-result-timeout", envDuration(fs.Output(), "TERMINAL_RESULT_TIMEOUT", terminal.DefaultResultTimeout), "wait for the terminal's result once it has the request (PAYDESK_TERMINAL_RESULT_TIMEOUT)")
}

// options checks the settings and turns them into the driver's options.
func (t *terminalSettings) options() (terminal.Options, error) {
	var o terminal.Options
	if _, err := terminal.ParseFormat(t.format); err != nil {
		return o, fmt.Errorf("--terminal-format: %w", err)
	}
	if t.baud <= 0 {
		return o, fmt.Errorf("--terminal-baud must be positive, got %d", t.baud)
	}
	if t.pos < 1 || t.pos > 99 {
		return o, fmt.Errorf("--terminal-pos must be 1-99, got %d", t.pos)
	}
	cur, err := concert.LookupCurrency(t.currency)
	if err != nil {
		return o, fmt.Errorf("--terminal-currency: %w", err)
	}
	switch strings.ToUpper(t.protocol) {
	case "E+", "EPLUS", "E_PLUS":
	case "E":
		o.ProtocolE = true
	default:
		return o, fmt.Errorf("--terminal-protocol must be E+ or E, not %q", t.protocol)
	}
	switch strings.ToLower(t.answer) {
	case "full":
	case "short":
		o.ShortAnswer = true
	default:
		return o, fmt.Errorf("--terminal-answer must be full or short, not %q", t.answer)
	}
	if t.resultTimeout <= 0 {
		return o, fmt.Errorf("--terminal-result-timeout must be positive, got %s", t.resultTimeout)
	}
	o.Port = terminal.PortOptions{Path: t.port, Baud: t.baud, Format: strings.ToUpper(t.format)}
	o.POS, o.Currency, o.ForceOnline = t.pos, cur.Alpha, t.forceOnline
	o.Timers.Result = t.resultTimeout
	o.ProbeInterval = t.probe
	if t.probe == 0 {
		o.ProbeInterval = -1
	}
	return o, nil
}

// start runs the terminal driver (in the demo, against a simulated
// terminal on a pseudo-terminal) and returns it as the console's rail, or
// nil when no port is configured.
func (t *terminalSettings) start(e *railEnv) (*terminalRail, error) {
	apiPass, err := e.file.secret("terminal-api-password")
	if err != nil {
		return nil, err
	}
	notifyPass, err := e.file.secret("terminal-notify-password")
	if err != nil {
		return nil, err
	}
	var txt ecr.Settings
	if t.configTxt != "" {
		var warnings []string
		txt, warnings, err = ecr.LoadConfig(t.configTxt)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			e.log.Warn("config.txt", "file", t.configTxt, "warning", w)
			e.note("config.txt: " + w)
		}
		t.port = cmp.Or(t.port, txt.SerialPort)
		if t.apiListen == "" && txt.LocalPort != 0 {
			t.apiListen = net.JoinHostPort(ecr.DefaultHost, strconv.Itoa(txt.LocalPort))
		}
		t.apiLogin = cmp.Or(t.apiLogin, txt.TerminalManagerLogin)
		apiPass = cmp.Or(apiPass, txt.TerminalManagerPassword.Reveal())
		t.notifyLogin = cmp.Or(t.notifyLogin, txt.HiPayLogin)
		notifyPass = cmp.Or(notifyPass, txt.HiPayPassword.Reveal())
	}
	if e.demo && t.apiListen == "" {
		t.apiListen = "127.0.0.1:0"
		t.apiLogin, apiPass = cmp.Or(t.apiLogin, "demo"), cmp.Or(apiPass, "demo")
	}
	if e.demo && t.port == "" {
		sim := termsim.New(termsim.Options{Baud: t.baud, Link: filepath.Join(e.dir, "terminal"), Logger: e.log})
		if _, err := sim.Open(); err != nil {
			e.note("No simulated card terminal: " + err.Error())
			return nil, nil
		}
		e.goRun("terminal simulator", sim.Run, nil)
		t.port = sim.DevicePath()
		e.note("Simulated card terminal (item 8) on " + t.port + "; amounts in " + t.currency + ":")
		e.brief("Demo terminal (8, " + t.currency + "): 6.01 refused  6.02 no answer  6.03 slow  6.12 unplugged")
		for _, l := range strings.Split(strings.TrimRight(termsim.Outcomes, "\n"), "\n")[1:] {
			e.note(l)
		}
	}
	if t.port == "" {
		return nil, nil
	}
	opts, err := t.options()
	if err != nil {
		return nil, err
	}
	opts.Logger = e.log
	opts.MaxMinor = e.maxMinor
	d, err := terminal.NewDriver(e.bus, opts)
	if err != nil {
		return nil, fmt.Errorf("card terminal: %w", err)
	}
	e.goRun("card terminal driver", d.Run, nil)
	if t.apiListen != "" {
		txt.SerialPort, txt.TerminalManagerLogin, txt.HiPayLogin = t.port, t.apiLogin, t.notifyLogin
		txt.TerminalManagerPassword, txt.HiPayPassword = ecr.Secret(apiPass), ecr.Secret(notifyPass)
		if err := t.startAPI(e, d, txt); err != nil {
			return nil, err
		}
	}
	return &terminalRail{Driver: d, currency: opts.Currency}, nil
}

// startAPI serves HiPay's unattended ECR connector API locally for kiosk
// software, with its notification outbox when a URL is set.
func (t *terminalSettings) startAPI(e *railEnv, d *terminal.Driver, st ecr.Settings) error {
	if st.TerminalManagerLogin == "" || st.TerminalManagerPassword == "" {
		return errors.New("the terminal's HTTP API needs a login and a password: --terminal-api-login and PAYDESK_TERMINAL_API_PASSWORD (or TERMINAL_MANAGER_LOGIN and TERMINAL_MANAGER_PWD in config.txt)")
	}
	host, portStr, err := net.SplitHostPort(t.apiListen)
	if err != nil {
		return fmt.Errorf("--terminal-api-listen %q: %w (want host:port, e.g. 127.0.0.1:8081)", t.apiListen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("--terminal-api-listen %q: port %q is not 0-65535", t.apiListen, portStr)
	}
	st.LocalPort = port
	var outbox *ecr.Outbox
	if t.notifyURL != "" {
		dir := cmp.Or(t.outboxDir, filepath.Join(filepath.Dir(e.journal), "terminal-outbox"))
		outbox, err = ecr.OpenOutbox(ecr.OutboxOptions{Dir: dir, URL: t.notifyURL, Login: st.HiPayLogin,
			Password: st.HiPayPassword, Logger: e.log})
		if err != nil {
			return fmt.Errorf("terminal notifications: %w", err)
		}
	}
	h, err := ecr.NewHandler(ecr.Options{Terminal: d, Bus: e.bus, Login: st.TerminalManagerLogin,
		Password: st.TerminalManagerPassword, Settings: st, Currency: t.currency, MaxMinor: e.maxMinor, Outbox: outbox, Logger: e.log})
	if err != nil {
		return err
	}
	srv := &ecr.Server{Host: host, Port: port, AnyPort: port == 0, Handler: h, Logger: e.log}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	e.goRun("terminal HTTP API", func(ctx context.Context) error { return srv.Serve(ctx, ln) }, func() {
		srv.Close()
		if outbox != nil {
			outbox.Close()
		}
	})
	url := "http://" + srv.Addr().String()
	e.log.Info("terminal HTTP API listening", "url", url, "notify", t.notifyURL != "")
	if e.demo {
		e.note("Terminal HTTP API (HiPay ECR connector): curl -u demo:demo " + url + "/check")
	} else {
		e.note("Terminal HTTP API on " + url)
	}
	return nil
}

// terminalRail is the driver as the consoles see it: a payment.Starter
// that also reports its health, its countdown and its currency.
type terminalRail struct {
	*terminal.Driver
	currency string
}

// Health is the terminal's state in the consoles' header.
func (r *terminalRail) Health() payment.Health {
	h := r.Driver.Health()
	switch h.State {
	case terminal.HealthOK:
		if h.Busy != "" {
			return payment.Health{Up: true, Detail: "busy"}
		}
		return payment.Health{Up: true, Detail: "ready"}
	case terminal.HealthUnknown:
		return payment.Health{Up: true, Detail: "checking"}
	}
	detail := string(h.State)
	if h.Detail != "" {
		detail += ": " + h.Detail
	}
	return payment.Health{Up: false, Detail: detail}
}

// Deadline is what the driver waits for on txn id, and until when.
func (r *terminalRail) Deadline(id string) (string, time.Time, bool) {
	f, ok := r.Current()
	if !ok || f.ID != id || f.Deadline.IsZero() {
		return "", time.Time{}, false
	}
	return f.Waiting, f.Deadline, true
}

// Currency is what the terminal's amounts are in.
func (r *terminalRail) Currency() string { return r.currency }

// runSimTerminal runs a simulated Concert card terminal on a new
// pseudo-terminal and prints the device to give paydesk.
func runSimTerminal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("paydesk sim terminal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	link := fs.String("link", "", "also keep this symbolic link pointing at the device (it changes after a hang-up), e.g. /tmp/paydesk-terminal")
	baud := fs.Int("baud", terminal.DefaultBaud, "pace the line as this speed; 0 sends as fast as the pseudo-terminal goes")
	think := fs.Duration("think", termsim.DefaultThink, "how long the customer takes with the card")
	slow := fs.Duration("slow", termsim.DefaultSlowDelay, "think time of the slow amounts")
	late := fs.Duration("late", termsim.DefaultLateDelay, "when the late amount answers")
	busy := fs.Duration("busy", termsim.DefaultBusyFor, "how long the busy amount ignores ENQs")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: paydesk sim terminal [flags]\n\nA simulated Concert V2 card terminal on a pseudo-terminal. It prints the device\npath; run paydesk with --terminal-port set to it (or to --link).\n\n%s\nFlags:\n", termsim.Outcomes)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, logf, err := openSimLog("terminal", stdout)
	if err != nil {
		return err
	}
	defer logf.Close()
	sim := termsim.New(termsim.Options{Baud: *baud, Think: *think, SlowDelay: *slow, LateDelay: *late, BusyFor: *busy, Link: *link, Logger: log})
	if _, err := sim.Open(); err != nil {
		return err
	}
	go func() {
		for {
			select {
			case p := <-sim.Paths():
				if *link != "" {
					fmt.Fprintf(stdout, "terminal on %s (link %s)\n", p, *link)
				} else {
					fmt.Fprintf(stdout, "terminal on %s\n", p)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return sim.Run(ctx)
}
