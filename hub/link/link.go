// Package link is the kiosk's side of the hub: one outbound WebSocket to
// the hub, over which the journal's events are replicated in order, from
// the first the hub does not have, and the hub's messages for this kiosk
// arrive. It reconnects with backoff and never stands in the way of a
// payment: the journal is the outbox, so a kiosk keeps taking payments
// while the hub is away and the link catches up when it is back.
package link

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"paydesk/hub/wire"
	"paydesk/payment"
)

// Options configure a Link. Zero values take the defaults written beside
// them.
type Options struct {
	// URL is the hub's base URL: https://hub.example.com (ws:// and
	// wss:// are accepted too). Several hub replicas' URLs, separated by
	// commas, are tried in turn: the link moves to the next when one
	// fails.
	URL string
	// Token is this kiosk's token ('paydesk hub kiosk add').
	Token string
	// KioskID is this kiosk's id; the hub checks it against the token.
	KioskID string
	// Journal is read for the events to send.
	Journal *payment.Journal
	// Bus, when set, wakes the link as soon as an event is journaled;
	// without it the link looks every Poll.
	Bus *payment.Bus
	// Poll is how often the link looks at the journal when nothing woke
	// it. The default is 1 second.
	Poll time.Duration
	// Batch is the most events sent in one batch. The default is 500.
	Batch int
	// AckTimeout is how long a batch waits for the hub's ack before the
	// link is dropped and made again. The default is 30 seconds.
	AckTimeout time.Duration
	// Keepalive is how often the link pings the hub, so a connection that
	// died silently (a NAT that forgot it) is found and made again, and
	// proxies do not close it as idle. The default is 30 seconds.
	Keepalive time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to
	// connect, doubled after each failure, with jitter. The defaults are
	// 500 ms and 30 seconds.
	MinBackoff, MaxBackoff time.Duration
	// HTTPClient makes the connection (TLS settings, proxies). The
	// default is http.DefaultClient.
	HTTPClient *http.Client
	// StatePath, when set, is a small JSON file the link keeps up to date
	// with how far the hub has acknowledged ('paydesk journal' reads it).
	StatePath string
	// OnMessage handles a message from the hub; it is acknowledged when
	// OnMessage returns nil. Without it messages are left at the hub.
	OnMessage func(ctx context.Context, m wire.Message) error
	// Logger receives connection events. The default discards them.
	Logger *slog.Logger
	// Version is this kiosk's paydesk version, said in the hello for the
	// hub's dashboard.
	Version string
	// Health, when set, gives each rail's health ("ok", or what is
	// wrong), said in every hello for the hub's dashboard, and in a status
	// frame when it changes, if the hub asks for them.
	Health func() map[string]string
}

// Status is the link as a console shows it.
type Status struct {
	// Connected is true while the hub has welcomed this kiosk.
	Connected bool
	// AckedSeq is the highest journal sequence the hub has stored.
	AckedSeq int64
	// JournalSeq is the journal's last sequence when the link last
	// looked.
	JournalSeq int64
	// AckedAt is when the hub last acknowledged a batch.
	AckedAt time.Time
	// LastError is why the last link ended or could not be made.
	LastError string
	// Hub is the URL of the hub replica the link uses or tries now.
	Hub string
}

// Lag is how many journal events the hub does not have yet.
func (s Status) Lag() int64 {
	if s.JournalSeq > s.AckedSeq {
		return s.JournalSeq - s.AckedSeq
	}
	return 0
}

// Summary is the link's state in a few words, for a console's header:
// "up to date", "42 events behind" or "not connected (retrying)".
func (s Status) Summary() string {
	switch lag := s.Lag(); {
	case !s.Connected:
		return "not connected (retrying)"
	case lag == 0:
		return "up to date"
	case lag == 1:
		return "1 event behind"
	default:
		return fmt.Sprintf("%d events behind", lag)
	}
}

// Link replicates a kiosk's journal to the hub: Run(ctx) until ctx ends.
type Link struct {
	opts  Options
	bases []string // the hub replicas' URLs as configured
	urls  []string // their links' WebSocket URLs
	log   *slog.Logger

	mu     sync.Mutex
	status Status
	acked  chan struct{} // closed and replaced on every change of status
}

