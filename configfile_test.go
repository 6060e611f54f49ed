package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paydesk.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// registerConsole adds to fs the console's flags and its rails', as
// parseConsoleFlags does, and returns the rails.
func registerConsole(fs *flag.FlagSet, cfg *config) []railSettings {
	cfg.registerConsole(fs)
	rails := consoleRails(cfg, "127.0.0.1:0")
	for _, r := range rails {
		r.register(fs)
	}
	return rails
}

func TestConfigFileFillsUnsetFlags(t *testing.T) {
	path := writeConfig(t, `
kiosk-id = "KIOSK007"
ack-timeout = "3s"
max-amount = 100
secret = "from-the-file"

[sim]
delay = "250ms"
`)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var cfg config
	rails := registerConsole(fs, &cfg)
	delay := fs.Duration("sim-delay", 0, "a table's key is its flag without the prefix")
	t.Setenv("PAYDESK_MAX_AMOUNT", "") // unset: the file decides
	if err := fs.Parse([]string{"--ack-timeout", "7s"}); err != nil {
		t.Fatal(err)
	}
	fc, err := loadFileConfig(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.apply(fs, secretsOf(rails)...); err != nil {
		t.Fatal(err)
	}
	if cfg.kioskID != "KIOSK007" {
		t.Errorf("kiosk id = %q, want the file's KIOSK007", cfg.kioskID)
	}
	if pos := rails[0].(*posLinkSettings); pos.AckTimeout != 7*time.Second {
		t.Errorf("ack timeout = %s, want the flag's 7s over the file's 3s", pos.AckTimeout)
	}
	if cfg.maxAmount != "100" {
		t.Errorf("max amount = %q, want the file's 100", cfg.maxAmount)
	}
	if *delay != 250*time.Millisecond {
		t.Errorf("[sim] delay = %s, want 250ms", *delay)
	}
	t.Setenv("PAYDESK_SECRET", "")
	if err := cfg.load(fc); err != nil {
		t.Fatal(err)
	}
	if string(cfg.secret) != "from-the-file" || cfg.devSec {
		t.Errorf("secret = %q (dev %v), want the file's", cfg.secret, cfg.devSec)
	}
}

func TestConfigFileEnvironmentWins(t *testing.T) {
	path := writeConfig(t, `kiosk-id = "FROMFILE"`)
	t.Setenv("PAYDESK_KIOSK_ID", "FROMENV")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var cfg config
	registerConsole(fs, &cfg)
	fs.Parse(nil)
	fc, err := loadFileConfig(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.apply(fs); err != nil {
		t.Fatal(err)
	}
	if cfg.kioskID != "FROMENV" {
		t.Errorf("kiosk id = %q, want the environment's", cfg.kioskID)
	}
}

func TestConfigFileSecretSources(t *testing.T) {
	fc := &fileConfig{values: map[string]string{"mpesa-consumer-secret": "file"}}
	if v, _ := fc.secret("mpesa-consumer-secret"); v != "file" {
		t.Errorf("secret from the config file = %q", v)
	}
	sf := filepath.Join(t.TempDir(), "s")
	os.WriteFile(sf, []byte("from-secret-file\n"), 0o600)
	t.Setenv("PAYDESK_MPESA_CONSUMER_SECRET_FILE", sf)
	if v, _ := fc.secret("mpesa-consumer-secret"); v != "from-secret-file" {
		t.Errorf("secret from PAYDESK_..._FILE = %q", v)
	}
	t.Setenv("PAYDESK_MPESA_CONSUMER_SECRET", "env")
	if v, _ := fc.secret("mpesa-consumer-secret"); v != "env" {
		t.Errorf("secret from PAYDESK_... = %q", v)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{`kiosk-idd = "x"`, "unknown settings kiosk-idd"},
		{`[terminal]` + "\n" + `prot = "/dev/ttyUSB0"`, "unknown settings terminal-prot"},
		{`ack-timeout = "soon"`, "ack-timeout"},
		{`kiosk-id = `, "config file"},
	} {
		path := writeConfig(t, c.text)
		err := run(context.Background(), []string{"--config", path, "--journal", filepath.Join(t.TempDir(), "j.db")}, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q: err = %v, want %q", c.text, err, c.want)
		}
	}
	err := run(context.Background(), []string{"--config", "/nonexistent/paydesk.toml", "--journal", filepath.Join(t.TempDir(), "j.db")}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a named config file that is missing: err = %v", err)
	}
}
