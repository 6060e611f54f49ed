//go:build !unix

package termsim

import "os"

// pollable is the identity where there are no Unix pseudo-terminals.
func pollable(master *os.File) (*os.File, error) { return master, nil }
