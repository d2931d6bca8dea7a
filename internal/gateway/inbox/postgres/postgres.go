package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/longhook/longhook/internal/gateway/inbox"
	"github.com/longhook/longhook/internal/groupcommit"
	"github.com/longhook/longhook/internal/pgdb"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/schema"
)

// ErrInboxLocked is returned by Open when another gateway
// process holds the inbox: in-flight forwards are tracked in memory, so
// two gateways on one inbox would each forward the other's events.
var ErrInboxLocked = errors.New("gateway: postgres: another gateway holds this inbox")

// pgMigrations holds the inbox schema as numbered SQL files, applied in
// name order on open and recorded in gateway_schema_migrations (the naming
// scheme of the store drivers, in a table of the gateway's own).
//
//go:embed migrations/*.sql
var pgMigrations embed.FS

const (
	// pgLockClass is the first key of the inbox's session advisory lock
	// ("gate"); the second is a hash of the schema name, so inboxes in
	// different schemas of one database are independent.
	pgLockClass int32 = 0x67617465
	// The writer retries transient failures with a jittered exponential
	// backoff from pgRetryBase to pgRetryMax; a write still failing
	// pgRetryBudget after the failures began is answered with its error
	// (the request gets 503), and later writes fail at once until the
	// writer has reconnected, which it keeps trying at the backoff pace.
	pgRetryBase   = 25 * time.Millisecond
	pgRetryMax    = 2 * time.Second
	pgRetryBudget = 10 * time.Second
	// pgIdlePing is how long the writer's connection may sit idle before
	// it is checked, so a lost session (and with it the lock) is noticed
	// and re-established before the next write needs it.
	pgIdlePing = 5 * time.Second
	// pgConnectTimeout bounds a connection attempt unless the URL sets
	// connect_timeout.
	pgConnectTimeout = 5 * time.Second
)

// Options tunes a Inbox; the zero value uses the defaults
// documented on each field.
type Options struct {
	// Schema, when set, is the only entry of search_path and is created
	// if missing. Otherwise the tables live in the first schema of the
	// URL's search_path (?search_path=NAME) or the server's default.
	Schema string
	// MaxConns caps the read pool (default 8, or pool_max_conns in the
	// URL); the writer has one more connection of its own, which holds
	// the inbox lock.
	MaxConns int32
	// StatementTimeout is the server-side statement_timeout of every
	// connection (default 10 s). Migrations run without it.
	StatementTimeout time.Duration
	// LockWait is how long Open waits for a predecessor's lock to go away
	// (a crashed gateway's session ends moments after it) before failing
	// with ErrInboxLocked (default 5 s; negative: do not wait).
	LockWait time.Duration
	// Logger receives the writer's retries and reconnections (default:
	// discarded).
	Logger *slog.Logger

	// now and sleep are the clock of Open's wait for the lock (default:
	// time.Now and core.Sleep); tests set them.
	now   func() time.Time
	sleep func(context.Context, time.Duration) bool
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = 8
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 10 * time.Second
	}
	if o.LockWait == 0 {
		o.LockWait = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.sleep == nil {
		o.sleep = core.Sleep
	}
	return o
}

