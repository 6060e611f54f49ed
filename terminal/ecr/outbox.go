package ecr

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Defaults of the outbox. Each is documented on its OutboxOptions field.
const (
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultAttemptTimeout = 10 * time.Second
	// OutboxFile is the outbox's journal inside OutboxOptions.Dir.
	OutboxFile = "ecr-outbox.jsonl"
)

// compactAt is the size past which a fully delivered outbox file is
// emptied.
const compactAt = 1 << 20

// OutboxOptions configures an Outbox.
type OutboxOptions struct {
	// Dir is the directory of the outbox file (created 0700). Required.
	Dir string
	// URL receives each payment result as a JSON POST (the HiPay-like
	// notification endpoint). Required.
	URL string
	// Login and Password, when Login is set, are sent as Basic Auth
	// (HIPAY_LOGIN, HIPAY_PWD).
	Login    string
	Password Secret
	// Client sends the notifications. The default is an http.Client
	// with AttemptTimeout.
	Client *http.Client
	// AttemptTimeout bounds one delivery attempt. The default is 10 s.
	AttemptTimeout time.Duration
	// MinBackoff is the wait after the first failed attempt; it doubles
	// after each failure (with ±20 % jitter) up to MaxBackoff. The
	// defaults are 1 s and 5 minutes. A notification is retried until it
	// is delivered: it is never dropped.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives attempts and failures. The default is slog.Default().
	Logger *slog.Logger
}

// Outbox forwards payment results to the notification endpoint. Each
// result is appended to an append-only JSON-lines file in Dir and synced
// before Enqueue returns, so a result survives a crash or restart; entries
// not yet delivered are sent again when the outbox is reopened. Delivery
// is at least once: the receiver deduplicates with the Idempotency-Key
// header (the entry id).
type Outbox struct {
	opts OutboxOptions
	log  *slog.Logger
	path string

	mu      sync.Mutex
	f       *os.File
	pending []*outEntry
	wake    chan struct{}
	closed  bool
}

type outEntry struct {
	ID       string          `json:"id"`
	Txn      string          `json:"txn"`
	At       time.Time       `json:"at"`
	Body     json.RawMessage `json:"body"`
	attempts int
	next     time.Time
	done     chan struct{}
}

// outRecord is one line of the outbox file.
type outRecord struct {
	Op string `json:"op"` // "add" or "sent"
	outEntry
	Attempts int `json:"attempts,omitempty"`
}

// Entry describes a notification not yet delivered.
type Entry struct {
	ID, Txn  string
	At       time.Time
	Attempts int
}

// OpenOutbox opens (creating) the outbox file in opts.Dir and loads the
// entries not yet delivered. A torn last line (a crash mid-write) is cut
// off with a warning; an unreadable line elsewhere is skipped with a
// warning and kept in the file.
func OpenOutbox(opts OutboxOptions) (*Outbox, error) {
	if opts.Dir == "" {
		return nil, errors.New("ecr outbox: no directory")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ecr outbox: notification URL %q is not an http(s) URL", opts.URL)
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.AttemptTimeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ecr outbox: %w", err)
	}
	o := &Outbox{opts: opts, log: opts.Logger.With("part", "ecr outbox"), path: filepath.Join(opts.Dir, OutboxFile),
		wake: make(chan struct{}, 1)}
	if err := o.load(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *Outbox) load() error {
	f, err := os.OpenFile(o.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("ecr outbox: %w", err)
	}
	byID := map[string]*outEntry{}
	var order []*outEntry
	r := bufio.NewReader(f)
	var good int64
	line := 0
	for {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 && err == io.EOF {
			o.log.Warn("outbox: torn last line cut off (written during a crash)", "file", o.path, "line", line+1, "bytes", len(b))
			if err := f.Truncate(good); err != nil {
				f.Close()
				return fmt.Errorf("ecr outbox: cut torn line: %w", err)
			}
			break
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("ecr outbox: read %s: %w", o.path, err)
		}
		line++
		good += int64(len(b))
		var rec outRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.ID == "" {
			o.log.Warn("outbox: unreadable line skipped", "file", o.path, "line", line, "err", err)
			continue
		}
		switch rec.Op {
		case "add":
			if _, dup := byID[rec.ID]; !dup {
				e := rec.outEntry
				e.done = make(chan struct{})
				byID[rec.ID] = &e
				order = append(order, &e)
			}
		case "sent":
			delete(byID, rec.ID)
		default:
			o.log.Warn("outbox: line with unknown op skipped", "file", o.path, "line", line, "op", rec.Op)
		}
	}
	for _, e := range order {
		if _, ok := byID[e.ID]; ok {
			o.pending = append(o.pending, e)
		}
	}
	if len(o.pending) == 0 && good > compactAt {
		if err := f.Truncate(0); err == nil {
			f.Sync()
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return fmt.Errorf("ecr outbox: %w", err)
	}
	o.f = f
	if len(o.pending) > 0 {
		o.log.Info("outbox: notifications to resend", "count", len(o.pending))
	}
	return nil
}

// append writes one record and syncs it; called with o.mu held.
func (o *Outbox) appendLocked(rec outRecord) error {
	if o.closed {
		return errors.New("ecr outbox: closed")
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("ecr outbox: encode: %w", err)
	}
	b = append(b, '\n')
	if _, err := o.f.Write(b); err != nil {
		return fmt.Errorf("ecr outbox: write %s: %w", o.path, err)
	}
	if err := o.f.Sync(); err != nil {
		return fmt.Errorf("ecr outbox: sync %s: %w", o.path, err)
	}
	return nil
}

// Enqueue records a notification for txn with body (a JSON object) and
// returns once it is on disk. The channel is closed when it has been
// delivered.
func (o *Outbox) Enqueue(txn string, body []byte) (string, <-chan struct{}, error) {
	if !json.Valid(body) {
		return "", nil, errors.New("ecr outbox: body is not JSON")
	}
	e := &outEntry{ID: uuid.NewString(), Txn: txn, At: time.Now().UTC(), Body: bytes.Clone(body), done: make(chan struct{})}
	o.mu.Lock()
	err := o.appendLocked(outRecord{Op: "add", outEntry: *e})
	if err == nil {
		o.pending = append(o.pending, e)
	}
	o.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	o.kick()
	return e.ID, e.done, nil
}

func (o *Outbox) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Pending lists the notifications not yet delivered, oldest first.
func (o *Outbox) Pending() []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Entry, 0, len(o.pending))
	for _, e := range o.pending {
		out = append(out, Entry{ID: e.ID, Txn: e.Txn, At: e.At, Attempts: e.attempts})
	}
	return out
}

