package termsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// Open creates the pseudo-terminal pair and returns the slave's path, the
// device to give paydesk. The slave is put in raw mode at once (a fresh
// pty echoes what it receives until someone configures it) and kept open
// by the simulator, so the pair survives paydesk closing and reopening it.
func (s *Sim) Open() (string, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return "", fmt.Errorf("termsim: open a pseudo-terminal: %w", err)
	}
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return "", fmt.Errorf("termsim: raw mode on %s: %w", slave.Name(), err)
	}
	if master, err = pollable(master); err != nil {
		slave.Close()
		return "", fmt.Errorf("termsim: %w", err)
	}
	s.mu.Lock()
	s.master, s.slave, s.path = master, slave, slave.Name()
	s.mu.Unlock()
	if s.opts.Link != "" {
		tmp := s.opts.Link + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(slave.Name(), tmp); err != nil {
			return "", fmt.Errorf("termsim: link %s: %w", s.opts.Link, err)
		}
		if err := os.Rename(tmp, s.opts.Link); err != nil {
			return "", fmt.Errorf("termsim: link %s: %w", s.opts.Link, err)
		}
	}
	select {
	case s.pathc <- slave.Name():
	default:
	}
	s.log.Info("sim: terminal on pseudo-terminal", "path", slave.Name(), "link", s.opts.Link)
	return slave.Name(), nil
}

// Path is the current slave device (it changes after a hang-up).
func (s *Sim) Path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.path
}

// DevicePath is the path a driver should open: the link when one is kept,
// else the slave device.
func (s *Sim) DevicePath() string {
	if s.opts.Link != "" {
		return s.opts.Link
	}
	return s.Path()
}

// Paths delivers the slave path after each (re)open, for callers that
// print it.
func (s *Sim) Paths() <-chan string { return s.pathc }

// Run serves the terminal on the pseudo-terminal until ctx ends. The
// hang-up behaviour closes the master (the driver's reads then fail as on
// an unplugged cable), waits HangUpFor and opens a new pair, pointing the
// link at it.
func (s *Sim) Run(ctx context.Context) error {
	if s.Path() == "" {
		if _, err := s.Open(); err != nil {
			return err
		}
	}
	for {
		s.mu.Lock()
		master := s.master
		s.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { master.Close() })
		err := s.Serve(ctx, master)
		stop()
		if ctx.Err() != nil {
			s.Close()
			return nil
		}
		if !errors.Is(err, errHangUp) {
			s.Close()
			return fmt.Errorf("termsim: %w", err)
		}
		s.Close()
		select {
		case <-time.After(s.opts.HangUpFor):
		case <-ctx.Done():
			return nil
		}
		if _, err := s.Open(); err != nil {
			return err
		}
	}
}

// Close closes the pseudo-terminal pair (and removes the link).
func (s *Sim) Close() error {
	s.mu.Lock()
	m, sl := s.master, s.slave
	s.master, s.slave = nil, nil
	s.mu.Unlock()
	if m != nil {
		m.Close()
	}
	if sl != nil {
		sl.Close()
	}
	if s.opts.Link != "" {
		if target, err := os.Readlink(s.opts.Link); err == nil && filepath.Clean(target) == s.Path() {
			os.Remove(s.opts.Link)
		}
	}
	return nil
}
