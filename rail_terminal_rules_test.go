package main

import (
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/ecr"
)

// The terminal's HTTP API applies the console's rules: the currency the
// terminal is set up for and --max-amount. Each refusal is a 400 naming
// the field. The API refuses before the terminal is involved, so the port
// need not exist.
func TestTerminalAPIKeepsTheConsoleRules(t *testing.T) {
	dir := t.TempDir()
	j, _, err := payment.OpenJournal(filepath.Join(dir, "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, nil)
	e := &railEnv{bus: bus, log: slog.New(slog.DiscardHandler), journal: filepath.Join(dir, "journal.db"),
		file: &fileConfig{values: map[string]string{"terminal-api-password": "pw"}}, maxMinor: 5_000_000}
	defer func() { e.stop(); bus.Close(); j.Close() }()
	ts := terminalSettings{Settings: terminal.Settings{Port: filepath.Join(dir, "no-such-tty"), Baud: 9600, Format: "8N1", POS: 1, Currency: "EUR",
		Protocol: "E+", Answer: "full", ResultTimeout: time.Minute}, api: ecr.Settings{Listen: "127.0.0.1:0", Login: "kiosk"}}
	if _, err := ts.start(e); err != nil {
		t.Fatal(err)
	}
	var url string
	for _, n := range e.notes {
		if m := regexp.MustCompile(`http://\S+`).FindString(n); m != "" {
			url = m
		}
	}
	if url == "" {
		t.Fatalf("no API URL in the notes %q", e.notes)
	}
	for _, tc := range []struct{ body, field, why string }{
		{`{"amount": 60000.00}`, "amount", "50000.00"},
		{`{"amount": 12.00, "currency": "USD"}`, "currency", "EUR"},
	} {
		req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(tc.body))
		req.SetBasicAuth("kiosk", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"message":"`+tc.field+`: `) || !strings.Contains(string(b), tc.why) {
			t.Errorf("%s: %d %s, want 400 naming %s (%s)", tc.body, resp.StatusCode, b, tc.field, tc.why)
		}
	}
}
