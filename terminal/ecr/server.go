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
	// ShutdownTimeout bounds the graceful shutdown when Run's context ends.
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
}

// NewServer returns a server for h on the settings' LOCAL_PORT (the
// default when zero), listening on DefaultHost.
func NewServer(h *Handler, s Settings) *Server {
	return &Server{Host: DefaultHost, Port: s.LocalPort, Handler: h}
}

// Listen binds the port, so a busy port is reported before Run.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
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
		return fmt.Errorf("ecr api: listen on %s (LOCAL_PORT): %w", addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address, once Listen succeeded.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Run listens (if Listen was not called) and serves until ctx ends or
// GET /stop (when the handler has no Stop of its own), running the
// outbox meanwhile. On return the handler is closed; the outbox file is
// left open for the caller to Close. The server owns its port (Host,
// Port), so it has the Run shape; Listen only binds early, so a busy port
// is reported before anything else starts.
func (s *Server) Run(ctx context.Context) error {
	if s.Handler == nil {
		return errors.New("ecr api: no handler")
	}
	if err := s.Listen(); err != nil {
		return err
	}
	log := s.Logger
	if log == nil {
		log = s.Handler.log
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = DefaultReadTimeout
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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
	go func() { errc <- srv.Serve(s.ln) }()
	log.Info("ecr api listening", "addr", s.ln.Addr().String())
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
