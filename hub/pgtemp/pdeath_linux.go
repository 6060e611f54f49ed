package pgtemp

import "syscall"

// setParentDeath stops the server (SIGQUIT: PostgreSQL's immediate
// shutdown) if this process dies without Close.
func setParentDeath(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
