package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/longhook/longhook/internal/store/storetest"
)

// TestInlineAttempts runs the same publishes, completions and replays on
// a store that keeps final successes in the delivery row and on one that
// writes every attempt to attempts (as before migration 0010, so the
// second store's rows are also "old rows" to the reader): GetDelivery
// must return the same deliveries and attempts from both, and only the
// first may leave out the attempts rows of its final successes.
func TestInlineAttempts(t *testing.T) {
	sc := storetest.NewAttemptScenario()
	run := func(inline bool) (map[string]storetest.DeliveryHistory, int) {
		t.Helper()
		inlineAttempts = inline
		defer func() { inlineAttempts = true }()
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := sc.Run(t, s)
		var rows int
		if err := s.r.QueryRow(`SELECT count(*) FROM attempts`).Scan(&rows); err != nil {
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
