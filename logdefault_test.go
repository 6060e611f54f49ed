package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a slog handler that keeps what reaches it.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// TestConsoleLeavesTheDefaultLoggerAlone: every part of the console is
// given the console's logger (a file): none falls back on slog's default,
// and the console does not replace the process's default to catch those
// that would. A demo that pays on the POS, the card terminal and M-Pesa
// logs nothing through the default and writes nothing to stderr.
func TestConsoleLeavesTheDefaultLoggerAlone(t *testing.T) {
	rec := &recorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(rec))
	t.Cleanup(func() { slog.SetDefault(old) })
	dir := t.TempDir()
	script := "1\n10.00\n8\n10.00\n9\n0712345678\n150\n7\n"
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{"demo", "--plain", "--journal", filepath.Join(dir, "journal.db"), "--log", filepath.Join(dir, "paydesk.log")},
		strings.NewReader(script), &stdout, &stderr)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, stdout.String())
	}
	if n := strings.Count(stdout.String(), "RESULT "); n != 3 {
		t.Fatalf("%d RESULT lines, want 3:\n%s", n, stdout.String())
	}
	if slog.Default().Handler() != rec {
		t.Fatal("the console replaced slog's default logger")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) > 0 {
		t.Fatalf("logged through slog's default, not the console's log: %q", rec.msgs)
	}
	if stderr.Len() > 0 {
		t.Fatalf("stderr: %s", stderr.String())
	}
}
