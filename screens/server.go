// Package screens is the customer display's WebSocket server: the
// PintoAndroid display protocol as the public Android client PintoAndroid
// speaks it, and a browser display page (screens/web)
// served on the same port.
//
// The server walks each connected display through AMOUNT_SELECT, KEYPAD,
// PAYMENT_METHOD, PROCESSING, SUCCESS or FAILED, PRINT_TICKET,
// COLLECT_TICKET, THANK_YOU and back, with LIMIT_ERROR, DEVICE_ERROR and
// ERROR/TIMEOUT where they apply. A chosen method maps to a rail
// (payment.Starter) by configuration; the payment runs on that rail like
// one the operator starts, and its outcome is learnt from the bus. Every
// screen sent is journaled (an event on the bus) before it is written.
//
// Amounts on this wire are whole units of the currency (pounds, ringgit):
// the app's amounts, selectedAmount, limit and remaining are Kotlin Ints
// and its presets are 20, 40, 60…; inside paydesk they are payment.Money
// in minor units (×100 for most currencies; see payment.MinorPerUnit).
//
// The WebSocket library is github.com/coder/websocket: maintained (the
// successor of nhooyr.io/websocket), no dependencies, context-aware reads
// and writes, concurrent writes allowed, a read limit that refuses
// oversized frames, and a client in the same package for the tests and the
// Chromium DevTools driver.
package screens

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"paydesk/payment"
)

// Defaults of Options.
const (
	// DefaultAddr is where the Android app expects the server: port 5001.
	DefaultAddr = ":5001"
	// DefaultCurrency is the display's currency when none is set.
	DefaultCurrency = payment.DefaultCurrency
	// DefaultMin and DefaultMax bound an amount, in whole units: the app's
	// own defaults (10 and 300).
	DefaultMin = 10
	DefaultMax = 300
	// DefaultIdleTimeout is how long a customer may leave a screen that
	// waits for them (keypad, method, …) before ERROR/TIMEOUT.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultStepDelay is how long SUCCESS, PRINT_TICKET, COLLECT_TICKET
	// and THANK_YOU each stay up.
	DefaultStepDelay = 3 * time.Second
	// DefaultResultHold is how long FAILED, DEVICE_ERROR and a timeout stay
	// up before the amount screen (the app itself resets after 4 s).
	DefaultResultHold = 5 * time.Second
	// DefaultResumeWindow is how long a dropped display's state is kept
	// for it to reconnect (the app retries every 5 s).
	DefaultResumeWindow = 2 * time.Minute
	// DefaultMaxFrame is the largest inbound frame; a larger one closes
	// the connection with status 1009 (message too big).
	DefaultMaxFrame = 16 << 10
	// DefaultWriteTimeout bounds writing one frame to a display.
	DefaultWriteTimeout = 5 * time.Second
	// DefaultLocalTimeout is how long the app may take to report a payment
	// it takes on its own terminal (after the card check) before the
	// payment is marked unknown for the operator.
	DefaultLocalTimeout = 3 * time.Minute
	// DefaultPaymentProvider is the terminal the Android app drives for the
	// methods it pays itself, as its own documents name the default (its
	// code, absent the setting, takes nnsmart).
	DefaultPaymentProvider = "integra"
	// DefaultPingInterval is how often a display is pinged (a WebSocket
	// ping; the app sets no ping interval of its own).
	DefaultPingInterval = 30 * time.Second
)

// PaymentProviders are the values of paymentProvider the Android app
// knows: integra (Planet/Integra terminal), nnsmart or newland (NNSmart),
// mock (its built-in simulator).
var PaymentProviders = []string{"integra", "nnsmart", "newland", "mock"}

// maxAppInt is the largest value of the app's Int fields (Kotlin Int, 32
// bits).
const maxAppInt = math.MaxInt32

// DefaultPresets are the PintoAndroid display protocol's preset amounts, in whole units.
var DefaultPresets = []int64{20, 40, 60, 80, 100}

