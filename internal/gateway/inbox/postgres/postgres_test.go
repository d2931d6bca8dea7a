package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/gateway/inbox"
	"github.com/longhook/longhook/internal/gateway/inbox/inboxtest"
	"github.com/longhook/longhook/internal/pgdb"
	"github.com/longhook/longhook/internal/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pgExec runs one statement on a connection of its own.
func pgExec(t testing.TB, dbURL, sql string, args ...any) {
	t.Helper()
	if err := pgtest.Exec(dbURL, sql, args...); err != nil {
		t.Errorf("%s: %v", sql, err)
	}
}

// openPG opens an inbox on schema and closes it when t ends.
func openPG(t testing.TB, dbURL, schema string) *Inbox {
	t.Helper()
	in, err := Open(context.Background(), dbURL, Options{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = in.Close() })
	return in
}

func TestPostgresInbox(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	inboxtest.Run(t, func(t *testing.T) (inbox.Inbox, func(t *testing.T) inbox.Inbox) {
		schema := pgtest.Schema(t, dbURL, "lh_gw_test_")
		open := func(t *testing.T) inbox.Inbox { return openPG(t, dbURL, schema) }
		return open(t), open
	})
}

// A second gateway on the same inbox is refused while the first runs, and
// may start once the first has closed.
func TestPostgresInboxExclusive(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.Schema(t, dbURL, "lh_gw_test_")
	first := openPG(t, dbURL, schema)
	// The wait for the lock runs on a clock of the test's: only the
	// sleeps move it. With LockWait 200ms Open retries after 50 ms and
	// 100 ms and gives up (a third wait of 200 ms would end at 350 ms):
	// the same whatever the machine's load, unlike a bound on the time
	// Open took.
	var fake time.Time
	var slept []time.Duration
	o := Options{Schema: schema, LockWait: 200 * time.Millisecond,
		now: func() time.Time { return fake },
		sleep: func(_ context.Context, d time.Duration) bool {
			slept = append(slept, d)
			fake = fake.Add(d)
			return true
		}}
	_, err := Open(context.Background(), dbURL, o)
	if !errors.Is(err, ErrInboxLocked) {
		t.Fatalf("second Open: %v, want ErrInboxLocked", err)
	}
	if !strings.Contains(err.Error(), "another gateway holds this inbox") || !strings.Contains(err.Error(), "pid") {
		t.Errorf("error does not explain itself: %v", err)
	}
	if want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}; !slices.Equal(slept, want) {
		t.Errorf("with LockWait 200ms Open waited %v for the lock, want %v", slept, want)
	}
	// A negative LockWait does not wait at all.
	slept = nil
	o.LockWait = -1
	if _, err := Open(context.Background(), dbURL, o); !errors.Is(err, ErrInboxLocked) || len(slept) != 0 {
		t.Errorf("with LockWait -1: %v after waiting %v, want ErrInboxLocked at once", err, slept)
	}
	// Another schema is another inbox.
	openPG(t, dbURL, pgtest.Schema(t, dbURL, "lh_gw_test_"))
	// The same schema named through the URL's search_path is the same inbox.
	if _, err := Open(context.Background(), pgtest.WithSearchPath(t, dbURL, schema), Options{LockWait: -1}); !errors.Is(err, ErrInboxLocked) {
		t.Errorf("Open through search_path: %v, want ErrInboxLocked", err)
	}

	// A second Open waiting with LockWait gets the inbox once the first
	// closes.
	opened := make(chan error, 1)
	go func() {
		in, err := Open(context.Background(), dbURL, Options{Schema: schema, LockWait: 30 * time.Second})
		if err == nil {
			err = in.Close()
		}
		opened <- err
	}()
	inboxtest.Accept(t, first, "a", "x", time.Now().Add(time.Hour))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Errorf("Open after the first closed: %v", err)
	}
}

