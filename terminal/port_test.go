package terminal

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/creack/pty"
	xterm "golang.org/x/term"

	"paydesk/payment"
	"paydesk/terminal/concert"
)

// On a real serial port (go.bug.st/serial on a pseudo-terminal) a byte
// left in the port's input by a killed paydesk is dropped when the driver
// opens the port: the terminal's side sees the probe's ENQ, not an ACK
// to the stale ENQ.
func TestStaleBytesFlushedOnARealPort(t *testing.T) {
	t.Run("serial", func(t *testing.T) { staleBytesFlushed(t, false) })
	t.Run("plain", func(t *testing.T) { staleBytesFlushed(t, true) })
}

func staleBytesFlushed(t *testing.T, plain bool) {
	if runtime.GOOS != "linux" {
		t.Skip("pseudo-terminals as serial ports: Linux")
	}
	master, slave, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pseudo-terminal under CI: %v", err)
		}
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	// The killed paydesk left the port raw, and the terminal's ENQ in it.
	if _, err := xterm.MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := master.Write([]byte{concert.ENQ}); err != nil {
		t.Fatal(err)
	}
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	bus := payment.NewBus(j, nil)
	defer bus.Close()
	d, err := NewDriver(bus, Options{Port: PortOptions{Path: slave.Name(), Plain: plain}, Timers: fastTimers, ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	got := make(chan byte, 256)
	go func() {
		b := make([]byte, 16)
		for {
			n, err := master.Read(b)
			for _, c := range b[:n] {
				got <- c
			}
			if err != nil {
				return
			}
		}
	}()
	next := func() byte {
		t.Helper()
		select {
		case b := <-got:
			return b
		case <-time.After(scriptWait):
			t.Fatalf("nothing from the driver within %s", scriptWait)
			return 0
		}
	}
	// The probe: ENQ, our ACK, its EOT. Had the stale ENQ been read, the
	// driver would take it for a collision and answer it with ACK.
	if b := next(); b != concert.ENQ {
		t.Fatalf("first byte from the driver 0x%02X, want the probe's ENQ", b)
	}
	if _, err := master.Write([]byte{concert.ACK}); err != nil {
		t.Fatal(err)
	}
	if b := next(); b != concert.EOT {
		t.Fatalf("after our ACK the driver sent 0x%02X, want EOT (0x06: it answered the stale ENQ)", b)
	}
}
