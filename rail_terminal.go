package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/ecr"
	"paydesk/terminal/termsim"
)

// terminalSettings bind terminal.Settings and its HTTP API's
// ecr.Settings to flags. The rail is off unless a port is named (or
// config.txt names one; the demo simulates one). The API's passwords are
// secrets: PAYDESK_TERMINAL_API_PASSWORD, PAYDESK_TERMINAL_NOTIFY_PASSWORD
// (or their _FILE forms, or the config file's [terminal] table), never
// flags.
type terminalSettings struct {
	terminal.Settings
	api ecr.Settings
}

func (t *terminalSettings) secrets() []string {
	return []string{"terminal-api-password", "terminal-notify-password"}
}

// register adds the terminal's flags to fs, with defaults from PAYDESK_*.
func (t *terminalSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&t.Port, "terminal-port", env("TERMINAL_PORT", ""), "serial port of the card terminal, e.g. /dev/ttyACM0 or COM8; empty turns the terminal off (PAYDESK_TERMINAL_PORT)")
	fs.IntVar(&t.Baud, "terminal-baud", envInt(fs.Output(), "TERMINAL_BAUD", terminal.DefaultBaud), "the terminal's line speed (PAYDESK_TERMINAL_BAUD)")
	fs.StringVar(&t.Format, "terminal-format", env("TERMINAL_FORMAT", terminal.DefaultFormat), "data bits, parity, stop bits: 8N1 for USB, 7E1 for RS-232 (PAYDESK_TERMINAL_FORMAT)")
	fs.IntVar(&t.POS, "terminal-pos", envInt(fs.Output(), "TERMINAL_POS", terminal.DefaultPOS), "cash register number sent to the terminal, 1-99 (PAYDESK_TERMINAL_POS)")
	fs.StringVar(&t.Currency, "terminal-currency", env("TERMINAL_CURRENCY", terminal.DefaultCurrency), "currency the terminal is set up for, ISO 4217 (PAYDESK_TERMINAL_CURRENCY)")
	fs.StringVar(&t.Protocol, "terminal-protocol", env("TERMINAL_PROTOCOL", "E+"), "Concert protocol: E+ (V2 E+, the default) or E for older terminals (PAYDESK_TERMINAL_PROTOCOL)")
	fs.StringVar(&t.Answer, "terminal-answer", env("TERMINAL_ANSWER", "full"), "answer asked of the terminal: full (80 bytes, with the card report) or short (25) (PAYDESK_TERMINAL_ANSWER)")
	fs.BoolVar(&t.ForceOnline, "terminal-force-online", env("TERMINAL_FORCE_ONLINE", "") != "", "ask online authorisation for every payment (B011) (PAYDESK_TERMINAL_FORCE_ONLINE)")
	fs.DurationVar(&t.Probe, "terminal-probe", envDuration(fs.Output(), "TERMINAL_PROBE", terminal.DefaultProbeInterval), "how often an idle terminal is checked with ENQ/EOT; 0 turns it off (PAYDESK_TERMINAL_PROBE)")
	fs.StringVar(&t.api.ConfigTxt, "terminal-config-txt", env("TERMINAL_CONFIG_TXT", ""), "a HiPay ECR connector config.txt whose keys fill the terminal settings left unset (PAYDESK_TERMINAL_CONFIG_TXT)")
	fs.StringVar(&t.api.Listen, "terminal-api-listen", env("TERMINAL_API_LISTEN", ""), "address of the local HTTP API for kiosk software, e.g. 127.0.0.1:8081; empty turns it off unless config.txt has LOCAL_PORT (PAYDESK_TERMINAL_API_LISTEN)")
	fs.StringVar(&t.api.Login, "terminal-api-login", env("TERMINAL_API_LOGIN", ""), "Basic Auth login of the local HTTP API, TERMINAL_MANAGER_LOGIN; the password is the secret PAYDESK_TERMINAL_API_PASSWORD (PAYDESK_TERMINAL_API_LOGIN)")
	fs.StringVar(&t.api.NotifyURL, "terminal-notify-url", env("TERMINAL_NOTIFY_URL", ""), "URL each API payment's result is POSTed to, through a durable outbox; empty sends none (PAYDESK_TERMINAL_NOTIFY_URL)")
	fs.StringVar(&t.api.NotifyLogin, "terminal-notify-login", env("TERMINAL_NOTIFY_LOGIN", ""), "Basic Auth login for the notifications, HIPAY_LOGIN; the password is the secret PAYDESK_TERMINAL_NOTIFY_PASSWORD (PAYDESK_TERMINAL_NOTIFY_LOGIN)")
	fs.StringVar(&t.api.OutboxDir, "terminal-outbox", env("TERMINAL_OUTBOX", ""), "directory of the notification outbox (PAYDESK_TERMINAL_OUTBOX; default: terminal-outbox next to the journal)")
	fs.DurationVar(&t.ResultTimeout, "terminal-result-timeout", envDuration(fs.Output(), "TERMINAL_RESULT_TIMEOUT", terminal.DefaultResultTimeout), "wait for the terminal's result once it has the request (PAYDESK_TERMINAL_RESULT_TIMEOUT)")
}

