//go:build !unix && !windows

package payment

import "os"

// tryLock cannot lock on this system: two consoles on one journal are not
// detected here.
func tryLock(f *os.File) error { return nil }
