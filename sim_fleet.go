package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"paydesk/hub"
	"paydesk/hub/link"
	"paydesk/payment"
)

// simKiosk is a simulated kiosk: its own journal, its bus and its link to
// the hub. 'paydesk hub demo' and 'paydesk sim fleet' run them.
type simKiosk struct {
	id  string
	j   *payment.Journal
	bus *payment.Bus
	l   *link.Link
}

// close closes the kiosk's bus and journal, once every goroutine using
// them has ended.
func (k *simKiosk) close() {
	k.bus.Close()
	k.j.Close()
}

// newSimKiosk opens a journal for kiosk id in dir and a link to the hub at
// url (one or more URLs, comma-separated) with token; nothing runs until
// the caller runs k.l.Run and simulateSales.
func newSimKiosk(dir, id, token, url string, log *slog.Logger) (*simKiosk, error) {
	j, _, err := payment.OpenJournal(filepath.Join(dir, id+".db"), payment.JournalOptions{})
	if err != nil {
		return nil, fmt.Errorf("kiosk %s: %w", id, err)
	}
	bus := payment.NewBus(j, log)
	l, err := link.New(link.Options{URL: url, Token: token, KioskID: id, Journal: j, Bus: bus,
		StatePath: link.StatePath(j.Path()), Logger: log.With("kiosk", id), Version: paydeskVersion(),
		Health: func() map[string]string { return map[string]string{"pos": "ok", "terminal": "ok", "mpesa": "ok"} }})
	if err != nil {
		bus.Close()
		j.Close()
		return nil, err
	}
	return &simKiosk{id: id, j: j, bus: bus, l: l}, nil
}

// fleetStatus sums the kiosks' links: how many are connected, and the
// events journaled and acknowledged across the fleet.
func fleetStatus(ks []*simKiosk) (connected int, journaled, acked int64) {
	for _, k := range ks {
		st := k.l.Status()
		if st.Connected {
			connected++
		}
		journaled += st.JournalSeq
		acked += st.AckedSeq
	}
	return connected, journaled, acked
}

// runSimFleet runs 'paydesk sim fleet': N simulated kiosks, each with its
// own journal in a temporary directory and its own token, taking payments
// on every rail and replicating their journals to a hub over the real link.
func runSimFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("paydesk sim fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("kiosks", 10, "how many simulated kiosks")
	url := fs.String("hub", env("HUB_URL", ""), "the hub's URL, or several replicas' comma-separated: kiosk i tries replica i first (PAYDESK_HUB_URL)")
	db := fs.String("db", env("HUB_DB", ""), "with --create-tokens: the hub's PostgreSQL URL (PAYDESK_HUB_DB)")
	create := fs.Bool("create-tokens", false, "register the kiosks in the hub's database (--db) and use their new tokens: for a demo or a benchmark")
	tokens := fs.String("tokens", "", "a file of lines 'KIOSK-ID TOKEN' (the first N are used), instead of --create-tokens")
	prefix := fs.String("prefix", "SIM", "kiosk ids are PREFIX00001, PREFIX00002, …")
	every := fs.Duration("every", 2*time.Second, "about how often each kiosk takes a payment (three journal events); 0 with --backlog: none")
	backlog := fs.Int("backlog", 0, "sales (three journal events each) every kiosk's journal holds before its link starts, for the hub to catch up")
	dur := fs.Duration("for", 0, "stop after this long (0: until interrupted)")
	report := fs.Duration("report", 10*time.Second, "how often to print the fleet's status")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: paydesk sim fleet --kiosks N --hub URL[,URL…] {--create-tokens --db DSN | --tokens FILE} [flags]\n\n"+
			"N simulated kiosks, each with its own journal (in a temporary directory, removed\n"+
			"on exit) and its own token, taking card (pos, terminal) and M-Pesa payments and\n"+
			"replicating their journals to the hub over the kiosk's link.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		fs.Usage()
		return fmt.Errorf("sim fleet: unexpected argument %q", fs.Arg(0))
	case *n < 1 || *n > 100000:
		return errors.New("sim fleet: --kiosks must be 1 to 100000")
	case *url == "":
		return errors.New("sim fleet: give the hub's URL with --hub")
	case *every < 0 || *every == 0 && *backlog == 0:
		return errors.New("sim fleet: --every must be positive (or 0 with --backlog)")
	case *backlog < 0 || *backlog > 1000000:
		return errors.New("sim fleet: --backlog must be 0 to 1000000")
	case *create == (*tokens != ""):
		return errors.New("sim fleet: give either --create-tokens (with --db) or --tokens FILE")
	}
	var ids, toks []string
	if *tokens != "" {
		var err error
		if ids, toks, err = readTokenFile(*tokens, *n); err != nil {
			return err
		}
	} else {
		store, err := openHubStore(ctx, *db, hub.OpenForCommand)
		if err != nil {
			return err
		}
		for i := range *n {
			id := fmt.Sprintf("%s%05d", *prefix, i+1)
			tok, err := store.AddKiosk(ctx, id)
			if errors.Is(err, hub.ErrKioskExists) {
				store.Close()
				return fmt.Errorf("sim fleet: kiosk %s is already registered (its journal is not this run's): choose another --prefix", id)
			}
			if err != nil {
				store.Close()
				return fmt.Errorf("sim fleet: %w", err)
			}
			ids, toks = append(ids, id), append(toks, tok)
		}
		store.Close()
	}
	dir, err := os.MkdirTemp("", "paydesk-sim-fleet-")
	if err != nil {
		return fmt.Errorf("sim fleet: %w", err)
	}
	defer os.RemoveAll(dir)
	logf, err := os.OpenFile(filepath.Join(dir, "fleet.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("sim fleet: %w", err)
	}
	defer logf.Close()
	log := slog.New(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var kiosks []*simKiosk
	defer func() {
		cancel()
		wg.Wait()
		for _, k := range kiosks {
			k.close()
		}
	}()
	replicas := strings.Split(*url, ",")
	for i, id := range ids {
		// Kiosk i tries replica i first (mod their number), so the
		// fleet spreads over them as a load balancer would spread it.
		r := i % len(replicas)
		urls := strings.Join(append(slices.Clone(replicas[r:]), replicas[:r]...), ",")
		k, err := newSimKiosk(dir, id, toks[i], urls, log)
		if err != nil {
			return fmt.Errorf("sim fleet: %w", err)
		}
		kiosks = append(kiosks, k)
	}
	if *backlog > 0 {
		began := time.Now()
		if err := writeBacklogs(ctx, kiosks, *backlog); err != nil {
			return fmt.Errorf("sim fleet: %w", err)
		}
		fmt.Fprintf(stdout, "fleet: %d events journaled as a backlog (%d sales a kiosk) in %s\n",
			3*(*backlog)*len(kiosks), *backlog, time.Since(began).Round(time.Millisecond))
	}
	for _, k := range kiosks {
		wg.Go(func() { k.l.Run(ctx) })
		if *every > 0 {
			wg.Go(func() { simulateSales(ctx, k.bus, k.id, *every, *backlog) })
		}
	}
	pace := "no new payments"
	if *every > 0 {
		pace = fmt.Sprintf("a payment about every %s each", *every)
	}
	fmt.Fprintf(stdout, "fleet: %d simulated kiosks (%s … %s) to %s, %s; journals in %s\n",
		len(kiosks), ids[0], ids[len(ids)-1], *url, pace, dir)
	t := time.NewTicker(*report)
	defer t.Stop()
	line := func() {
		c, j, a := fleetStatus(kiosks)
		fmt.Fprintf(stdout, "%s connected %d/%d, events journaled %d, acknowledged %d, lag %d\n",
			time.Now().Format("15:04:05"), c, len(kiosks), j, a, j-a)
	}
	for {
		select {
		case <-ctx.Done():
			line()
			return nil
		case <-t.C:
			line()
		}
	}
}

// readTokenFile reads up to n lines of 'KIOSK-ID TOKEN' (blank lines and
// lines starting with # are skipped).
func readTokenFile(path string, n int) (ids, tokens []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("sim fleet: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan() && len(ids) < n; line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		fields := strings.Fields(s)
		if len(fields) != 2 {
			return nil, nil, fmt.Errorf("sim fleet: %s line %d: want 'KIOSK-ID TOKEN'", filepath.Base(path), line)
		}
		ids, tokens = append(ids, fields[0]), append(tokens, fields[1])
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("sim fleet: %s: %w", filepath.Base(path), err)
	}
	if len(ids) < n {
		return nil, nil, fmt.Errorf("sim fleet: %s holds %d tokens, --kiosks asks for %d", filepath.Base(path), len(ids), n)
	}
	return ids, tokens, nil
}

// simulateSales takes payments on a simulated kiosk, on every rail, about
// every every, until ctx ends; the first is sale number from+1.
func simulateSales(ctx context.Context, bus *payment.Bus, kiosk string, every time.Duration, from int) {
	for i := from + 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every/2 + rand.N(every)):
		}
		for _, ev := range simSale(kiosk, i) {
			if _, err := bus.Publish(ctx, ev); err != nil {
				return
			}
		}
	}
}