// Method maps a payment method the display offers (DEBIT_CARD,
// PAY_BY_BANK, …) to a rail.
type Method struct {
	// Name is what the display shows and sends back, e.g. DEBIT_CARD.
	Name string
	// Rail takes the payment. If it implements payment.HealthReporter and
	// reports down, the display gets DEVICE_ERROR instead of a payment.
	Rail payment.Starter
	// RailName is the journal's name of the rail (pos, terminal, mpesa),
	// used for the daily limit's totals and the logs.
	RailName payment.Rail
	// Mode and Target are put in the payment request. A rail that is a
	// payment.Instructor (M-Pesa in ModeC2B: the customer pays from their
	// own phone) has its instructions shown on PROCESSING.
	Mode   payment.Mode
	Target string
}

// Options configure a Server. Zero values take the defaults above.
type Options struct {
	// Addr is the listen address. The default is DefaultAddr.
	Addr string
	// TLS, when set, serves wss:// and https://.
	TLS *tls.Config
	// Token, when set, must be presented in the handshake, as
	// "Authorization: Bearer <token>" or "?token=<token>".
	Token string
	// Presets are the preset amounts, whole units.
	Presets []int64
	// Currency is the ISO 4217 code; the screens show its symbol.
	Currency string
	// NoOther hides the "other amount" button.
	NoOther bool
	// ReceiptQuestion asks RECEIPT_QUESTION after SUCCESS and waits for
	// the customer's RECEIPT_RESPONSE (YES/NO) before PRINT_TICKET; it is
	// also the requireCardReceipt sent in DEVICE_INFO.
	ReceiptQuestion bool
	// Min and Max bound any amount, whole units.
	Min, Max int64
	// DailyLimit, when positive, caps the day's takings in whole units:
	// approved payments today on the rails behind the methods (from the
	// journal, so a restart keeps the count) plus the displays' payments
	// in flight.
	DailyLimit int64
	// Methods are offered in this order; at least one is required.
	Methods []Method
	// IdleTimeout, StepDelay, ResultHold, ResumeWindow, MaxFrame,
	// WriteTimeout, PingInterval and LocalTimeout: see the defaults.
	IdleTimeout  time.Duration
	StepDelay    time.Duration
	ResultHold   time.Duration
	ResumeWindow time.Duration
	MaxFrame     int64
	WriteTimeout time.Duration
	PingInterval time.Duration
	LocalTimeout time.Duration
	// PaymentProvider is the DEVICE_INFO paymentProvider: which terminal
	// the Android app drives for the methods it pays itself (integra,
	// nnsmart, newland or mock). Default DefaultPaymentProvider.
	PaymentProvider string
	// Logger receives connections, every message in and out, rejections
	// and the payments' lifecycle. The default is slog.Default().
	Logger *slog.Logger
	// Now is the clock. The default is time.Now.
	Now func() time.Time
}

// Server is the customer-screen server. Create it with NewServer, then
// Listen and Serve.
type Server struct {
	opts   Options
	bus    *payment.Bus
	log    *slog.Logger
	symbol string
	// unit is the minor units in one whole unit of the currency: 100 for
	// pounds and ringgit, 1 for yen, 1000 for dinars.
	unit int64
	web  http.Handler

	// done is closed when Close has told the displays it is going away:
	// the server's work (reads, writes, journal calls, rail calls, timers)
	// stops with it. Each call gets its own context from life, registered
	// with closing (no goroutine per context).
	done    chan struct{}
	closing *closeHooks

	// rejects bounds the refusals journaled.
	rejects rejectBucket

	// limitMu makes the daily limit's check and reservation one step.
	limitMu sync.Mutex

	// mu guards the maps; a display's lock may be held when taking it,
	// never the other way round.
	mu       sync.Mutex
	sessions map[string]*display
	byTxn    map[string]*display // rail txn id → display with that payment
	flows    map[string]*display // flow id → display that issued it
	seq      int
	localSeq int
	ln       net.Listener
	httpSrv  *http.Server
	closed   bool
}

