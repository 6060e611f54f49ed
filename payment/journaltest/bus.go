package journaltest

import (
	"path/filepath"
	"testing"

	"paydesk/payment"
)

// Bus opens a journal in a temporary directory and a bus on it, both
// closed when the test ends: what a console or the desk is tested over.
func Bus(t testing.TB) *payment.Bus {
	t.Helper()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := payment.NewBus(j, nil)
	t.Cleanup(func() { bus.Close(); j.Close() })
	return bus
}
