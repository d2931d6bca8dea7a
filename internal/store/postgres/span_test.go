package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestEventSweepWithoutEventIndex: after migration 0012 deliveries has no
// index on event_id, the retention sweep ranges over the primary key
// (also with many deliveries pending), and storetest.SpanScenario holds.
func TestEventSweepWithoutEventIndex(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	s := open(t, url, schema)
	ctx := t.Context()
	exec := func(q string, args ...any) {
		t.Helper()
		if err := s.run(ctx, false, func(c *pgx.Conn) error { _, err := c.Exec(ctx, q, args...); return err }); err != nil {
			t.Fatal(err)
		}
	}
	var idx string
	if err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes
			WHERE schemaname = current_schema() AND tablename = 'deliveries'`).Scan(&idx)
	}); err != nil {
		t.Fatal(err)
	}
	if idx != "deliveries_due deliveries_pkey deliveries_webhook" {
		t.Errorf("indexes of deliveries: %s", idx)
	}

	storetest.SpanScenario{
		Span: func(eventID string) string {
			t.Helper()
			var first, last string
			if err := s.run(ctx, true, func(c *pgx.Conn) error {
				return c.QueryRow(ctx, `SELECT first_delivery, last_delivery FROM events WHERE id = $1`, eventID).
					Scan(&first, &last)
			}); err != nil {
				t.Fatal(err)
			}
			return first + ".." + last
		},
		Clear: func(eventID string) {
			exec(`UPDATE events SET first_delivery = '', last_delivery = '' WHERE id = $1`, eventID)
		},
		// The sweep looks for pending deliveries through the primary key,
		// also with many pending.
		Plan: func() {
			t.Helper()
			// Raw SQL reads deliveries: deferred ones first become rows.
			if err := s.settleAll(ctx); err != nil {
				t.Fatal(err)
			}
			exec(`ANALYZE deliveries; ANALYZE events`)
			var plan strings.Builder
			if err := s.run(ctx, true, func(c *pgx.Conn) error {
				rows, err := c.Query(ctx, `EXPLAIN SELECT e.id FROM events e WHERE e.id < 'z' AND e.create_time < now()
					AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id >= e.first_delivery AND d.id <= e.last_delivery
					                AND d.event_id = e.id AND d.status = 'pending') ORDER BY e.id LIMIT 10`)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var line string
					if err := rows.Scan(&line); err != nil {
						return err
					}
					plan.WriteString(line + "\n")
				}
				return rows.Err()
			}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(plan.String(), "deliveries_pkey") {
				t.Errorf("the sweep does not range over the deliveries' primary key:\n%s", plan.String())
			}
		},
		Unmigrate: func() core.Store {
			if err := s.settleAll(ctx); err != nil {
				t.Fatal(err)
			}
			exec(`CREATE INDEX deliveries_pending_event ON deliveries (event_id) WHERE status = 'pending';
				ALTER TABLE events DROP COLUMN first_delivery, DROP COLUMN last_delivery;
				DELETE FROM schema_migrations WHERE version = '0012_event_delivery_span'`)
			_ = s.Close()
			s = open(t, url, schema)
			return s
		},
	}.Run(t, s)
}
