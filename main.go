// Command paydesk is a cashier console for self-service kiosks: it takes
// payments over every rail the kiosk is wired to and shows each payment's
// whole life on one screen.
//
//	paydesk [flags]            run the console
//	paydesk demo [flags]       run the console with every peer simulated
//	paydesk journal [...]      print the journal
//	paydesk sim NAME [flags]   run a simulated peer: pos, terminal, daraja or fleet
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
	"slices"
	"strings"
	"syscall"
)

// command is a sub-command of paydesk. Dispatch (run) and 'paydesk help'
// both read commands(), so the help cannot name one that does not run.
type command struct {
	name    string   // "demo", or "sim pos" for a simulator; "" is the console, what runs when no name matches
	aliases []string // other spellings of a one-word name
	usage   string   // what follows the name in the help, e.g. "[flags]"
	help    string   // one line in 'paydesk help' ("\n" continues it under itself)
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands is the table of paydesk's sub-commands, in the order 'paydesk
// help' lists them. The simulators are its "sim NAME" rows. (A function,
// not a variable: the help command reads the table it is in.)
func commands() []command {
	noStdin := func(f func(ctx context.Context, args []string, stdout, stderr io.Writer) error) func(context.Context, []string, io.Reader, io.Writer, io.Writer) error {
		return func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
			return f(ctx, args, stdout, stderr)
		}
	}
	return []command{
		{name: "", usage: "[flags]", help: "run the console (MobyPay POS terminals connect to --listen)",
			run: func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
				return runConsole(ctx, args, false, stdin, stdout, stderr)
			}},
		{name: "demo", usage: "[flags]", help: "try it: the console with every peer simulated (POS, card\nterminal, M-Pesa, customer display) and a temporary journal",
			run: func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
				return runConsole(ctx, args, true, stdin, stdout, stderr)
			}},
		{name: "journal", usage: "[flags]", help: "recent transactions; 'journal show TXN', 'journal totals'", run: noStdin(runJournal)},
		{name: "sim pos", usage: "[flags]", help: "a simulated POS terminal that connects to a kiosk", run: noStdin(runSimPOS)},
		{name: "sim terminal", usage: "[flags]", help: "a simulated serial card terminal on a pseudo-terminal", run: noStdin(runSimTerminal)},
		{name: "sim daraja", usage: "[flags]", help: "a fake Safaricom Daraja for the M-Pesa rail", run: noStdin(runSimDaraja)},
		{name: "sim fleet", usage: "[flags]", help: "N simulated kiosks replicating their journals to a hub", run: noStdin(runSimFleet)},
		{name: "hub", usage: "[flags]", help: "the hub kiosks connect to; 'paydesk hub help' for its commands", run: runHub},
		{name: "version", aliases: []string{"--version", "-version"}, help: "the version, commit and Go version of this binary",
			run: func(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) error {
				fmt.Fprintln(stdout, version())
				return nil
			}},
		{name: "help", aliases: []string{"--help", "-help"}, help: "this text; 'paydesk <command> -h' for a command's flags",
			run: func(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) error {
				fmt.Fprint(stdout, usage()+"\nRun 'paydesk -h' for the console's flags.\n")
				return nil
			}},
	}
}

// usage is 'paydesk help': a line per row of commands.
func usage() string {
	var b strings.Builder
	b.WriteString("paydesk: a cashier console for self-service kiosks.\n\nUsage:\n")
	const col = 28 // "paydesk sim terminal [flags]", the longest
	for _, c := range commands() {
		head := strings.Join(strings.Fields("paydesk "+c.name+" "+c.usage), " ")
		help := strings.ReplaceAll(c.help, "\n", "\n"+strings.Repeat(" ", 2+col+1))
		fmt.Fprintf(&b, "  %-*s %s\n", col, head, help)
	}
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "paydesk: %v\n", err)
		os.Exit(1)
	}
}

// run is main without the process: tests call it. It runs the row of
// commands that args name, else the console.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmds := commands()
	for _, c := range cmds[1:] {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && (slices.Equal(args[:len(words)], words) || len(words) == 1 && slices.Contains(c.aliases, args[0])) {
			return c.run(ctx, args[len(words):], stdin, stdout, stderr)
		}
	}
	if len(args) > 0 && args[0] == "sim" {
		return runSimUsage(args[1:], stderr)
	}
	return cmds[0].run(ctx, args, stdin, stdout, stderr)
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
