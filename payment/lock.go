package payment

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrInUse is returned by OpenJournal when another paydesk has the
// journal open for writing. Two writers would each take the other's
// payments in flight for leftovers of a crash and mark them unknown.
var ErrInUse = errors.New("journal in use by another paydesk")

var errLocked = errors.New("locked")

// lockJournal takes the lock beside the journal (path + ".lock") for this
// process and writes its pid there, so the refusal can say who holds it.
func lockJournal(path string) (*os.File, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal lock %s: %w", name, err)
	}
	if err := tryLock(f); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(name); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w%s: stop it first, or give this one another --journal; `paydesk journal` reads it meanwhile", ErrInUse, holder)
		}
		return nil, fmt.Errorf("lock journal %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
