package postgres

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestCompletionsCommitAsynchronously reads synchronous_commit inside each
// kind of transaction: publishes wait for their WAL flush (durable before
// the 2xx), completions and releases do not (a lost one leaves the lease
// to run out, see asyncCommitSQL), and nothing leaks into the session.
func TestCompletionsCommitAsynchronously(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := openWith(t, url, Options{Migrate: true, Schema: pgtest.Schema(t, url, "lh_test_"), MaxConns: 1})
	var mu sync.Mutex
	seen := map[string][]string{}
	s.batchHook = func(kind string, b *pgx.Batch) {
		b.Queue(`SELECT current_setting('synchronous_commit')`).QueryRow(func(r pgx.Row) error {
			var v string
			if err := r.Scan(&v); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			seen[kind] = append(seen[kind], v)
			return nil
		})
	}
	f := newFixture(t, s, 1)
	f.publish(2, storetest.T0)
	now := storetest.T0.Add(time.Second)
	cs, err := s.ClaimDeliveries(f.ctx, core.ClaimParams{Owner: "o", Now: now, Limit: 2, Lease: time.Minute})
	if err != nil || len(cs) != 2 {
		t.Fatalf("ClaimDeliveries = %d, %v; want 2", len(cs), err)
	}
	if err := s.CompleteDeliveries(f.ctx, []core.Completion{succeeded(cs[0], "o", now)}); err != nil {
		t.Fatalf("CompleteDeliveries: %v", err)
	}
	if err := s.ReleaseDeliveries(f.ctx, "o", []string{cs[1].ID}); err != nil {
		t.Fatalf("ReleaseDeliveries: %v", err)
	}
	want := map[string][]string{"publish": {"on"}, "complete": {"off"}, "release": {"off"}}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("synchronous_commit inside the transactions = %v, want %v", seen, want)
	}
	var sync, plans, seqscan string
	if err := s.run(f.ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(f.ctx, `SELECT current_setting('synchronous_commit'), current_setting('plan_cache_mode'),
			current_setting('enable_seqscan')`).Scan(&sync, &plans, &seqscan)
	}); err != nil {
		t.Fatal(err)
	}
	if sync != "on" || plans != "force_custom_plan" || seqscan != "on" {
		t.Errorf("the session after them: synchronous_commit %s, plan_cache_mode %s, enable_seqscan %s; "+
			"want on, force_custom_plan, on", sync, plans, seqscan)
	}
}

// TestGenericPlansReadNoTable checks what makes generic plans safe for
// the statements that use them (planModes.use(true)): their plans read no
// table, so they cannot depend on the tables' sizes when they were made.
func TestGenericPlansReadNoTable(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for name, q := range map[string]string{"publish": publishSQL.keyed, "publish without keys": publishSQL.plain,
		"fan publish": publishFan.keyed, "fan publish without keys": publishFan.plain,
		"attempts": insertAttemptsSQL,
		"stats":    statsDeltasSQL} {
		plan := explainPrepared(t, s, genericPlanSQL, name, q)
		for _, l := range plan {
			if strings.Contains(l, "Scan on") && !strings.Contains(l, "Function Scan on") &&
				!strings.Contains(l, "CTE Scan on") && !strings.Contains(l, "Subquery Scan on") {
				t.Errorf("%s: the generic plan reads a table:\n%s", name, strings.Join(plan, "\n"))
				break
			}
		}
	}
}

