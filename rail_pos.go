package main

import (
	"context"
	"flag"
	"strings"
	"time"

	"paydesk/protocol"
	"paydesk/protocol/possim"
)

// posLinkSettings bind protocol.Settings to flags: the MobyPay POS link,
// always on. Its secret is the console's (config.load reads it from
// --secret-file, PAYDESK_SECRET or the config file's "secret"), as is
// --kiosk-id.
type posLinkSettings struct {
	protocol.Settings
	cfg    *config
	listen string // --listen's default
}

func (p *posLinkSettings) secrets() []string { return []string{"secret"} }

// register adds the POS link's flags to fs, with defaults from PAYDESK_*.
func (p *posLinkSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&p.Listen, "listen", env("LISTEN", p.listen), "address POS terminals connect to (PAYDESK_LISTEN)")
	fs.StringVar(&p.cfg.secretFile, "secret-file", env("SECRET_FILE", ""), "file holding the shared POS secret (PAYDESK_SECRET_FILE; or PAYDESK_SECRET)")
	fs.StringVar(&p.CertFile, "tls-cert", env("TLS_CERT", ""), "TLS certificate file for the POS link (PAYDESK_TLS_CERT)")
	fs.StringVar(&p.KeyFile, "tls-key", env("TLS_KEY", ""), "TLS key file for the POS link (PAYDESK_TLS_KEY)")
	fs.DurationVar(&p.AckTimeout, "ack-timeout", envDuration(fs.Output(), "ACK_TIMEOUT", protocol.DefaultAckTimeout), "wait for the POS's ack (PAYDESK_ACK_TIMEOUT)")
	fs.DurationVar(&p.ResultTimeout, "result-timeout", envDuration(fs.Output(), "RESULT_TIMEOUT", protocol.DefaultResultTimeout), "wait for the result (PAYDESK_RESULT_TIMEOUT)")
	fs.DurationVar(&p.Window, "window", envDuration(fs.Output(), "WINDOW", protocol.DefaultWindow), "timestamp window for POS messages (PAYDESK_WINDOW)")
	fs.DurationVar(&p.IdleTimeout, "idle-timeout", envDuration(fs.Output(), "IDLE_TIMEOUT", 0), "close a POS connection silent this long, 0 = never (PAYDESK_IDLE_TIMEOUT)")
}

// startRail serves the POS link (in the demo, with a simulated POS
// connected to it), a rail of the consoles and of the customer display.
func (p *posLinkSettings) startRail(_ context.Context, e *railEnv) error {
	s := p.Settings
	s.Secret, s.KioskID = p.cfg.secret, p.cfg.kioskID
	srv, ln, err := s.Open(e.bus, e.log)
	if err != nil {
		return err
	}
	e.goRun("POS link", func(ctx context.Context) error { return srv.Serve(ctx, ln) }, func() { srv.Close() })
	e.pos, e.addr = srv, ln.Addr().String()
	e.displayRails["pos"] = srv
	e.log.Info("paydesk started", "kiosk_id", s.KioskID, "listen", e.addr, "journal", e.journal, "demo", e.demo)
	if !e.demo {
		return nil
	}
	sim := possim.New(possim.Options{Addr: e.addr, Secret: s.Secret, PosID: "POS001", Reconnect: true, Logger: e.log})
	e.goRun("POS simulator", sim.Run, nil)
	// Show the menu once the simulated POS is there, so the first
	// payment (or a piped script) does not find the kiosk empty.
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Peers()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	e.note("Simulated POS001 answers by the amount's cents:")
	for _, l := range strings.Split(possim.Outcomes, "\n") {
		e.note("  " + l)
	}
	return nil
}
