package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"golang.org/x/term"

	"paydesk/desk"
	"paydesk/payment"
	"paydesk/plain"
	"paydesk/protocol"
	"paydesk/tui"
)

// runConsole opens the journal, starts the rails (in the demo, against
// their simulators) and runs the console until exit. It is wiring only:
// each step is a function of its own.
func runConsole(ctx context.Context, args []string, demo bool, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg config
	name, listen := "paydesk", protocol.DefaultAddr
	if demo {
		name, listen = "paydesk demo", "127.0.0.1:0"
	}
	rails := consoleRails(&cfg, listen)
	file, err := parseConsoleFlags(name, args, demo, &cfg, rails, stderr)
	if err != nil {
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
		demoDir, banner = dir, demoPaths(&cfg, dir)
	}
	if err := cfg.load(file); err != nil {
		return err
	}
	st, err := openStore(cfg.logPath, cfg.journal, stderr)
	if err != nil {
		return err
	}
	defer st.close()
	if cfg.devSec && !demo {
		banner = append(banner, "WARNING: using the public development secret; set PAYDESK_SECRET or --secret-file for production")
		st.log.Warn("using the public development secret")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Every long-running part is started by renv.goRun and stopped, in
	// reverse order, by renv.stop; see rails.go.
	renv := &railEnv{bus: st.bus, log: st.log, file: file, demo: demo, dir: demoDir, journal: cfg.journal, maxMinor: cfg.maxMinor,
		kioskID: cfg.kioskID, displayRails: map[string]payment.Starter{}}
	defer renv.stop()
	if err := startRails(ctx, renv, rails); err != nil {
		return err
	}
	if demo {
		// Last, so a short window, which shows the first lines of the
		// brief, keeps the other rails' lines and the display's URL.
		renv.brief("Demo POS by cents: .51 declined  .61 no answer  .62 no result  .81 POS error",
			"  .91 wrong amount  .92 reconnects  other: approved (every outcome: n)")
	}
	return runUI(ctx, &cfg, renv, st.rec, append(banner, renv.notes...), stdin, stdout)
}

// parseConsoleFlags registers the console's flags and every rail's,
// parses args, and reads the config file, which fills in what flags and
// the environment left unset.
func parseConsoleFlags(name string, args []string, demo bool, cfg *config, rails []railSettings, stderr io.Writer) (*fileConfig, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerConsole(fs)
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
	for _, r := range rails {
		r.register(fs)
	}
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
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see '%s -h')", fs.Arg(0), name)
	}
	// The demo reads a config file only when it is named, so it always
	// starts the same way.
	cfgPath, named := cfg.configPath, cfg.configPath != ""
	if !named && !demo {
		cfgPath = defaultConfigPath()
	}
	file, err := loadFileConfig(cfgPath, named)
	if err != nil {
		return nil, err
	}
	if err := file.apply(fs, secretsOf(rails)...); err != nil {
		return nil, err
	}
	return file, nil
}

// demoPaths puts the demo's journal and log, unless named, in its
// temporary directory dir, and returns the banner line that says where
// the journal is.
func demoPaths(cfg *config, dir string) []string {
	if cfg.logPath == "" {
		cfg.logPath = filepath.Join(dir, "paydesk.log")
	}
	if cfg.journal == "" {
		cfg.journal = filepath.Join(dir, "journal.db")
		return []string{"DEMO: peers are simulated; the journal is temporary (" + cfg.journal + ")"}
	}
	return []string{"DEMO: peers are simulated; the journal " + cfg.journal + " is kept"}
}

// store is the console's log, journal and bus.
type store struct {
	log     *slog.Logger
	logf    io.Closer
	journal *payment.Journal
	rec     payment.Recovery
	bus     *payment.Bus
	stderr  io.Writer
}

// openStore opens the log and the journal (payments in flight at the
// last shutdown are now unknown, and logged) and the bus on it.
func openStore(logPath, journalPath string, stderr io.Writer) (*store, error) {
	log, logf, err := openLog(logPath)
	if err != nil {
		return nil, err
	}
	journal, rec, err := payment.OpenJournal(journalPath, payment.JournalOptions{})
	if err != nil {
		logf.Close()
		return nil, err
	}
	for _, t := range rec.Recovered {
		log.Warn("transaction was in flight at shutdown; now unknown", "txn", t.ID, "rail", t.Rail, "amount", t.Amount.Decimal())
	}
	return &store{log: log, logf: logf, journal: journal, rec: rec, bus: payment.NewBus(journal, log), stderr: stderr}, nil
}

// close closes the bus, the journal and the log.
func (s *store) close() {
	s.bus.Close()
	// Writes that failed and never landed (a full disk) are said here
	// too: their payments are unknown at the next start.
	if err := s.journal.Close(); err != nil {
		s.log.Error("journal", "err", err)
		fmt.Fprintf(s.stderr, "paydesk: %v\n", err)
	}
	s.logf.Close()
}

// runUI runs the full-screen console when stdin and stdout are a
// terminal (and --plain is not set), else the line-oriented one.
func runUI(ctx context.Context, cfg *config, e *railEnv, rec payment.Recovery, banner []string, stdin io.Reader, stdout io.Writer) error {
	devSecret := cfg.devSec && !e.demo
	d := desk.New(desk.Config{KioskID: cfg.kioskID, Listen: e.addr, MaxMinor: cfg.maxMinor, POS: e.pos, Rails: e.rails, Displays: e.displays, Hub: e.hub}, e.bus)
	if !cfg.plain && isTerminal(stdin) && isTerminal(stdout) {
		if os.Getenv("NO_COLOR") != "" {
			lipgloss.SetColorProfile(termenv.Ascii) // https://no-color.org
		}
		m := tui.New(tui.Config{Demo: e.demo, DemoNotes: strings.Join(e.notes, "\n"), DemoBrief: strings.Join(e.briefs, "\n"),
			DevSecret: devSecret, Unresolved: rec.Unresolved}, d)
		_, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx)).Run()
		if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	con := plain.New(plain.Config{Banner: banner, DevSecret: devSecret, Unresolved: rec.Unresolved, Interactive: isTerminal(stdin)}, d, stdout)
	err := con.Run(ctx, stdin)
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
