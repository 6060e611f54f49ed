package hub

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"paydesk/hub/wire"
	"paydesk/mpesa"
)

// Options configure a Server. Zero values take the defaults written beside
// them.
type Options struct {
	// Logger receives connection events and rejections. The default
	// discards them.
	Logger *slog.Logger
	// HelloTimeout is how long a new link has to say hello. The default
	// is 10 seconds.
	HelloTimeout time.Duration
	// MessagePoll is how often a link looks for new messages for its
	// kiosk (the messages are in the database, which every replica
	// reads). The default is 2 seconds.
	MessagePoll time.Duration
	// RejectLogs is how many rejections are logged per second; the rest
	// are counted and the count logged. The default is 10.
	RejectLogs int
	// StatusEvery is how often, at most, a kiosk reports its journal's
	// last sequence and its rails' health while connected (for the
	// dashboard's lag). The default is 10 seconds.
	StatusEvery time.Duration
	// SessionTTL is how long an operator's dashboard session lasts. The
	// default is 12 hours.
	SessionTTL time.Duration
	// BehindTLSProxy says the operators' browsers reach the hub through a
	// proxy that terminates TLS: session cookies are then marked Secure,
	// as they are when the hub serves TLS itself.
	BehindTLSProxy bool
	// Location is the time zone the dashboard's days are in. The default
	// is time.Local.
	Location *time.Location
	// MpesaAllow are the addresses Daraja's callbacks may come from; nil
	// means mpesa.DefaultAllowList. MpesaTrustedProxies are the proxies
	// whose X-Forwarded-For is believed.
	MpesaAllow, MpesaTrustedProxies []netip.Prefix
	// MpesaEnforceAllow refuses (403) a callback from outside the
	// allow-list; by default it is stored, flagged for its kiosk and
	// answered, as a kiosk's own callback server does.
	MpesaEnforceAllow bool
	// MpesaMaxBody caps a callback's body. The default is 16 KiB.
	MpesaMaxBody int64
	// MpesaPathSecret, when set, is a secret first path segment Daraja's
	// callbacks must carry: they are taken at /SECRET/v1/daraja/…, and
	// the bare /v1/daraja/… paths answer 404. The kiosks give Daraja the
	// hub's URL with the secret.
	MpesaPathSecret string
	// FramesHeld is how many of the kiosks' frames (a batch is up to
	// wire.MaxFrame, held read and decoded until it is stored) the
	// server holds at once; the other links wait for one of these
	// before they read their frame. The default is twice the batches the
	// store writes at once.
	FramesHeld int
}

// Server serves kiosks' links: Serve(ctx, ln) until ctx ends or Close.
type Server struct {
	store *Store
	opts  Options
	log   *slog.Logger
	rej   *limiter
	// frames bounds the kiosks' frames held at once (Options.FramesHeld);
	// hellos, their links' first frames, have as many again of their
	// own, so a link is welcomed while the others' batches wait.
	frames, hellos *frameGate

	mu       sync.Mutex
	cancel   context.CancelFunc // ends Serve; set while serving
	closed   bool
	stopping bool // Serve is waiting for the links: no new ones
	links    sync.WaitGroup
	wakers   map[string]map[chan struct{}]bool // per kiosk, its links on this replica
}