// NewServer checks opts and returns a server reporting on bus.
func NewServer(bus *payment.Bus, opts Options) (*Server, error) {
	if bus == nil {
		return nil, errors.New("screens: no bus")
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Currency == "" {
		opts.Currency = DefaultCurrency
	}
	opts.Currency = strings.ToUpper(opts.Currency)
	if opts.Presets == nil {
		opts.Presets = DefaultPresets
	}
	if opts.Min == 0 {
		opts.Min = DefaultMin
	}
	if opts.Max == 0 {
		opts.Max = DefaultMax
	}
	for _, d := range []*time.Duration{&opts.IdleTimeout, &opts.StepDelay, &opts.ResultHold, &opts.ResumeWindow, &opts.WriteTimeout, &opts.PingInterval, &opts.LocalTimeout} {
		if *d < 0 {
			return nil, fmt.Errorf("screens: negative duration %s", *d)
		}
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.StepDelay == 0 {
		opts.StepDelay = DefaultStepDelay
	}
	if opts.ResultHold == 0 {
		opts.ResultHold = DefaultResultHold
	}
	if opts.ResumeWindow == 0 {
		opts.ResumeWindow = DefaultResumeWindow
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = DefaultMaxFrame
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.LocalTimeout == 0 {
		opts.LocalTimeout = DefaultLocalTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Min < 1 || opts.Max < opts.Min || opts.Max > maxWhole {
		return nil, fmt.Errorf("screens: amounts must satisfy 1 <= min (%d) <= max (%d) <= %d", opts.Min, opts.Max, maxWhole)
	}
	if opts.DailyLimit < 0 {
		return nil, fmt.Errorf("screens: negative daily limit %d", opts.DailyLimit)
	}
	if opts.DailyLimit > maxAppInt {
		return nil, fmt.Errorf("screens: daily limit %d is above %d, the largest whole number the Android app reads (its limit and remaining are 32-bit Ints: a larger one makes it drop the whole frame)", opts.DailyLimit, maxAppInt)
	}
	if opts.PaymentProvider == "" {
		opts.PaymentProvider = DefaultPaymentProvider
	}
	opts.PaymentProvider = strings.ToLower(strings.TrimSpace(opts.PaymentProvider))
	if !slices.Contains(PaymentProviders, opts.PaymentProvider) {
		return nil, fmt.Errorf("screens: payment provider %q is not one the Android app knows (%s)", opts.PaymentProvider, strings.Join(PaymentProviders, ", "))
	}
	if len(opts.Currency) != 3 {
		return nil, fmt.Errorf("screens: currency %q is not an ISO 4217 code", opts.Currency)
	}
	for _, p := range opts.Presets {
		if p < opts.Min || p > opts.Max {
			return nil, fmt.Errorf("screens: preset %d is outside %d-%d", p, opts.Min, opts.Max)
		}
	}
	if len(opts.Methods) == 0 {
		return nil, errors.New("screens: no payment methods configured")
	}
	seen := map[string]bool{}
	for i, m := range opts.Methods {
		m.Name = strings.ToUpper(strings.TrimSpace(m.Name))
		opts.Methods[i].Name = m.Name
		if m.Name == "" || seen[m.Name] {
			return nil, fmt.Errorf("screens: method %q is empty or repeated", m.Name)
		}
		seen[m.Name] = true
		if m.Rail == nil && !m.paysAtDisplay() {
			return nil, fmt.Errorf("screens: method %s has no rail", m.Name)
		}
		if m.paysAtDisplay() && m.Rail != nil {
			return nil, fmt.Errorf("screens: method %s is paid on the display's own terminal and on a rail", m.Name)
		}
		if c, ok := m.Rail.(payment.Currencier); ok && c.Currency() != "" && !strings.EqualFold(c.Currency(), opts.Currency) {
			return nil, fmt.Errorf("screens: method %s: rail %s takes %s, the display is in %s", m.Name, m.RailName, c.Currency(), opts.Currency)
		}
	}
	s := &Server{opts: opts, bus: bus, log: opts.Logger.With("component", "screens"), symbol: Symbol(opts.Currency), unit: payment.MinorPerUnit(opts.Currency),
		web: webHandler(), sessions: map[string]*display{}, byTxn: map[string]*display{}, flows: map[string]*display{}}
	s.closing = newCloseHooks()
	s.done = s.closing.done
	return s, nil
}

// Symbol is how the display writes a currency: £ for GBP, $ for USD, €
// for EUR, RM for MYR, else the code itself.
func Symbol(code string) string {
	switch strings.ToUpper(code) {
	case "GBP":
		return "£"
	case "USD":
		return "$"
	case "EUR":
		return "€"
	case "MYR":
		return "RM"
	case "KES":
		return "KSh"
	}
	return code
}

// Listen binds the address, so a busy port is reported before Serve.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("customer screen: listen on %s: %w", s.opts.Addr, err)
	}
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return ln, nil
}

// Addr is the bound address once listening.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL is the browser display's address: http(s)://host:port/.
func (s *Server) URL() string {
	a := s.Addr()
	if a == nil {
		return ""
	}
	host, port, _ := net.SplitHostPort(a.String())
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if s.opts.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// Serve follows the bus and answers displays on ln until ctx ends or
// Close is called.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	sub := s.bus.Subscribe(4096)
	defer sub.Close()
	go s.follow(ctx, sub)
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Each request knows its TCP connection, which a display's close
		// drops (see conn.drop).
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.httpSrv = hs
	s.mu.Unlock()
	s.log.Info("customer screen listening", "addr", ln.Addr().String(), "tls", s.opts.TLS != nil, "token", s.opts.Token != "")
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server: the listener, every display's connection (with
// 1001, going away) and the flows' timers. Payments in flight continue on
// their rails.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	hs := s.httpSrv
	sessions := make([]*display, 0, len(s.sessions))
	for _, d := range s.sessions {
		sessions = append(sessions, d)
	}
	s.mu.Unlock()
	var err error
	if hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = hs.Shutdown(ctx)
		cancel()
	}
	// Each display is told paydesk is going away before done closes: that
	// drops the connections (their reads are bound to it) without a word.
	// The close handshakes run together, outside the displays' locks, and
	// a tablet that no longer answers is not waited for.
	var wg sync.WaitGroup
	for _, d := range sessions {
		d.mu.Lock()
		d.stopTimersLocked()
		c, app := d.conn, d.app
		d.mu.Unlock()
		if c != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.shutdown()
				c.closeWith(websocket.StatusGoingAway, "paydesk stopping", app)
			}()
		}
	}
	said := make(chan struct{})
	go func() { wg.Wait(); close(said) }()
	select {
	case <-said:
	case <-time.After(goingAwayWait):
	}
	s.closing.close()
	return err
}

