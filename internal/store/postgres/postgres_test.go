package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testURL returns LONGHOOK_TEST_POSTGRES_URL or skips t.
func testURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("LONGHOOK_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("LONGHOOK_TEST_POSTGRES_URL not set")
	}
	return url
}

// newSchema creates a fresh schema on url and drops it (with everything
// in it) when t ends, after the stores using it are closed.
func newSchema(t testing.TB, url string) string {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "lh_test_" + hex.EncodeToString(rnd[:])
	ctx := context.Background()
	admin(t, url, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return name
}

// admin runs one statement on its own connection.
func admin(t testing.TB, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
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
	url := testURL(t)
	return open(t, url, newSchema(t, url))
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) core.Store { return newStore(t) })
}

func BenchmarkStore(b *testing.B) {
	testURL(b)
	storetest.RunBenchmarks(b, func(b *testing.B) core.Store { return newStore(b) })
}