// NewServer returns a server of the kiosks' links on store.
func NewServer(store *Store, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HelloTimeout <= 0 {
		opts.HelloTimeout = 10 * time.Second
	}
	if opts.MessagePoll <= 0 {
		opts.MessagePoll = 2 * time.Second
	}
	if opts.RejectLogs <= 0 {
		opts.RejectLogs = 10
	}
	if opts.StatusEvery < time.Second {
		opts.StatusEvery = 10 * time.Second
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.MpesaAllow == nil {
		opts.MpesaAllow = mpesa.DefaultAllowList
	}
	if opts.MpesaMaxBody <= 0 {
		opts.MpesaMaxBody = 16 << 10
	}
	if opts.FramesHeld <= 0 {
		opts.FramesHeld = 2 * cap(store.ingest)
	}
	return &Server{store: store, opts: opts, log: opts.Logger, rej: &limiter{per: opts.RejectLogs}, frames: newFrameGate(opts.FramesHeld), hellos: newFrameGate(opts.FramesHeld)}
}

// Handler returns the hub's HTTP handler: the link at wire.Path (kiosk
// tokens only), a health check at /healthz (200 when the database
// answers), and the operators' dashboard (sessions only) at /.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.Path, s.serveLink)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.store.Ping(r.Context()); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	s.dashboard(mux)
	// A body is read only by the link and the login and logout forms,
	// and by Daraja's callbacks, which have their own cap.
	small := http.MaxBytesHandler(mux, 4<<10)
	cb := s.darajaHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/daraja/") {
			if s.opts.MpesaPathSecret != "" {
				s.reject(r.RemoteAddr, "", "Daraja callback without the path secret refused", nil)
				http.NotFound(w, r)
				return
			}
			cb.ServeHTTP(w, r)
			return
		}
		if rest, ok := s.underSecret(r.URL.Path); ok {
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = rest, ""
			cb.ServeHTTP(w, r2)
			return
		}
		small.ServeHTTP(w, r)
	})
}

// underSecret reports whether path is a Daraja callback's under the
// path secret (/SECRET/v1/daraja/…) and returns it without the secret.
func (s *Server) underSecret(path string) (string, bool) {
	if s.opts.MpesaPathSecret == "" {
		return "", false
	}
	seg, rest, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || !strings.HasPrefix("/"+rest, "/v1/daraja/") {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(seg), []byte(s.opts.MpesaPathSecret)) != 1 {
		return "", false
	}
	return "/" + rest, true
}