// Inbox is the inbox.Inbox on PostgreSQL: the same log, cursors and
// retry table as the SQLite inbox (inbox/sqlite), in tables prefixed gateway_.
//
// # One writer
//
// Every write is an operation sent to one writer goroutine, which owns
// one dedicated connection. It sends whatever has queued up while the
// previous transaction committed (up to inbox.MaxGroup operations or
// inbox.MaxGroupBytes; see internal/groupcommit) as a single
// pipelined batch, one round trip run by PostgreSQL as one implicit
// transaction, and releases the callers only once the batch has come
// back, that is once the transaction has committed. The accepts of a
// group are one multi-row INSERT ... ON CONFLICT (source, webhook_id) DO
// NOTHING; a duplicate gets the original Seq.
//
// # Order and exclusivity
//
// After promises that a reader never passes an event that commits later,
// so Seq must grow in commit order. Identity values are allocated when a
// row is inserted, not when it commits, so two concurrent transactions
// could commit out of order. Here there is never a second one: the writer
// connection takes a session-level advisory lock (pg_try_advisory_lock)
// and every write runs on that connection, one transaction after the
// other. No other session can hold the lock, and a session that lost its
// connection has ended (its transaction committed or rolled back, its
// lock released) before a new one can take the lock. So the lock both
// keeps a second gateway out (Open fails with ErrInboxLocked) and orders
// the log; a transaction-level lock per commit would add a statement and
// nothing else. If the writer's session is lost and another gateway takes
// the lock meanwhile, writes fail (503) and Ping reports it until this
// process gets the lock back: an inbox is never written by two gateways.
//
// # Failures
//
// A batch that fails on a lost connection may or may not have committed.
// Every write is safe to repeat (inserts dedupe, the rest set absolute
// values), so the writer reconnects with backoff, takes the lock again
// and retries, for up to pgRetryBudget; a caller whose context ends first
// gets its error (so a request is answered 503, never a false 2xx). After
// any failure the writer re-reads the highest Seq before its next write:
// events committed by a batch whose answer was lost are then read from
// the table by forwarders and streams, not missed by the in-memory tail.
type Inbox struct {
	pool        *pgxpool.Pool
	wcfg        *pgx.ConnConfig // the writer's connection
	log         *slog.Logger
	schema      string // the schema holding the tables
	lockKey     int32  // second advisory lock key (hash of schema)
	stmtTimeout time.Duration

	w     pgWriter // owned by the writer's goroutine (and by Open before it starts)
	q     *groupcommit.Writer[*pgOp]
	floor int64 // see commit; the writer's goroutine only

	changed *inbox.ChangeSignal
	tail    atomic.Pointer[inbox.Tail]
	// down is the writer's last failure while it cannot write (lost
	// connection, lock held elsewhere), nil when it can; Ping reports it.
	down atomic.Pointer[error]

	nCommits, nOps atomic.Int64 // group-commit statistics
	nDials         atomic.Int64 // writer connection attempts (tests)
	// afterBatch, set by tests, runs after each batch has committed and
	// may fail it as if its answer had been lost.
	afterBatch atomic.Pointer[func(c *pgx.Conn) error]

	closeOnce sync.Once
	closeErr  error
}

var _ inbox.Inbox = (*Inbox)(nil)

// Open connects to the database at url (postgres://...),
// takes the inbox lock (ErrInboxLocked if another gateway has it), applies
// pending migrations and starts the writer. The inbox must be closed.
func Open(ctx context.Context, url string, o Options) (*Inbox, error) {
	o = o.withDefaults()
	if o.Schema != "" && !pgdb.SchemaName.MatchString(o.Schema) {
		return nil, fmt.Errorf("gateway: postgres: schema %q must match %s", o.Schema, pgdb.SchemaName)
	}
	pcfg, err := pgdb.ParseConfig(url, o.Schema, "longhook gateway", pgConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("gateway: postgres: %w", err)
	}
	cc := pcfg.ConnConfig
	timeout := strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	cc.RuntimeParams["statement_timeout"] = timeout
	maxConns := o.MaxConns
	if strings.Contains(url, "pool_max_conns") { // the URL's setting wins
		maxConns = 0
	}

	// The writer's session ends its transactions at once; one left idle
	// in a transaction, or a session whose client vanished without
	// closing the socket, would keep the lock (and the writes) hostage.
	wcfg := cc.Copy()
	wcfg.RuntimeParams["idle_in_transaction_session_timeout"] = timeout
	wcfg.RuntimeParams["tcp_keepalives_idle"] = "10"
	wcfg.RuntimeParams["tcp_keepalives_interval"] = "5"
	wcfg.RuntimeParams["tcp_keepalives_count"] = "3"

	s := &Inbox{wcfg: wcfg, log: o.Logger, stmtTimeout: o.StatementTimeout, changed: inbox.NewChangeSignal()}
	c, err := s.open(ctx, o)
	if err != nil {
		return nil, err
	}
	if s.pool, err = pgdb.NewPool(ctx, pcfg, maxConns, nil); err != nil {
		pgdb.CloseConn(c)
		return nil, fmt.Errorf("gateway: postgres: pool: %w", err)
	}
	s.w.conn, s.w.lastUse = c, time.Now()
	s.q = s.newWriter()
	return s, nil
}

