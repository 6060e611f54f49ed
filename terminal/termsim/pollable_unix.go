//go:build unix

package termsim

import (
	"fmt"
	"os"
	"syscall"
)

// pollable returns the master as a non-blocking file in Go's poller.
// creack/pty hands it over in blocking mode (it calls Fd), where Close
// waits for the simulator's pending Read to return: the master would stay
// open and a hang-up would never reach the driver.
func pollable(master *os.File) (*os.File, error) {
	fd, err := syscall.Dup(int(master.Fd()))
	master.Close()
	if err != nil {
		return nil, fmt.Errorf("dup the pseudo-terminal master: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("non-blocking pseudo-terminal master: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), nil
}
