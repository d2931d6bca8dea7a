package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URL returns LONGHOOK_TEST_POSTGRES_URL, the machine's shared test server,
// or skips t with a one-line reason when it is unset.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("LONGHOOK_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("LONGHOOK_TEST_POSTGRES_URL not set: PostgreSQL tests skipped")
	}
	return u
}

// Exec runs one statement on a connection of its own (2 minutes at
// most: a DROP DATABASE waits for an immediate checkpoint of the whole
// cluster, which took more than 30 s while the race-enabled suite loaded
// the shared server).
func Exec(url, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql, args...)
	return err
}

// Schema creates a schema named prefix plus 12 random hex digits on url
// and drops it, with everything in it, when t ends (after the stores using
// it, registered later, are closed).
func Schema(t testing.TB, url, prefix string) string {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := prefix + hex.EncodeToString(rnd[:])
	quoted := pgx.Identifier{name}.Sanitize()
	if err := Exec(url, "CREATE SCHEMA "+quoted); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := Exec(url, "DROP SCHEMA IF EXISTS "+quoted+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return name
}

// WithSearchPath adds search_path=schema to a postgres:// URL, the way an
// operator keeps the gateway's tables in a schema of their own.
func WithSearchPath(t testing.TB, dbURL, schema string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
