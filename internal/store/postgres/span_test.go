package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestEventSweepWithoutEventIndex: after migration 0012 deliveries has no
// index on event_id, the retention sweep ranges over the primary key
// (also with many deliveries pending), and storetest.SpanScenario holds.
func TestEventSweepWithoutEventIndex(t *testing.T) {
	t.Parallel()
	s := newSchemaStore(t)
	ctx := t.Context()
	idx := strings.Join(textRows(t, s.Store, `SELECT indexname FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = 'deliveries' ORDER BY indexname`), " ")
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
			s.exec(`UPDATE events SET first_delivery = '', last_delivery = '' WHERE id = $1`, eventID)
		},
		// The sweep looks for pending deliveries through the primary key,
		// also with many pending.
		Plan: func() {
			t.Helper()
			// Raw SQL reads deliveries: deferred ones first become rows.
			if err := s.settleAll(ctx); err != nil {
				t.Fatal(err)
			}
			s.exec(`ANALYZE deliveries; ANALYZE events`)
			plan := strings.Join(textRows(t, s.Store, `EXPLAIN SELECT e.id FROM events e WHERE e.id < 'z' AND e.create_time < now()
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id >= e.first_delivery AND d.id <= e.last_delivery
				                AND d.event_id = e.id AND d.status = 'pending') ORDER BY e.id LIMIT 10`), "\n")
			if !strings.Contains(plan, "deliveries_pkey") {
				t.Errorf("the sweep does not range over the deliveries' primary key:\n%s", plan)
			}
		},
		Unmigrate: func() core.Store {
			if err := s.settleAll(ctx); err != nil {
				t.Fatal(err)
			}
			s.exec(`CREATE INDEX deliveries_pending_event ON deliveries (event_id) WHERE status = 'pending';
				ALTER TABLE events DROP COLUMN first_delivery, DROP COLUMN last_delivery;
				DELETE FROM schema_migrations WHERE version = '0012_event_delivery_span'`)
			s.reopen()
			return s.Store
		},
	}.Run(t, s.Store)
}
