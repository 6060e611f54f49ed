package payment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One writer per journal: a second would take the first's payments in
// flight for a crash's leftovers. Readers are welcome meanwhile.
func TestJournalHasOneWriter(t *testing.T) {
	ctx := context.Background()
	j, path := openTestJournal(t)
	mustAppend(t, j, created("FLY", 2550))
	mustAppend(t, j, to("FLY", StatusSent))

	_, _, err := OpenJournal(path, JournalOptions{})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second writer: %v, want ErrInUse", err)
	}
	if want := fmt.Sprintf("(pid %d)", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q does not name the holder %s", err, want)
	}

	r, err := OpenJournalReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := r.Txn(ctx, "FLY")
	if err != nil || tx.Status != StatusSent {
		t.Errorf("read-only sees %+v, %v; want FLY sent, not recovered", tx, err)
	}
	if _, err := r.Append(ctx, to("FLY", StatusAcknowledged)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only append: %v, want ErrReadOnly", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("close read-only: %v", err)
	}

	// Once the writer closes, the next one opens and recovers.
	j.Close()
	j2, rec, err := OpenJournal(path, JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if len(rec.Recovered) != 1 || rec.Recovered[0].ID != "FLY" {
		t.Errorf("recovered = %+v", rec.Recovered)
	}
}

func TestOpenJournalReadOnlyRefusesWhatIsNoJournal(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenJournalReadOnly(filepath.Join(dir, "missing.db")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	other := filepath.Join(dir, "other.db")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournalReadOnly(other); err == nil || !strings.Contains(err.Error(), "not a paydesk journal") {
		t.Errorf("empty file: %v", err)
	}
}