// writeBacklogs journals n sales on every kiosk before its link starts: a
// kiosk's sales are appended together, so its journal commits them in a
// few transactions (group commit) rather than one each; a few kiosks at a
// time.
func writeBacklogs(ctx context.Context, ks []*simKiosk, n int) error {
	const together = 4 // kiosks written at once
	sem := make(chan struct{}, together)
	errc := make(chan error, len(ks))
	var wg sync.WaitGroup
	for _, k := range ks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var kwg sync.WaitGroup
			for i := 1; i <= n; i++ {
				kwg.Go(func() {
					for _, ev := range simSale(k.id, i) {
						if _, err := k.j.Append(ctx, ev); err != nil {
							errc <- fmt.Errorf("kiosk %s backlog: %w", k.id, err)
							return
						}
					}
				})
			}
			kwg.Wait()
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// simSale is sale number i of a simulated kiosk, on any rail: a card sale
// in MYR on the POS or the card terminal, or an M-Pesa sale in KES, mostly
// approved; three journal events.
func simSale(kiosk string, i int) []payment.Event {
	id := fmt.Sprintf("%s-%d", kiosk, i)
	rail, mode, money := payment.RailPOS, payment.ModeCard, payment.Money{Minor: 100 * (5 + rand.Int64N(200)), Currency: "MYR"}
	switch rand.N(3) {
	case 0:
		rail, mode, money = payment.RailMPesa, payment.ModeSTKPush, payment.Money{Minor: 100 * (10 + rand.Int64N(2000)), Currency: "KES"} // whole shillings
	case 1:
		rail = payment.RailTerminal
	}
	end := payment.StatusApproved
	switch rand.N(24) {
	case 0, 1, 2:
		end = payment.StatusDeclined
	case 3: // the answer never came: for the dashboard's list
		end = payment.StatusUnknown
	}
	return []payment.Event{
		{Kind: payment.KindTransition, Rail: rail, TxnID: id, Status: payment.StatusCreated, Mode: mode, Amount: money, Peer: "SIM"},
		{Kind: payment.KindTransition, Rail: rail, TxnID: id, Status: payment.StatusSent},
		{Kind: payment.KindTransition, Rail: rail, TxnID: id, Status: end},
	}
}
