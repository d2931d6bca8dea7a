// Package postgres is the scale-out implementation of core.Store on
// PostgreSQL (pgx v5): any number of longhook processes share one
// database, claim work with row locks (FOR UPDATE SKIP LOCKED), wake each
// other with LISTEN/NOTIFY and elect a leader with a lease row.
// Capabilities reports SharedAcrossProcesses.
//
// # Schema and migrations
//
// migrations/NNNN_name.sql are embedded and applied in order, each in its
// own transaction, and recorded in schema_migrations (the SQLite driver's
// scheme). MigrateUp (longhook migrate up), and Open with Options.Migrate,
// apply them while holding pg_advisory_lock(class "long", hash of the
// schema), so instances starting together apply each migration once.
// Without Migrate, Open refuses a database with pending migrations
// (ErrPendingMigrations); MigrationStatus lists them.
//
// The tables mirror the SQLite schema with native types: timestamptz for
// times (microseconds, what both drivers round-trip), with the zero
// time.Time stored as itself, 0001-01-01 00:00:00+00, so "unset" sorts
// first exactly as SQLite's 0 and every column stays NOT NULL; bigint
// nanoseconds for durations; text[] and bigint[] for lists; bytea for
// payloads and sealed secrets; json (not jsonb, which would reformat
// user_metadata) for webhook_config. Options.Schema puts everything in one
// schema (search_path); tests use a schema each.
//
// # Claiming: the lease trick
//
// A delivery is due when status = 'pending' AND next_attempt_time <= now,
// read from the partial index deliveries_due (queue, next_attempt_time)
// WHERE status = 'pending'. A claim sets lease_owner and moves
// next_attempt_time to the lease expiry, so a leased delivery is not due,
// and one whose engine died becomes due again when its lease runs out. A
// completion applies only while its owner holds the lease; otherwise just
// the attempt is recorded. Publishing may insert deliveries already leased
// (core.Delivery.LeaseOwner, the engine's direct path).
//
// ClaimDeliveries is one statement, so one round trip and its own
// transaction: three CTEs each walk deliveries_due in due order with
// LIMIT and FOR UPDATE SKIP LOCKED — retries (queue 1) up to a quarter of
// the batch, first attempts (queue 0) for the rest, more retries if room
// remains — then one UPDATE leases the chosen rows, and each event's
// payload comes back once, with its first delivery. Concurrent claimers
// skip each other's locked rows instead of waiting; a row another claimer
// leased after this statement's snapshot fails the re-checked WHERE
// (PostgreSQL re-reads locked rows), so no delivery is claimed twice.
//
// PublishEvents and CompleteDeliveries are one round trip each: a
// pgx.Batch (one implicit transaction) of set-based statements over
// unnested arrays. Idempotency keys live in a partial unique index;
// INSERT ... ON CONFLICT DO NOTHING skips repeats (waiting for a
// concurrent publisher of the same key to commit) and a second statement
// reads the originals back.
//
// # Wake-ups: LISTEN/NOTIFY with a debounce
//
// Commits that make work due (PublishEvents, Redeliver, RecoverDeliveries,
// ReleaseDeliveries) signal Wake in-process at once and send
// pg_notify(channel, store id) to the other processes. The channel is
// "longhook_wake", suffixed by the schema when Options.Schema is set.
//
// The debounce is on the sending side: a NOTIFY serialises committing
// transactions on a database-wide lock, so each store sends at most one
// per 2 ms window. The first commit of a window carries the NOTIFY inside
// its own transaction (it fires on commit, no extra round trip); commits
// later in the window only mark a trailing NOTIFY, sent once when the
// window ends. Every commit is thus announced within about 2 ms, and a
// burst costs two NOTIFYs. On the receiving side a dedicated connection
// (outside the pool: LISTEN is session state) forwards notifications into
// Wake's one-slot channel, which coalesces them; a store ignores its own
// (the payload is its id). Should that connection fail, the listener
// reconnects with exponential backoff (100 ms to 5 s, jittered) and then
// signals Wake once, since work may have arrived meanwhile; an idle
// connection is pinged every 30 s so that a silently dead one is noticed.
//
// Webhook changes use the same channel with the payload "w:" + store id +
// ":" + project id ("" for any project), sent inside the changing
// transaction (CreateWebhook, UpdateWebhook, DeleteWebhook, a completion
// that disables a webhook) or right after it (DisableFailingWebhooks),
// without the debounce (they are rare). The listener hands them to the
// OnWebhooksChanged callback (core.WebhookChangeNotifier) instead of Wake:
// serve drops the publisher's cached subscription lists with it.
//
// # Leader lease
//
// AcquireLease is one INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE
// leases.owner = $owner OR leases.expire_time <= $now RETURNING owner.
// The upsert is atomic: concurrent callers serialise on the row and each
// re-checks the WHERE against the row as the previous one left it, so one
// caller wins a free or expired lease and the holder renews its own.
//
//	                   acquire: no row, expired, or ours
//	  ┌──────────┐ ─────────────────────────────────────► ┌────────┐
//	  │ follower │                                        │ leader │ ─┐ renew before
//	  └──────────┘ ◄───────────────────────────────────── └────────┘ ◄┘ expire_time
//	     │    ▲     renew fails (another owner took the
//	     └────┘     expired lease), or ReleaseLease
//	acquire fails: another
//	owner holds an unexpired lease
//
// Lease times come from the callers' clocks, which must roughly agree
// (NTP); a leader must renew well within the TTL.
//
// # Operations
//
// Connections: a pgxpool.Pool (Options.MaxConns, default 16) plus the
// listener's connection. Every connection has statement_timeout and
// idle_in_transaction_session_timeout (Options.StatementTimeout, default
// 30 s) and application_name "longhook". pgxpool pings a connection idle
// for over a second before use (5 s ping timeout), destroys one that
// comes back closed, busy or inside a transaction, and closes connections
// after an hour, or after 10 minutes idle (health check every minute).
// When a request finds its connection broken, the driver resets the pool
// (after a server restart every idle connection is dead too; those in use
// are closed on release). Replacements are dialed lazily by the next
// request, so nothing reuses a dead connection and nothing reconnects in
// a loop. The pool settings come from Options and the constants in
// pool.go; pool_* URL parameters are taken out of the URL and not sent to
// the server. Statements are prepared once per connection (pgx's
// statement cache); behind PgBouncer in transaction mode add
// default_query_exec_mode=exec to the URL.
//
// Retries: each method runs with up to 5 attempts, backing off from 25 ms
// (±50 %), for serialization failures and deadlocks (rolled back, always
// safe), failures to connect and errors pgconn knows happened before
// anything was sent. A connection lost mid-request leaves the outcome
// unknown; that is retried only by operations that can run twice:
// reads, claims (a lost claim's leases just expire), releases, leases,
// Redeliver, and PublishEvents, whose retry skips events whose id already
// exists, so a publish that did commit reports success rather than a
// duplicate-id error. CompleteDeliveries and the other writes return the
// error instead of risking a second attempt row. A PostgreSQL restart
// therefore looks like a pause of a second or so: in-flight requests are
// retried, the pool redials, the listener reconnects and wakes its engine.
//
// Every claim and completion rewrites an indexed column (no HOT updates),
// so deliveries has an eager autovacuum (scale factor 0.05); the claim
// statement only reads the live range of deliveries_due.
package postgres
