package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"paydesk/hub/pgtemp/pgtest"
)

// TestFleetLoad measures a fleet on two hub replicas, each a process of
// the real binary, on one PostgreSQL (the throwaway cluster, fsync off):
// 'paydesk sim fleet' connects PAYDESK_LOAD_KIOSKS kiosks (spread over the
// replicas), each paying about every PAYDESK_LOAD_EVERY; it reports the
// replicas' memory per connected kiosk and the events/s acknowledged over
// PAYDESK_LOAD_FOR. With PAYDESK_LOAD_BACKLOG=N every kiosk's journal
// holds N sales (3N events) before its link starts, so the fleet catches
// up and the rate measured is the hub's end to end, not the simulated
// kiosks' journals' (PAYDESK_LOAD_EVERY=0: no new payments meanwhile). A
// load test, not run unless asked, and not under -race:
//
//	PAYDESK_LOAD_KIOSKS=1000 PAYDESK_LOAD_EVERY=10s go test -run TestFleetLoad -v -timeout 30m .
//	PAYDESK_LOAD_KIOSKS=1000 PAYDESK_LOAD_BACKLOG=200 PAYDESK_LOAD_EVERY=0 PAYDESK_LOAD_FOR=30s go test -run TestFleetLoad -v -timeout 30m .
func TestFleetLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PAYDESK_LOAD_KIOSKS"))
	if n <= 0 {
		t.Skip("a load test: set PAYDESK_LOAD_KIOSKS (and PAYDESK_LOAD_EVERY, PAYDESK_LOAD_FOR)")
	}
	every := envOr("PAYDESK_LOAD_EVERY", "10s")
	measure, err := time.ParseDuration(envOr("PAYDESK_LOAD_FOR", "60s"))
	if err != nil {
		t.Fatal(err)
	}
	cl := pgtest.Own(t)
	dsn := cl.DSN("postgres")
	dir := t.TempDir()
	bin := filepath.Join(dir, "paydesk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// start runs the binary and returns it and its standard output's lines.
	start := func(name string, args ...string) (*exec.Cmd, <-chan string) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = time.Minute
		logf, err := os.Create(filepath.Join(dir, name+".stderr"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = logf
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		t.Cleanup(func() { cancel(); cmd.Wait() })
		return cmd, lines
	}
	// await reads lines until one matches re, within limit.
	await := func(lines <-chan string, re *regexp.Regexp, limit time.Duration) []string {
		t.Helper()
		deadline := time.After(limit)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before %s", re)
				}
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s in %s", re, limit)
			}
		}
	}
	var hubs []*exec.Cmd
	var urls []string
	for i := range 2 {
		cmd, lines := start(fmt.Sprintf("hub%d", i), "hub", "--db", dsn, "--listen", "127.0.0.1:0", "--log", filepath.Join(dir, fmt.Sprintf("hub%d.log", i)))
		urls = append(urls, await(lines, regexp.MustCompile(`paydesk hub on (http://\S+)`), time.Minute)[1])
		hubs = append(hubs, cmd)
	}
	idle := []int64{rss(t, hubs[0].Process.Pid), rss(t, hubs[1].Process.Pid)}
	began := time.Now()
	fleet, lines := start("fleet", "sim", "fleet", "--kiosks", strconv.Itoa(n), "--hub", strings.Join(urls, ","),
		"--create-tokens", "--db", dsn, "--every", every, "--report", "1s", "--backlog", envOr("PAYDESK_LOAD_BACKLOG", "0"))
	status := regexp.MustCompile(`^(\S+) connected (\d+)/\d+, events journaled (\d+), acknowledged (\d+), lag (-?\d+)`)
	var m0, m1 []string
	var t0 time.Time
	var el float64
	if backlog, _ := strconv.Atoi(envOr("PAYDESK_LOAD_BACKLOG", "0")); backlog > 0 {
		// The fleet catching up: measured from the links' start for
		// PAYDESK_LOAD_FOR, or until the backlog runs out.
		b := await(lines, regexp.MustCompile(`fleet: (\d+) events journaled as a backlog .* in (\S+)`), 10*time.Minute)
		t.Logf("backlog: %s events journaled by %d kiosks in %s, before their links started", b[1], n, b[2])
		m0 = await(lines, status, time.Minute)
		t0 = time.Now()
		var rates []float64
		prev, prevAt := m0, t0
		allAt := time.Duration(0)
		for m1 = m0; time.Since(t0) < measure && m1[5] != "0"; {
			m1 = await(lines, status, time.Minute)
			now := time.Now()
			// Lines read together (the fleet's output held up) count
			// with the next: a rate over half a second at least.
			if now.Sub(prevAt) >= 500*time.Millisecond {
				a, _ := strconv.ParseInt(m1[4], 10, 64)
				p, _ := strconv.ParseInt(prev[4], 10, 64)
				rates = append(rates, float64(a-p)/now.Sub(prevAt).Seconds())
				prev, prevAt = m1, now
			}
			if allAt == 0 && m1[2] == strconv.Itoa(n) {
				allAt = now.Sub(t0)
			}
		}
		el = time.Since(t0).Seconds()
		if m1[5] == "0" {
			t.Logf("the backlog ran out after %.0f s: a bigger PAYDESK_LOAD_BACKLOG measures longer", el)
		}
		t.Logf("acknowledged events/s, second by second: %.0f", rates)
		slices.Sort(rates)
		t.Logf("all %d kiosks connected %s after the links started; per-second acknowledged rates: min %.0f, median %.0f, max %.0f events/s",
			n, allAt.Round(time.Millisecond), rates[0], rates[len(rates)/2], rates[len(rates)-1])
	} else {
		for {
			m := await(lines, status, 10*time.Minute)
			if m[2] == strconv.Itoa(n) {
				break
			}
		}
		t.Logf("%d kiosks connected in %s (tokens made, journals opened, links welcomed)", n, time.Since(began).Round(time.Millisecond))
		m0 = await(lines, status, time.Minute)
		t0 = time.Now()
		for time.Since(t0) < measure {
			m1 = await(lines, status, time.Minute)
		}
		el = time.Since(t0).Seconds()
	}
	j0, _ := strconv.ParseInt(m0[3], 10, 64)
	a0, _ := strconv.ParseInt(m0[4], 10, 64)
	j1, _ := strconv.ParseInt(m1[3], 10, 64)
	a1, _ := strconv.ParseInt(m1[4], 10, 64)
	busy := []int64{rss(t, hubs[0].Process.Pid), rss(t, hubs[1].Process.Pid)}
	peak := []int64{peakRSS(t, hubs[0].Process.Pid), peakRSS(t, hubs[1].Process.Pid)}
	fleetRSS := rss(t, fleet.Process.Pid)
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("over %.0f s: %.0f events/s journaled, %.0f events/s acknowledged; lag %s → %s; still connected %s/%d",
		el, float64(j1-j0)/el, float64(a1-a0)/el, m0[5], m1[5], m1[2], n)
	for i := range hubs {
		t.Logf("replica %d: %d kiosks connected to it; RSS %d → %d KiB, at most %d KiB", i, connections(t, filepath.Join(dir, fmt.Sprintf("hub%d.log", i))), idle[i], busy[i], peak[i])
	}
	t.Logf("replicas: +%.1f KiB per connected kiosk; the fleet process (kiosks' journals and links): %d KiB, %.1f KiB per kiosk",
		float64(busy[0]+busy[1]-idle[0]-idle[1])/float64(n), fleetRSS, float64(fleetRSS)/float64(n))
	t.Logf("load average: %s", strings.TrimSpace(string(load)))

	// What the links counted as acknowledged is in PostgreSQL: every
	// kiosk's events 1…acked_seq, each once.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored, acked int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT coalesce(sum(acked_seq), 0) FROM kiosks)`).Scan(&stored, &acked); err != nil {
		t.Fatal(err)
	}
	if stored != acked || stored < a1 {
		t.Errorf("PostgreSQL holds %d events, the kiosks' acked_seq sum to %d; the links counted %d acknowledged", stored, acked, a1)
	}
	t.Logf("PostgreSQL holds %d events (the kiosks' acked sequences sum to %d)", stored, acked)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// rss is a process's resident memory in KiB (Linux).
func rss(t *testing.T, pid int) int64 { return procStatus(t, pid, "VmRSS") }

// peakRSS is the most a process has held resident, in KiB (Linux).
func peakRSS(t *testing.T, pid int) int64 { return procStatus(t, pid, "VmHWM") }

func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s for %d", field, pid)
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}

// connections counts the kiosks' connections a replica's log records.
func connections(t *testing.T, log string) int {
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), `"hub: kiosk connected"`)
}
