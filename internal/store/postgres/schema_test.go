package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
)

// schemaStore is a store on a schema of its own, for tests that read the
// schema's catalog or change it by hand (undo a migration, drop an index)
// and then reopen the store on it.
type schemaStore struct {
	*Store
	t           testing.TB
	url, schema string
}

// newSchemaStore opens a store (open's: the callers' clock) on a fresh
// schema.
func newSchemaStore(t testing.TB) *schemaStore {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	return &schemaStore{Store: open(t, url, schema), t: t, url: url, schema: schema}
}

// exec runs q on the store's schema and ends the test if it fails.
func (s *schemaStore) exec(q string, args ...any) {
	s.t.Helper()
	ctx := s.t.Context()
	if err := s.run(ctx, false, func(c *pgx.Conn) error { _, err := c.Exec(ctx, q, args...); return err }); err != nil {
		s.t.Fatal(err)
	}
}

// reopen closes the store and opens it again on the same schema, which
// applies the migrations the schema's record says are missing.
func (s *schemaStore) reopen() {
	s.t.Helper()
	_ = s.Close()
	s.Store = open(s.t, s.url, s.schema)
}

// seededStore opens a store with open on a fresh schema and creates p and
// hooks in it.
func seededStore(t *testing.T, open func(testing.TB, string, string) *Store, p core.Project, hooks []*core.Webhook) *Store {
	t.Helper()
	url := pgtest.URL(t)
	s := open(t, url, pgtest.Schema(t, url, "lh_test_"))
	if err := s.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	for _, w := range hooks {
		if err := s.CreateWebhook(t.Context(), w); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// textRows runs q, a query of one text column, and returns its rows.
func textRows(t testing.TB, s *Store, q string) []string {
	t.Helper()
	var rows []string
	if err := s.run(t.Context(), true, func(c *pgx.Conn) error {
		rs, err := c.Query(t.Context(), q)
		if err != nil {
			return err
		}
		defer rs.Close()
		rows = nil
		for rs.Next() {
			var r string
			if err := rs.Scan(&r); err != nil {
				return err
			}
			rows = append(rows, r)
		}
		return rs.Err()
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}
