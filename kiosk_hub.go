package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"paydesk/hub"
	"paydesk/hub/link"
	"paydesk/hub/wire"
	"paydesk/mpesa"
	"paydesk/payment"
)

// hubSettings connect this kiosk to a hub, which its journal is
// replicated to. Off unless a URL is set; the token is a secret:
// PAYDESK_HUB_TOKEN, the file named by PAYDESK_HUB_TOKEN_FILE, or the
// config file's [hub] token, never a flag.
//
//	[hub]
//	url = "https://hub.example.com"   # or a list of replicas: ["https://a…", "https://b…"]
type hubSettings struct {
	url string
	ca  string
	// retain, when set, prunes the journal of what the hub has
	// confirmed once it is older than that ("30d", "720h"; see
	// parseRetain). Off by default.
	retain string
	// mpesa takes the M-Pesa callbacks the hub routes to this kiosk
	// (with --mpesa-via-hub); until it is set they stay at the hub.
	mpesa atomic.Pointer[mpesa.Rail]
	// railsUp is closed once the rails have started (mpesa set or not):
	// a message arriving before waits for it.
	railsUp chan struct{}
}

// railsStarted says the rails have started, mr being the M-Pesa rail
// that takes callbacks via the hub (nil: none).
func (h *hubSettings) railsStarted(mr *mpesa.Rail) {
	if mr != nil {
		h.mpesa.Store(mr)
	}
	if h.railsUp != nil {
		close(h.railsUp)
	}
}

func (h *hubSettings) secrets() []string { return []string{"hub-token", "hub-mpesa-path-secret"} }

// startRail runs the link to the hub (see start); M-Pesa learns the hub's
// URL, and the hub link the M-Pesa rail once every rail has started.
func (h *hubSettings) startRail(_ context.Context, e *railEnv) error {
	if h.url != "" {
		secret, err := e.file.secret("hub-mpesa-path-secret")
		if err != nil {
			return err
		}
		if secret != "" {
			if err := mpesa.CheckPathSecret(secret); err != nil {
				return fmt.Errorf("hub: PAYDESK_HUB_MPESA_PATH_SECRET: %w", err)
			}
		}
		e.hubURL = mpesaHubBase(h.url, secret)
	}
	e.railsUp = append(e.railsUp, func() { h.railsStarted(e.viaHub) })
	return h.start(e, e.kioskID)
}

// mpesaHubBase is the base of the URLs Daraja is given for callbacks via
// the hub: the first of the hub's URLs (Daraja takes one URL: with
// several replicas, put a load balancer's first), and the hub's callback
// path secret after it when the hub has one (the hub serves
// /SECRET/v1/daraja/…).
func mpesaHubBase(urls, secret string) string {
	first, _, _ := strings.Cut(urls, ",")
	base := strings.TrimRight(strings.TrimSpace(first), "/")
	if secret != "" {
		base += "/" + secret
	}
	return base
}

func (h *hubSettings) register(f *flag.FlagSet) {
	f.StringVar(&h.url, "hub-url", env("HUB_URL", ""), "the hub this kiosk's journal is replicated to, https://HOST[:PORT]; several replicas comma-separated, tried in turn; empty: no hub (PAYDESK_HUB_URL)")
	f.StringVar(&h.ca, "hub-ca", env("HUB_CA", ""), "PEM file of the CA that signed the hub's certificate, when not a public one (PAYDESK_HUB_CA)")
	f.StringVar(&h.retain, "hub-retain", env("HUB_RETAIN", ""), "prune from the journal the events the hub has confirmed once they are this old, e.g. 30d or 720h (at least 7d); empty: keep everything (PAYDESK_HUB_RETAIN)")
}

