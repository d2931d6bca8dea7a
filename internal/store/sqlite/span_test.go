package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestEventSweepWithoutEventIndex: after migration 0011 deliveries has no
// index on event_id, the retention sweep ranges over the primary key, and
// storetest.SpanScenario holds.
func TestEventSweepWithoutEventIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "span.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	var idx []string
	rows, err := s.r.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		idx = append(idx, n)
	}
	rows.Close()
	if got := strings.Join(idx, " "); got != "deliveries_due deliveries_webhook sqlite_autoindex_deliveries_1" {
		t.Errorf("indexes of deliveries: %s", got)
	}
	var plan strings.Builder
	rows, err = s.r.Query(`EXPLAIN QUERY PLAN SELECT e.id FROM events e WHERE e.id < '1' AND e.create_time < 1
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id >= e.first_delivery AND d.id <= e.last_delivery
		                AND d.event_id = e.id AND d.status = 'pending') ORDER BY e.id LIMIT 10`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "SEARCH d USING INDEX sqlite_autoindex_deliveries_1 (id>? AND id<?)") {
		t.Errorf("the sweep does not range over the deliveries' primary key:\n%s", plan.String())
	}

	storetest.SpanScenario{
		Span: func(eventID string) string {
			t.Helper()
			var first, last string
			if err := s.r.QueryRow(`SELECT first_delivery, last_delivery FROM events WHERE id = ?`, eventID).
				Scan(&first, &last); err != nil {
				t.Fatal(err)
			}
			return first + ".." + last
		},
		Clear: func(eventID string) {
			t.Helper()
			if _, err := s.w.Exec(`UPDATE events SET first_delivery = '', last_delivery = '' WHERE id = ?`, eventID); err != nil {
				t.Fatal(err)
			}
		},
		Unmigrate: func() core.Store {
			t.Helper()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			execFile(t, path,
				// Before 0011 there was no 'leased' status (0012): a
				// delivery inserted leased was 'pending'.
				`UPDATE deliveries SET status = 'pending' WHERE status = 'leased'`,
				`CREATE INDEX deliveries_pending_event ON deliveries (event_id) WHERE status = 'pending'`,
				`ALTER TABLE events DROP COLUMN first_delivery`,
				`ALTER TABLE events DROP COLUMN last_delivery`,
				`DELETE FROM schema_migrations WHERE version = '0011_event_delivery_span'`,
			)
			if s, err = Open(ctx, path); err != nil {
				t.Fatal(err)
			}
			return s
		},
	}.Run(t, s)
}
