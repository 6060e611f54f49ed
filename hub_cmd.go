package main

import (
	"bufio"
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"paydesk/hub"
	"paydesk/hub/pgtemp"
	"paydesk/internal/tlsfiles"
	"paydesk/mpesa"
	"paydesk/payment"
)

const hubUsage = `Usage:
  paydesk hub [flags]                 run the hub (kiosks connect to it; PostgreSQL is its store)
  paydesk hub kiosk add ID            register a kiosk and print its token (shown this once)
  paydesk hub kiosk revoke ID         revoke a kiosk's token
  paydesk hub kiosk list              the kiosks, their last sequence and when last seen
  paydesk hub report [--day D]        a day's totals per kiosk, rail, currency and status
  paydesk hub user add NAME           add a dashboard operator (password from the terminal or stdin)
  paydesk hub user remove NAME        remove an operator and end their sessions
  paydesk hub user list               the operators
  paydesk hub demo [--kiosks N]       a throwaway PostgreSQL, a hub and simulated kiosks
  paydesk sim fleet --kiosks N --hub URL[,URL] --create-tokens --db DSN
                                      N simulated kiosks replicating to a running hub (load)

The database: --db or PAYDESK_HUB_DB, a PostgreSQL URL such as
postgres://paydesk@db.example.com/paydesk?sslmode=verify-full (a password is
better in ~/.pgpass or PGPASSWORD than in the URL).
`

// runHub runs 'paydesk hub …'.
func runHub(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "user":
			return runHubUser(ctx, args[1:], stdin, stdout, stderr)
		case "kiosk":
			return runHubKiosk(ctx, args[1:], stdout, stderr)
		case "report":
			return runHubReport(ctx, args[1:], stdout, stderr)
		case "demo":
			return runHubDemo(ctx, args[1:], stdout, stderr)
		case "help", "-h", "--help", "-help":
			fmt.Fprint(stdout, hubUsage)
			return nil
		}
	}
	return runHubServer(ctx, args, stdout, stderr)
}

func hubFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", env("HUB_DB", ""), "PostgreSQL URL (PAYDESK_HUB_DB)")
	return fs, db
}

// openHubStore opens the hub's database for a serving hub (open is
// hub.Open) or for a one-shot command (hub.OpenForCommand).
func openHubStore(ctx context.Context, dsn string, open func(context.Context, string) (*hub.Store, error)) (*hub.Store, error) {
	if dsn == "" {
		return nil, errors.New("hub: no database: give --db postgres://… or set PAYDESK_HUB_DB")
	}
	// Generous: a database across a network, or one just started.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return open(ctx, dsn)
}

