package ecr

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal"
	"paydesk/terminal/termsim"
)

// TestPaymentOverAPseudoTerminal runs the API against the driver on a
// real serial port (go.bug.st/serial on the simulator's pty slave), the
// way paydesk runs against /dev/ttyACM0. Without ptys it skips, except
// under CI=true where it fails.
func TestPaymentOverAPseudoTerminal(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim := termsim.New(termsim.Options{Think: 30 * time.Millisecond, Timeout: simTimeout})
	path, err := sim.Open()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pseudo-terminal under CI: %v", err)
		}
		t.Skipf("no pseudo-terminal: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		sim.Run(ctx)
	}()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, log)
	drv, err := terminal.NewDriver(bus, terminal.Options{Port: terminal.PortOptions{Path: path}, Timers: testTimers,
		ProbeInterval: -1, ReopenInterval: 50 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	drvDone := make(chan struct{})
	go func() {
		defer close(drvDone)
		drv.Run(ctx)
	}()
	defer func() {
		cancel()
		<-drvDone
		<-simDone
		bus.Close()
		j.Close()
	}()
	waitFor(t, 3*time.Second, "the driver on "+path, func() bool { return drv.Health().State == terminal.HealthOK })

	h, err := NewHandler(Options{Terminal: drv, Bus: bus, Login: testUser, Password: testPass, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer func() { h.Close(); srv.Close() }()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(seedRequest("8.99")))
	req.SetBasicAuth(testUser, testPass)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := one(t, b); resp.StatusCode != http.StatusOK || m["status"] != StatusSuccess {
		t.Fatalf("payment over %s: %d %s", path, resp.StatusCode, b)
	}
}
