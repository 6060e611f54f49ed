// Package pgtest gives tests a database of their own on a throwaway
// PostgreSQL cluster (see pgtemp), one cluster per test binary.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//	func TestX(t *testing.T) { dsn := pgtest.DB(t) … }
//
// Without PostgreSQL installed, DB skips the test with the reason; under
// CI=true it fails instead, so a missing install cannot pass silently.
package pgtest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"paydesk/hub/pgtemp"
)

var (
	once    sync.Once
	cluster *pgtemp.Cluster
	err     error
)

// Main runs the tests and then stops the cluster, if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if cluster != nil {
		cluster.Close()
	}
	return code
}

// Cluster returns the test binary's cluster, starting it on first use.
func Cluster(t testing.TB) *pgtemp.Cluster {
	t.Helper()
	once.Do(func() {
		// Generous: initdb on a loaded 2-core machine takes seconds.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cluster, err = pgtemp.Start(ctx)
	})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is needed under CI=true: %v", err)
		}
		t.Skipf("skipping: needs PostgreSQL: %v", err)
	}
	return cluster
}

// DB returns the DSN of a new, empty database for this test.
func DB(t testing.TB) string {
	t.Helper()
	c := Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := c.NewDatabase(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Own starts a cluster for this test alone, stopped when it ends: for
// test binaries whose TestMain is not Main. It skips or fails as DB does.
func Own(t testing.TB) *pgtemp.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtemp.Start(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is needed under CI=true: %v", err)
		}
		t.Skipf("skipping: needs PostgreSQL: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
