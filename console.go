package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"golang.org/x/term"

	"paydesk/payment"
	"paydesk/plain"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/tui"
)

// runConsole opens the journal, starts the POS link (and, in demo, the
// simulators) and runs the console until exit.
func runConsole(ctx context.Context, args []string, demo bool, stdin io.Reader, stdout, stderr io.Writer) error {
	name := "paydesk"
	listen := protocol.DefaultAddr
	if demo {
		name, listen = "paydesk demo", "127.0.0.1:0"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	cfg.register(fs, listen)
	if demo {
		// The demo keeps its journal and log in a temporary directory
		// unless told otherwise; its help must not name the console's.
		for name, use := range map[string]string{
			"journal": "journal database file, kept after the demo (default: journal.db in a temporary directory, removed on exit)",
			"log":     "log file, JSON lines (default: paydesk.log in the temporary directory)",
		} {
			f := fs.Lookup(name)
			f.Value.Set("")
			f.DefValue, f.Usage = "", use
		}
	}
	var term terminalSettings
	term.register(fs)
	var scr screensSettings
	scr.register(fs)
	var mp mpesaSettings
	mp.register(fs)
	var hubs hubSettings
	hubs.register(fs)
	fs.Usage = func() {
		if demo {
			fmt.Fprint(stderr, "Usage: paydesk demo [flags]\n\nThe console with every peer simulated (POS, card terminal, M-Pesa, customer\n"+
				"display). The journal and log are in a temporary directory, removed on exit,\nunless --journal or --log names a file.\n\nFlags:\n")
		} else {
			fmt.Fprint(stderr, usage()+"\nFlags of the console:\n")
		}
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see '%s -h')", fs.Arg(0), name)
	}
	// The config file fills in what flags and the environment left unset.
	// The demo reads one only when it is named, so it always starts the
	// same way.
	cfgPath, named := cfg.configPath, cfg.configPath != ""
	if !named && !demo {
		cfgPath = defaultConfigPath()
	}
	file, err := loadFileConfig(cfgPath, named)
	if err != nil {
		return err
	}
	if err := file.apply(fs, secretSettings...); err != nil {
		return err
	}
	var banner []string
	demoDir := ""
	if demo {
		dir, err := os.MkdirTemp("", "paydesk-demo-")
		if err != nil {
			return fmt.Errorf("demo: temporary directory: %w", err)
		}
		defer os.RemoveAll(dir)
		demoDir = dir
		if cfg.journal == "" {
			cfg.journal = filepath.Join(dir, "journal.db")
			banner = append(banner, "DEMO: peers are simulated; the journal is temporary ("+cfg.journal+")")
		} else {
			banner = append(banner, "DEMO: peers are simulated; the journal "+cfg.journal+" is kept")
		}
		if cfg.logPath == "" {
			cfg.logPath = filepath.Join(dir, "paydesk.log")
		}
	}
	if err := cfg.load(file); err != nil {
		return err
	}
	log, logf, err := openLog(cfg.logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	if cfg.devSec && !demo {
		banner = append(banner, "WARNING: using the public development secret; set PAYDESK_SECRET or --secret-file for production")
		log.Warn("using the public development secret")
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return err
	}

	journal, rec, err := payment.OpenJournal(cfg.journal, payment.JournalOptions{})
	if err != nil {
		return err
	}
	defer func() {
		// Writes that failed and never landed (a full disk) are said
		// here too: their payments are unknown at the next start.
		if err := journal.Close(); err != nil {
			log.Error("journal", "err", err)
			fmt.Fprintf(stderr, "paydesk: %v\n", err)
		}
	}()
	for _, t := range rec.Recovered {
		log.Warn("transaction was in flight at shutdown; now unknown", "txn", t.ID, "rail", t.Rail, "amount", t.Amount.Decimal())
	}
	bus := payment.NewBus(journal, log)
	defer bus.Close()

	srv, err := protocol.NewServer(bus, protocol.Options{
		Addr: cfg.listen, TLS: tlsCfg, Secret: cfg.secret, KioskID: cfg.kioskID, Window: cfg.window,
		AckTimeout: cfg.ackTimeout, ResultTimeout: cfg.resultTimeout, IdleTimeout: cfg.idleTimeout, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Every long-running part is started by renv.goRun and stopped, in
	// reverse order, by renv.stop; see rails.go.
	renv := &railEnv{bus: bus, log: log, file: file, demo: demo, dir: demoDir, journal: cfg.journal, maxMinor: cfg.maxMinor}
	defer renv.stop()
	renv.goRun("POS link", func(ctx context.Context) error { return srv.Serve(ctx, ln) }, func() { srv.Close() })
	addr := ln.Addr().String()
	log.Info("paydesk started", "kiosk_id", cfg.kioskID, "listen", addr, "journal", cfg.journal, "demo", demo)

	// The rails beside the POS link. Each is off unless configured (the
	// demo configures them all, against their simulators); see rails.go.
	if demo {
		sim := possim.New(possim.Options{Addr: addr, Secret: cfg.secret, PosID: "POS001", Reconnect: true, Logger: log})
		renv.goRun("POS simulator", sim.Run, nil)
		// Show the menu once the simulated POS is there, so the first
		// payment (or a piped script) does not find the kiosk empty.
		deadline := time.Now().Add(5 * time.Second)
		for len(srv.Peers()) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		renv.note("Simulated POS001 answers by the amount's cents:")
		for _, l := range strings.Split(possim.Outcomes, "\n") {
			renv.note("  " + l)
		}
	}
	if err := hubs.start(renv, cfg.kioskID); err != nil {
		return err
	}
	var rails tui.Rails
	if tr, err := term.start(renv); err != nil {
		return err
	} else if tr != nil {
		rails.Terminal = tr
	}
	mp.HubURL = hubs.url
	mr, err := mp.start(ctx, renv)
	if err != nil {
		return err
	}
	if mr != nil {
		rails.MPesa = mr
	}
	if mp.ViaHub {
		hubs.railsStarted(mr)
	} else {
		hubs.railsStarted(nil)
	}
	// The customer display takes payments on the same rails.
	displayRails := map[string]payment.Starter{"pos": posRail{srv}}
	if rails.Terminal != nil {
		displayRails["terminal"] = rails.Terminal
	}
	if rails.MPesa != nil {
		// Paybill/till only (MPESA=mpesa:c2b): the display collects no
		// phone number for a push.
		displayRails["mpesa"] = rails.MPesa
	}
	displays, err := scr.start(renv, displayRails)
	if err != nil {
		return err
	}
	var disp tui.Displays // stays a nil interface when the display is off
	if displays != nil {
		disp = displays
	}
	if demo {
		// Last, so a short window, which shows the first lines of the
		// brief, keeps the other rails' lines and the display's URL.
		renv.brief("Demo POS by cents: .51 declined  .61 no answer  .62 no result  .81 POS error",
			"  .91 wrong amount  .92 reconnects  other: approved (every outcome: n)")
	}
	banner = append(banner, renv.notes...)

	if !cfg.plain && isTerminal(stdin) && isTerminal(stdout) {
		notes := strings.Join(renv.notes, "\n")
		if os.Getenv("NO_COLOR") != "" {
			lipgloss.SetColorProfile(termenv.Ascii) // https://no-color.org
		}
		m := tui.New(tui.Config{KioskID: cfg.kioskID, Listen: addr, MaxMinor: cfg.maxMinor, Demo: demo,
			DemoNotes: notes, DemoBrief: strings.Join(renv.briefs, "\n"), DevSecret: cfg.devSec && !demo, Rails: rails, Displays: disp, Unresolved: rec.Unresolved}, srv, bus)
		_, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx)).Run()
		if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	con := plain.New(plain.Config{KioskID: cfg.kioskID, Listen: addr, MaxMinor: cfg.maxMinor,
		Banner: banner, DevSecret: cfg.devSec && !demo, Terminal: rails.Terminal, MPesa: rails.MPesa, Unresolved: rec.Unresolved,
		Interactive: isTerminal(stdin)}, srv, bus, stdout)
	err = con.Run(ctx, stdin)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// isTerminal reports whether f is an interactive terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}
