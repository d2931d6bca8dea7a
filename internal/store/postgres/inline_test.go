package postgres

import (
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/store/storetest"
)

// TestInlineAttempts is the SQLite driver's test of the same name: the
// same scenario on a store that keeps final successes in the delivery row
// and on one that writes every attempt to attempts (as before migration
// 0011: "old rows") reads back the same.
func TestInlineAttempts(t *testing.T) {
	sc := storetest.NewAttemptScenario()
	run := func(inline bool) (map[string]storetest.DeliveryHistory, int) {
		t.Helper()
		inlineAttempts = inline
		defer func() { inlineAttempts = true }()
		s := newStore(t)
		out := sc.Run(t, s)
		var rows int
		if err := s.run(t.Context(), true, func(c *pgx.Conn) error {
			return c.QueryRow(t.Context(), `SELECT count(*) FROM attempts`).Scan(&rows)
		}); err != nil {
			t.Fatal(err)
		}
		return out, rows
	}
	old, oldRows := run(false)
	got, rows := run(true)
	for k, want := range old {
		if !reflect.DeepEqual(got[k], want) {
			t.Errorf("%s: with inline attempts\n%+v\n%+v\nwithout\n%+v\n%+v", k,
				*got[k].Delivery, got[k].Attempts, *want.Delivery, want.Attempts)
		}
	}
	if oldRows != storetest.ScenarioAttempts || rows != storetest.ScenarioInlineRows {
		t.Errorf("attempts rows: %d without inline attempts, %d with; want %d and %d",
			oldRows, rows, storetest.ScenarioAttempts, storetest.ScenarioInlineRows)
	}
}