// life returns a context for one call of the server's own work that ends
// when the server closes (or cancel is called, which the caller must do).
func (s *Server) life() (context.Context, context.CancelFunc) {
	return context.WithCancel(lifetime{s.closing})
}

// isClosed reports whether the server has closed.
func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// goingAwayWait bounds how long Close waits for the displays to answer
// its close frame.
const goingAwayWait = time.Second

// ServeHTTP upgrades a WebSocket handshake on any path and serves the
// browser display page otherwise.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.web.ServeHTTP(w, r)
		return
	}
	if s.opts.Token != "" && !s.authorized(r) {
		s.log.Warn("display refused: bad or missing token", "remote", r.RemoteAddr, "path", r.URL.Path)
		s.publish(payment.Event{Kind: payment.KindRejected, Rail: payment.RailScreen, Peer: r.RemoteAddr,
			Detail: "display handshake refused: bad or missing token"})
		w.Header().Set("WWW-Authenticate", `Bearer realm="paydesk customer screen"`)
		http.Error(w, "token required", http.StatusUnauthorized)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Warn("display handshake failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(s.opts.MaxFrame)
	s.serveConn(r, ws)
}

func (s *Server) authorized(r *http.Request) bool {
	got := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			got = strings.TrimSpace(t)
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) == 1
}

// publish journals ev (filling in the rail) and logs a refusal.
func (s *Server) publish(ev payment.Event) error {
	if ev.Rail == "" {
		ev.Rail = payment.RailScreen
	}
	ctx, cancel := s.life()
	defer cancel()
	if _, err := s.bus.Publish(ctx, ev); err != nil {
		s.log.Error("journal refused display event", "peer", ev.Peer, "detail", ev.Detail, "err", err)
		return err
	}
	return nil
}

// follow applies the outcomes of the displays' payments as the bus
// delivers them, until ctx ends or the server closes.
func (s *Server) follow(ctx context.Context, sub *payment.Subscription) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			if ev.Missed > 0 {
				s.log.Warn("display subscription fell behind; re-reading the payments in flight", "missed", ev.Missed)
				s.recheckAll()
			}
			if ev.Kind != payment.KindTransition || ev.TxnID == "" {
				continue
			}
			if !ev.Status.Final() && ev.Status != payment.StatusUnknown {
				continue
			}
			s.mu.Lock()
			d := s.byTxn[ev.TxnID]
			s.mu.Unlock()
			if d != nil {
				d.outcome(ev.TxnID, ev.Status, ev.Result)
			}
		}
	}
}

