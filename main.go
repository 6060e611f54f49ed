// Command paydesk is a cashier console for self-service kiosks: it takes
// payments over every rail the kiosk is wired to and shows each payment's
// whole life on one screen.
//
//	paydesk [flags]            run the console
//	paydesk demo [flags]       run the console with every peer simulated
//	paydesk journal [...]      print the journal
//	paydesk sim NAME [flags]   run a simulated peer: pos, terminal or daraja
//	paydesk hub [...]          the hub kiosks replicate their journals to
//	paydesk version            the version, commit and Go version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `paydesk: a cashier console for self-service kiosks.

Usage:
  paydesk [flags]              run the console (MobyPay POS terminals connect to --listen)
  paydesk demo [flags]         try it: the console with every peer simulated (POS, card
                               terminal, M-Pesa, customer display) and a temporary journal
  paydesk journal [flags]      recent transactions; 'journal show TXN', 'journal totals'
  paydesk sim pos [flags]      a simulated POS terminal that connects to a kiosk
  paydesk sim terminal [flags] a simulated serial card terminal on a pseudo-terminal
  paydesk sim daraja [flags]   a fake Safaricom Daraja for the M-Pesa rail
  paydesk sim fleet [flags]    N simulated kiosks replicating their journals to a hub
  paydesk hub [flags]          the hub kiosks connect to; 'paydesk hub help' for its commands
  paydesk version              the version, commit and Go version of this binary
  paydesk help                 this text; 'paydesk <command> -h' for a command's flags
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "paydesk: %v\n", err)
		os.Exit(1)
	}
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return runConsole(ctx, args[1:], true, stdin, stdout, stderr)
		case "journal":
			return runJournal(ctx, args[1:], stdout, stderr)
		case "sim":
			return runSim(ctx, args[1:], stdout, stderr)
		case "hub":
			return runHub(ctx, args[1:], stdin, stdout, stderr)
		case "help", "--help", "-help":
			fmt.Fprint(stdout, usage+"\nRun 'paydesk -h' for the console's flags.\n")
			return nil
		case "version", "--version", "-version":
			fmt.Fprintln(stdout, version())
			return nil
		}
	}
	return runConsole(ctx, args, false, stdin, stdout, stderr)
}

// version says which paydesk this is: the module version, the commit it
// was built from (with "modified" when the work tree had changes) and the
// Go version, as the build recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "paydesk (no build information)"
	}
	return formatVersion(bi)
}

func formatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified, when string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			when = s.Value
		}
	}
	out := "paydesk " + v
	if rev != "" {
		out += ", commit " + rev
		if modified == "true" {
			out += " (modified)"
		}
		if when != "" {
			out += " of " + when
		}
	} else {
		out += ", commit unknown (built with -buildvcs=false or outside git)"
	}
	return out + ", built with " + bi.GoVersion
}
