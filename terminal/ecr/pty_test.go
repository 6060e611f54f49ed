package ecr

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paydesk/terminal/termsim"
	"paydesk/terminal/termtest"
)

// TestPaymentOverAPseudoTerminal runs the API against the driver on a
// real serial port (go.bug.st/serial on the simulator's pty slave), the
// way paydesk runs against /dev/ttyACM0. Without ptys it skips, except
// under CI=true where it fails.
func TestPaymentOverAPseudoTerminal(t *testing.T) {
	r := termtest.New(t, termtest.Options{PTY: true, Timers: testTimers,
		Sim: termsim.Options{Think: 30 * time.Millisecond, Timeout: simTimeout}})
	h, err := NewHandler(Options{Terminal: r.Driver, Bus: r.Bus, Login: testUser, Password: testPass, Logger: r.Logger})
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
		t.Fatalf("payment over a pseudo-terminal: %d %s", resp.StatusCode, b)
	}
}
