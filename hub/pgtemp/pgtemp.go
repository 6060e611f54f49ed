// Package pgtemp starts a throwaway PostgreSQL cluster from the PostgreSQL
// binaries installed on the machine (initdb and postgres, found on PATH or
// under /usr/lib/postgresql/*/bin), in a temporary directory, listening on
// a unix socket in that directory only. The hub's tests and 'paydesk hub
// demo' use it; nothing in it is meant for a real hub's database.
//
// PostgreSQL refuses to run as root: when the process is root, the cluster
// runs as the unprivileged user "postgres" (or "nobody"), which owns the
// temporary directory.
package pgtemp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres is returned by Start when no PostgreSQL binaries are
// installed.
var ErrNoPostgres = errors.New("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql/*/bin; on Debian: apt-get install postgresql)")

// superuser is the cluster's superuser, made by initdb.
const superuser = "paydesk"

// port names the socket file; nothing listens on TCP, so it never clashes.
const port = 5432

// Cluster is a running throwaway cluster. Close stops it and removes its
// directory.
type Cluster struct {
	dir    string // the temporary directory: data/ and the socket
	bin    string // where postgres is
	owner  owner
	logBuf *lockedBuffer

	// The running server: set by run, read by Stop and Close, which the
	// caller does not call at the same time as Restart.
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error

	mu sync.Mutex
	n  int // databases made by NewDatabase
}

// debianBins is where Debian and Ubuntu install each PostgreSQL version.
var debianBins = "/usr/lib/postgresql/*/bin"

// BinDir returns the directory holding initdb and postgres.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(debianBins)
	// The newest version first: 15 before 9.6.
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func version(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// Start makes a cluster in a new temporary directory and starts it. It
// returns once the server accepts connections (or ctx ends).
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tempRoot(), "paydesk-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtemp: temporary directory: %w", err)
	}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	owner, err := unprivileged()
	if err != nil {
		return fail(err)
	}
	c := &Cluster{dir: dir, bin: bin, owner: owner, logBuf: &lockedBuffer{}}
	if err := owner.own(dir); err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", superuser,
		"--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
	initdb.Dir = dir
	owner.apply(initdb)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgtemp: initdb: %w: %s", err, bytes.TrimSpace(out)))
	}
	if err := c.run(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// run starts the server on the cluster's data directory and returns once
// it accepts connections.
func (c *Cluster) run(ctx context.Context) error {
	data := filepath.Join(c.dir, "data")
	// No TCP, a socket in dir; fsync off: the cluster is thrown away.
	c.cmd = exec.Command(filepath.Join(c.bin, "postgres"), "-D", data, "-k", c.dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200")
	c.cmd.Dir = c.dir
	c.cmd.Stdout, c.cmd.Stderr = c.logBuf, c.logBuf
	c.owner.apply(c.cmd)
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("pgtemp: start postgres: %w", err)
	}
	cmd, exited := c.cmd, make(chan struct{})
	c.exited = exited
	go func() {
		c.waitErr = cmd.Wait()
		close(exited)
	}()
	// Wait for the server to accept a connection: the event we need.
	// PostgreSQL starts in well under a second; 60 s covers a loaded
	// 2-core machine running two test suites at once.
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("pgtemp: postgres exited: %v: %s", c.waitErr, c.Log())
		case <-ctx.Done():
			c.Stop(false)
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop(false)
			return fmt.Errorf("pgtemp: postgres did not accept connections in 60s: %v: %s", err, c.Log())
		}
	}
}

// Stop stops the server and keeps its data, for Restart: a fast shutdown
// (clients disconnected, the data flushed), or with crash true an
// immediate one (the server's processes quit at once, as in a crash, and
// the next start recovers from the write-ahead log).
func (c *Cluster) Stop(crash bool) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	// SIGINT is PostgreSQL's fast shutdown, SIGQUIT its immediate one.
	sig := os.Interrupt
	if crash {
		sig = immediateShutdown
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Restart starts the server again after Stop, on the same data and
// socket: the DSNs given before work again.
func (c *Cluster) Restart(ctx context.Context) error {
	select {
	case <-c.exited:
	default:
		return errors.New("pgtemp: Restart: the server is running")
	}
	return c.run(ctx)
}

// tempRoot is where the cluster's directory goes: the usual temporary
// directory, unless others cannot pass through it (a root-only TMPDIR),
// since the cluster may run as another user; then /tmp.
func tempRoot() string {
	d := os.TempDir()
	if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 && os.Geteuid() == 0 {
		return "/tmp"
	}
	return d
}

// DSN returns the connection string of database db on the cluster.
func (c *Cluster) DSN(db string) string {
	q := url.Values{"host": {c.dir}, "port": {strconv.Itoa(port)}, "sslmode": {"disable"}}
	return "postgres://" + superuser + "@/" + url.PathEscape(db) + "?" + q.Encode()
}

// NewDatabase creates an empty database named after prefix and returns its
// DSN, so each test starts clean on one cluster.
func (c *Cluster) NewDatabase(ctx context.Context, prefix string) (string, error) {
	c.mu.Lock()
	c.n++
	name := fmt.Sprintf("%s_%d", sanitize(prefix), c.n)
	c.mu.Unlock()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtemp: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtemp: create database %s: %w", name, err)
	}
	return c.DSN(name), nil
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[:40]
	}
	if out == "" {
		out = "db"
	}
	return out
}

// Log returns what the server printed.
func (c *Cluster) Log() string { return c.logBuf.String() }

// Close stops the server (a fast shutdown) and removes its directory.
func (c *Cluster) Close() error {
	c.Stop(false)
	return os.RemoveAll(c.dir)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the start, where the reason usually is
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
