package postgres

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// admin runs one statement on its own connection.
func admin(t testing.TB, url, sql string) {
	t.Helper()
	if err := pgtest.Exec(url, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// open opens a store on schema (migrating it) and closes it when t ends.
func open(t testing.TB, url, schema string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, Options{Migrate: true, Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newStore is the conformance suite's factory: a fresh schema per store.
func newStore(t testing.TB) *Store {
	t.Helper()
	url := pgtest.URL(t)
	return open(t, url, pgtest.Schema(t, url, "lh_test_"))
}

func TestConformance(t *testing.T) {
	pgtest.URL(t)
	storetest.Run(t, func(t *testing.T) core.Store { return newStore(t) })
}

func BenchmarkStore(b *testing.B) {
	pgtest.URL(b)
	storetest.RunBenchmarks(b, func(b *testing.B) core.Store { return newStore(b) })
}