// Migrations are recorded in gateway_schema_migrations, applied once, and
// an inbox migrated by a newer gateway is refused.
func TestPostgresInboxMigrations(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.Schema(t, dbURL, "lh_gw_test_")
	openPG(t, dbURL, schema).Close()
	in := openPG(t, dbURL, schema) // again: nothing to apply
	var versions []string
	err := in.read(context.Background(), func(c *pgx.Conn) error {
		rows, _ := c.Query(context.Background(), `SELECT version FROM gateway_schema_migrations ORDER BY version`)
		var err error
		versions, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil || len(versions) != 1 || versions[0] != "0001_init" {
		t.Fatalf("gateway_schema_migrations = %v, %v", versions, err)
	}
	in.Close()
	pgExec(t, dbURL, fmt.Sprintf(`INSERT INTO %s.gateway_schema_migrations (version) VALUES ('9999_future')`, pgx.Identifier{schema}.Sanitize()))
	if _, err := Open(context.Background(), dbURL, Options{Schema: schema}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer inbox: %v", err)
	}
	// A search_path naming no existing schema is an error, not tables in
	// some other schema.
	if _, err := Open(context.Background(), pgtest.WithSearchPath(t, dbURL, "lh_gw_missing_schema"), Options{}); err == nil {
		t.Error("Open with a missing search_path schema succeeded")
	}
}

// writerPID returns the backend holding in's lock.
func writerPID(t *testing.T, dbURL string, in *Inbox) int32 {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	h, err := in.holder(ctx, c)
	if err != nil {
		t.Fatalf("lock holder: %v", err)
	}
	return h.pid
}

// When the writer's session is killed (as on a failover or by an admin),
// the next writes reconnect, take the lock again and succeed, and the
// inbox stays exclusive.
func TestPostgresInboxWriterSessionKilled(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.Schema(t, dbURL, "lh_gw_test_")
	in := openPG(t, dbURL, schema)
	ctx := context.Background()
	r1 := inboxtest.Accept(t, in, "a", "before", time.Now().Add(time.Hour))
	pid := writerPID(t, dbURL, in)
	pgExec(t, dbURL, `SELECT pg_terminate_backend($1, 10000)`, pid)

	changed := in.Changed()
	r2 := inboxtest.Accept(t, in, "a", "after", time.Now().Add(time.Hour))
	if r2.Duplicate || r2.Seq <= r1.Seq {
		t.Errorf("accept after the kill: %+v (before: %+v)", r2, r1)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed not closed")
	}
	if p := writerPID(t, dbURL, in); p == pid {
		t.Errorf("lock still held by the killed backend %d", pid)
	}
	if evs, _, err := in.After(ctx, "a", 0, 10); err != nil || len(evs) != 2 {
		t.Errorf("After: %v, %v", evs, err)
	}
	if err := in.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if _, err := Open(ctx, dbURL, Options{Schema: schema, LockWait: -1}); !errors.Is(err, ErrInboxLocked) {
		t.Errorf("second Open after the reconnect: %v, want ErrInboxLocked", err)
	}
}

// While another gateway holds the lock that this one lost, writes fail
// (and Ping says why) instead of going to an inbox two processes share.
func TestPostgresInboxLockTakenOver(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.Schema(t, dbURL, "lh_gw_test_")
	in := openPG(t, dbURL, schema)
	ctx := context.Background()
	inboxtest.Accept(t, in, "a", "m1", time.Now().Add(time.Hour))

	// Kill the writer's session and take the lock from another session
	// before the writer reconnects (it only does so when it next writes or
	// after its idle check).
	pid := writerPID(t, dbURL, in)
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `SELECT pg_terminate_backend($1, 10000)`, pid); err != nil {
		t.Fatal(err)
	}
	var got bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, pgLockClass, in.lockKey).Scan(&got); err != nil || !got {
		t.Fatalf("take the lock: %v %v", got, err)
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := in.Accept(actx, inbox.AcceptParams{Source: "a", WebhookID: "m2", ReceivedAt: time.Now(), ExpireAt: time.Now()}); err == nil {
		t.Fatal("Accept succeeded while another session holds the lock")
	}
	if err := in.Ping(ctx); !errors.Is(err, ErrInboxLocked) {
		t.Errorf("Ping = %v, want ErrInboxLocked", err)
	}
	// Once the other session lets go, the writer takes the lock back by
	// itself and Ping recovers.
	if _, err := c.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, pgLockClass, in.lockKey); err != nil {
		t.Fatal(err)
	}
	inboxtest.WaitFor(t, 15*time.Second, "the writer to take the lock back", func() bool { return in.Ping(ctx) == nil })
	if r := inboxtest.Accept(t, in, "a", "m3", time.Now().Add(time.Hour)); r.Duplicate {
		t.Errorf("accept after recovery: %+v", r)
	}
}

