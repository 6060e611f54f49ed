package payment

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestCloseWaitsForReadsInFlight: a read of the journal that is running
// when Close is called finishes before Close returns, and one started
// after Close is refused. Before, Close returned at once and the read went
// on with its own SQLite connection, which could create the journal's
// -wal or -shm file again after the caller had removed the directory (the
// screens tests' "TempDir RemoveAll cleanup: directory not empty").
func TestCloseWaitsForReadsInFlight(t *testing.T) {
	j, _, err := OpenJournal(filepath.Join(t.TempDir(), "journal.db"), JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	j.SetReadHook(func(string) {
		once.Do(func() {
			close(entered)
			<-release
		})
	})
	readDone := make(chan error, 1)
	go func() {
		_, err := j.Counts(context.Background())
		readDone <- err
	}()
	<-entered
	closeDone := make(chan error, 1)
	go func() { closeDone <- j.Close() }()
	// Close must wait for the read: 300 ms is plenty for a Close that does
	// not wait to return (it takes a few milliseconds).
	select {
	case err := <-closeDone:
		close(release)
		t.Fatalf("Close returned (%v) while a read was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-readDone; err != nil {
		t.Fatalf("the read in flight at Close: %v", err)
	}
	if err := <-closeDone; err != nil {
		t.Fatal(err)
	}
	if _, err := j.Counts(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("a read after Close: %v, want ErrClosed", err)
	}
}
