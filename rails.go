package main

import (
	"context"
	"flag"
	"log/slog"

	"paydesk/desk"
	"paydesk/mpesa"
	"paydesk/payment"
	"paydesk/protocol"
)

// railEnv is what each rail's start-up gets from the console: the bus to
// report on, the log, the config file (for secrets), whether this is the
// demo, and ways to add notes for the operator and clean-ups for exit.
//
// A rail's setup lives in a file of its own (rail_<name>.go): a
// railSettings that binds the rail package's Settings to flags, reads its
// secrets and calls its Open; and one row of consoleRails. See "Adding a
// rail" in docs/architecture.md.
//
// Every long-running part (the POS link and its simulator, the hub link,
// the card terminal's driver, simulator and HTTP API, the M-Pesa rail and
// the demo's fake Daraja, the customer display) is started one way,
// goRun, and stopped one way, stop: its context is made by goRun and
// cancelled by stop, in reverse order of starting.
type railEnv struct {
	bus  *payment.Bus
	log  *slog.Logger
	file *fileConfig
	demo bool
	// dir is the demo's temporary directory ("" outside the demo).
	dir string
	// journal is the journal's path; rails keep their files beside it.
	journal string
	// maxMinor is --max-amount: every entry point of a rail refuses more.
	maxMinor int64
	kioskID  string

	// What the rails started, for the console and the rails after them.
	pos          *protocol.Server                 // the POS link
	addr         string                           // where it listens
	hubURL       string                           // --hub-url, for M-Pesa via the hub
	viaHub       *mpesa.Rail                      // the M-Pesa rail taking callbacks via the hub
	rails        map[payment.Rail]payment.Starter // the console's rails besides the POS, by name
	displayRails map[string]payment.Starter       // the rails the customer display may take payments on; nil: known, not configured
	displays     desk.Displays                    // the customer display; a nil interface when off
	railsUp      []func()                         // run once every rail has started
	hub          func() string                    // the hub link's state in a few words; nil without a hub

	notes  []string
	briefs []string
	stops  []func()
}

// offer makes rail r, named name, one the consoles offer.
func (e *railEnv) offer(name payment.Rail, r payment.Starter) {
	if e.rails == nil {
		e.rails = map[payment.Rail]payment.Starter{}
	}
	e.rails[name] = r
}

// note adds lines shown to the operator under the menu (the demo peers'
// behaviour, where to point a browser).
func (e *railEnv) note(lines ...string) { e.notes = append(e.notes, lines...) }

// brief adds lines to the notes' short form, for windows too small for
// all the notes.
func (e *railEnv) brief(lines ...string) { e.briefs = append(e.briefs, lines...) }

// onStop registers f to run when the console exits, after the console has
// stopped and before the journal closes; the last registered runs first.
func (e *railEnv) onStop(f func()) { e.stops = append(e.stops, f) }

// goRun runs fn, a part's Run (or a Serve on its listener), in a
// goroutine until the console exits. An error it returns before then is
// logged as what stopped; on exit (stop), fn's context is cancelled, fn is
// waited for, and then (if given) after runs.
func (e *railEnv) goRun(what string, fn func(ctx context.Context) error, after func()) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			e.log.Error(what+" stopped", "err", err)
		}
	}()
	e.onStop(func() {
		stop()
		<-done
		if after != nil {
			after()
		}
	})
}

// stop runs the clean-ups in reverse order.
func (e *railEnv) stop() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	e.stops = nil
}

// railSettings is one row of the console's rails: the settings of a rail
// register its flags (each defaulting from PAYDESK_*), name the config
// file's keys that hold its secrets, and start the rail (doing nothing
// when it is not configured), putting what the console and the other
// rails need into the railEnv: a rail the customer display may take
// payments on is in displayRails under its name (nil when it is off).
type railSettings interface {
	register(fs *flag.FlagSet)
	secrets() []string
	startRail(ctx context.Context, e *railEnv) error
}

// consoleRails is the console's one list of rails, in the order they
// start: the POS link first (the customer display takes payments on it),
// the hub link before M-Pesa (which may take its callbacks via the hub),
// the customer display last (it takes payments on every rail before it).
// listen is --listen's default.
func consoleRails(cfg *config, listen string) []railSettings {
	return []railSettings{
		&posLinkSettings{cfg: cfg, listen: listen}, // rail_pos.go
		&hubSettings{},      // kiosk_hub.go
		&terminalSettings{}, // rail_terminal.go
		&mpesaSettings{},    // rail_mpesa.go
		&screensSettings{},  // rail_screens.go
	}
}

// secretsOf is the config file's keys that hold secrets, the rails'
// together: they have no flag, and each is also read from PAYDESK_<KEY> or
// the file named by PAYDESK_<KEY>_FILE (see fileConfig.secret).
func secretsOf(rails []railSettings) []string {
	var keys []string
	for _, r := range rails {
		keys = append(keys, r.secrets()...)
	}
	return keys
}

// startRails starts every rail of the list, in order, then says so to
// those waiting for all of them (the hub link's M-Pesa callbacks).
func startRails(ctx context.Context, e *railEnv, rails []railSettings) error {
	for _, r := range rails {
		if err := r.startRail(ctx, e); err != nil {
			return err
		}
	}
	for _, f := range e.railsUp {
		f()
	}
	return nil
}