// Serve serves the links on ln until ctx ends or Close is called, then
// closes every link and returns once they have all ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.cancel = cancel
	s.mu.Unlock()
	hs := &http.Server{
		Handler:           s.Handler(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	listening := make(chan struct{})
	go func() { defer close(listening); s.listen(ctx) }()
	defer func() { <-listening }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel() // ends the links, whose contexts derive from ctx
	hs.Close()
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.links.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close stops Serve.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

// reject logs a refused link or frame at a bounded rate.
func (s *Server) reject(remote, kiosk, reason string, err error) {
	if ok, dropped := s.rej.allow(time.Now()); ok {
		args := []any{"remote", remote, "kiosk", kiosk, "reason", reason}
		if err != nil {
			args = append(args, "err", err)
		}
		if dropped > 0 {
			args = append(args, "not_logged_before", dropped)
		}
		s.log.Warn("hub: rejected", args...)
	}
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		http.Error(w, "hub stopping", http.StatusServiceUnavailable)
		return
	}
	s.links.Add(1)
	s.mu.Unlock()
	defer s.links.Done()
	ctx := r.Context()
	remote := r.RemoteAddr
	kiosk, err := s.store.Authenticate(ctx, bearer(r))
	if err != nil {
		if errors.Is(err, ErrBadToken) {
			s.reject(remote, "", "unknown or revoked token", nil)
			http.Error(w, "unknown or revoked kiosk token", http.StatusUnauthorized)
			return
		}
		s.log.Error("hub: checking a token", "remote", remote, "err", err)
		http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.reject(remote, kiosk, "not a WebSocket upgrade", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(wire.MaxFrame)
	l := &link{s: s, c: c, kiosk: kiosk, remote: remote}
	err = l.run(ctx)
	switch {
	case ctx.Err() != nil:
		c.Close(websocket.StatusGoingAway, "hub stopping")
	case websocket.CloseStatus(err) == websocket.StatusNormalClosure || websocket.CloseStatus(err) == websocket.StatusGoingAway:
		s.log.Info("hub: kiosk left", "kiosk", kiosk, "remote", remote)
	case websocket.CloseStatus(err) == websocket.StatusMessageTooBig || strings.Contains(fmt.Sprint(err), "read limited"):
		s.reject(remote, kiosk, fmt.Sprintf("frame over %d bytes", wire.MaxFrame), nil)
		c.Close(websocket.StatusMessageTooBig, "frame too large")
	case err != nil:
		var rj *rejection
		if errors.As(err, &rj) {
			s.reject(remote, kiosk, rj.reason, rj.err)
			l.send(ctx, wire.Frame{Type: wire.TypeError, Reason: rj.reason})
			c.Close(websocket.StatusPolicyViolation, truncateReason(rj.reason))
			return
		}
		s.log.Warn("hub: link ended", "kiosk", kiosk, "remote", remote, "err", err)
		c.Close(websocket.StatusInternalError, "hub error")
	}
}

// rejection is a refusal of the kiosk's input: said to the kiosk, logged,
// and the link closed.
type rejection struct {
	reason string
	err    error
}

func (r *rejection) Error() string { return r.reason }
func (r *rejection) Unwrap() error { return r.err }

func truncateReason(s string) string {
	if len(s) > 120 { // a close reason must fit a control frame
		return s[:120]
	}
	return s
}

// link is one kiosk's connection.
type link struct {
	s      *Server
	c      *websocket.Conn
	kiosk  string
	remote string
}

func (l *link) send(ctx context.Context, f wire.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode %s: %w", f.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return l.c.Write(ctx, websocket.MessageText, b)
}

// frameBody is how long a frame's body may take to come once the link
// holds a token for it: a kiosk's write gives up after 30 seconds.
const frameBody = 30 * time.Second

// read reads the link's next frame. Its body is read only once the link
// holds one of gate's tokens (Server.frames or, for a hello, hellos),
// taken when the frame's first bytes have come: links waiting for one
// leave their frames unread. The caller gives the token back by calling
// done once the frame is handled; read gives it back itself when it
// returns an error. When within is not 0, the frame's first bytes must
// come within it, and its body within it again once the token is held
// (the wait for the token is not the kiosk's, and does not count).
func (l *link) read(ctx context.Context, gate *frameGate, within time.Duration) (f wire.Frame, done func(), err error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	late := func(t *time.Timer, d time.Duration, what string, err error) error {
		if fired := !t.Stop(); fired && err != nil && ctx.Err() == nil {
			return fmt.Errorf("%s not in %s: %w", what, d, context.DeadlineExceeded)
		}
		return err
	}
	body := frameBody
	var typ websocket.MessageType
	var r io.Reader
	if within > 0 {
		body = within
		t := time.AfterFunc(within, cancel)
		typ, r, err = l.c.Reader(rctx)
		err = late(t, within, "a frame", err)
	} else {
		typ, r, err = l.c.Reader(rctx)
	}
	if err != nil {
		return f, nil, err
	}
	if err := gate.acquire(ctx); err != nil {
		return f, nil, err
	}
	var once sync.Once
	done = func() { once.Do(gate.release) }
	// A link holding a token does not keep it by sending slowly.
	t := time.AfterFunc(body, cancel)
	b, err := io.ReadAll(r)
	if err := late(t, body, "the frame's body", err); err != nil {
		done()
		return f, nil, err
	}
	if typ != websocket.MessageText {
		done()
		return f, nil, &rejection{reason: "binary frame; the link speaks JSON text"}
	}
	if err := json.Unmarshal(b, &f); err != nil {
		done()
		return f, nil, &rejection{reason: "frame is not JSON", err: err}
	}
	return f, done, nil
}

func (l *link) run(ctx context.Context) error {
	hello, done, err := l.read(ctx, l.s.hellos, l.s.opts.HelloTimeout)
	if err != nil {
		return err
	}
	done()
	if hello.Type != wire.TypeHello {
		return &rejection{reason: fmt.Sprintf("expected hello, got %q", truncate(hello.Type))}
	}
	if hello.KioskID != l.kiosk {
		return &rejection{reason: fmt.Sprintf("kiosk id %q does not match the token's kiosk", truncate(hello.KioskID))}
	}
	if err := wire.CheckHello(hello); err != nil {
		return &rejection{reason: err.Error(), err: err}
	}
	acked, err := l.s.store.Acked(ctx, l.kiosk)
	if err != nil {
		return err
	}
	if err := l.s.store.Hello(ctx, l.kiosk, hello.Version, hello.JournalSeq, hello.Rails); err != nil {
		return err
	}
	if err := l.send(ctx, wire.Frame{Type: wire.TypeWelcome, KioskID: l.kiosk, AckedSeq: acked,
		StatusEvery: int(l.s.opts.StatusEvery / time.Second)}); err != nil {
		return err
	}
	l.s.log.Info("hub: kiosk connected", "kiosk", l.kiosk, "remote", l.remote, "acked_seq", acked, "journal_seq", hello.JournalSeq)

	// Messages for this kiosk go out from their own goroutine.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	msgDone := make(chan error, 1)
	go func() { msgDone <- l.deliver(ctx) }()
	defer func() { stop(); <-msgDone }()

	for {
		f, done, err := l.read(ctx, l.s.frames, 0)
		if err != nil {
			return err
		}
		if f.Type != wire.TypeEvents {
			done() // what is kept of it is small
		}
		switch f.Type {
		case wire.TypeEvents:
			acked, added, err := l.s.store.Ingest(ctx, l.kiosk, f.Events)
			done()
			switch {
			case errors.Is(err, wire.ErrBadBatch):
				return &rejection{reason: err.Error(), err: err}
			case errors.Is(err, ErrRevoked):
				return &rejection{reason: "kiosk token revoked", err: err}
			case err != nil:
				return err
			}
			if added < len(f.Events) {
				l.s.log.Info("hub: replayed events ignored", "kiosk", l.kiosk, "events", len(f.Events), "new", added)
			}
			if err := l.send(ctx, wire.Frame{Type: wire.TypeAck, AckedSeq: acked}); err != nil {
				return err
			}
		case wire.TypeStatus:
			if err := wire.CheckHello(f); err != nil {
				return &rejection{reason: strings.Replace(err.Error(), "hello", "status", 1), err: err}
			}
			if err := l.s.store.Status(ctx, l.kiosk, f.JournalSeq, f.Rails); err != nil {
				return err
			}
		case wire.TypeMessageAck:
			if err := l.s.store.AckMessage(ctx, l.kiosk, f.ID); errors.Is(err, ErrNoMessage) {
				// Not this kiosk's: refused, logged, and the link stays.
				l.s.reject(l.remote, l.kiosk, fmt.Sprintf("acknowledged message %d, which is not its own", f.ID), nil)
			} else if err != nil {
				return err
			}
		default:
			return &rejection{reason: fmt.Sprintf("unexpected frame %q", truncate(f.Type))}
		}
	}
}

// deliver sends the kiosk's pending messages, then looks for new ones
// when a replica notifies one is queued, or every MessagePoll. A message sent and not yet acknowledged is sent again
// on the kiosk's next link.
func (l *link) deliver(ctx context.Context) error {
	var after int64
	t := time.NewTicker(l.s.opts.MessagePoll)
	defer t.Stop()
	woken, done := l.s.waiter(l.kiosk)
	defer done()
	for {
		msgs, err := l.s.store.Pending(ctx, l.kiosk, after, 100)
		if err != nil && ctx.Err() == nil {
			l.s.log.Warn("hub: reading messages", "kiosk", l.kiosk, "err", err)
		}
		for _, m := range msgs {
			if err := l.send(ctx, wire.Frame{Type: wire.TypeMessage, Message: &m}); err != nil {
				return err
			}
			after = m.ID
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-woken: // a replica queued a message for this kiosk
		}
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// limiter allows per events a second and counts the rest.
type limiter struct {
	per     int
	mu      sync.Mutex
	window  time.Time
	n       int
	dropped int
}

func (l *limiter) allow(now time.Time) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	if l.n >= l.per {
		l.dropped++
		return false, 0
	}
	l.n++
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}
