package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgdb"
)

// Options tunes a store. The zero value is usable: it refuses to open a
// database with pending migrations and uses the defaults below.
type Options struct {
	// Migrate applies pending migrations on Open (under an advisory lock,
	// so instances starting together apply each migration once). Without
	// it, Open fails with ErrPendingMigrations if the schema is behind.
	Migrate bool
	// Schema, when set, is the only entry of search_path: every table
	// lives in it. Open creates it when Migrate is set. Tests use one
	// schema each; production normally leaves it empty (the database's
	// default search_path, usually "public").
	Schema string
	// MaxConns caps the connection pool (default 16). The wake listener
	// uses one more connection of its own.
	MaxConns int32
	// StatementTimeout is the server-side statement_timeout of every pool
	// connection, and its idle_in_transaction_session_timeout (default
	// 30 s).
	StatementTimeout time.Duration
	// Logger receives connection-level warnings (listener reconnects,
	// retried transient errors). Default: discarded.
	Logger *slog.Logger
	// CallerClock makes claims and leases (deliveries, jobs, named leases)
	// use the times their callers pass. By default they use the
	// database's now() instead, so that instances whose clocks disagree
	// never take each other's leases early; only the durations come from
	// the caller. Tests that drive time with a fake clock set it.
	CallerClock bool
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = 16
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

var schemaName = pgdb.SchemaName

func (o Options) validate() error {
	if o.Schema != "" && !schemaName.MatchString(o.Schema) {
		return fmt.Errorf("postgres: schema %q must match %s", o.Schema, schemaName)
	}
	return nil
}

// ErrPendingMigrations is returned by Open (without Options.Migrate) when
// the database schema is older than this binary. Run `longhook migrate up`
// (MigrateUp) or open with Migrate.
var ErrPendingMigrations = errors.New("postgres: pending migrations")

// Store is the PostgreSQL implementation of core.Store. It is safe for
// concurrent use, and any number of Stores (in any number of processes)
// may share one database.
type Store struct {
	cfg    *pgx.ConnConfig // the listener's connection (as the pool's)
	pool   *pgxpool.Pool
	log    *slog.Logger
	id     string // NOTIFY payload identifying this store
	notify *notifier
	wake   chan struct{}

	// hooksChanged is the OnWebhooksChanged callback (nil: none).
	hooksChanged atomic.Pointer[func(projectID string)]

	// claimed counts delivery slots asked for by ClaimDeliveries; it
	// spreads the retry share (a quarter of every batch) exactly, also
	// when batches are smaller than four.
	claimed atomic.Int64

	// afterPublish, when set by a test, runs after each publish attempt's
	// batch and may fail the attempt as if its outcome were unknown.
	afterPublish func(attempt int) error

	// callerClock: see Options.CallerClock.
	callerClock bool

	// planMode is the connections' plan_cache_mode; genericPlans is set
	// when it is the store's own force_custom_plan, which statements whose
	// plan reads no table switch off for their transaction (genericPlanSQL).
	planMode     string
	genericPlans bool

	// batchHook, when set by a test, may queue statements at the end of
	// every publish, completion and release batch (kind "publish",
	// "complete" or "release"), inside its transaction.
	batchHook func(kind string, b *pgx.Batch)

	// deferred holds this store's deferred deliveries (deferred.go).
	deferred deferredSet

	cancel    context.CancelFunc // stops the listener, the notifier and settleLoop
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ core.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a libpq
// keyword/value string), checks or applies migrations, and starts the wake
// listener. The returned store must be closed.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	cc, err := newConnConfigs(url, o)
	if err != nil {
		return nil, err
	}
	if err := prepareSchema(ctx, cc.migrate, o); err != nil {
		return nil, err
	}
	pool, err := newPool(ctx, cc.pool, o.MaxConns)
	if err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	s := storeOn(pool, cc, o)
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// connConfigs are the connection settings Open derives from the URL.
type connConfigs struct {
	pool    *pgxpool.Config // the pool's and the listener's
	migrate *pgx.ConnConfig // the migrations': without the session timeouts

	planMode     string // the pool's plan_cache_mode
	userPlanMode bool   // set by the URL, not by the store
}

// newConnConfigs parses url into the pool's and the migrations'
// configurations. Migrations run without the statement timeout (a future
// migration may build an index on a large table); the pool and the
// listener have it.
func newConnConfigs(url string, o Options) (connConfigs, error) {
	pcfg, err := connConfig(url, o.Schema)
	if err != nil {
		return connConfigs{}, err
	}
	cc := connConfigs{pool: pcfg, migrate: pcfg.ConnConfig.Copy()}
	timeout := strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	pcfg.ConnConfig.RuntimeParams["statement_timeout"] = timeout
	pcfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = timeout
	// Every execution of a prepared statement is planned for its
	// parameters and the tables as they are now. A generic plan, which
	// PostgreSQL settles on after five executions and keeps until the
	// table is next analyzed, is planned for arrays of ten elements and
	// tables of the size they had then: on a database that starts empty
	// the set-based statements kept sequential scans with a ten-element
	// `= ANY` filter per row while their tables grew to thousands of rows
	// (three times the CPU per delivery; see design.md). Planning costs
	// less than that: the statements stay prepared (parsed once).
	cc.planMode, cc.userPlanMode = pcfg.ConnConfig.RuntimeParams["plan_cache_mode"]
	if !cc.userPlanMode {
		cc.planMode = "force_custom_plan"
		pcfg.ConnConfig.RuntimeParams["plan_cache_mode"] = cc.planMode
	}
	return cc, nil
}

// prepareSchema applies the pending migrations with Options.Migrate, and
// otherwise refuses a schema that has any.
func prepareSchema(ctx context.Context, mcfg *pgx.ConnConfig, o Options) error {
	if o.Migrate {
		_, err := migrateUp(ctx, mcfg, o.Schema, o.Logger)
		return err
	}
	_, pending, err := migrationStatus(ctx, mcfg)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %v (run `longhook migrate up`)", ErrPendingMigrations, pending)
	}
	return nil
}

// storeOn makes the store around pool, with a random id that tells its
// own notifications from other processes'.
func storeOn(pool *pgxpool.Pool, cc connConfigs, o Options) *Store {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	s := &Store{
		cfg:  cc.pool.ConnConfig.Copy(),
		pool: pool,
		log:  o.Logger,
		id:   hex.EncodeToString(rnd[:]),
		wake: make(chan struct{}, 1),

		callerClock: o.CallerClock,
		planMode:    cc.planMode,
		// A mode the URL sets is the user's to keep.
		genericPlans: !cc.userPlanMode,
	}
	s.notify = newNotifier(wakeChannel(o.Schema), s.id)
	s.deferred.init()
	return s
}

// start connects the wake listener and starts the background loops; on
// failure it closes the pool. The first listener connection is made here,
// so that Open fails on an unreachable database and Wake works as soon as
// Open returns.
func (s *Store) start(ctx context.Context) error {
	lc, err := s.connectListener(ctx)
	if err != nil {
		s.pool.Close()
		return fmt.Errorf("postgres: listen: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go s.listen(bg, lc)
	go s.notifyLoop(bg)
	if !settleLoopOff {
		s.wg.Add(1)
		go s.settleLoop(bg)
	}
	return nil
}

// connConfig parses url and applies what every connection of the driver
// shares (pgdb.ParseConfig): search_path, application_name "longhook" and
// a 10 s connect timeout.
func connConfig(url, schema string) (*pgxpool.Config, error) {
	if schema != "" && !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("postgres: schema %q must match %s", schema, schemaName)
	}
	pcfg, err := pgdb.ParseConfig(url, schema, "longhook", 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	return pcfg, nil
}

// connect opens one connection outside the pool (migrations, the
// listener).
func connect(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	registerTypes(c)
	return c, nil
}

// registerTypes makes scanned timestamptz values UTC, so they compare
// equal (reflect.DeepEqual) to what was written, and the column arrays
// of arrays.go encode themselves.
func registerTypes(c *pgx.Conn) {
	c.TypeMap().RegisterType(&pgtype.Type{
		Name: "timestamptz", OID: pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
	registerBinaryArrays(c.TypeMap())
}

// wakeChannel is the NOTIFY channel of a schema: stores of different
// schemas in one database do not wake each other.
func wakeChannel(schema string) string {
	const base = "longhook_wake"
	switch {
	case schema == "":
		return base
	case len(base)+1+len(schema) <= 63:
		return base + "_" + schema
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(schema))
	return fmt.Sprintf("%s_%016x", base, h.Sum64())
}

// Close stops the listener, sends a pending trailing NOTIFY and closes
// the pool. Safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.notify.takeTrailing() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = s.sendNotify(ctx)
			cancel()
		}
		s.pool.Close()
	})
	return nil
}

// Wake implements core.Store: it fires after this store commits new due
// work, and when another store on the same database and schema does (its
// NOTIFY reaches the listener).
func (s *Store) Wake() <-chan struct{} { return s.wake }

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Capabilities implements core.Store.
func (s *Store) Capabilities() core.Capabilities {
	return core.Capabilities{Driver: "postgres", SharedAcrossProcesses: true}
}

// zeroTime is how the zero time.Time is stored: Go's zero time itself,
// 0001-01-01 00:00:00 UTC, which pgx encodes as is. It sorts before every
// real time, as SQLite's 0 does.
const zeroTime = `'0001-01-01 00:00:00+00'::timestamptz`

// SQL fragments the statements writing deliveries and attempts share.
const (
	// deliveryColumns are the columns of deliveries a delivery's insert
	// sets (the inline attempt's are added by the inserts that set them).
	deliveryColumns = `id, event_id, project_id, webhook_id, uri, dest, event_type, status, queue,
	attempts, next_attempt_time, manual, last_status_code, last_error, schedule_start, create_time,
	update_time, lease_owner, lease_time, schedule_base`

	// inlineAttemptSet is the SET list a completion keeps its attempt in
	// the delivery row with (x: the completion's values, d: the row).
	inlineAttemptSet = `update_time = x.at, inline_attempt = x.number,
	inline_uri = CASE WHEN x.uri = d.uri THEN '' ELSE x.uri END,
	inline_latency_ns = x.latency, inline_response = x.response`

	insertAttemptsInto = `INSERT INTO attempts (delivery_id, number, time, uri, status_code, latency_ns, error, response)`

	// insertInlineAttemptSQL records x's attempt as a row of attempts
	// instead of in the delivery row (the completions' last part).
	insertInlineAttemptSQL = insertAttemptsInto + `
SELECT x.id, x.number, x.at, x.uri, x.code, x.latency, '', x.response`
)

// isUniqueViolation reports whether err is a unique or primary key
// violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// wrap prefixes err for op, mapping pgx.ErrNoRows to core.ErrNotFound and
// key violations to core.ErrAlreadyExists.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows), errors.Is(err, core.ErrNotFound):
		return fmt.Errorf("postgres: %s: %w", op, core.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("postgres: %s: %w: %w", op, core.ErrAlreadyExists, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// orEmpty returns a non-nil slice: pgx encodes a nil slice as NULL, and
// `x <> ALL(NULL)` is never true.
func orEmpty[S ~[]T, T any](s S) S {
	if s == nil {
		return S{}
	}
	return s
}

// leaseNow is the time a claim or lease statement takes as now: nil, for
// which the statements read `coalesce($n, now())` as the database's clock,
// unless the store follows its callers' clock (Options.CallerClock).
func (s *Store) leaseNow(now time.Time) *time.Time {
	if s.callerClock {
		return &now
	}
	return nil
}

// leaseUntil is an absolute lease expiry as ExtendJobLeases takes it: nil
// (the statement adds the time left on the process's clock to the
// database's now()) unless the store follows its callers' clock.
func (s *Store) leaseUntil(until time.Time) *time.Time {
	if s.callerClock {
		return &until
	}
	return nil
}

// micros is a lease duration as the statements take it ($n::int8 *
// interval '1 microsecond').
func micros(d time.Duration) int64 { return d.Microseconds() }