// runHubServer serves kiosks' links until ctx ends.
func runHubServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := hubFlags("paydesk hub", stderr)
	listen := fs.String("listen", env("HUB_LISTEN", ":8090"), "address kiosks connect to (PAYDESK_HUB_LISTEN)")
	certFile := fs.String("tls-cert", env("HUB_TLS_CERT", ""), "TLS certificate; without it the hub speaks plain HTTP for a TLS proxy in front (PAYDESK_HUB_TLS_CERT)")
	keyFile := fs.String("tls-key", env("HUB_TLS_KEY", ""), "TLS key (PAYDESK_HUB_TLS_KEY)")
	logPath := fs.String("log", env("HUB_LOG", ""), "log file, JSON lines (PAYDESK_HUB_LOG; default: text on standard error)")
	behindTLS := fs.Bool("behind-tls-proxy", env("HUB_BEHIND_TLS_PROXY", "") == "true", "operators reach the dashboard through a proxy that terminates TLS: mark session cookies Secure (PAYDESK_HUB_BEHIND_TLS_PROXY=true)")
	tz := fs.String("tz", env("HUB_TZ", "Local"), "time zone of the dashboard's days, e.g. Africa/Nairobi (PAYDESK_HUB_TZ)")
	sessionTTL := fs.Duration("session", 12*time.Hour, "how long an operator's dashboard session lasts")
	mpAllow := fs.String("mpesa-allow", env("HUB_MPESA_ALLOW", ""), "Daraja callback sources allowed, comma-separated addresses or CIDRs (PAYDESK_HUB_MPESA_ALLOW; default: the 14 addresses reported for Safaricom)")
	mpProxies := fs.String("mpesa-trusted-proxies", env("HUB_MPESA_TRUSTED_PROXIES", ""), "proxies whose X-Forwarded-For is believed for Daraja's callbacks, comma-separated (PAYDESK_HUB_MPESA_TRUSTED_PROXIES)")
	mpEnforce := fs.Bool("mpesa-enforce-allow", env("HUB_MPESA_ENFORCE_ALLOW", "") != "", "refuse Daraja callbacks from outside the allow-list (default: store them, and the kiosk flags them) (PAYDESK_HUB_MPESA_ENFORCE_ALLOW)")
	fs.Usage = func() {
		fmt.Fprint(stderr, hubUsage+"\nFlags of 'paydesk hub':\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("hub: unexpected argument %q", fs.Arg(0))
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("hub: --tz: %w", err)
	}
	var allow []netip.Prefix // nil: Safaricom's reported addresses
	if *mpAllow != "" {
		if allow, err = mpesa.ParsePrefixes(*mpAllow); err != nil {
			return fmt.Errorf("hub: --mpesa-allow: %w", err)
		}
	}
	proxies, err := mpesa.ParsePrefixes(*mpProxies)
	if err != nil {
		return fmt.Errorf("hub: --mpesa-trusted-proxies: %w", err)
	}
	// A secret: from the environment or a file it names, never a flag.
	pathSecret, err := (*fileConfig)(nil).secret("hub-mpesa-path-secret")
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if pathSecret != "" {
		if err := mpesa.CheckPathSecret(pathSecret); err != nil {
			return fmt.Errorf("hub: PAYDESK_HUB_MPESA_PATH_SECRET: %w", err)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *logPath != "" {
		l, f, err := openLog(*logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		log = l
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("hub: listen: %w", err)
	}
	scheme := "http"
	if *certFile != "" || *keyFile != "" {
		tlsCfg, err := tlsfiles.Load(*certFile, *keyFile, "--tls-cert", "--tls-key")
		if err != nil {
			ln.Close()
			return err
		}
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	store, err := openHubStore(ctx, *db, hub.Open)
	if err != nil {
		ln.Close()
		return err
	}
	defer store.Close()
	srv := hub.NewServer(store, hub.Options{Logger: log, Location: loc, SessionTTL: *sessionTTL, BehindTLSProxy: *behindTLS,
		MpesaAllow: allow, MpesaTrustedProxies: proxies, MpesaEnforceAllow: *mpEnforce, MpesaPathSecret: pathSecret})
	log.Info("hub started", "listen", ln.Addr().String(), "tls", scheme == "https")
	fmt.Fprintf(stdout, "paydesk hub on %s://%s (kiosks: [hub] url = \"%s://HOST:%s\")\n", scheme, ln.Addr(), scheme, portOf(ln.Addr()))
	return srv.Serve(ctx, ln)
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// runHubKiosk adds, revokes and lists kiosks.
func runHubKiosk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := hubFlags("paydesk hub kiosk", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: paydesk hub kiosk {add ID|revoke ID|list} [--db URL]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	ok := len(rest) == 2 && (rest[0] == "add" || rest[0] == "revoke") || len(rest) == 1 && rest[0] == "list"
	if !ok {
		fs.Usage()
		if len(rest) == 0 {
			return errors.New("hub kiosk: say add ID, revoke ID or list")
		}
		return fmt.Errorf("hub kiosk: unexpected arguments %q", strings.Join(rest, " "))
	}
	store, err := openHubStore(ctx, *db, hub.OpenForCommand)
	if err != nil {
		return err
	}
	defer store.Close()
	switch rest[0] {
	case "add":
		token, err := store.AddKiosk(ctx, rest[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "kiosk %s added. Its token, shown this once (the hub keeps only a hash):\n\n  %s\n\n"+
			"On the kiosk: PAYDESK_HUB_TOKEN=<token> (or a file named by PAYDESK_HUB_TOKEN_FILE),\n"+
			"kiosk-id = %q and [hub] url in its config file.\n", rest[1], token, rest[1])
		return nil
	case "revoke":
		if err := store.RevokeKiosk(ctx, rest[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "kiosk %s revoked: its token no longer connects; its events stay.\n", rest[1])
		return nil
	}
	ks, err := store.Kiosks(ctx)
	if err != nil {
		return err
	}
	if len(ks) == 0 {
		fmt.Fprintln(stdout, "No kiosks. Add one with 'paydesk hub kiosk add ID'.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIOSK\tSTATE\tEVENTS\tLAST SEQ\tLAST SEEN")
	for _, k := range ks {
		state, seen := "active", "-"
		if k.Revoked != nil {
			state = "revoked " + k.Revoked.Local().Format("2006-01-02 15:04")
		}
		if k.LastSeen != nil {
			seen = k.LastSeen.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", k.ID, state, k.Events, k.AckedSeq, seen)
	}
	return tw.Flush()
}

// runHubUser adds, removes and lists the dashboard's operators. A
// password is read from the terminal (twice, not echoed) or from stdin's
// first line, never from a flag.
func runHubUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, db := hubFlags("paydesk hub user", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: paydesk hub user {add NAME|remove NAME|list} [--db URL]\n\n"+
			"add reads the password from the terminal, or from the first line of standard input.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	ok := len(rest) == 2 && (rest[0] == "add" || rest[0] == "remove") || len(rest) == 1 && rest[0] == "list"
	if !ok {
		fs.Usage()
		if len(rest) == 0 {
			return errors.New("hub user: say add NAME, remove NAME or list")
		}
		return fmt.Errorf("hub user: unexpected arguments %q", strings.Join(rest, " "))
	}
	var password string
	if rest[0] == "add" {
		var err error
		if password, err = readPassword(stdin, stderr); err != nil {
			return err
		}
	}
	store, err := openHubStore(ctx, *db, hub.OpenForCommand)
	if err != nil {
		return err
	}
	defer store.Close()
	switch rest[0] {
	case "add":
		if err := store.AddOperator(ctx, rest[1], password); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "operator %s added: they log in to the hub's dashboard at its URL.\n", rest[1])
		return nil
	case "remove":
		if err := store.RemoveOperator(ctx, rest[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "operator %s removed; their sessions are ended.\n", rest[1])
		return nil
	}
	ops, err := store.Operators(ctx)
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		fmt.Fprintln(stdout, "No operators. Add one with 'paydesk hub user add NAME'.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATOR\tADDED")
	for _, o := range ops {
		fmt.Fprintf(tw, "%s\t%s\n", o.Name, o.Created.Local().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

// readPassword reads a new password: from the terminal, asked twice and
// not echoed, or else the first line of stdin (for scripts).
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(stderr, "Password (10 characters at least): ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("hub user: read password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("hub user: read password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("hub user: the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("hub user: no password on standard input (give it on the first line, or run from a terminal)")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// runHubReport prints a day's totals from the hub's database.
func runHubReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := hubFlags("paydesk hub report", stderr)
	day := fs.String("day", "", "the day, YYYY-MM-DD (default today)")
	tz := fs.String("tz", env("HUB_TZ", "Local"), "time zone the day is in, e.g. Africa/Nairobi (PAYDESK_HUB_TZ)")
	asJSON := fs.Bool("json", false, "print JSON")
	asCSV := fs.Bool("csv", false, "print CSV")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: paydesk hub report [--day YYYY-MM-DD] [--tz ZONE] [--json|--csv] [--db URL]\n\n"+
			"Totals of the transactions created that day, per kiosk, rail, currency and status.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("hub report: unexpected argument %q", fs.Arg(0))
	}
	if *asJSON && *asCSV {
		return errors.New("hub report: choose one of --json and --csv")
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("hub report: --tz: %w", err)
	}
	when := time.Now().In(loc)
	if *day != "" {
		if when, err = time.ParseInLocation("2006-01-02", *day, loc); err != nil {
			return fmt.Errorf("hub report: --day: want YYYY-MM-DD: %w", err)
		}
	}
	from, to := payment.Day(when)
	store, err := openHubStore(ctx, *db, hub.OpenForCommand)
	if err != nil {
		return err
	}
	defer store.Close()
	rows, err := store.Report(ctx, from, to)
	if err != nil {
		return err
	}
	return printHubReport(stdout, *asJSON, *asCSV, from, rows)
}

func printHubReport(w io.Writer, asJSON, asCSV bool, day time.Time, rows []hub.ReportRow) error {
	d := day.Format("2006-01-02")
	switch {
	case asJSON:
		type row struct {
			Kiosk    string `json:"kiosk"`
			Rail     string `json:"rail"`
			Currency string `json:"currency"`
			Status   string `json:"status"`
			Count    int64  `json:"count"`
			Amount   string `json:"amount"`
			Minor    int64  `json:"amount_minor"`
		}
		out := struct {
			Day  string `json:"day"`
			Rows []row  `json:"totals"`
		}{Day: d, Rows: []row{}}
		for _, r := range rows {
			out.Rows = append(out.Rows, row{r.Kiosk, string(r.Rail), r.Amount.Currency, string(r.Status), r.Count, r.Amount.Decimal(), r.Amount.Minor})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case asCSV:
		return hub.WriteReportCSV(w, day, rows)
	}
	fmt.Fprintf(w, "Totals for %s (days start at midnight %s)\n", day.Format("Monday 2 January 2006"), day.Format("MST, UTC-07:00"))
	if len(rows) == 0 {
		fmt.Fprintln(w, "No transactions.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KIOSK\tRAIL\tCURRENCY\tSTATUS\tCOUNT\tAMOUNT\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t\n", r.Kiosk, r.Rail, r.Amount.Currency, r.Status, r.Count, r.Amount.Decimal())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range hub.ApprovedTotals(rows) {
		fmt.Fprintf(w, "Approved, all kiosks: %s\n", m)
	}
	return nil
}

// runHubDemo starts a throwaway PostgreSQL cluster, a hub and simulated
// kiosks taking payments, until ctx ends.
func runHubDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("paydesk hub demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("kiosks", 3, "how many simulated kiosks")
	listen := fs.String("listen", "127.0.0.1:0", "address the hub listens on")
	every := fs.Duration("every", 2*time.Second, "about how often each kiosk takes a payment")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: paydesk hub demo [flags]\n\nA throwaway PostgreSQL cluster (from the installed PostgreSQL), a hub and\nsimulated kiosks taking payments, in one process; all removed on exit.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 100 {
		return errors.New("hub demo: --kiosks must be 1 to 100")
	}
	if *every <= 0 {
		return errors.New("hub demo: --every must be positive")
	}
	fmt.Fprintln(stdout, "starting a throwaway PostgreSQL cluster…")
	cl, err := pgtemp.Start(ctx)
	if err != nil {
		return fmt.Errorf("hub demo: %w", err)
	}
	defer cl.Close()
	dir, err := os.MkdirTemp("", "paydesk-hub-demo-")
	if err != nil {
		return fmt.Errorf("hub demo: %w", err)
	}
	defer os.RemoveAll(dir)
	logf, err := os.OpenFile(filepath.Join(dir, "hub.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("hub demo: %w", err)
	}
	defer logf.Close()
	log := slog.New(slog.NewJSONHandler(logf, nil))

	dsn := cl.DSN("postgres")
	store, err := openHubStore(ctx, dsn, hub.Open)
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("hub demo: listen: %w", err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var closers []func() error
	// Stop every goroutine first, then close what they used.
	defer func() {
		cancel()
		wg.Wait()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	srv := hub.NewServer(store, hub.Options{Logger: log})
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			log.Error("hub stopped", "err", err)
		}
	})

	var kiosks []*simKiosk
	for i := range *n {
		id := fmt.Sprintf("DEMO%03d", i+1)
		token, err := store.AddKiosk(ctx, id)
		if err != nil {
			return err
		}
		k, err := newSimKiosk(dir, id, token, url, log)
		if err != nil {
			return err
		}
		closers = append(closers, func() error { k.close(); return nil })
		kiosks = append(kiosks, k)
		wg.Go(func() { k.l.Run(ctx) })
		wg.Go(func() { simulateSales(ctx, k.bus, id, *every, 0) })
	}
	password, err := randomPassword()
	if err != nil {
		return err
	}
	if err := store.AddOperator(ctx, "demo", password); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "hub:      %s (a kiosk's [hub] url)\n", url)
	fmt.Fprintf(stdout, "dashboard: %s/ (operator demo, password %s)\n", url, password)
	fmt.Fprintf(stdout, "database: %s\n", dsn)
	fmt.Fprintf(stdout, "report:   paydesk hub report --db '%s'\n", dsn)
	fmt.Fprintf(stdout, "kiosks:   %d simulated, taking a payment about every %s each; log: %s\n", *n, *every, logf.Name())
	fmt.Fprintln(stdout, "Ctrl-C stops and removes everything.")
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			var parts []string
			for _, k := range kiosks {
				st := k.l.Status()
				parts = append(parts, fmt.Sprintf("%s acked %d lag %d", k.id, st.AckedSeq, st.Lag()))
			}
			fmt.Fprintln(stdout, time.Now().Format("15:04:05"), strings.Join(parts, "; "))
		}
	}
}

// randomPassword makes the demo operator's password.
func randomPassword() (string, error) {
	b := make([]byte, 12)
	if _, err := cryptorand.Read(b); err != nil {
		return "", fmt.Errorf("hub demo: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// paydeskVersion is this binary's version as the build recorded it: the
// module version, else the VCS revision, for the hub's dashboard.
func paydeskVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	if v == "(devel)" {
		v = "devel"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && (v == "" || v == "devel") {
			v = "devel " + s.Value[:12]
		}
	}
	return v
}
