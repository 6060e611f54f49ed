package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
)

// config is everything the console needs, from flags, PAYDESK_* variables
// and defaults (flags win over the environment).
type config struct {
	configPath string
	journal    string
	logPath    string
	kioskID    string
	maxAmount  string
	plain      bool
	// secretFile is --secret-file, the POS link's (bound by
	// posLinkSettings): the console reads the secret before the rails
	// start, to warn when it is the public development one.
	secretFile string

	// filled by load
	secret   []byte
	devSec   bool
	maxMinor int64
}

// env returns PAYDESK_<name> or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv("PAYDESK_" + name); ok && v != "" {
		return v
	}
	return def
}

// envDuration returns PAYDESK_<name> as a duration, or def; a value that
// is not one is said on w (the command's stderr) and ignored.
func envDuration(w io.Writer, name string, def time.Duration) time.Duration {
	if v := env(name, ""); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		fmt.Fprintf(w, "paydesk: ignoring PAYDESK_%s=%q: not a duration like 10s\n", name, v)
	}
	return def
}

// envInt returns PAYDESK_<name> as a whole number, or def; a value that
// is not one is said on w (the command's stderr) and ignored.
func envInt(w io.Writer, name string, def int) int {
	if v := env(name, ""); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		fmt.Fprintf(w, "paydesk: ignoring PAYDESK_%s=%q: not a whole number\n", name, v)
	}
	return def
}

// registerConsole adds the flags of the console itself: its config file,
// journal, log, identity, amount limit and screen.
func (c *config) registerConsole(fs *flag.FlagSet) {
	fs.StringVar(&c.configPath, "config", env("CONFIG", ""), "config file, TOML (PAYDESK_CONFIG; default: paydesk/paydesk.toml in the user's config directory, if it exists)")
	fs.StringVar(&c.journal, "journal", env("JOURNAL", payment.DefaultJournalPath()), "journal database file (PAYDESK_JOURNAL)")
	fs.StringVar(&c.logPath, "log", env("LOG", ""), "log file, JSON lines (PAYDESK_LOG; default: paydesk.log next to the journal)")
	fs.StringVar(&c.kioskID, "kiosk-id", env("KIOSK_ID", protocol.DefaultKioskID), "kiosk_id sent to the POS (PAYDESK_KIOSK_ID)")
	fs.StringVar(&c.maxAmount, "max-amount", env("MAX_AMOUNT", payment.FormatMinor(payment.DefaultMaxMinor)), "largest amount accepted (PAYDESK_MAX_AMOUNT)")
	fs.BoolVar(&c.plain, "plain", env("PLAIN", "") != "", "line-oriented console (automatic when stdin is not a terminal)")
}

// load validates the console's settings and reads the POS link's secret (from --secret-file,
// PAYDESK_SECRET or the config file's secret).
func (c *config) load(fc *fileConfig) error {
	max, err := payment.ParseAmount(c.maxAmount, payment.DefaultCurrency, 1<<62)
	if err != nil {
		return fmt.Errorf("--max-amount: %w", err)
	}
	c.maxMinor = max.Minor
	if c.logPath == "" {
		c.logPath = filepath.Join(filepath.Dir(c.journal), "paydesk.log")
	}
	c.secret, c.devSec, err = readSecret(c.secretFile)
	if err == nil && c.devSec && fc != nil && fc.values["secret"] != "" {
		c.secret, c.devSec = []byte(fc.values["secret"]), false
	}
	return err
}

// readSecret takes the shared secret from a file, else PAYDESK_SECRET, else
// the public development secret (reported so the console can warn).
func readSecret(file string) (secret []byte, dev bool, err error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, false, fmt.Errorf("read secret file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return nil, false, fmt.Errorf("secret file %s is empty", file)
		}
		return []byte(s), false, nil
	}
	if s := os.Getenv("PAYDESK_SECRET"); s != "" {
		return []byte(s), false, nil
	}
	return []byte(protocol.DevSecret), true, nil
}

// openLog sends slog (and the standard log package) to a JSON file, so
// nothing is written to the terminal the console owns.
func openLog(path string) (*slog.Logger, io.Closer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open log %s: %w", path, err)
	}
	// The logger is passed to every part (and each HTTP server's ErrorLog
	// is made from it); slog's default is left alone.
	return slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})), f, nil
}

// simLogPath is where simulator name logs: PAYDESK_LOG, else
// paydesk-sim-NAME.log beside the journal's default directory (where
// paydesk.log goes), never the current directory.
func simLogPath(name string) string {
	return env("LOG", filepath.Join(filepath.Dir(env("JOURNAL", payment.DefaultJournalPath())), "paydesk-sim-"+name+".log"))
}

// openSimLog opens simulator name's log and says where it is.
func openSimLog(name string, stdout io.Writer) (*slog.Logger, io.Closer, error) {
	path := simLogPath(name)
	log, f, err := openLog(path)
	if err != nil {
		return nil, nil, fmt.Errorf("sim %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "sim %s: log: %s\n", name, path)
	return log, f, nil
}

// parseInterspersed parses fs from args where flags may come before, between
// or after the sub-command's words, and returns those words in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return rest, nil
}
