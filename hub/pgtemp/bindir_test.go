package pgtemp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWithoutPostgreSQLStartSaysSo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := debianBins
	debianBins = filepath.Join(t.TempDir(), "*", "bin")
	defer func() { debianBins = old }()
	if _, err := Start(context.Background()); !errors.Is(err, ErrNoPostgres) {
		t.Fatalf("err = %v, want ErrNoPostgres", err)
	}
}

func TestTheNewestVersionIsChosen(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "13"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, "initdb"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := debianBins
	debianBins = filepath.Join(root, "*", "bin")
	defer func() { debianBins = old }()
	if dir, err := BinDir(); err != nil || dir != filepath.Join(root, "15", "bin") {
		t.Fatalf("BinDir = %q, %v; want version 15's", dir, err)
	}
}
