package jobs

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/store/postgres"
)

// Test helpers of the internal tests (blobs), exported for the external
// ones (package jobs_test, which drive the service through internal/api).

// PGDB is a schema of the test server.
type PGDB struct{ URL, Schema string }

// PGSchema returns a fresh schema on LONGHOOK_TEST_POSTGRES_URL, dropped
// when t ends (after the stores using it close), or skips t.
func PGSchema(t *testing.T) PGDB {
	t.Helper()
	url := pgtest.URL(t)
	return PGDB{URL: url, Schema: pgtest.Schema(t, url, "lh_jobs_")}
}

// NewPGStore opens a store on db (creating and migrating the schema), as
// one instance of `longhook serve` does, and closes it when t ends.
func NewPGStore(t *testing.T, db PGDB) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), db.URL, postgres.Options{Migrate: true, Schema: db.Schema, MaxConns: 4})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// NopPublisher accepts every event and sends nothing.
type NopPublisher struct{}

func (NopPublisher) Publish(_ context.Context, _ string, in []publish.Input) ([]publish.Result, error) {
	return make([]publish.Result, len(in)), nil
}

// RandomBytes returns n deterministic bytes.
func RandomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
