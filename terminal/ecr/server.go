package ecr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults of the server.
const (
	// DefaultHost is where the API listens: the loopback interface, as
	// HiPay's http://localhost:{LOCAL_PORT} (Basic Auth over plain HTTP is
	// for the kiosk's own software, not the network).
	DefaultHost = "127.0.0.1"
	// DefaultLocalPort is HiPay's example LOCAL_PORT.
	DefaultLocalPort = 8080
	// DefaultReadTimeout is Server.ReadTimeout's default.
	DefaultReadTimeout = 30 * time.Second
	// ShutdownTimeout bounds the graceful shutdown when Serve stops.
	ShutdownTimeout = 5 * time.Second
)

// Server runs a Handler on LOCAL_PORT, and the handler's outbox with it.
type Server struct {
	// Host is the interface to listen on. The default is 127.0.0.1; set
	// "0.0.0.0" or "" with AnyHost to serve the network.
	Host string
	// Port is LOCAL_PORT. The default is 8080; 0 with AnyPort picks a free
	// port (tests).
	Port int
	// AnyPort makes Port 0 mean "any free port" instead of the default.
	AnyPort bool
	// ReadTimeout bounds reading a request, body included. The default is
	// 30 seconds. net/http lifts the deadline once the body is read, so a
	// payment that lasts longer is not cut (tested).
	ReadTimeout time.Duration
	// Handler is the API.
	Handler *Handler
	// Logger receives the server's start and stop. The default is the
	// handler's logger.
	Logger *slog.Logger

	mu sync.Mutex
	ln net.Listener
	// stop ends the running Serve (Close calls it); closed is set by
	// Close, after which Serve refuses to start.
	stop   context.CancelFunc
	served chan struct{}
	closed bool
}

// NewServer returns a server for h on the settings' LOCAL_PORT (the
// default when zero), listening on DefaultHost.
func NewServer(h *Handler, s ConfigTxt) *Server {
	return &Server{Host: DefaultHost, Port: s.LocalPort, Handler: h}
}

// Listen binds Host:Port (LOCAL_PORT), so a busy port is reported before
// Serve.
func (s *Server) Listen() (net.Listener, error) {
	port := s.Port
	if port == 0 && !s.AnyPort {
		port = DefaultLocalPort
	}
	host := s.Host
	if host == "" {
		host = DefaultHost
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ecr api: listen on %s (LOCAL_PORT): %w", addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return ln, nil
}

// Addr is the bound address, once Listen succeeded or Serve started.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve serves the API on ln until ctx ends, Close is called, or GET
// /stop (when the handler has no Stop of its own), running the outbox
// meanwhile. It closes ln. On return the handler is closed; the outbox
// file is left open for the caller to Close.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Handler == nil {
		ln.Close()
		return errors.New("ecr api: no handler")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan struct{})
	defer close(served)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.ln, s.stop, s.served = ln, cancel, served
	s.mu.Unlock()
	log := s.Logger
	if log == nil {
		log = s.Handler.log
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = DefaultReadTimeout
	}
	if s.Handler.opts.Stop == nil {
		s.Handler.opts.Stop = cancel
	}
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.ReadTimeout,
		// No WriteTimeout: a payment's answer comes when the customer is
		// done (up to the driver's result timeout, 180 s by default).
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	if ob := s.Handler.opts.Outbox; ob != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ob.Run(ctx)
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("ecr api listening", "addr", ln.Addr().String())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer scancel()
	s.Handler.Close() // answers waiting payments with 503
	srv.Shutdown(sctx)
	wg.Wait()
	log.Info("ecr api stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close stops the running Serve, as its context ending does, and waits
// for it to return; a Serve called after it returns at once. It may be
// called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	stop, served := s.stop, s.served
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-served
	}
	return nil
}