// open makes the writer's first connection: it resolves the schema, takes
// the lock (waiting up to o.LockWait), migrates and loads the tail.
func (s *Inbox) open(ctx context.Context, o Options) (*pgx.Conn, error) {
	s.nDials.Add(1)
	c, err := pgx.ConnectConfig(ctx, s.wcfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: postgres: connect: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			pgdb.CloseConn(c)
		}
	}()
	if o.Schema != "" {
		if _, err := c.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{o.Schema}.Sanitize()); err != nil {
			return nil, fmt.Errorf("gateway: postgres: create schema: %w", err)
		}
	}
	var cur *string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
		return nil, fmt.Errorf("gateway: postgres: %w", err)
	}
	if cur == nil {
		return nil, errors.New("gateway: postgres: no schema of search_path exists (create it, or set ?search_path= in the URL)")
	}
	s.schema = *cur
	h := fnv.New32a()
	_, _ = h.Write([]byte(s.schema))
	s.lockKey = int32(h.Sum32())

	wait, deadline := 50*time.Millisecond, o.now().Add(o.LockWait)
	for {
		err = s.lock(ctx, c, false)
		if err == nil || !errors.Is(err, ErrInboxLocked) || o.now().Add(wait).After(deadline) {
			break
		}
		if !o.sleep(ctx, wait) {
			return nil, ctx.Err()
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx, c); err != nil {
		return nil, err
	}
	var last int64
	if err := c.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM gateway_events`).Scan(&last); err != nil {
		return nil, fmt.Errorf("gateway: postgres: %w", err)
	}
	s.tail.Store(inbox.NewTail(last, inbox.TailEvents, inbox.TailBytes))
	ok = true
	return c, nil
}

// lock takes the inbox lock on c and prepares the session for writing.
// When reconnecting, a lock still held by this process's previous session
// (cut off from us, not yet noticed by the server) is broken.
func (s *Inbox) lock(ctx context.Context, c *pgx.Conn, reconnect bool) error {
	var got bool
	var sync string
	var pid int32
	var started *time.Time
	err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2), current_setting('synchronous_commit'), pg_backend_pid(),
		(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())`,
		pgLockClass, s.lockKey).Scan(&got, &sync, &pid, &started)
	if err != nil {
		return fmt.Errorf("gateway: postgres: lock: %w", err)
	}
	if !got {
		h, err := s.holder(ctx, c)
		if err != nil {
			return fmt.Errorf("%w (schema %q)", ErrInboxLocked, s.schema)
		}
		if reconnect && h.pid == s.w.pid && h.started != nil && s.w.started != nil && h.started.Equal(*s.w.started) {
			if _, err := c.Exec(ctx, `SELECT pg_terminate_backend($1)`, h.pid); err != nil {
				return fmt.Errorf("gateway: postgres: end the previous writer session: %w", err)
			}
			return fmt.Errorf("gateway: postgres: the previous writer session (pid %d) still held the inbox lock; ended it", h.pid)
		}
		return fmt.Errorf("%w (schema %q; %s)", ErrInboxLocked, s.schema, h)
	}
	// The gateway answers 2xx after a commit: that commit must be durable.
	if sync == "off" {
		if _, err := c.Exec(ctx, `SET synchronous_commit = on`); err != nil {
			return fmt.Errorf("gateway: postgres: %w", err)
		}
	}
	s.w.pid, s.w.started = pid, started
	return nil
}

// pgHolder describes the session holding the inbox lock.
type pgHolder struct {
	pid     int32
	app     string
	addr    string
	started *time.Time
}

func (h pgHolder) String() string {
	s := fmt.Sprintf("held by pid %d, application %q, client %s", h.pid, h.app, h.addr)
	if h.started != nil {
		s += ", since " + h.started.Format(time.RFC3339)
	}
	return s
}

func (s *Inbox) holder(ctx context.Context, c *pgx.Conn) (pgHolder, error) {
	var h pgHolder
	err := c.QueryRow(ctx, `SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), a.backend_start
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND l.classid::bigint = $1 AND l.objid::bigint = $2 LIMIT 1`,
		int64(uint32(pgLockClass)), int64(uint32(s.lockKey))).Scan(&h.pid, &h.app, &h.addr, &h.started)
	return h, err
}

// migrate applies the embedded migrations this inbox lacks. It runs with
// the inbox lock held, so one gateway migrates at a time.
func (s *Inbox) migrate(ctx context.Context, c *pgx.Conn) error {
	list, err := schema.Load(pgMigrations, "migrations")
	if err != nil {
		return fmt.Errorf("gateway: postgres: migrate: %w", err)
	}
	ms := pgdb.Migrations{Table: "gateway_schema_migrations", List: list}
	if _, _, unknown, err := ms.Status(ctx, c); err != nil {
		return fmt.Errorf("gateway: postgres: migrate: %w", err)
	} else if len(unknown) > 0 {
		return fmt.Errorf("gateway: postgres: the inbox has migration %s, which this gateway does not know: it was written by a newer version", unknown[0])
	}
	_, _, err = ms.Up(ctx, c, func(v string) {
		s.log.Info("gateway.inbox.migrated", slog.String("version", v), slog.String("schema", s.schema))
	})
	if err != nil {
		return fmt.Errorf("gateway: postgres: migrate %w", err)
	}
	return nil
}