// Run delivers notifications until ctx ends, oldest first, each retried
// with backoff until the endpoint answers 2xx.
func (o *Outbox) Run(ctx context.Context) error {
	for {
		o.mu.Lock()
		var due *outEntry
		var wait time.Duration = -1
		now := time.Now()
		for _, e := range o.pending {
			if !e.next.After(now) {
				due = e
				break
			}
			if d := e.next.Sub(now); wait < 0 || d < wait {
				wait = d
			}
		}
		o.mu.Unlock()
		if due != nil {
			o.attempt(ctx, due)
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		var tc <-chan time.Time
		var t *time.Timer
		if wait >= 0 {
			t = time.NewTimer(wait)
			tc = t.C
		}
		select {
		case <-ctx.Done():
		case <-o.wake:
		case <-tc:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (o *Outbox) attempt(ctx context.Context, e *outEntry) {
	o.mu.Lock()
	e.attempts++
	n := e.attempts
	o.mu.Unlock()
	err := o.post(ctx, e)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		back := o.opts.MinBackoff << min(n-1, 30)
		if back > o.opts.MaxBackoff || back <= 0 {
			back = o.opts.MaxBackoff
		}
		back = time.Duration(float64(back) * (0.8 + 0.4*rand.Float64()))
		o.mu.Lock()
		e.next = time.Now().Add(back)
		o.mu.Unlock()
		o.log.Warn("outbox: notification not delivered; will retry", "txn", e.Txn, "id", e.ID, "attempt", n,
			"retry_in", back.Round(time.Millisecond), "err", err)
		return
	}
	o.mu.Lock()
	werr := o.appendLocked(outRecord{Op: "sent", outEntry: outEntry{ID: e.ID, Txn: e.Txn, At: time.Now().UTC()}, Attempts: n})
	for i, p := range o.pending {
		if p == e {
			o.pending = append(o.pending[:i], o.pending[i+1:]...)
			break
		}
	}
	empty := len(o.pending) == 0
	o.mu.Unlock()
	close(e.done)
	if werr != nil {
		// Delivered but not recorded: it will be sent again after a restart
		// (the receiver deduplicates by Idempotency-Key).
		o.log.Error("outbox: delivered, but recording it failed", "txn", e.Txn, "id", e.ID, "err", werr)
	}
	o.log.Info("outbox: notification delivered", "txn", e.Txn, "id", e.ID, "attempts", n)
	if empty {
		o.compact()
	}
}

func (o *Outbox) compact() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) > 0 || o.closed {
		return
	}
	if st, err := o.f.Stat(); err != nil || st.Size() < compactAt {
		return
	}
	if err := o.f.Truncate(0); err != nil {
		o.log.Warn("outbox: compaction failed", "err", err)
		return
	}
	o.f.Seek(0, io.SeekStart)
	o.f.Sync()
}

func (o *Outbox) post(ctx context.Context, e *outEntry) error {
	ctx, cancel := context.WithTimeout(ctx, o.opts.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.opts.URL, bytes.NewReader(e.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", e.ID)
	req.Header.Set("X-Paydesk-Transaction", e.Txn)
	if o.opts.Login != "" {
		req.SetBasicAuth(o.opts.Login, o.opts.Password.Reveal())
	}
	resp, err := o.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials: do not log it
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}

// Close closes the outbox file. Run must have returned.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	return o.f.Close()
}
