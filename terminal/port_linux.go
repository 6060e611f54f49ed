package terminal

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ResetInputBuffer drops what the device received and nobody read yet
// (tcflush TCIFLUSH), as go.bug.st/serial's does. A device that is not a
// terminal has no such buffer: nothing to do.
func (p *plainPort) ResetInputBuffer() error {
	rc, err := p.SyscallConn()
	if err != nil {
		return fmt.Errorf("flush %s: %w", p.Name(), err)
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCIFLUSH) }); err != nil {
		return fmt.Errorf("flush %s: %w", p.Name(), err)
	}
	if ierr != nil && !errors.Is(ierr, unix.ENOTTY) {
		return fmt.Errorf("flush %s: %w", p.Name(), ierr)
	}
	return nil
}
