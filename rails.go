package main

import (
	"context"
	"log/slog"

	"paydesk/payment"
)

// railEnv is what each rail's start-up gets from the console: the bus to
// report on, the log, the config file (for secrets), whether this is the
// demo, and ways to add notes for the operator and clean-ups for exit.
//
// A rail's setup lives in a file of its own (rail_<name>.go): a settings
// struct with register(fs) for its flags (each defaulting from PAYDESK_*),
// and start(env) returning the rail, or nil when it is not configured.
//
// Every long-running part (the POS link, its simulator, the card terminal's
// driver, simulator and HTTP API, the customer display, the hub link) is
// started one way, goRun, and stopped one way, stop: its context is made
// by goRun and cancelled by stop, in reverse order of starting.
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

	notes  []string
	briefs []string
	stops  []func()
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
