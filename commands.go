package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"paydesk/payment"
	"paydesk/protocol/possim"
)

// runJournal prints the journal: recent transactions, one transaction's
// history, or a day's totals.
func runJournal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("paydesk journal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("journal", env("JOURNAL", payment.DefaultJournalPath()), "journal database file (PAYDESK_JOURNAL)")
	asJSON := fs.Bool("json", false, "print JSON")
	asCSV := fs.Bool("csv", false, "print CSV")
	limit := fs.Int("limit", 20, "how many recent transactions")
	day := fs.String("day", "", "day for totals, YYYY-MM-DD (default today)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  paydesk journal [flags]            recent transactions\n"+
			"  paydesk journal [flags] show TXN   one transaction and its events\n"+
			"  paydesk journal [flags] totals     totals per rail and status for a day\n\nFlags:\n")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *asJSON && *asCSV {
		return fmt.Errorf("journal: choose one of --json and --csv")
	}
	// Read-only: a console may be writing this journal right now, and its
	// payments in flight are not leftovers of a crash.
	j, err := payment.OpenJournalReadOnly(*path)
	if err != nil {
		return err
	}
	defer j.Close()
	format := "table"
	if *asJSON {
		format = "json"
	} else if *asCSV {
		format = "csv"
	}
	switch {
	case len(rest) == 0:
		ts, err := j.Recent(ctx, *limit)
		if err != nil {
			return err
		}
		if err := printTxns(stdout, format, ts); err != nil || format != "table" {
			return err
		}
		// How far the hub has this journal, when the kiosk has one.
		line, err := hubLag(ctx, j)
		if err != nil {
			return err
		}
		if line != "" {
			fmt.Fprintln(stdout, line)
		}
		return nil
	case rest[0] == "show" && len(rest) == 2:
		t, err := j.Txn(ctx, rest[1])
		if err != nil {
			return err
		}
		evs, err := j.History(ctx, rest[1])
		if err != nil {
			return err
		}
		return printHistory(stdout, format, t, evs)
	case rest[0] == "totals" && len(rest) == 1:
		when := time.Now()
		if *day != "" {
			if when, err = time.ParseInLocation("2006-01-02", *day, time.Local); err != nil {
				return fmt.Errorf("--day: want YYYY-MM-DD: %w", err)
			}
		}
		from, to := payment.Day(when)
		tot, err := j.Totals(ctx, from, to)
		if err != nil {
			return err
		}
		return printTotals(stdout, format, from, tot)
	}
	fs.Usage()
	return fmt.Errorf("journal: unexpected arguments %q", strings.Join(rest, " "))
}

