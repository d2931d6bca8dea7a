package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestInlineAttempts runs the same publishes, completions and replays on
// a store that keeps final successes in the delivery row and on one that
// writes every attempt to attempts: GetDelivery must return the same
// deliveries and attempts from both, and only the first may leave out the
// attempts rows of its final successes. The second store's rows are what
// the code before migration 0010 wrote: with the migration's columns
// dropped and applied again, they still read the same.
func TestInlineAttempts(t *testing.T) {
	ctx := context.Background()
	sc := storetest.NewAttemptScenario()
	run := func(inline bool) (map[string]storetest.DeliveryHistory, int, string) {
		t.Helper()
		inlineAttempts = inline
		defer func() { inlineAttempts = true }()
		path := filepath.Join(t.TempDir(), "s.db")
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := sc.Run(t, s)
		var rows int
		if err := s.r.QueryRow(`SELECT count(*) FROM attempts`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		return out, rows, path
	}
	old, oldRows, oldPath := run(false)
	got, rows, _ := run(true)
	storetest.CompareHistories(t, "with inline attempts", got, old)
	if oldRows != storetest.ScenarioAttempts || rows != storetest.ScenarioInlineRows {
		t.Errorf("attempts rows: %d without inline attempts, %d with; want %d and %d",
			oldRows, rows, storetest.ScenarioAttempts, storetest.ScenarioInlineRows)
	}

	// The old store back to the schema before 0010, then migrated again.
	execFile(t, oldPath,
		`ALTER TABLE deliveries DROP COLUMN inline_attempt`,
		`ALTER TABLE deliveries DROP COLUMN inline_uri`,
		`ALTER TABLE deliveries DROP COLUMN inline_latency_ns`,
		`ALTER TABLE deliveries DROP COLUMN inline_response`,
		`DELETE FROM schema_migrations WHERE version = '0010_inline_attempts'`,
	)
	s, err := Open(ctx, oldPath)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CompareStored(t, "after migration 0010", s, old)
}

// TestInlineAttemptsConcurrentReplay: completions racing replays of the
// same deliveries record every attempt once (see the PostgreSQL driver's
// test of the same name).
func TestInlineAttemptsConcurrentReplay(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.RunConcurrentReplay(t, s, s, 32, 12)
}

// execFile runs each statement on the database file at path, on a
// connection of its own, outside any store.
func execFile(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestInlineAttemptsOwners completes, in one call, successes of deliveries
// leased by two owners, interleaved: inlineManySQL binds an owner once for
// all its rows, so each owner's rows go in statements of their own, and
// every delivery keeps its attempt in its row.
func TestInlineAttemptsOwners(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := storetest.NewProject()
	w := storetest.NewWebhook(p.ID)
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	at := storetest.T0
	var evs []core.NewEvent
	var cs []core.Completion
	for i := range 6 {
		ev := storetest.NewEvent(p.ID, core.EventBatchSucceeded, at.Add(time.Duration(i)*time.Millisecond), w)
		d := &ev.Deliveries[0]
		d.LeaseOwner, d.NextAttemptTime = []string{"a", "b"}[i%2], at.Add(time.Minute)
		evs = append(evs, ev)
		var body []byte
		if i%3 == 0 {
			body = []byte("ok")
		}
		cs = append(cs, core.Completion{DeliveryID: d.ID, Owner: d.LeaseOwner, Status: core.DeliverySucceeded,
			WebhookID: w.ID, Success: true, Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: at.Add(time.Second),
				URI: w.URI, StatusCode: 200 + i, Latency: time.Millisecond, Response: body}})
	}
	if _, err := s.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteDeliveries(ctx, cs); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := s.r.QueryRow(`SELECT count(*) FROM attempts`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("%d rows of attempts; want every attempt in its delivery row", rows)
	}
	for i, c := range cs {
		d, as, err := s.GetDelivery(ctx, p.ID, c.DeliveryID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != core.DeliverySucceeded || d.LeaseOwner != "" || len(as) != 1 || as[0].StatusCode != 200+i ||
			string(as[0].Response) != string(c.Attempt.Response) || as[0].URI != w.URI {
			t.Errorf("delivery %d: %+v, attempts %+v", i, d, as)
		}
	}
}