// Accept implements inbox.Inbox.
func (s *Inbox) Accept(ctx context.Context, p inbox.AcceptParams) (inbox.AcceptResult, error) {
	a := &pgAccept{p: p, id: nonNil([]byte(p.WebhookID)), typ: pgText(p.Type),
		headers: nonNil([]byte(inbox.EncodeHeader(p.Header))), body: nonNil(p.Body)}
	if err := s.q.Submit(ctx, &pgOp{accept: a}); err != nil {
		return inbox.AcceptResult{}, fmt.Errorf("gateway: postgres: accept: %w", err)
	}
	return a.res, nil
}

// SetCursor implements inbox.Inbox.
func (s *Inbox) SetCursor(ctx context.Context, sink string, seq int64) error {
	err := s.q.Submit(ctx, &pgOp{sql: `INSERT INTO gateway_cursors (sink, seq) VALUES ($1, $2)
		ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq`, args: []any{sink, seq}})
	if err != nil {
		return fmt.Errorf("gateway: postgres: set cursor: %w", err)
	}
	return nil
}

// AddRetry implements inbox.Inbox.
func (s *Inbox) AddRetry(ctx context.Context, p inbox.RetryParams) error {
	err := s.q.Submit(ctx, &pgOp{sql: `INSERT INTO gateway_retries (seq, sink, attempts, next_at, last_error, dead)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (seq, sink) DO UPDATE SET attempts = excluded.attempts,
		next_at = excluded.next_at, last_error = excluded.last_error, dead = excluded.dead`,
		args: []any{p.Seq, p.Sink, p.Attempts, pgNextAt(p), pgText(p.LastError), p.Dead}})
	if err != nil {
		return fmt.Errorf("gateway: postgres: add retry: %w", err)
	}
	return nil
}

// UpdateRetry implements inbox.Inbox.
func (s *Inbox) UpdateRetry(ctx context.Context, p inbox.RetryParams) error {
	op := &pgOp{sql: `UPDATE gateway_retries SET attempts = $1, next_at = $2, last_error = $3, dead = $4
		WHERE seq = $5 AND sink = $6`, args: []any{p.Attempts, pgNextAt(p), pgText(p.LastError), p.Dead, p.Seq, p.Sink}}
	if p.Done {
		op = &pgOp{sql: `DELETE FROM gateway_retries WHERE seq = $1 AND sink = $2`, args: []any{p.Seq, p.Sink}}
	}
	if err := s.q.Submit(ctx, op); err != nil {
		return fmt.Errorf("gateway: postgres: update retry: %w", err)
	}
	return nil
}

// pgNextAt is a retry's next time; a dead one never comes due.
func pgNextAt(p inbox.RetryParams) pgtype.Timestamptz {
	if p.Dead {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: p.NextAt, Valid: true}
}

// Sweep implements inbox.Inbox. Like the SQLite inbox, it keeps the newest event,
// so LastSeq never goes down.
func (s *Inbox) Sweep(ctx context.Context, p inbox.SweepParams) (int, error) {
	var n int64
	err := s.q.Submit(ctx, &pgOp{sql: `DELETE FROM gateway_events WHERE seq IN (SELECT e.seq FROM gateway_events e
		WHERE e.source = $1 AND e.expire_at < $2 AND e.seq <= $3
		AND e.seq < (SELECT max(seq) FROM gateway_events)
		AND NOT EXISTS (SELECT 1 FROM gateway_retries r WHERE r.seq = e.seq) LIMIT $4)`,
		args: []any{p.Source, p.Now, p.Upto, p.Limit}, tag: func(t pgconn.CommandTag) { n = t.RowsAffected() }})
	if err != nil {
		return 0, fmt.Errorf("gateway: postgres: sweep: %w", err)
	}
	return int(n), nil
}

