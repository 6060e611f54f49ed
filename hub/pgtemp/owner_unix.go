//go:build unix

package pgtemp

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// owner is who the cluster runs as: the process itself, or (as root) an
// unprivileged user.
type owner struct {
	cred *syscall.Credential
}

func unprivileged() (owner, error) {
	if os.Geteuid() != 0 {
		return owner{}, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return owner{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}, nil
	}
	return owner{}, fmt.Errorf("pgtemp: running as root and no unprivileged user (postgres or nobody) to run PostgreSQL as")
}

// own gives dir to the owner.
func (o owner) own(dir string) error {
	if o.cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(o.cred.Uid), int(o.cred.Gid)); err != nil {
		return fmt.Errorf("pgtemp: chown %s: %w", filepath.Base(dir), err)
	}
	return nil
}

// apply makes cmd run as the owner, and stop with this process.
func (o owner) apply(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred}
	setParentDeath(cmd.SysProcAttr)
	if o.cred != nil {
		cmd.Env = append(os.Environ(), "HOME="+cmd.Dir)
	}
}

// immediateShutdown is PostgreSQL's immediate shutdown signal.
var immediateShutdown os.Signal = syscall.SIGQUIT