// recheckAll reads, from the journal, the outcome of every display's
// payment in flight (after the subscription lost events).
func (s *Server) recheckAll() {
	s.mu.Lock()
	ids := make(map[string]*display, len(s.byTxn))
	for id, d := range s.byTxn {
		ids[id] = d
	}
	s.mu.Unlock()
	for id, d := range ids {
		s.recheck(id, d)
	}
}

// recheck applies txn id's outcome if the journal already has it: a rail
// may finish a payment before Start has returned its id.
func (s *Server) recheck(id string, d *display) {
	ctx, cancel := s.life()
	t, err := s.bus.Journal().Txn(ctx, id)
	cancel()
	if err != nil {
		return
	}
	if t.Status.Final() || t.Status == payment.StatusUnknown {
		r := t.Result
		d.outcome(id, t.Status, &r)
	}
}

// localTxnID mints the id of a payment the app takes on its own
// terminal: DSP, the time in milliseconds and a counter, unique in this
// process and across restarts.
func (s *Server) localTxnID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.localSeq++
	return fmt.Sprintf("DSP%d%03d", s.opts.Now().UnixMilli(), s.localSeq%1000)
}

// money is a whole amount a display named, checked against Min and Max,
// in minor units.
func (s *Server) money(whole int64) (payment.Money, error) {
	if whole < s.opts.Min || whole > s.opts.Max {
		return payment.Money{}, &DecodeError{Code: CodeInvalidAmount, Reason: fmt.Sprintf("%d is outside %d-%d", whole, s.opts.Min, s.opts.Max)}
	}
	return payment.Money{Minor: whole * s.unit, Currency: s.opts.Currency}, nil
}

// method finds a configured method by name.
func (s *Server) method(name string) (Method, bool) {
	for _, m := range s.opts.Methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// methodNames lists the methods in order.
func (s *Server) methodNames() []string {
	out := make([]string, len(s.opts.Methods))
	for i, m := range s.opts.Methods {
		out[i] = m.Name
	}
	return out
}

// usedToday is the day's takings counted against the daily limit, in
// minor units: approved today on the methods' rails, in the display's
// currency, plus the displays' payments in flight.
func (s *Server) usedToday(ctx context.Context) (int64, error) {
	from, to := payment.Day(s.opts.Now())
	totals, err := s.bus.Journal().Totals(ctx, from, to)
	if err != nil {
		return 0, fmt.Errorf("daily limit: %w", err)
	}
	// The app's own-terminal payments are journaled on the screen rail.
	rails := map[payment.Rail]bool{payment.RailScreen: true}
	for _, m := range s.opts.Methods {
		rails[m.RailName] = true
	}
	var used int64
	for _, t := range totals {
		if t.Status == payment.StatusApproved && rails[t.Rail] && strings.EqualFold(t.Amount.Currency, s.opts.Currency) {
			used += t.Amount.Minor
		}
	}
	s.mu.Lock()
	for _, d := range s.sessions {
		used += d.reserved.Load()
	}
	s.mu.Unlock()
	return used, nil
}

// Displays lists the displays known to the server, connected or waiting
// for a reconnect, in the order they first connected.
func (s *Server) Displays() []payment.Display {
	s.mu.Lock()
	ds := make([]*display, 0, len(s.sessions))
	for _, d := range s.sessions {
		ds = append(ds, d)
	}
	s.mu.Unlock()
	out := make([]payment.Display, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.snapshot())
	}
	sortDisplays(out)
	return out
}

// ResetDisplay puts display id back on the amount screen, as an operator
// asks from the console. A display with a payment in flight is not reset:
// the payment's outcome must reach the customer.
func (s *Server) ResetDisplay(id string) error {
	s.mu.Lock()
	d := s.sessions[id]
	s.mu.Unlock()
	if d == nil {
		return fmt.Errorf("reset display %s: no such display", id)
	}
	return d.operatorReset()
}

// Methods are the payment methods the display offers, in order, each with
// its rail and mode.
func (s *Server) Methods() []Method { return slices.Clone(s.opts.Methods) }