// Cursor implements inbox.Inbox.
func (s *Inbox) Cursor(ctx context.Context, sink string) (int64, bool, error) {
	var seq int64
	var ok bool
	err := s.read(ctx, func(c *pgx.Conn) error {
		err := c.QueryRow(ctx, `SELECT seq FROM gateway_cursors WHERE sink = $1`, sink).Scan(&seq)
		ok = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("gateway: postgres: cursor: %w", err)
	}
	return seq, ok, nil
}

const pgEventColumns = `seq, source, webhook_id, type, headers, body, received_at`

func scanEvent(row pgx.CollectableRow) (inbox.Event, error) {
	var e inbox.Event
	var id, headers []byte
	err := row.Scan(&e.Seq, &e.Source, &id, &e.Type, &headers, &e.Body, &e.ReceivedAt)
	e.WebhookID, e.Header = string(id), inbox.DecodeHeader(string(headers))
	return e, err
}

// After implements inbox.Inbox. Readers that keep up are served from the
// in-memory tail; others read the table up to the tail's last position,
// which every event at or below has committed (or never will: see the
// type's comment on order).
func (s *Inbox) After(ctx context.Context, source string, after int64, limit int) ([]inbox.Event, int64, error) {
	t := s.tail.Load()
	if evs, next, ok := t.After(source, after, limit); ok {
		return evs, next, nil
	}
	hi := t.LastSeq()
	var out []inbox.Event
	err := s.read(ctx, func(c *pgx.Conn) error {
		rows, _ := c.Query(ctx, `SELECT `+pgEventColumns+` FROM gateway_events
			WHERE seq > $1 AND seq <= $2 AND source = $3 ORDER BY seq LIMIT $4`, after, hi, source, limit)
		var err error
		out, err = pgx.CollectRows(rows, scanEvent)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("gateway: postgres: after: %w", err)
	}
	if len(out) == limit {
		return out, out[len(out)-1].Seq, nil
	}
	return out, max(after, hi), nil
}

// DueRetries implements inbox.Inbox. It pages through the due retries' keys
// (skipping those in flight) and then reads the chosen events, so a long
// backlog of a dead sink is never read whole.
func (s *Inbox) DueRetries(ctx context.Context, sink string, now time.Time, limit int, skip func(int64) bool) ([]inbox.Forward, error) {
	type due struct {
		seq      int64
		attempts int
	}
	var picked []due
	page := max(2*limit, 64)
	afterAt := pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	afterSeq := int64(0)
	for len(picked) < limit {
		var n int
		err := s.read(ctx, func(c *pgx.Conn) error {
			n = 0
			rows, _ := c.Query(ctx, `SELECT seq, attempts, next_at FROM gateway_retries
				WHERE sink = $1 AND next_at <= $2 AND (next_at, seq) > ($3, $4)
				ORDER BY next_at, seq LIMIT $5`, sink, now, afterAt, afterSeq, page)
			var d due
			var at pgtype.Timestamptz
			_, err := pgx.ForEachRow(rows, []any{&d.seq, &d.attempts, &at}, func() error {
				n++
				afterAt, afterSeq = at, d.seq
				if len(picked) < limit && (skip == nil || !skip(d.seq)) {
					picked = append(picked, d)
				}
				return nil
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("gateway: postgres: due retries: %w", err)
		}
		if n < page {
			break
		}
	}
	if len(picked) == 0 {
		return nil, nil
	}
	seqs := make([]int64, len(picked))
	for i, d := range picked {
		seqs[i] = d.seq
	}
	var evs []inbox.Event
	err := s.read(ctx, func(c *pgx.Conn) error {
		rows, _ := c.Query(ctx, `SELECT `+pgEventColumns+` FROM gateway_events WHERE seq = ANY($1)`, seqs)
		var err error
		evs, err = pgx.CollectRows(rows, scanEvent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: postgres: due retries: %w", err)
	}
	bySeq := make(map[int64]inbox.Event, len(evs))
	for _, e := range evs {
		bySeq[e.Seq] = e
	}
	out := make([]inbox.Forward, 0, len(picked))
	for _, d := range picked {
		if e, ok := bySeq[d.seq]; ok { // the sweep keeps events with retries
			out = append(out, inbox.Forward{Event: e, Sink: sink, Attempts: d.attempts})
		}
	}
	return out, nil
}

// Since implements inbox.Inbox.
func (s *Inbox) Since(ctx context.Context, source string, t time.Time) (int64, int64, error) {
	var first *int64
	var n int64
	err := s.read(ctx, func(c *pgx.Conn) error {
		if err := c.QueryRow(ctx, `SELECT min(seq) FROM gateway_events WHERE source = $1 AND received_at >= $2`,
			source, t).Scan(&first); err != nil || first == nil {
			return err
		}
		return c.QueryRow(ctx, `SELECT count(*) FROM gateway_events WHERE source = $1 AND seq >= $2`,
			source, *first).Scan(&n)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("gateway: postgres: since: %w", err)
	}
	if first == nil {
		last, err := s.LastSeq(ctx)
		return last, 0, err
	}
	return *first - 1, n, nil
}

// LastSeq implements inbox.Inbox.
func (s *Inbox) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.read(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM gateway_events`).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("gateway: postgres: last seq: %w", err)
	}
	return seq, nil
}

// PendingRetries implements inbox.Inbox.
func (s *Inbox) PendingRetries(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.read(ctx, func(c *pgx.Conn) error {
		clear(out)
		rows, _ := c.Query(ctx, `SELECT sink, count(*) FROM gateway_retries WHERE NOT dead GROUP BY sink`)
		var sink string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&sink, &n}, func() error {
			out[sink] = n
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: postgres: pending: %w", err)
	}
	return out, nil
}

// Changed implements inbox.Inbox.
func (s *Inbox) Changed() <-chan struct{} { return s.changed.Wait() }

// Ping implements inbox.Inbox: the read pool answers and the writer can write
// (it holds its connection and the lock).
func (s *Inbox) Ping(ctx context.Context) error {
	if s.q.Closed() {
		return inbox.ErrClosed
	}
	if err := s.down.Load(); err != nil {
		return fmt.Errorf("gateway: postgres: writer: %w", *err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("gateway: postgres: ping: %w", err)
	}
	return nil
}

// CommitStats reports how many transactions the writer committed and how
// many operations they held: ops/commits is the mean group size.
func (s *Inbox) CommitStats() (commits, ops int64) { return s.nCommits.Load(), s.nOps.Load() }

// Close commits the operations already queued (retrying them while the
// database is unreachable, for up to pgRetryBudget), releases the lock
// and closes the connections. It is safe to call twice.
func (s *Inbox) Close() error {
	s.closeOnce.Do(func() {
		s.q.Close()
		if s.w.conn != nil {
			pgdb.CloseConn(s.w.conn) // ends the session, which releases the lock
			s.w.conn = nil
		}
		s.pool.Close()
	})
	return s.closeErr
}

// read runs fn on a pool connection, retrying transient failures (reads
// are safe to repeat) with backoff for up to pgRetryBudget or until ctx
// ends.
func (s *Inbox) read(ctx context.Context, fn func(c *pgx.Conn) error) error {
	if s.q.Closed() {
		return inbox.ErrClosed
	}
	deadline := time.Now().Add(pgRetryBudget)
	for failures := 1; ; failures++ {
		err := s.readOnce(ctx, fn)
		if err == nil || ctx.Err() != nil || !pgdb.Transient(err) {
			return err
		}
		d := pgBackoff(failures)
		if time.Now().Add(d).After(deadline) || !core.Sleep(ctx, d) {
			return err
		}
	}
}

// readOnce is one attempt of read. A connection found closed after a
// failure resets the pool: after a server restart every idle connection
// is dead too, and pgxpool hands out one idle for under a second without
// pinging it.
func (s *Inbox) readOnce(ctx context.Context, fn func(c *pgx.Conn) error) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			return &pgdb.LostError{Err: err}
		}
		return err
	}
	c := pc.Conn()
	err = fn(c)
	broken := err != nil && c.IsClosed() && ctx.Err() == nil
	pc.Release()
	if broken {
		s.pool.Reset()
		return &pgdb.LostError{Err: err}
	}
	return err
}

// pgBackoff is the wait after the n-th consecutive failure: pgRetryBase
// doubled per failure up to pgRetryMax, with ±50 % jitter so gateways
// restarting together do not reconnect in step.
func pgBackoff(n int) time.Duration {
	d := pgRetryBase
	for i := 1; i < n && d < pgRetryMax; i++ {
		d *= 2
	}
	d = min(d, pgRetryMax)
	return d/2 + rand.N(d)
}

// pgText makes s storable as PostgreSQL text, which refuses NUL and
// invalid UTF-8 (both replaced by U+FFFD).
func pgText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// nonNil maps nil to an empty slice: pgx sends nil as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
