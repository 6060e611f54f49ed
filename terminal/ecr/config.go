package ecr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Secret is a password read from config.txt. It prints, logs and
// marshals as a mask, so a ConfigTxt value can be logged or shown at
// /config without leaking it; Reveal gives the value to the code that
// needs it (the Basic Auth check, the notification client).
type Secret string

// Mask is what a set Secret shows instead of its value.
const Mask = "********"

// String masks the secret (empty stays empty, so "not set" is visible).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Mask
}

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret out of JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// TimeOfDay is an hh:mm time, as UPDATE_TIME holds it.
type TimeOfDay struct {
	Hour, Minute int
}

// String writes the time as hh:mm.
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", t.Hour, t.Minute) }

// ParseTimeOfDay reads "04:00" (and "4:00"): hours 0–23, minutes 00–59.
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(m) != 2 || h == "" || len(h) > 2 {
		return TimeOfDay{}, fmt.Errorf("%q is not a time in hh:mm form", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || strings.Trim(h+m, "0123456789") != "" || hh > 23 || mm > 59 {
		return TimeOfDay{}, fmt.Errorf("%q is not a time in hh:mm form (00:00-23:59)", s)
	}
	return TimeOfDay{Hour: hh, Minute: mm}, nil
}

// ConfigTxt is the keys of the HiPay connector's config.txt, typed. A
// key absent from the file leaves its field zero. The operator's own
// settings (Settings, and the terminal's) win over the file: see
// Settings.LoadConfigTxt.
type ConfigTxt struct {
	// SerialPort is the terminal's serial port: COM8, /dev/ttyUSB0.
	SerialPort string `json:"serialPort"`
	// LocalPort is the TCP port of the local HTTP API, 1–65535.
	LocalPort int `json:"localPort"`
	// TerminalManagerLogin and TerminalManagerPassword protect the local
	// API with Basic Auth.
	TerminalManagerLogin    string `json:"terminalManagerLogin"`
	TerminalManagerPassword Secret `json:"terminalManagerPassword"`
	// HiPayLogin and HiPayPassword are the credentials sent with each
	// payment notification (the outbox's Basic Auth).
	HiPayLogin    string `json:"hipayLogin"`
	HiPayPassword Secret `json:"hipayPassword"`
	// UpdateTime is when the HiPay connector updated itself each day.
	// paydesk does not update itself; the value is read, checked and shown.
	UpdateTime    TimeOfDay `json:"-"`
	HasUpdateTime bool      `json:"-"`
}

// MarshalJSON shows UpdateTime as "hh:mm" (or null) and the passwords
// masked.
func (s ConfigTxt) MarshalJSON() ([]byte, error) {
	type plain ConfigTxt
	var ut *string
	if s.HasUpdateTime {
		v := s.UpdateTime.String()
		ut = &v
	}
	return marshalJSON(struct {
		plain
		UpdateTime *string `json:"updateTime"`
	}{plain(s), ut})
}

// Config keys of config.txt, as HiPay's document names them.
const (
	KeySerialPort           = "SERIAL_PORT"
	KeyLocalPort            = "LOCAL_PORT"
	KeyTerminalManagerLogin = "TERMINAL_MANAGER_LOGIN"
	KeyTerminalManagerPwd   = "TERMINAL_MANAGER_PWD"
	KeyHiPayLogin           = "HIPAY_LOGIN"
	KeyHiPayPwd             = "HIPAY_PWD"
	KeyUpdateTime           = "UPDATE_TIME"
)

// ErrConfig is wrapped by every error about config.txt's content.
var ErrConfig = errors.New("bad config.txt")

// ConfigError locates a bad line of config.txt.
type ConfigError struct {
	File string
	Line int
	// Reason is for the person editing the file.
	Reason string
}

// Error says where (file:line) and what is wrong.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// Unwrap lets errors.Is(err, ErrConfig) match.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// maxConfigLine caps one line of config.txt; a longer one is an error, not
// a silently cut value.
const maxConfigLine = 4096

// ParseConfig reads config.txt. HiPay's document names the keys and the types of
// their values but shows no file, so this is the syntax chosen, that of the
// KEY=VALUE files such connectors ship:
//
//   - one KEY=VALUE per line; spaces around the key, the '=' and the value
//     are ignored; keys are upper case as in HiPay's document (lower case is
//     accepted and warned about);
//   - blank lines and lines whose first non-blank character is '#' or ';'
//     are comments; there are no comments after a value, because a
//     password may contain '#';
//   - a value may be quoted with "..." or '...' (to keep leading or
//     trailing spaces); inside double quotes \" and \\ are escapes;
//   - CRLF line endings and a UTF-8 byte order mark (Windows Notepad) are
//     accepted;
//   - a key given twice keeps the last value, with a warning; an unknown
//     key is a warning (the file may hold keys of a newer connector); a
//     line without '=', an empty key, a bad number or time, or invalid
//     UTF-8 is an error naming the line.
//
// name is used in messages. Warnings are returned for the caller to log.
func ParseConfig(r io.Reader, name string) (ConfigTxt, []string, error) {
	var s ConfigTxt
	var warnings []string
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxConfigLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		bad := func(format string, args ...any) (ConfigTxt, []string, error) {
			return ConfigTxt{}, warnings, &ConfigError{File: name, Line: n, Reason: fmt.Sprintf(format, args...)}
		}
		if !utf8.Valid(line) {
			return bad("not valid UTF-8 text")
		}
		text := strings.TrimSpace(strings.TrimSuffix(string(line), "\r"))
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			// Not quoted: a line without '=' may be a password pasted alone.
			return bad("not KEY=VALUE (no '=' on the line)")
		}
		key := strings.TrimSpace(k)
		if key == "" {
			return bad("no key before '='")
		}
		if strings.ContainsAny(key, " \t\"'") {
			return bad("%q is not a key (keys are like SERIAL_PORT)", clip(key))
		}
		val, err := unquote(strings.TrimSpace(v))
		if err != nil {
			return bad("%s: %v", key, err)
		}
		upper := strings.ToUpper(key)
		if upper != key && knownKey(upper) {
			warnings = append(warnings, fmt.Sprintf("%s:%d: key %s read as %s", name, n, key, upper))
		}
		if prev, dup := seen[upper]; dup {
			warnings = append(warnings, fmt.Sprintf("%s:%d: %s given again (first on line %d): the last value is used", name, n, upper, prev))
		}
		seen[upper] = n
		switch upper {
		case KeySerialPort:
			s.SerialPort = val
		case KeyLocalPort:
			p, err := strconv.Atoi(val)
			if err != nil || p < 1 || p > 65535 || strings.Trim(val, "0123456789") != "" {
				return bad("%s=%q is not a TCP port (1-65535)", upper, clip(val))
			}
			s.LocalPort = p
		case KeyTerminalManagerLogin:
			s.TerminalManagerLogin = val
		case KeyTerminalManagerPwd:
			s.TerminalManagerPassword = Secret(val)
		case KeyHiPayLogin:
			s.HiPayLogin = val
		case KeyHiPayPwd:
			s.HiPayPassword = Secret(val)
		case KeyUpdateTime:
			t, err := ParseTimeOfDay(val)
			if err != nil {
				return bad("%s: %v", upper, err)
			}
			s.UpdateTime, s.HasUpdateTime = t, true
		default:
			warnings = append(warnings, fmt.Sprintf("%s:%d: unknown key %s ignored", name, n, clip(key)))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return ConfigTxt{}, warnings, &ConfigError{File: name, Line: n + 1, Reason: fmt.Sprintf("line longer than %d bytes", maxConfigLine)}
		}
		return ConfigTxt{}, warnings, fmt.Errorf("read %s: %w", name, err)
	}
	return s, warnings, nil
}