type txnJSON struct {
	ID       string   `json:"id"`
	Created  string   `json:"created"`
	Updated  string   `json:"updated"`
	Rail     string   `json:"rail"`
	Mode     string   `json:"mode"`
	Amount   string   `json:"amount"`
	Minor    int64    `json:"amount_minor"`
	Currency string   `json:"currency"`
	Status   string   `json:"status"`
	Peer     string   `json:"peer"`
	AuthCode string   `json:"auth_code,omitempty"`
	Card     string   `json:"card_last4,omitempty"`
	RemoteID string   `json:"pos_transaction_id,omitempty"`
	PlanID   string   `json:"plan_id,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Flags    []string `json:"flags,omitempty"`
}

func toJSON(t payment.Txn) txnJSON {
	return txnJSON{ID: t.ID, Created: t.CreatedAt.Format(time.RFC3339Nano), Updated: t.UpdatedAt.Format(time.RFC3339Nano),
		Rail: string(t.Rail), Mode: string(t.Mode), Amount: t.Amount.Decimal(), Minor: t.Amount.Minor, Currency: t.Amount.Currency,
		Status: string(t.Status), Peer: t.Peer, AuthCode: t.Result.AuthCode, Card: t.Result.Card, RemoteID: t.Result.RemoteID,
		PlanID: t.Result.PlanID, Reason: t.Result.Reason, Flags: t.Flags}
}

func printTxns(w io.Writer, format string, ts []payment.Txn) error {
	switch format {
	case "json":
		out := make([]txnJSON, 0, len(ts))
		for _, t := range ts {
			out = append(out, toJSON(t))
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "created", "rail", "mode", "amount", "currency", "status", "peer", "auth_code", "card_last4", "pos_transaction_id", "reason", "flags"})
		for _, t := range ts {
			cw.Write([]string{t.ID, t.CreatedAt.Format(time.RFC3339), string(t.Rail), string(t.Mode), t.Amount.Decimal(), t.Amount.Currency,
				string(t.Status), t.Peer, t.Result.AuthCode, t.Result.Card, t.Result.RemoteID, t.Result.Reason, strings.Join(t.Flags, ";")})
		}
		cw.Flush()
		return cw.Error()
	}
	if len(ts) == 0 {
		fmt.Fprintln(w, "No transactions in the journal.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTXN\tRAIL\tMODE\tAMOUNT\tSTATUS\tPEER\tDETAIL")
	for _, t := range ts {
		detail := t.Result.Reason
		if t.Result.AuthCode != "" {
			detail = "auth " + t.Result.AuthCode
		}
		if len(t.Flags) > 0 {
			detail = strings.TrimSpace(detail + " [" + strings.Join(t.Flags, ",") + "]")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.CreatedAt.Format("2006-01-02 15:04:05"), t.ID, t.Rail, t.Mode,
			t.Amount, t.Status, t.Peer, detail)
	}
	return tw.Flush()
}

type eventJSON struct {
	Seq    int64           `json:"seq"`
	Time   string          `json:"time"`
	Kind   string          `json:"kind"`
	Status string          `json:"status"`
	Peer   string          `json:"peer,omitempty"`
	Detail string          `json:"detail,omitempty"`
	Flag   string          `json:"flag,omitempty"`
	Result *payment.Result `json:"result,omitempty"`
	Plans  []payment.Plan  `json:"plans,omitempty"`
	Raw    string          `json:"raw,omitempty"`
}

func printHistory(w io.Writer, format string, t payment.Txn, evs []payment.Event) error {
	switch format {
	case "json":
		out := struct {
			Txn    txnJSON     `json:"transaction"`
			Events []eventJSON `json:"events"`
		}{Txn: toJSON(t)}
		for _, e := range evs {
			out.Events = append(out.Events, eventJSON{Seq: e.Seq, Time: e.Time.Format(time.RFC3339Nano), Kind: string(e.Kind),
				Status: string(e.Status), Peer: e.Peer, Detail: e.Detail, Flag: e.Flag, Result: e.Result, Plans: e.Plans, Raw: string(e.Raw)})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"seq", "time", "kind", "status", "peer", "detail", "flag", "raw"})
		for _, e := range evs {
			cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.Time.Format(time.RFC3339Nano), string(e.Kind), string(e.Status), e.Peer, e.Detail, e.Flag, string(e.Raw)})
		}
		cw.Flush()
		return cw.Error()
	}
	fmt.Fprintf(w, "%s  %s %s %s on %s, %s\n", t.ID, t.Rail, t.Mode, t.Amount, orDash(t.Peer), t.Status)
	if t.Result.AuthCode != "" || t.Result.Card != "" || t.Result.RemoteID != "" {
		fmt.Fprintf(w, "  auth %s  card %s  POS txn %s\n", orDash(t.Result.AuthCode), orDash(payment.CardDisplay(t.Result.Card)), orDash(t.Result.RemoteID))
	}
	if len(t.Flags) > 0 {
		fmt.Fprintf(w, "  flags: %s\n", strings.Join(t.Flags, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTIME\tKIND\tSTATUS\tDETAIL")
	for _, e := range evs {
		d := e.Detail
		if e.Flag != "" {
			d += " [" + e.Flag + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Time.Format("15:04:05.000"), e.Kind, e.Status, d)
	}
	return tw.Flush()
}

func printTotals(w io.Writer, format string, day time.Time, tot []payment.Total) error {
	switch format {
	case "json":
		type row struct {
			Rail     string `json:"rail"`
			Status   string `json:"status"`
			Count    int    `json:"count"`
			Amount   string `json:"amount"`
			Minor    int64  `json:"amount_minor"`
			Currency string `json:"currency"`
		}
		out := struct {
			Day  string `json:"day"`
			Rows []row  `json:"totals"`
		}{Day: day.Format("2006-01-02"), Rows: []row{}}
		for _, t := range tot {
			out.Rows = append(out.Rows, row{string(t.Rail), string(t.Status), t.Count, t.Amount.Decimal(), t.Amount.Minor, t.Amount.Currency})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"day", "rail", "status", "count", "amount", "currency"})
		for _, t := range tot {
			cw.Write([]string{day.Format("2006-01-02"), string(t.Rail), string(t.Status), strconv.Itoa(t.Count), t.Amount.Decimal(), t.Amount.Currency})
		}
		cw.Flush()
		return cw.Error()
	}
	fmt.Fprintf(w, "Totals for %s\n", day.Format("Monday 2 January 2006"))
	if len(tot) == 0 {
		fmt.Fprintln(w, "No transactions.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "RAIL\tSTATUS\tCOUNT\tAMOUNT\t")
	for _, t := range tot {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t\n", t.Rail, t.Status, t.Count, t.Amount)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runSimUsage answers 'paydesk sim' without a simulator's name (or with
// one that is not a row of commands): it lists the simulators.
func runSimUsage(args []string, stderr io.Writer) error {
	var names []string
	for _, c := range commands() {
		if n, ok := strings.CutPrefix(c.name, "sim "); ok {
			names = append(names, n)
		}
	}
	fmt.Fprintf(stderr, "Usage: paydesk sim {%s} [flags]  ('paydesk sim NAME -h' for its flags)\n", strings.Join(names, "|"))
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		return flag.ErrHelp
	}
	return fmt.Errorf("sim: name a simulator: %s", strings.Join(names, ", "))
}

// runSimPOS runs a simulated MobyPay POS terminal that connects to a kiosk.
func runSimPOS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("paydesk sim pos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("connect", "127.0.0.1:8080", "the kiosk's address")
	posID := fs.String("pos-id", "POS101", "pos_id to send (the demo's own simulated POS is POS001)")
	secretFile := fs.String("secret-file", env("SECRET_FILE", ""), "file holding the shared secret (or PAYDESK_SECRET)")
	mode := fs.String("write", string(possim.WriteLines), "write mode: lines (one write per message), bytes (every byte separately), coalesced (ack and result in one write, no separator)")
	ackDelay := fs.Duration("ack-delay", 0, "wait before each ack")
	resultDelay := fs.Duration("result-delay", 0, "wait before each result")
	drop := fs.Bool("disconnect-after-ack", false, "drop the connection after every ack, reconnect, then send the result")
	tlsCA := fs.String("tls-ca", "", "connect with TLS, trusting the CA certificate(s) in this PEM file")
	tlsInsecure := fs.Bool("tls-insecure", false, "connect with TLS without checking the kiosk's certificate (testing only)")
	reconnect := fs.Bool("reconnect", true, "reconnect with backoff 1, 2, 4 … 30 s when the connection is lost")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: paydesk sim pos --connect HOST:PORT [flags]\n\nA simulated MobyPay POS terminal.\n\n%s\n\nFlags:\n", possim.Outcomes)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch possim.WriteMode(*mode) {
	case possim.WriteLines, possim.WriteBytes, possim.WriteCoalesced:
	default:
		return fmt.Errorf("sim pos: --write must be lines, bytes or coalesced, not %q", *mode)
	}
	var tlsCfg *tls.Config
	if *tlsCA != "" || *tlsInsecure {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *tlsInsecure}
		if *tlsCA != "" {
			pem, err := os.ReadFile(*tlsCA)
			if err != nil {
				return fmt.Errorf("sim pos: read --tls-ca: %w", err)
			}
			tlsCfg.RootCAs = x509.NewCertPool()
			if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("sim pos: --tls-ca %s holds no PEM certificate", *tlsCA)
			}
		}
	}
	secret, dev, err := readSecret(*secretFile)
	if err != nil {
		return err
	}
	if dev {
		fmt.Fprintln(stderr, "sim pos: using the public development secret")
	}
	log, logf, err := openSimLog("pos", stdout)
	if err != nil {
		return err
	}
	defer logf.Close()
	sim := possim.New(possim.Options{Addr: *addr, Secret: secret, PosID: *posID, Mode: possim.WriteMode(*mode),
		AckDelay: *ackDelay, ResultDelay: *resultDelay, DisconnectAfterAck: *drop, Reconnect: *reconnect, TLS: tlsCfg, Logger: log})
	fmt.Fprintf(stdout, "simulated POS %s connecting to %s; Ctrl-C stops\n", *posID, *addr)
	go func() {
		select {
		case <-sim.Connected():
			fmt.Fprintf(stdout, "connected to %s\n", *addr)
		case <-ctx.Done():
		}
	}()
	return sim.Run(ctx)
}
