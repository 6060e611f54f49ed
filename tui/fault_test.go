package tui

import (
	"bytes"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"paydesk/payment/journaltest"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/postest"
)

// waitSeen waits until the output read by this call holds every text and
// returns it. The limit is generous for a loaded machine: each step is a
// loopback round trip or a journal retry (every second by default).
func waitSeen(t *testing.T, tm *teatest.TestModel, texts ...string) []byte {
	t.Helper()
	var seen []byte
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		seen = b
		for _, s := range texts {
			if !bytes.Contains(b, []byte(s)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(15*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	return seen
}

func TestJournalWriteFails(t *testing.T) {
	k := postest.New(t, protocol.Options{})
	k.AddSim(t, possim.Options{})
	spaceBack := journaltest.FillAfterSent(k.Journal)
	cfg := testConfig()
	cfg.Now = time.Now
	tm := teatest.NewTestModel(t, testModel{newModel(cfg, k.Server, k.Bus)}, teatest.WithInitialTermSize(100, 30))

	tm.Type("110.00")
	enter(tm)
	// Said at once, and the payment ends as not recorded, never as
	// approved. (The ack's failure may show only between two frames.)
	seen := waitSeen(t, tm, "check the POS", "NOT RECORDED (unknown)")
	if bytes.Contains(seen, []byte("APPROVED")) {
		t.Fatalf("approved shown without the durable record:\n%s", seen)
	}

	// The console takes the next payment: refused at once, as its start
	// cannot be written, rather than waiting; the refusal shows on the
	// form, as typed, and Esc goes back to the menu.
	tm.Type("x") // any key: back to the menu
	tm.Type("120.00")
	enter(tm)
	waitSeen(t, tm, "! start payment")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})

	// Status lists the payment needing attention.
	tm.Type("6")
	waitSeen(t, tm, "Not recorded (a journal write failed")
	tm.Type("6")

	spaceBack()
	waitSeen(t, tm, "recorded after the retry: approved")

	tm.Type("130.00")
	enter(tm)
	waitSeen(t, tm, "APPROVED")
	tm.Type("x")
	tm.Type("7")
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}
