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
// Its claims and leases follow the callers' times (the suites drive a
// fake clock); openDBClock's follow the database's.
func open(t testing.TB, url, schema string) *Store {
	t.Helper()
	return openWith(t, url, Options{Migrate: true, Schema: schema, MaxConns: 8, CallerClock: true})
}

// openDBClock opens a store as `longhook serve` does: claims and leases
// on the database's clock.
func openDBClock(t testing.TB, url, schema string) *Store {
	t.Helper()
	return openWith(t, url, Options{Migrate: true, Schema: schema, MaxConns: 4})
}

func openWith(t testing.TB, url string, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, o)
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
