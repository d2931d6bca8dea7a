package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestInlineAttempts is the SQLite driver's test of the same name: the
// same scenario on a store that keeps final successes in the delivery row
// and on one that writes every attempt to attempts reads back the same,
// and the second store's rows (what the code before migration 0011 wrote)
// still do after the migration's columns are dropped and added again.
func TestInlineAttempts(t *testing.T) {
	url := pgtest.URL(t)
	sc := storetest.NewAttemptScenario()
	run := func(inline bool) (map[string]storetest.DeliveryHistory, int, string) {
		t.Helper()
		inlineAttempts = inline
		defer func() { inlineAttempts = true }()
		schema := pgtest.Schema(t, url, "lh_test_")
		s := open(t, url, schema)
		defer s.Close()
		out := sc.Run(t, s)
		var rows int
		if err := s.run(t.Context(), true, func(c *pgx.Conn) error {
			return c.QueryRow(t.Context(), `SELECT count(*) FROM attempts`).Scan(&rows)
		}); err != nil {
			t.Fatal(err)
		}
		return out, rows, schema
	}
	old, oldRows, oldSchema := run(false)
	got, rows, _ := run(true)
	storetest.CompareHistories(t, "with inline attempts", got, old)
	if oldRows != storetest.ScenarioAttempts || rows != storetest.ScenarioInlineRows {
		t.Errorf("attempts rows: %d without inline attempts, %d with; want %d and %d",
			oldRows, rows, storetest.ScenarioAttempts, storetest.ScenarioInlineRows)
	}

	// The old store back to the schema before 0011, then migrated again.
	s := open(t, url, oldSchema)
	if err := s.run(t.Context(), false, func(c *pgx.Conn) error {
		_, err := c.Exec(t.Context(), `ALTER TABLE deliveries DROP COLUMN inline_attempt, DROP COLUMN inline_uri,
			DROP COLUMN inline_latency_ns, DROP COLUMN inline_response;
			DELETE FROM schema_migrations WHERE version = '0011_inline_attempts'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = open(t, url, oldSchema)
	storetest.CompareStored(t, "after migration 0011", s, old)
}

// TestInlineAttemptsConcurrentReplay races two instances on one
// database: one completes deliveries (keeping the successes in their
// rows) while the other redelivers or recovers them; every attempt must
// be recorded exactly once whichever comes first.
func TestInlineAttemptsConcurrentReplay(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	a, b := open(t, url, schema), open(t, url, schema)
	defer a.Close()
	defer b.Close()
	storetest.RunConcurrentReplay(t, a, b, 32, 12)
}