// LoadConfig reads the config.txt file at path.
func LoadConfig(path string) (ConfigTxt, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return ConfigTxt{}, nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	return ParseConfig(f, path)
}

func knownKey(k string) bool {
	switch k {
	case KeySerialPort, KeyLocalPort, KeyTerminalManagerLogin, KeyTerminalManagerPwd, KeyHiPayLogin, KeyHiPayPwd, KeyUpdateTime:
		return true
	}
	return false
}

// unquote strips one pair of matching quotes.
func unquote(v string) (string, error) {
	if v == "" || (v[0] != '"' && v[0] != '\'') {
		return v, nil
	}
	q := v[0]
	if len(v) < 2 || v[len(v)-1] != q {
		return "", fmt.Errorf("value %s has no closing %c", clip(v), q)
	}
	inner := v[1 : len(v)-1]
	if q == '\'' {
		if strings.ContainsRune(inner, '\'') {
			return "", errors.New("a quote inside a '...' value")
		}
		return inner, nil
	}
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c == '\\' && i+1 < len(inner) && (inner[i+1] == '"' || inner[i+1] == '\\'):
			b.WriteByte(inner[i+1])
			i++
		case c == '"':
			return "", errors.New(`an unescaped " inside a "..." value (write \")`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// clip shortens text quoted in an error (it may be a password on a
// mistyped line).
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