// ErrForeignHistory is returned by Run when the hub holds more events for
// this kiosk id than this journal has: the id was used with another
// journal, and replicating would lose this one's events as duplicates.
var ErrForeignHistory = errors.New("the hub holds events of this kiosk id beyond this journal's last one")

// New returns a link; it does nothing until Run.
func New(opts Options) (*Link, error) {
	if opts.URL == "" || opts.Token == "" || opts.KioskID == "" || opts.Journal == nil {
		return nil, errors.New("hub link: needs the hub's URL, a token, the kiosk id and the journal")
	}
	var bases, urls []string
	for b := range strings.SplitSeq(opts.URL, ",") {
		b = strings.TrimRight(strings.TrimSpace(b), "/")
		if b == "" {
			continue
		}
		u, err := linkURL(b)
		if err != nil {
			return nil, err
		}
		bases, urls = append(bases, b), append(urls, u)
	}
	if len(urls) == 0 {
		return nil, errors.New("hub link: needs the hub's URL")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Batch <= 0 || opts.Batch > wire.MaxBatch {
		opts.Batch = 500
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 30 * time.Second
	}
	if opts.Keepalive <= 0 {
		opts.Keepalive = 30 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	return &Link{opts: opts, bases: bases, urls: urls, log: opts.Logger, acked: make(chan struct{}),
		status: Status{Hub: bases[0]}}, nil
}

// linkURL turns the hub's base URL into the link's WebSocket URL.
func linkURL(base string) (string, error) {
	s := strings.TrimRight(base, "/")
	switch {
	case strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "wss://"):
		s = "wss://" + s[strings.Index(s, "://")+3:]
	case strings.HasPrefix(s, "http://"), strings.HasPrefix(s, "ws://"):
		s = "ws://" + s[strings.Index(s, "://")+3:]
	default:
		return "", fmt.Errorf("hub link: URL %q: want https://host[:port] (or http:// on a trusted network)", base)
	}
	return s + wire.Path, nil
}

// Status returns the link's status now.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

func (l *Link) update(f func(*Status)) {
	l.mu.Lock()
	f(&l.status)
	close(l.acked)
	l.acked = make(chan struct{})
	l.mu.Unlock()
}

// WaitAcked waits until the hub has acknowledged seq, or ctx ends.
func (l *Link) WaitAcked(ctx context.Context, seq int64) error {
	for {
		l.mu.Lock()
		done, ch := l.status.AckedSeq >= seq, l.acked
		l.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Run keeps the link to the hub until ctx ends (it then returns nil), or
// until the hub shows this journal is not the kiosk's (ErrForeignHistory).
func (l *Link) Run(ctx context.Context) error {
	var wake <-chan payment.Event
	if l.opts.Bus != nil {
		sub := l.opts.Bus.Subscribe(64)
		defer sub.Close()
		wake = sub.C()
	}
	backoff := l.opts.MinBackoff
	// cur is the replica in use; failed counts the replicas that failed
	// one after another since the last welcome.
	cur, failed := 0, 0
	for {
		welcomed, err := l.session(ctx, wake, cur)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrForeignHistory) {
			l.log.Error("hub link: stopped", "err", err)
			return err
		}
		if welcomed {
			backoff, failed = l.opts.MinBackoff, 0
		}
		// On to the next replica: at once (after the shortest wait)
		// while some are untried, then with backoff once all failed.
		failed++
		from := l.bases[cur]
		cur = (cur + 1) % len(l.urls)
		step := l.opts.MinBackoff
		if failed >= len(l.urls) {
			step, failed = backoff, 0
			backoff = min(backoff*2, l.opts.MaxBackoff)
		}
		l.update(func(s *Status) { s.Connected, s.LastError, s.Hub = false, errText(err), l.bases[cur] })
		// Jitter spreads a fleet's reconnections after a hub restart.
		wait := step/2 + rand.N(step/2+1)
		l.log.Warn("hub link: down; retrying", "hub", from, "err", err, "next", l.bases[cur], "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// session makes one link and replicates over it until it fails.
func (l *Link) session(ctx context.Context, wake <-chan payment.Event, cur int) (welcomed bool, err error) {
	last, err := l.opts.Journal.LastSeq(ctx)
	if err != nil {
		return false, err
	}
	l.update(func(s *Status) { s.JournalSeq = last })
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, resp, err := websocket.Dial(dctx, l.urls[cur], &websocket.DialOptions{
		HTTPClient: l.opts.HTTPClient,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + l.opts.Token}},
	})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return false, errors.New("the hub refused this kiosk's token (unknown or revoked)")
		}
		return false, fmt.Errorf("connect to the hub: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(wire.MaxFrame)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	hello := wire.Frame{Type: wire.TypeHello, KioskID: l.opts.KioskID, JournalSeq: last, Version: l.opts.Version}
	if l.opts.Health != nil {
		hello.Rails = l.opts.Health()
	}
	reported := hello // what the hub was last told
	if err := send(ctx, c, hello); err != nil {
		return false, err
	}
	frames := make(chan wire.Frame)
	readErr := make(chan error, 1)
	go func() {
		for {
			f, err := read(ctx, c)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
	}()
	var welcome wire.Frame
	select {
	case welcome = <-frames:
	case err := <-readErr:
		return false, fmt.Errorf("waiting for the hub's welcome: %w", err)
	case <-time.After(l.opts.AckTimeout):
		return false, errors.New("the hub did not welcome this kiosk in time")
	}
	if welcome.Type == wire.TypeError {
		return false, fmt.Errorf("the hub refused this kiosk: %s", welcome.Reason)
	}
	if welcome.Type != wire.TypeWelcome {
		return false, fmt.Errorf("the hub answered hello with %q", welcome.Type)
	}
	acked := welcome.AckedSeq
	if acked > last {
		return true, fmt.Errorf("%w (hub: %d, journal: %d); use a new kiosk id for a new journal", ErrForeignHistory, acked, last)
	}
	// The state file first, so whoever sees the status finds it written.
	l.saveState(cur, acked, time.Time{})
	l.update(func(s *Status) { s.Connected, s.AckedSeq, s.LastError, s.Hub = true, acked, "", l.bases[cur] })
	l.log.Info("hub link: connected", "hub", l.bases[cur], "acked_seq", acked, "journal_seq", last)

	poll := time.NewTicker(l.opts.Poll)
	defer poll.Stop()
	// A status frame when the journal or the rails' health changed, at
	// most every StatusEvery seconds, if the hub asked for them.
	var statusTick <-chan time.Time
	if welcome.StatusEvery > 0 {
		st := time.NewTicker(time.Duration(welcome.StatusEvery) * time.Second)
		defer st.Stop()
		statusTick = st.C
	}
	keep := time.NewTicker(l.opts.Keepalive)
	defer keep.Stop()
	pingErr := make(chan error, 1)
	var inflight int64 // last seq of the batch awaiting its ack, 0 if none
	var ackBy <-chan time.Time
	for {
		if inflight == 0 {
			evs, err := l.opts.Journal.EventsSince(ctx, acked, l.opts.Batch)
			if err != nil {
				return true, err
			}
			if len(evs) > 0 {
				batch := make([]wire.Event, 0, len(evs))
				size := 0
				for _, ev := range evs {
					w := wire.FromPayment(ev)
					size += approxSize(w)
					if len(batch) > 0 && size > wire.MaxBatchBytes {
						break
					}
					batch = append(batch, w)
				}
				if err := send(ctx, c, wire.Frame{Type: wire.TypeEvents, Events: batch}); err != nil {
					return true, err
				}
				inflight = batch[len(batch)-1].Seq
				ackBy = time.After(l.opts.AckTimeout)
				l.update(func(s *Status) { s.JournalSeq = max(s.JournalSeq, evs[len(evs)-1].Seq) })
			}
		}
		select {
		case <-ctx.Done():
			c.Close(websocket.StatusGoingAway, "kiosk stopping")
			return true, ctx.Err()
		case err := <-readErr:
			return true, fmt.Errorf("link to the hub: %w", err)
		case <-keep.C:
			// The pong is read by the reader goroutine; wait for it
			// beside the loop, which goes on sending.
			go func() {
				pctx, cancel := context.WithTimeout(ctx, l.opts.AckTimeout)
				defer cancel()
				if err := c.Ping(pctx); err != nil && ctx.Err() == nil {
					select {
					case pingErr <- err:
					default:
					}
				}
			}()
		case <-statusTick:
			f := wire.Frame{Type: wire.TypeStatus, JournalSeq: l.Status().JournalSeq}
			if l.opts.Health != nil {
				f.Rails = l.opts.Health()
			}
			if f.JournalSeq == reported.JournalSeq && maps.Equal(f.Rails, reported.Rails) {
				continue
			}
			if err := send(ctx, c, f); err != nil {
				return true, err
			}
			reported = f
		case err := <-pingErr:
			return true, fmt.Errorf("the hub did not answer a ping: %w", err)
		case <-ackBy:
			return true, fmt.Errorf("the hub did not acknowledge events up to %d in %s", inflight, l.opts.AckTimeout)
		case ev, ok := <-wake:
			if !ok { // the bus closed: the console is stopping
				wake = nil
				continue
			}
			l.update(func(s *Status) { s.JournalSeq = max(s.JournalSeq, ev.Seq) })
		case <-poll.C:
			if seq, err := l.opts.Journal.LastSeq(ctx); err == nil {
				l.update(func(s *Status) { s.JournalSeq = max(s.JournalSeq, seq) })
			}
		case f := <-frames:
			switch f.Type {
			case wire.TypeAck:
				if f.AckedSeq < inflight {
					return true, fmt.Errorf("the hub acknowledged %d, short of the batch's last event %d", f.AckedSeq, inflight)
				}
				acked, inflight, ackBy = f.AckedSeq, 0, nil
				now := time.Now()
				l.saveState(cur, acked, now)
				l.update(func(s *Status) { s.AckedSeq, s.AckedAt = acked, now })
			case wire.TypeMessage:
				if f.Message == nil || l.opts.OnMessage == nil {
					continue
				}
				if err := l.opts.OnMessage(ctx, *f.Message); err != nil {
					l.log.Warn("hub link: message not handled; the hub keeps it", "id", f.Message.ID, "kind", f.Message.Kind, "err", err)
					continue
				}
				if err := send(ctx, c, wire.Frame{Type: wire.TypeMessageAck, ID: f.Message.ID}); err != nil {
					return true, err
				}
			case wire.TypeError:
				return true, fmt.Errorf("the hub closed the link: %s", f.Reason)
			default:
				l.log.Warn("hub link: unexpected frame from the hub", "type", f.Type)
			}
		}
	}
}

// approxSize is an event's size on the wire, near enough to bound a batch.
func approxSize(e wire.Event) int {
	return 256 + len(e.TxnID) + len(e.Peer) + len(e.Detail) + len(e.Raw)*4/3 + 200*len(e.Plans)
}

func send(ctx context.Context, c *websocket.Conn, f wire.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode %s: %w", f.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s: %w", f.Type, err)
	}
	return nil
}

func read(ctx context.Context, c *websocket.Conn) (wire.Frame, error) {
	var f wire.Frame
	_, b, err := c.Read(ctx)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("decode a frame from the hub: %w", err)
	}
	return f, nil
}

// State is what the link leaves in StatePath for 'paydesk journal'.
type State struct {
	Hub      string    `json:"hub"`
	KioskID  string    `json:"kiosk_id"`
	AckedSeq int64     `json:"acked_seq"`
	AckedAt  time.Time `json:"acked_at,omitzero"`
	Updated  time.Time `json:"updated"`
}

// StatePath is where a journal's link state is kept: beside the journal.
func StatePath(journal string) string { return journal + ".hub.json" }

// ReadState reads a state file.
func ReadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return s, nil
}

// saveState writes the state file (atomically: a reader never sees half).
// A zero ackedAt keeps the time of the last acknowledgement.
func (l *Link) saveState(cur int, acked int64, ackedAt time.Time) {
	if l.opts.StatePath == "" {
		return
	}
	if ackedAt.IsZero() {
		ackedAt = l.Status().AckedAt
	}
	b, _ := json.Marshal(State{Hub: l.bases[cur], KioskID: l.opts.KioskID,
		AckedSeq: acked, AckedAt: ackedAt, Updated: time.Now()})
	tmp := l.opts.StatePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		l.log.Warn("hub link: write state", "err", err)
		return
	}
	if err := os.Rename(tmp, l.opts.StatePath); err != nil {
		l.log.Warn("hub link: write state", "err", err)
	}
}
