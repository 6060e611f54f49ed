//go:build unix && !linux

package pgtemp

import "syscall"

func setParentDeath(*syscall.SysProcAttr) {}