// start runs the link to the hub until the console exits, or does nothing
// when no hub is configured.
func (h *hubSettings) start(e *railEnv, kioskID string) error {
	if h.url == "" {
		return nil
	}
	h.railsUp = make(chan struct{})
	retain, err := parseRetain(h.retain)
	if err != nil {
		return err
	}
	token, err := e.file.secret("hub-token")
	if err != nil {
		return err
	}
	if token == "" {
		return fmt.Errorf("hub: --hub-url is set but no token: set PAYDESK_HUB_TOKEN or PAYDESK_HUB_TOKEN_FILE ('paydesk hub kiosk add %s' prints one)", kioskID)
	}
	client := http.DefaultClient
	if h.ca != "" {
		pem, err := os.ReadFile(h.ca)
		if err != nil {
			return fmt.Errorf("hub: read --hub-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("hub: --hub-ca %s holds no PEM certificate", h.ca)
		}
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	l, err := link.New(link.Options{URL: h.url, Token: token, KioskID: kioskID, Journal: e.bus.Journal(), Bus: e.bus,
		StatePath: link.StatePath(e.journal), HTTPClient: client, Logger: e.log, Version: paydeskVersion(),
		OnMessage: h.onMessage, Health: e.railHealth})
	if err != nil {
		return err
	}
	for s := range strings.SplitSeq(h.url, ",") {
		s = strings.TrimSpace(s)
		if u, err := url.Parse(s); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			e.note("WARNING: the hub URL " + s + " is not https: this kiosk's token and journal cross the network in clear")
			e.log.Warn("hub URL is not https", "url", s)
		}
	}
	e.hub = func() string { return l.Status().Summary() }
	// The link starts once every rail has: its hello reports their
	// health, which reads what they left in e.
	e.railsUp = append(e.railsUp, func() { e.goRun("hub link", l.Run, nil) })
	e.note("Hub: this kiosk's journal is replicated to " + h.url + " ('paydesk journal' shows how far)")
	if retain > 0 {
		p := hubPruner{j: e.bus.Journal(), status: l.Status, retain: retain, log: e.log}
		e.railsUp = append(e.railsUp, func() { e.goRun("journal pruning", p.run, nil) })
		e.note(fmt.Sprintf("Hub: events the hub has confirmed are pruned from the journal after %s", h.retain))
	}
	return nil
}

// minRetain is the shortest retention --hub-retain takes: the M-Pesa
// rail looks that far back in the journal for till payments left
// unmatched (mpesa.TillMemory), and receipts are recognised as
// duplicates from it.
const minRetain = mpesa.TillMemory

// parseRetain reads --hub-retain: "" (or "0", "off": no pruning), a
// number of days ("30d") or a Go duration ("720h"), at least minRetain.
func parseRetain(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || s == "off" {
		return 0, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("--hub-retain %q: want a whole number of days (30d) or a duration (720h)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("--hub-retain %q: want a whole number of days (30d) or a duration (720h)", s)
		}
	}
	if d < minRetain {
		return 0, fmt.Errorf("--hub-retain %q: at least 7d (the M-Pesa rail reads the last 7 days of the journal)", s)
	}
	return d, nil
}

// pruneEvery is how often the kiosk prunes its journal.
const pruneEvery = time.Hour

// hubPruner prunes the journal of the events the hub has confirmed
// once they are older than retain (payment.Journal.Prune: never an event
// the hub lacks, never one of a payment unknown or in flight).
type hubPruner struct {
	j      *payment.Journal
	status func() link.Status
	retain time.Duration
	log    *slog.Logger
}

// once prunes what the hub the link is connected to has acknowledged. A
// link not connected prunes nothing: the acknowledged sequence it holds
// may come from an earlier run, from another hub.
func (p hubPruner) once(ctx context.Context) (int, error) {
	st := p.status()
	if !st.Connected || st.AckedSeq <= 0 {
		return 0, nil
	}
	n, err := p.j.Prune(ctx, st.AckedSeq, time.Now().Add(-p.retain))
	if n > 0 {
		p.log.Info("journal pruned of events the hub confirmed", "events", n, "hub", st.Hub, "up_to_seq", st.AckedSeq, "older_than", p.retain.String())
	}
	return n, err
}

// run prunes every pruneEvery until ctx ends.
func (p hubPruner) run(ctx context.Context) error {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if _, err := p.once(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("pruning the journal", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// onMessage hands a message from the hub to whom it is for (the M-Pesa
// rail: a callback routed to this kiosk, or a payment head office
// assigned to one of its sales); the link acknowledges it to the hub
// when this returns nil.
func (h *hubSettings) onMessage(ctx context.Context, m wire.Message) error {
	if m.Kind != hub.MessageMpesa && m.Kind != hub.MessageMpesaAssign {
		return fmt.Errorf("a message of kind %q, which this kiosk does not take", m.Kind)
	}
	select {
	case <-h.railsUp:
	case <-ctx.Done():
		return ctx.Err()
	}
	rail := h.mpesa.Load()
	if rail == nil {
		return errors.New("an M-Pesa message, and M-Pesa is not running (yet) with --mpesa-via-hub")
	}
	return hub.ApplyMessage(ctx, rail, m)
}

// hubLag describes how far the hub has this journal, from the state the
// link leaves beside it; "" when this kiosk has never linked to a hub.
func hubLag(ctx context.Context, j *payment.Journal) (string, error) {
	st, err := link.ReadState(link.StatePath(j.Path()))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	last, err := j.LastSeq(ctx)
	if err != nil {
		return "", err
	}
	lag := max(last-st.AckedSeq, 0)
	when := "never"
	if !st.AckedAt.IsZero() {
		when = st.AckedAt.Local().Format("2006-01-02 15:04:05")
	}
	if lag == 0 {
		return fmt.Sprintf("Hub %s: up to date (all %d events; last acknowledged %s)", st.Hub, last, when), nil
	}
	return fmt.Sprintf("Hub %s: %d events not yet replicated (the hub has up to %d of %d; last acknowledged %s)",
		st.Hub, lag, st.AckedSeq, last, when), nil
}

// railHealth is each running rail's health as the hub's dashboard shows
// it: "ok" (with a detail: "ok (2 POS connected)"), or what is wrong. It
// reads only what the rails keep in memory; it is called from the hub
// link once every rail has started.
func (e *railEnv) railHealth() map[string]string {
	out := map[string]string{}
	if e.pos != nil {
		switch n := len(e.pos.Peers()); n {
		case 0:
			out["pos"] = "no POS connected"
		default:
			out["pos"] = fmt.Sprintf("ok (%d POS connected)", n)
		}
	}
	for rail, r := range e.rails { // every rail offered to the consoles
		name := string(rail)
		if r == nil {
			continue
		}
		hr, ok := r.(payment.HealthReporter)
		if !ok {
			out[name] = "running"
			continue
		}
		switch h := hr.Health(); {
		case !h.Up:
			out[name] = h.Detail
		case h.Detail == "checking":
			out[name] = "checking" // not known yet: not "ok"
		default:
			out[name] = "ok"
		}
	}
	if e.displays != nil {
		n := 0
		for _, d := range e.displays.Displays() {
			if d.Connected {
				n++
			}
		}
		switch n {
		case 0:
			out["display"] = "no display connected"
		case 1:
			out["display"] = "ok (1 display connected)"
		default:
			out["display"] = fmt.Sprintf("ok (%d displays connected)", n)
		}
	}
	return out
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
