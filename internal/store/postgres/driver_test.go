package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// fixture is a project with webhooks on a store.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	s     *Store
	p     core.Project
	hooks []*core.Webhook
}

func newFixture(t testing.TB, s *Store, hooks int) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), s: s, p: storetest.NewProject()}
	if err := s.CreateProject(f.ctx, f.p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	for range hooks {
		w := storetest.NewWebhook(f.p.ID)
		if err := s.CreateWebhook(f.ctx, w); err != nil {
			t.Fatalf("CreateWebhook: %v", err)
		}
		f.hooks = append(f.hooks, w)
	}
	return f
}

// publish publishes n events (fan-out to every hook) due at at in calls
// of at most 100 events, and returns the delivery ids.
func (f *fixture) publish(n int, at time.Time) []string {
	f.t.Helper()
	var ids []string
	for n > 0 {
		var evs []core.NewEvent
		for range min(n, 100) {
			ne := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, at, f.hooks...)
			evs = append(evs, ne)
			for _, d := range ne.Deliveries {
				ids = append(ids, d.ID)
			}
		}
		if _, err := f.s.PublishEvents(f.ctx, evs); err != nil {
			f.t.Fatalf("PublishEvents: %v", err)
		}
		n -= len(evs)
	}
	return ids
}

func succeeded(c core.Claimed, owner string, at time.Time) core.Completion {
	return core.Completion{
		DeliveryID: c.ID, Owner: owner, Status: core.DeliverySucceeded, ProjectID: c.ProjectID, WebhookID: c.WebhookID,
		Success: true,
		Attempt: core.Attempt{DeliveryID: c.ID, Number: c.Attempts + 1, Time: at, URI: "https://example.com/x",
			StatusCode: 200, Latency: time.Millisecond, Response: []byte("ok")},
	}
}

func TestPendingMigrations(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	schema := pgtest.Schema(t, url, "lh_test_")

	_, err := Open(ctx, url, Options{Schema: schema})
	if !errors.Is(err, ErrPendingMigrations) {
		t.Fatalf("Open without Migrate on an empty schema = %v, want ErrPendingMigrations", err)
	}
	applied, pending, err := MigrationStatus(ctx, url, schema)
	if err != nil || len(applied) != 0 || !slices.Equal(pending, allMigrations) {
		t.Fatalf("MigrationStatus = %v, %v, %v; want nothing applied, all pending", applied, pending, err)
	}

	// Concurrent MigrateUp calls apply each migration exactly once.
	var mu sync.Mutex
	var all []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			got, err := MigrateUp(ctx, url, schema)
			if err != nil {
				t.Errorf("MigrateUp: %v", err)
			}
			mu.Lock()
			all = append(all, got...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if !slices.Equal(all, allMigrations) {
		t.Errorf("concurrent MigrateUp applied %v, want each migration once", all)
	}
	applied, pending, err = MigrationStatus(ctx, url, schema)
	if err != nil || !slices.Equal(applied, allMigrations) || len(pending) != 0 {
		t.Fatalf("MigrationStatus after up = %v, %v, %v", applied, pending, err)
	}
	s, err := Open(ctx, url, Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open after MigrateUp: %v", err)
	}
	_ = s.Close()
}

// TestLeanIndexesMigration migrates a database holding deliveries and
// events from 0009 to 0010 (which drops three indexes): the rows stay, and
// the retention sweep, which read those indexes before, still finds them.
func TestLeanIndexesMigration(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	schema := pgtest.Schema(t, url, "lh_test_")
	s := openWith(t, url, Options{Migrate: true, Schema: schema, MaxConns: 2, CallerClock: true})
	f := newFixture(t, s, 2)
	ids := f.publish(3, storetest.T0)
	for claimComplete(t, s, "o", 100) > 0 {
	}
	// Back to a 0009 database with the same rows.
	if err := s.run(ctx, false, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `CREATE INDEX deliveries_project ON deliveries (project_id, id);
			CREATE INDEX deliveries_create_time ON deliveries (create_time);
			CREATE INDEX events_create_time ON events (create_time);
			DELETE FROM schema_migrations WHERE version = '0010_lean_indexes'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	s = openWith(t, url, Options{Migrate: true, Schema: schema, MaxConns: 2, CallerClock: true})
	applied, pending, err := MigrationStatus(ctx, url, schema)
	if err != nil || !slices.Equal(applied, allMigrations) || len(pending) != 0 {
		t.Fatalf("MigrationStatus = %v, %v, %v", applied, pending, err)
	}
	var left int
	if err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema()
			AND indexname IN ('deliveries_project', 'deliveries_create_time', 'events_create_time')`).Scan(&left)
	}); err != nil || left != 0 {
		t.Fatalf("indexes left after 0010: %d, %v", left, err)
	}
	got, err := s.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: f.p.ID})
	if err != nil || len(got) != len(ids) {
		t.Fatalf("ListDeliveries after 0010 = %d deliveries, %v; want %d", len(got), err, len(ids))
	}
	for _, d := range got {
		if d.Status != core.DeliverySucceeded {
			t.Errorf("delivery %s: status %s after 0010, want succeeded", d.ID, d.Status)
		}
	}
	n, err := s.DeleteExpired(ctx, storetest.T0.Add(time.Hour), 100)
	if err != nil || n != len(ids)+3 {
		t.Errorf("DeleteExpired after 0010 = %d, %v; want %d deliveries and 3 events", n, err, len(ids))
	}
}

