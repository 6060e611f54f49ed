package ecr

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"

	"paydesk/payment"
)

// Settings are HiPay's unattended ECR connector API, served locally
// beside the card terminal, as an operator configures it (flags,
// PAYDESK_TERMINAL_* variables, the config file's [terminal] table, and
// the connector's own config.txt); errors name each setting by its flag.
// Validate checks them; Open builds the API from them.
type Settings struct {
	// ConfigTxt is a connector config.txt whose keys fill the settings
	// left unset (--terminal-config-txt): see LoadConfigTxt.
	ConfigTxt string
	// Listen is the API's host:port (--terminal-api-listen); empty, the
	// API is off.
	Listen string
	// Login and Password protect the API with Basic Auth
	// (--terminal-api-login; the password is a secret,
	// PAYDESK_TERMINAL_API_PASSWORD).
	Login    string
	Password Secret
	// NotifyURL receives each API payment's result through a durable
	// outbox kept in OutboxDir (--terminal-notify-url, --terminal-outbox;
	// default: terminal-outbox beside the journal), with NotifyLogin and
	// NotifyPassword (--terminal-notify-login; the password is a secret,
	// PAYDESK_TERMINAL_NOTIFY_PASSWORD).
	NotifyURL, OutboxDir, NotifyLogin string
	NotifyPassword                    Secret
	// SerialPort, Currency and MaxMinor are the terminal's: its port
	// (shown at /config), the currency it is set up for and the kiosk's
	// --max-amount, which the API's requests must keep to.
	SerialPort, Currency string
	MaxMinor             int64
	// File is what LoadConfigTxt read, shown (masked) at /config.
	File ConfigTxt
}

// LoadConfigTxt reads ConfigTxt, when set, into File, and fills from its
// keys the settings left unset: LOCAL_PORT the listen address (on
// DefaultHost), the logins and passwords. It returns the file's serial
// port (SERIAL_PORT, for the terminal's port when that is unset) and the
// file's warnings.
func (s *Settings) LoadConfigTxt() (serialPort string, warnings []string, err error) {
	if s.ConfigTxt == "" {
		return "", nil, nil
	}
	txt, warnings, err := LoadConfig(s.ConfigTxt)
	if err != nil {
		return "", nil, err
	}
	s.File = txt
	if s.Listen == "" && txt.LocalPort != 0 {
		s.Listen = net.JoinHostPort(DefaultHost, strconv.Itoa(txt.LocalPort))
	}
	s.Login = cmp.Or(s.Login, txt.TerminalManagerLogin)
	s.Password = cmp.Or(s.Password, txt.TerminalManagerPassword)
	s.NotifyLogin = cmp.Or(s.NotifyLogin, txt.HiPayLogin)
	s.NotifyPassword = cmp.Or(s.NotifyPassword, txt.HiPayPassword)
	return txt.SerialPort, warnings, nil
}

// Validate checks s when the API is on: a login and a password, and a
// host:port to listen on.
func (s Settings) Validate() error {
	_, _, err := s.hostPort()
	return err
}

func (s Settings) hostPort() (string, int, error) {
	if s.Login == "" || s.Password == "" {
		return "", 0, errors.New("the terminal's HTTP API needs a login and a password: --terminal-api-login and PAYDESK_TERMINAL_API_PASSWORD (or TERMINAL_MANAGER_LOGIN and TERMINAL_MANAGER_PWD in config.txt)")
	}
	host, portStr, err := net.SplitHostPort(s.Listen)
	if err != nil {
		return "", 0, fmt.Errorf("--terminal-api-listen %q: %w (want host:port, e.g. 127.0.0.1:8081)", s.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("--terminal-api-listen %q: port %q is not 0-65535", s.Listen, portStr)
	}
	return host, port, nil
}

// Opened is the API built from Settings: its server with the listener
// bound, for Serve, and its outbox (nil without NotifyURL), for the
// caller to Close once Serve has returned.
type Opened struct {
	Server   *Server
	Listener net.Listener
	Outbox   *Outbox
}

// Open validates s and returns the API for terminal t, which publishes on
// bus, with its listener bound and its outbox open (its directory,
// unless OutboxDir says, beside the journal in journalDir).
func (s Settings) Open(t Terminal, bus *payment.Bus, log *slog.Logger, journalDir string) (*Opened, error) {
	host, port, err := s.hostPort()
	if err != nil {
		return nil, err
	}
	st := s.File
	st.SerialPort, st.LocalPort, st.TerminalManagerLogin, st.HiPayLogin = s.SerialPort, port, s.Login, s.NotifyLogin
	st.TerminalManagerPassword, st.HiPayPassword = s.Password, s.NotifyPassword
	var outbox *Outbox
	if s.NotifyURL != "" {
		dir := cmp.Or(s.OutboxDir, filepath.Join(journalDir, "terminal-outbox"))
		outbox, err = OpenOutbox(OutboxOptions{Dir: dir, URL: s.NotifyURL, Login: st.HiPayLogin, Password: st.HiPayPassword, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("terminal notifications: %w", err)
		}
	}
	h, err := NewHandler(Options{Terminal: t, Bus: bus, Login: st.TerminalManagerLogin, Password: st.TerminalManagerPassword,
		Settings: st, Currency: s.Currency, MaxMinor: s.MaxMinor, Outbox: outbox, Logger: log})
	if err == nil {
		srv := &Server{Host: host, Port: port, AnyPort: port == 0, Handler: h, Logger: log}
		var ln net.Listener
		if ln, err = srv.Listen(); err == nil {
			return &Opened{Server: srv, Listener: ln, Outbox: outbox}, nil
		}
	}
	if outbox != nil {
		outbox.Close()
	}
	return nil, err
}
