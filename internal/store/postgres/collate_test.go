package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// idColumnsSQL lists the store's text columns that hold ids or are
// compared with them (migration 0013), each as "table.column collation"
// (see idColumns): the columns
// named id or *_id, and events' delivery-id range, deliveries' and rate
// buckets' destination (a webhook id) and the blob ids.
const idColumnsSQL = `SELECT table_name || '.' || column_name || ' ' || coalesce(collation_name, '')
	FROM information_schema.columns
	WHERE table_schema = current_schema() AND data_type = 'text' AND table_name <> 'schema_migrations'
	  AND (column_name = 'id' OR column_name LIKE '%\_id'
	       OR column_name IN ('first_delivery', 'last_delivery', 'dest', 'blob', 'idempotency_key'))
	ORDER BY 1`

// TestIDColumnsCollateC checks that every id column, and every column
// compared or joined with one, is COLLATE "C": B-tree probes then compare
// bytes instead of calling strcoll, and a comparison of two such columns
// keeps using either's index (one in the database's default collation
// would make the comparison "C" and leave the default column's index
// unused). A new id column must be declared COLLATE "C" too.
func TestIDColumnsCollateC(t *testing.T) {
	t.Parallel()
	var cols []string
	for _, c := range idColumns(t, newStore(t)) {
		cols = append(cols, c.col)
		if c.coll != "C" {
			t.Errorf("%s: collation %q, want \"C\"", c.col, c.coll)
		}
	}
	// The query must see the tables it is meant to check.
	for _, want := range []string{"deliveries.id", "deliveries.event_id", "deliveries.webhook_id", "events.id",
		"events.first_delivery", "stats.project_id", "stats.webhook_id", "webhooks.id", "attempts.delivery_id"} {
		if !strings.Contains(strings.Join(cols, " ")+" ", want+" ") {
			t.Errorf("%s not among the columns checked: %v", want, cols)
		}
	}
}

// TestCollateMigrationKeepsRows applies migration 0013 to tables that
// hold rows and statistics (an upgrade): the rows are found by their keys
// afterwards, in the same order, and the changed columns have their
// statistics again.
func TestCollateMigrationKeepsRows(t *testing.T) {
	t.Parallel()
	s := newSchemaStore(t)
	ctx := t.Context()
	f := newFixture(t, s.Store, 3)
	now := time.Now().UTC()
	f.publish(20, now)
	before, err := s.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: f.p.ID, Limit: 100})
	if err != nil || len(before) != 60 {
		t.Fatalf("ListDeliveries = %d, %v; want 60", len(before), err)
	}
	// Back to 0012: every text column in the database's collation.
	var undo strings.Builder
	for _, c := range idColumns(t, s.Store) {
		tab, name, _ := strings.Cut(c.col, ".")
		if tab == "job_blobs" || (tab == "jobs" && name == "id") || (tab == "files" && name != "project_id") {
			continue // COLLATE "C" since 0002 and 0003
		}
		undo.WriteString(`ALTER TABLE ` + tab + ` ALTER COLUMN ` + name + ` TYPE text COLLATE "default";`)
	}
	s.exec(undo.String() + `DELETE FROM schema_migrations WHERE version = '0013_ids_collate_c'; ANALYZE deliveries`)
	s.reopen()

	after, err := s.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: f.p.ID, Limit: 100})
	if err != nil || len(after) != len(before) {
		t.Fatalf("ListDeliveries after 0013 = %d, %v; want %d", len(after), err, len(before))
	}
	for i := range after {
		if after[i].ID != before[i].ID {
			t.Fatalf("delivery %d: %s after the migration, %s before", i, after[i].ID, before[i].ID)
		}
		if d, _, err := s.GetDelivery(ctx, f.p.ID, before[i].ID); err != nil || d.ID != before[i].ID {
			t.Fatalf("GetDelivery(%s) = %v, %v", before[i].ID, d, err)
		}
	}
	var stats int
	if err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM pg_stats WHERE schemaname = current_schema()
			AND tablename = 'deliveries' AND attname IN ('id', 'event_id', 'webhook_id')`).Scan(&stats)
	}); err != nil {
		t.Fatal(err)
	}
	if stats != 3 {
		t.Errorf("statistics of deliveries' id, event_id and webhook_id after the migration: %d of 3", stats)
	}
}

// idColumn is a row of idColumnsSQL.
type idColumn struct{ col, coll string }

func idColumns(t *testing.T, s *Store) []idColumn {
	t.Helper()
	var cols []idColumn
	for _, r := range textRows(t, s, idColumnsSQL) {
		col, coll, _ := strings.Cut(r, " ")
		cols = append(cols, idColumn{col, coll})
	}
	return cols
}