// A batch that committed but whose answer was lost (the connection died
// before the results came back) is retried: its events are not reported
// as duplicates of themselves, and followers read them from the table
// rather than skipping them.
func TestPostgresInboxLostCommitAnswer(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	in := openPG(t, dbURL, pgtest.Schema(t, dbURL, "lh_gw_test_"))
	ctx := context.Background()
	r0 := inboxtest.Accept(t, in, "a", "m0", time.Now().Add(time.Hour))
	if evs, next, err := in.After(ctx, "a", 0, 10); err != nil || len(evs) != 1 || next != r0.Seq {
		t.Fatalf("After = %v %d %v", evs, next, err)
	}
	var lost atomic.Int64
	hook := func(c *pgx.Conn) error {
		if lost.Add(1) > 1 {
			return nil
		}
		pgdb.CloseConn(c)
		return errors.New("test: the answer of a committed batch was lost")
	}
	in.afterBatch.Store(&hook)
	changed := in.Changed()
	var wg sync.WaitGroup
	res := make([]inbox.AcceptResult, 5)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = inboxtest.Accept(t, in, "a", fmt.Sprintf("m%d", i+1), time.Now().Add(time.Hour))
		}()
	}
	wg.Wait()
	if lost.Load() < 2 {
		t.Fatalf("the hook ran %d times: no retry", lost.Load())
	}
	for i, r := range res {
		if r.Duplicate || r.Seq <= r0.Seq {
			t.Errorf("m%d: %+v, want a new event", i+1, r)
		}
	}
	select {
	case <-changed:
	default:
		t.Error("Changed not closed")
	}
	evs, _, err := in.After(ctx, "a", r0.Seq, 10)
	if err != nil || len(evs) != len(res) {
		t.Fatalf("a follower at %d read %v, %v; want the %d events", r0.Seq, evs, err, len(res))
	}
	if r := inboxtest.Accept(t, in, "a", "m1", time.Now().Add(time.Hour)); !r.Duplicate || r.Seq != res[0].Seq {
		t.Errorf("m1 again: %+v", r)
	}
}

// If the database comes back without commits the writer saw (a failover
// to a lagging replica), new events still get a Seq above every one a
// reader may have passed.
func TestPostgresInboxLostCommits(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.Schema(t, dbURL, "lh_gw_test_")
	in := openPG(t, dbURL, schema)
	inboxtest.Accept(t, in, "a", "m1", time.Now().Add(time.Hour))
	inboxtest.Accept(t, in, "a", "m2", time.Now().Add(time.Hour))
	r3 := inboxtest.Accept(t, in, "a", "m3", time.Now().Add(time.Hour))
	// The "new primary": m2 and m3 and the sequence values they took are
	// gone; the writer's session ends as in a failover.
	q := pgx.Identifier{schema}.Sanitize()
	pgExec(t, dbURL, fmt.Sprintf(`DELETE FROM %s.gateway_events WHERE webhook_id <> 'm1'::bytea`, q))
	pgExec(t, dbURL, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s.gateway_events', 'seq'), 1)`, schema))
	pgExec(t, dbURL, `SELECT pg_terminate_backend($1, 10000)`, writerPID(t, dbURL, in))

	r := inboxtest.Accept(t, in, "a", "m4", time.Now().Add(time.Hour))
	if r.Seq <= r3.Seq {
		t.Errorf("seq %d after lost commits, want above %d", r.Seq, r3.Seq)
	}
	if evs, _, err := in.After(context.Background(), "a", r3.Seq, 10); err != nil || len(evs) != 1 || evs[0].WebhookID != "m4" {
		t.Errorf("a reader at %d: %v, %v", r3.Seq, evs, err)
	}
}