// TestCompletionDoesNotWaitForPublish holds a publish's transaction open
// after its statements ran (the batch ends waiting for an advisory lock
// the test holds) and completes a delivery of the same project and
// rollup bucket meanwhile: the completion must not wait for the publish's
// commit. Both used to count in the project's total row, so the
// completion waited for the publish's row lock, held through its WAL
// flush (statsEventsRow).
func TestCompletionDoesNotWaitForPublish(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	f := newFixture(t, s, 1)
	now := time.Now().UTC()
	f.publish(1, now)
	cs, err := s.ClaimDeliveries(f.ctx, core.ClaimParams{Owner: "o", Now: now, Limit: 1, Lease: time.Minute})
	if err != nil || len(cs) != 1 {
		t.Fatalf("ClaimDeliveries = %d, %v; want 1", len(cs), err)
	}

	const key = 0x6c6f6e67686f6f6b
	hold, err := s.pool.Acquire(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release()
	if _, err := hold.Exec(f.ctx, `SELECT pg_advisory_lock($1)`, int64(key)); err != nil {
		t.Fatal(err)
	}
	s.batchHook = func(kind string, b *pgx.Batch) {
		if kind == "publish" {
			b.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(key))
		}
	}
	published := make(chan error, 1)
	go func() {
		_, err := s.PublishEvents(f.ctx, []core.NewEvent{storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, now, f.hooks...)})
		published <- err
	}()
	// Wait until the publish waits for the advisory lock: its statements
	// have run and it holds their row locks.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		if _, err := hold.Exec(f.ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		if err := hold.QueryRow(f.ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)`).
			Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the publish never reached its advisory lock")
		}
		runtime.Gosched()
	}

	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	c := succeeded(cs[0], "o", now)
	c.ProjectID = f.p.ID
	if err := s.CompleteDeliveries(ctx, []core.Completion{c}); err != nil {
		t.Errorf("CompleteDeliveries while a publish of the project is uncommitted: %v", err)
	}
	if _, err := hold.Exec(f.ctx, `SELECT pg_advisory_unlock($1)`, int64(key)); err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatalf("PublishEvents: %v", err)
	}
	rows, err := s.Stats(f.ctx, core.StatsParams{ProjectID: f.p.ID, Since: now.Add(-time.Hour), Until: now.Add(time.Hour),
		Step: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var events, ok int64
	for _, r := range rows {
		events += r.Events
		ok += r.Succeeded
	}
	if events != 2 || ok != 1 {
		t.Errorf("project totals: %d events, %d succeeded; want 2, 1", events, ok)
	}
}

// TestCompletionPlansAreGeneric checks that a completion's statements run
// on their generic plans, planned once per connection
// (completeSettingsSQL), not planned again for every call: the
// connection's prepared statements count the plans each execution used.
func TestCompletionPlansAreGeneric(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := openWith(t, url, Options{Migrate: true, Schema: pgtest.Schema(t, url, "lh_test_"), MaxConns: 1})
	f := newFixture(t, s, 1)
	const calls = 6 // past the five executions after which PostgreSQL may choose on its own
	for range calls {
		now := time.Now().UTC()
		ne := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, now, f.hooks...)
		ne.Deliveries[0].LeaseOwner = "o"
		ne.Deliveries[0].NextAttemptTime = now.Add(time.Minute)
		if _, err := s.PublishEvents(f.ctx, []core.NewEvent{ne}); err != nil {
			t.Fatalf("PublishEvents: %v", err)
		}
		c := succeeded(core.Claimed{Delivery: ne.Deliveries[0]}, "o", now)
		c.ProjectID = f.p.ID
		if err := s.CompleteDeliveries(f.ctx, []core.Completion{c}); err != nil {
			t.Fatalf("CompleteDeliveries: %v", err)
		}
	}
	// The pool's one connection ran every statement.
	// Leased at their publish, the deliveries are deferred: their
	// completion locks their group and writes their rows.
	for name, q := range map[string]string{"lock groups": lockGroupsSQL, "complete": completeDeferredLeanSQL,
		"failure runs": failureRunSQL, "stats": statsDeltasSQL} {
		var generic, custom int64
		if err := s.run(f.ctx, true, func(c *pgx.Conn) error {
			return c.QueryRow(f.ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements
				WHERE statement = $1`, q).Scan(&generic, &custom)
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if generic != calls || custom != 0 {
			t.Errorf("%s: %d generic and %d custom plans in %d calls; want %d generic, no custom",
				name, generic, custom, calls, calls)
		}
	}
}

// TestCompletionPlansUseKeys explains the generic plans of a completion's
// statements made on empty tables, with the completion's settings
// (completeSettingsSQL): they must read deliveries and webhooks by their
// primary keys, never by a sequential scan, which a generic plan made
// while the tables were small would otherwise keep as they grow.
func TestCompletionPlansUseKeys(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for name, q := range map[string]string{"complete": completeSQL, "lean complete": completeLeanSQL,
		"failure runs": failureRunSQL, "disable": disableWebhooksSQL} {
		plan := explainPrepared(t, s, completeSettingsSQL, name, q)
		p := strings.Join(plan, "\n")
		if strings.Contains(p, "Seq Scan") || !strings.Contains(p, "Index Cond: (id = ANY ($1))") {
			t.Errorf("%s: the generic plan does not look its rows up by key:\n%s", name, p)
		}
		// A nested loop would join every row of a batch with every
		// unnested one (the 410 disable's arrays are a few webhooks).
		if name != "disable" && strings.Contains(p, "Nested Loop") {
			t.Errorf("%s: the generic plan joins the arrays by a nested loop:\n%s", name, p)
		}
	}
	// The deferred completion's statements read deliveries and their
	// groups by key too.
	for name, q := range map[string]string{"lock groups": lockGroupsSQL, "deferred complete": completeDeferredSQL,
		"deferred lean complete": completeDeferredLeanSQL} {
		p := strings.Join(explainPrepared(t, s, completeSettingsSQL, name, q), "\n")
		if strings.Contains(p, "Seq Scan on deliveries") || strings.Contains(p, "Seq Scan on deferred_deliveries") ||
			!strings.Contains(p, "deferred_deliveries_pkey") {
			t.Errorf("%s: the generic plan does not look its rows up by key:\n%s", name, p)
		}
		if name != "lock groups" && !strings.Contains(p, "Index Cond: (id = ANY ($3))") {
			t.Errorf("%s: the generic plan does not update deliveries by key:\n%s", name, p)
		}
	}
}

// TestPublishWithoutKeysSkipsConflictCheck checks that a publish whose
// events carry no idempotency key inserts them without ON CONFLICT
// (keyConflict: PostgreSQL would insert each row speculatively, with an
// index probe, a lock and an extra WAL record, though no row without a
// key can conflict), and that a call with a key still uses it: the
// connection's prepared statements are what ran.
func TestPublishWithoutKeysSkipsConflictCheck(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := openWith(t, url, Options{Migrate: true, Schema: pgtest.Schema(t, url, "lh_test_"), MaxConns: 1})
	f := newFixture(t, s, 1)
	conflicts := func() (with, without int) {
		t.Helper()
		var stmts []string
		if err := s.run(f.ctx, true, func(c *pgx.Conn) error {
			rows, err := c.Query(f.ctx, `SELECT statement FROM pg_prepared_statements
				WHERE statement LIKE '%INSERT INTO events%' AND statement NOT LIKE '%pg_prepared_statements%'`)
			if err != nil {
				return err
			}
			stmts, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, q := range stmts {
			if strings.Contains(q, "ON CONFLICT (project_id, idempotency_key)") {
				with++
			} else {
				without++
			}
		}
		return with, without
	}
	now := time.Now().UTC()
	f.publish(3, now)
	if with, without := conflicts(); with != 0 || without != 1 {
		t.Errorf("after a publish without keys: %d statements with the key's ON CONFLICT, %d without; want 0, 1",
			with, without)
	}
	keyed := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, now, f.hooks...)
	keyed.Event.IdempotencyKey = "k1"
	again := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, now, f.hooks...)
	again.Event.IdempotencyKey = "k1"
	for _, ne := range []core.NewEvent{keyed, again} {
		if _, err := s.PublishEvents(f.ctx, []core.NewEvent{ne}); err != nil {
			t.Fatalf("PublishEvents: %v", err)
		}
	}
	if with, without := conflicts(); with != 1 || without != 1 {
		t.Errorf("after publishes with a key: %d statements with the key's ON CONFLICT, %d without; want 1, 1",
			with, without)
	}
	evs, err := s.EventsByKeys(f.ctx, f.p.ID, []string{"k1"})
	if err != nil || len(evs) != 1 || evs[0].ID != keyed.Event.ID {
		t.Errorf("EventsByKeys(k1) = %v, %v; want the first event alone", evs, err)
	}
}

// explainPrepared prepares q on a store connection, runs settings, and
// returns the plan EXPLAIN EXECUTE shows for it with every parameter NULL.
func explainPrepared(t *testing.T, s *Store, settings, name, q string) []string {
	t.Helper()
	ctx := t.Context()
	n := 0
	for _, m := range regexp.MustCompile(`\$(\d+)`).FindAllStringSubmatch(q, -1) {
		var i int
		fmt.Sscan(m[1], &i)
		n = max(n, i)
	}
	var plan []string
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `PREPARE generic_probe AS `+q); err != nil {
			return err
		}
		defer c.Exec(ctx, `DEALLOCATE generic_probe`) //nolint:errcheck
		b := &pgx.Batch{}
		b.Queue(settings)
		b.Queue(`EXPLAIN EXECUTE generic_probe(` + strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ") + `)`).
			Query(func(rows pgx.Rows) error {
				var err error
				plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
		return c.SendBatch(ctx, b).Close()
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return plan
}