func TestMigrateCreatesSchema(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_") + "_new" // does not exist yet
	t.Cleanup(func() { admin(t, url, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	s := open(t, url, schema)
	newFixture(t, s, 1).publish(1, storetest.T0)
	if _, err := Open(context.Background(), url, Options{Schema: "bad-name"}); err == nil {
		t.Errorf("Open accepted an invalid schema name")
	}
}

// TestConcurrentClaimers has two stores on one schema (two processes,
// as far as the database can tell) claim with four goroutines each: every
// delivery is claimed exactly once.
func TestConcurrentClaimers(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	stores := []*Store{open(t, url, schema), open(t, url, schema)}
	f := newFixture(t, stores[0], 10)
	all := f.publish(500, storetest.T0) // 5,000 deliveries
	now := storetest.T0.Add(time.Second)

	var mu sync.Mutex
	claims := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		s := stores[g%2]
		owner := fmt.Sprintf("engine-%d", g)
		wg.Go(func() {
			for {
				cs, err := s.ClaimDeliveries(f.ctx, core.ClaimParams{
					Owner: owner, Now: now, Limit: 1 + rand.IntN(64), Lease: time.Minute})
				if err != nil {
					t.Errorf("ClaimDeliveries: %v", err)
					return
				}
				if len(cs) == 0 {
					return
				}
				comps := make([]core.Completion, len(cs))
				mu.Lock()
				for i, c := range cs {
					claims[c.ID]++
					comps[i] = succeeded(c, owner, now)
				}
				mu.Unlock()
				if err := s.CompleteDeliveries(f.ctx, comps); err != nil {
					t.Errorf("CompleteDeliveries: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(claims) != len(all) {
		t.Errorf("claimed %d distinct deliveries of %d", len(claims), len(all))
	}
	for _, id := range all {
		if n := claims[id]; n != 1 {
			t.Errorf("delivery %s claimed %d times", id, n)
			break
		}
	}
	depth, err := stores[1].QueueDepth(f.ctx, now)
	if err != nil || depth != (core.QueueDepth{}) {
		t.Errorf("QueueDepth after completing everything = %+v, %v", depth, err)
	}
	w := f.hooks[0]
	if got, err := stores[1].GetWebhook(f.ctx, f.p.ID, w.ID); err != nil || got.ConsecutiveFailures != 0 {
		t.Errorf("webhook after successes: %+v, %v", got, err)
	}
}

// TestConcurrentIdempotency: publishers in two stores racing with one
// idempotency key write one event; everyone gets it back.
func TestConcurrentIdempotency(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	stores := []*Store{open(t, url, schema), open(t, url, schema)}
	f := newFixture(t, stores[0], 2)
	for round := range 10 {
		key := fmt.Sprintf("key-%d", round)
		start := make(chan struct{})
		var mu sync.Mutex
		ids := map[string]bool{}
		fresh := 0
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				ne := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, storetest.T0, f.hooks...)
				ne.Event.IdempotencyKey = key
				<-start
				res, err := stores[g%2].PublishEvents(f.ctx, []core.NewEvent{ne})
				if err != nil {
					t.Errorf("PublishEvents: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[res[0].Event.ID] = true
				if !res[0].Duplicate {
					fresh++
				}
			})
		}
		close(start)
		wg.Wait()
		if fresh != 1 || len(ids) != 1 {
			t.Fatalf("round %d: %d publishes reported new, %d distinct events; want 1 and 1", round, fresh, len(ids))
		}
	}
	ds, err := stores[1].ListDeliveries(f.ctx, core.ListDeliveriesParams{ProjectID: f.p.ID, Limit: 1000})
	if err != nil || len(ds) != 20 {
		t.Errorf("deliveries: %d, %v; want 10 events × 2", len(ds), err)
	}
}

// TestWakeAcrossStores: a commit in one store wakes the other through
// NOTIFY; stores on another schema do not.
func TestWakeAcrossStores(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	a, b := open(t, url, schema), open(t, url, schema)
	other := open(t, url, pgtest.Schema(t, url, "lh_test_"))
	fa, fo := newFixture(t, a, 1), newFixture(t, other, 1)
	drain(b)

	fa.publish(1, storetest.T0)
	waitWake(t, b, "publish in another store")

	cs, err := a.ClaimDeliveries(fa.ctx, core.ClaimParams{Owner: "a", Now: storetest.T0, Limit: 1, Lease: time.Minute})
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	drain(b)
	if err := a.ReleaseDeliveries(fa.ctx, "a", []string{cs[0].ID}); err != nil {
		t.Fatal(err)
	}
	waitWake(t, b, "release in another store")

	drain(b)
	fo.publish(1, storetest.T0)
	select {
	case <-b.Wake():
		t.Errorf("woken by a publish in another schema")
	case <-time.After(300 * time.Millisecond):
	}
}

func drain(s *Store) {
	for {
		select {
		case <-s.Wake():
		default:
			return
		}
	}
}

func waitWake(t testing.TB, s *Store, what string) {
	t.Helper()
	select {
	case <-s.Wake():
	case <-time.After(5 * time.Second):
		t.Fatalf("no wake-up after %s", what)
	}
}

// TestLeaseContention: exactly one of many concurrent acquirers (across
// two stores) gets a free or expired lease, and the holder keeps it.
func TestLeaseContention(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	stores := []*Store{open(t, url, schema), open(t, url, schema)}
	ctx := context.Background()
	t0 := storetest.T0

	acquire := func(s *Store, name, owner string, now time.Time) bool {
		t.Helper()
		ok, err := s.AcquireLease(ctx, name, owner, now, time.Minute)
		if err != nil {
			t.Fatalf("AcquireLease: %v", err)
		}
		return ok
	}
	if !acquire(stores[0], "leader", "a", t0) || acquire(stores[1], "leader", "b", t0.Add(time.Second)) {
		t.Fatalf("a should hold the lease, b not")
	}
	if acquire(stores[1], "leader", "b", t0.Add(59*time.Second)) {
		t.Errorf("b took the lease before it expired")
	}
	if !acquire(stores[1], "leader", "b", t0.Add(time.Minute)) || acquire(stores[0], "leader", "a", t0.Add(61*time.Second)) {
		t.Errorf("b should take over the expired lease, and a lose it")
	}

	race := func(name string, now time.Time) []string {
		start := make(chan struct{})
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		for g := range 8 {
			owner := fmt.Sprintf("owner-%d", g)
			wg.Go(func() {
				<-start
				ok, err := stores[g%2].AcquireLease(ctx, name, owner, now, time.Minute)
				if err != nil {
					t.Errorf("AcquireLease: %v", err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, owner)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		return winners
	}
	for round := range 20 {
		name := fmt.Sprintf("race-%d", round)
		if w := race(name, t0); len(w) != 1 {
			t.Fatalf("round %d, free lease: winners %v, want exactly one", round, w)
		}
		if w := race(name, t0.Add(30*time.Second)); len(w) > 1 {
			t.Fatalf("round %d, held lease: winners %v", round, w)
		}
		if w := race(name, t0.Add(2*time.Minute)); len(w) != 1 {
			t.Fatalf("round %d, expired lease: winners %v, want exactly one", round, w)
		}
	}
}

// TestPublishRetryAfterLostCommit simulates a publish whose commit
// succeeded but whose answer was lost: the driver retries, and the retry
// neither fails nor writes anything twice.
func TestPublishRetryAfterLostCommit(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	f := newFixture(t, s, 2)
	s.afterPublish = func(attempt int) error {
		if attempt == 1 {
			return &lostConnError{errors.New("connection reset (simulated)")}
		}
		return nil
	}
	plain := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, storetest.T0, f.hooks...)
	keyed := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, storetest.T0, f.hooks...)
	keyed.Event.IdempotencyKey = "k"
	res, err := s.PublishEvents(f.ctx, []core.NewEvent{plain, keyed})
	if err != nil {
		t.Fatalf("PublishEvents: %v", err)
	}
	for i, r := range res {
		if r.Duplicate {
			t.Errorf("result %d reported as duplicate after a retried commit", i)
		}
	}
	ds, err := s.ListDeliveries(f.ctx, core.ListDeliveriesParams{ProjectID: f.p.ID})
	if err != nil || len(ds) != 4 {
		t.Errorf("deliveries after retried publish: %d, %v; want 4", len(ds), err)
	}
	// The retry wrote nothing, so it counted nothing either.
	rows, err := s.Stats(f.ctx, core.StatsParams{ProjectID: f.p.ID, Since: storetest.T0.Add(-time.Hour),
		Until: storetest.T0.Add(time.Hour)})
	var events int64
	for _, r := range rows {
		events += r.Events
	}
	if err != nil || events != 2 {
		t.Errorf("events in the rollup after retried publish: %d, %v; want 2", events, err)
	}
}

// TestClaimPlan checks that claims walk the partial index deliveries_due
// and never scan the table.
func TestClaimPlan(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	f := newFixture(t, s, 10)
	f.publish(300, storetest.T0)
	var plan []string
	err := s.run(f.ctx, true, func(c *pgx.Conn) error {
		if _, err := c.Exec(f.ctx, "ANALYZE deliveries"); err != nil {
			return err
		}
		// The caller's time, and NULL: the database's now().
		for _, now := range []*time.Time{&storetest.T0, nil} {
			rows, err := c.Query(f.ctx, "EXPLAIN "+claimSQL, "o", now, micros(time.Minute),
				[]string{}, int64(100), int64(25))
			if err != nil {
				return err
			}
			p, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			plan = append(plan, p...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if strings.Count(text, "deliveries_due") < 6 || strings.Contains(text, "Seq Scan on deliveries") {
		t.Errorf("claim plan does not use deliveries_due for each queue:\n%s", text)
	}
}

// TestCompletionPlanFollowsTable completes deliveries with statements
// first run while the table was nearly empty, after it grew: the
// completion must look its rows up by key, not scan the table as a plan
// made for the empty table would.
func TestCompletionPlanFollowsTable(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := openWith(t, url, Options{Migrate: true, Schema: pgtest.Schema(t, url, "lh_test_"), MaxConns: 1})
	f := newFixture(t, s, 1)
	leased := func(n int) []core.Completion {
		now := time.Now().UTC()
		evs := make([]core.NewEvent, n)
		cs := make([]core.Completion, n)
		for i := range evs {
			evs[i] = storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, now, f.hooks...)
			evs[i].Deliveries[0].LeaseOwner = "o"
			evs[i].Deliveries[0].NextAttemptTime = now.Add(time.Minute)
			cs[i] = succeeded(core.Claimed{Delivery: evs[i].Deliveries[0]}, "o", now)
		}
		if _, err := s.PublishEvents(f.ctx, evs); err != nil {
			t.Fatalf("PublishEvents: %v", err)
		}
		return cs
	}
	for range 8 { // past the five executions after which a generic plan may be kept
		if err := s.CompleteDeliveries(f.ctx, leased(4)); err != nil {
			t.Fatalf("CompleteDeliveries: %v", err)
		}
	}
	for range 20 {
		leased(100)
	}
	// The pool's one connection runs every statement, so its counters are
	// flushed before they are read.
	seqScans := func() int64 {
		var n int64
		if err := s.run(f.ctx, true, func(c *pgx.Conn) error {
			if _, err := c.Exec(f.ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
				return err
			}
			if _, err := c.Exec(f.ctx, `SELECT 1`); err != nil {
				return err
			}
			return c.QueryRow(f.ctx, `SELECT seq_scan FROM pg_stat_user_tables
				WHERE schemaname = current_schema() AND relname = 'deliveries'`).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	cs := leased(4)
	before := seqScans()
	if err := s.CompleteDeliveries(f.ctx, cs); err != nil {
		t.Fatalf("CompleteDeliveries: %v", err)
	}
	if after := seqScans(); after != before {
		t.Errorf("completing 4 of 2,036 deliveries scanned the table %d times", after-before)
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	lost := &lostConnError{errors.New("eof")}
	for _, tc := range []struct {
		err        error
		idempotent bool
		want       bool
	}{
		{pgErr("40001"), false, true},
		{pgErr("40P01"), false, true},
		{pgErr("23505"), true, false},
		{pgErr("57P01"), false, false},
		{pgErr("57P01"), true, true},
		{lost, false, false},
		{lost, true, true},
		{&connectError{errors.New("refused")}, false, true},
		{&connectError{pgErr("28P01")}, false, false},
		{context.Canceled, true, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true, false},
	} {
		if got := retryable(tc.err, tc.idempotent); got != tc.want {
			t.Errorf("retryable(%v, %v) = %v, want %v", tc.err, tc.idempotent, got, tc.want)
		}
	}
}

func TestNotifierDebounce(t *testing.T) {
	t.Parallel()
	n := newNotifier("c", "p")
	if !n.lead() {
		t.Fatal("the first commit should lead")
	}
	for range 100 {
		if n.lead() {
			t.Fatal("a commit within the window led")
		}
		n.follow()
	}
	if len(n.kick) != 1 || !n.takeTrailing() {
		t.Errorf("held-back commits did not schedule one trailing NOTIFY")
	}
	n.last = time.Now().Add(-time.Second)
	if !n.lead() {
		t.Errorf("a commit after the window did not lead")
	}
}

func TestWakeChannel(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("s", 63)
	for _, s := range []string{"", "lh_test_abc", long} {
		if c := wakeChannel(s); len(c) > 63 || !strings.HasPrefix(c, "longhook_wake") {
			t.Errorf("wakeChannel(%q) = %q", s, c)
		}
	}
	if wakeChannel(long) == wakeChannel(strings.Repeat("t", 63)) {
		t.Errorf("hashed channel names collide")
	}
}

func pgErr(code string) error { return &pgconn.PgError{Code: code} }

// allMigrations are the driver's migrations in order.
var allMigrations = []string{"0001_init", "0002_jobs", "0003_job_blobs", "0004_stats", "0005_rate_limits", "0006_stats_totals", "0007_tracing", "0008_job_tracing", "0009_files_per_project", "0010_lean_indexes", "0011_inline_attempts", "0012_event_delivery_span", "0013_ids_collate_c", "0014_deferred_deliveries"}