// startRail starts the terminal (see start), a rail of the console and of
// the customer display.
func (t *terminalSettings) startRail(_ context.Context, e *railEnv) error {
	e.displayRails["terminal"] = nil // known to the display, off unless it starts
	tr, err := t.start(e)
	if err != nil || tr == nil {
		return err
	}
	e.offer(payment.RailTerminal, tr)
	e.displayRails["terminal"] = tr
	return nil
}

// start runs the terminal driver (in the demo, against a simulated
// terminal on a pseudo-terminal) and its HTTP API when configured, and
// returns it as the console's rail, or nil when no port is configured.
// The settings' rules are terminal.Settings' and ecr.Settings'.
func (t *terminalSettings) start(e *railEnv) (*terminal.Rail, error) {
	s, api := t.Settings, t.api
	for _, sec := range []struct {
		name string
		to   *ecr.Secret
	}{{"terminal-api-password", &api.Password}, {"terminal-notify-password", &api.NotifyPassword}} {
		v, err := e.file.secret(sec.name)
		if err != nil {
			return nil, err
		}
		*sec.to = ecr.Secret(v)
	}
	port, warnings, err := api.LoadConfigTxt()
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		e.log.Warn("config.txt", "file", api.ConfigTxt, "warning", w)
		e.note("config.txt: " + w)
	}
	s.Port = cmp.Or(s.Port, port)
	if e.demo && api.Listen == "" {
		api.Listen = "127.0.0.1:0"
		api.Login, api.Password = cmp.Or(api.Login, "demo"), cmp.Or(api.Password, "demo")
	}
	if e.demo && s.Port == "" {
		sim := termsim.New(termsim.Options{Baud: s.Baud, Link: filepath.Join(e.dir, "terminal"), Logger: e.log})
		if _, err := sim.Open(); err != nil {
			e.note("No simulated card terminal: " + err.Error())
			return nil, nil
		}
		e.goRun("terminal simulator", sim.Run, nil)
		s.Port = sim.DevicePath()
		e.note("Simulated card terminal (item 8) on " + s.Port + "; amounts in " + s.Currency + ":")
		e.brief("Demo terminal (8, " + s.Currency + "): 6.01 refused  6.02 no answer  6.03 slow  6.12 unplugged")
		for _, l := range strings.Split(strings.TrimRight(termsim.Outcomes, "\n"), "\n")[1:] {
			e.note(l)
		}
	}
	if s.Port == "" {
		return nil, nil
	}
	s.MaxMinor = e.maxMinor
	d, err := s.Open(e.bus, e.log)
	if err != nil {
		return nil, err
	}
	e.goRun("card terminal driver", d.Run, nil)
	if api.Listen != "" {
		api.SerialPort, api.Currency, api.MaxMinor = s.Port, s.Currency, e.maxMinor
		if err := startAPI(e, d, api); err != nil {
			return nil, err
		}
	}
	return &terminal.Rail{Driver: d}, nil
}

// startAPI serves HiPay's unattended ECR connector API locally for kiosk
// software, with its notification outbox when a URL is set.
func startAPI(e *railEnv, d *terminal.Driver, api ecr.Settings) error {
	o, err := api.Open(d, e.bus, e.log, filepath.Dir(e.journal))
	if err != nil {
		return err
	}
	srv := o.Server
	e.goRun("terminal HTTP API", func(ctx context.Context) error { return srv.Serve(ctx, o.Listener) }, func() {
		srv.Close()
		if o.Outbox != nil {
			o.Outbox.Close()
		}
	})
	url := "http://" + srv.Addr().String()
	e.log.Info("terminal HTTP API listening", "url", url, "notify", api.NotifyURL != "")
	if e.demo {
		e.note("Terminal HTTP API (HiPay ECR connector): curl -u demo:demo " + url + "/check")
	} else {
		e.note("Terminal HTTP API on " + url)
	}
	return nil
}

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
