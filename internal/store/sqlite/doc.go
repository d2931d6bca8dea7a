// Package sqlite is the embedded default implementation of core.Store: one
// SQLite file (pure-Go driver modernc.org/sqlite, WAL mode) that needs
// nothing else installed.
//
// # Connections
//
// All writes go through one *sql.DB limited to a single connection whose
// transactions begin IMMEDIATE, so writers queue in Go instead of failing
// with SQLITE_BUSY, and the hot statements (publish, claim, complete) are
// prepared once on that connection. The publish and completion
// transactions run on the driver connection itself (raw.go), without
// database/sql's per-transaction and per-statement work. Reads use a
// separate pool of query-only connections; in WAL mode they read a
// committed snapshot and never wait for the writer.
//
// Durability: synchronous=NORMAL (the default) survives a crash or kill -9
// of the process; power loss or an OS crash may lose the last few commits.
// Options{Synchronous: "FULL"} trades an fsync per commit for surviving
// those too.
//
// # Schema
//
// The schema lives in migrations/NNNN_name.sql, embedded and applied in
// order on Open inside IMMEDIATE transactions; schema_migrations records
// what ran (the PostgreSQL driver mirrors this). Timestamps are INTEGER
// unix microseconds in UTC, with 0 for the zero time.Time; durations are
// nanoseconds; lists are JSON text; secrets and private keys are stored as
// the ciphertext BLOBs the caller sealed.
//
//	projects, api_keys (digest UNIQUE), signing_keys, leases
//	webhooks + webhook_secrets        subscribed_events JSON; failure run
//	events                            payload BLOB; UNIQUE (project_id,
//	                                  idempotency_key) WHERE key != ''
//	                                  first_delivery..last_delivery: the
//	                                  range of its deliveries' ids, where
//	                                  the retention sweep looks for
//	                                  pending ones (no index on event_id)
//	deliveries                        the queue and its history; a final
//	                                  success without an error is kept in
//	                                  its row (inline_attempt, ...)
//	attempts                          one row per other HTTP attempt
//	                                  (≤ 4 KiB body)
//	lease_spans                       per publish of deliveries inserted
//	                                  leased: their id range, earliest
//	                                  lease expiry (swept by claims)
//
// # The queue and the lease trick
//
// A delivery is due when status = 'pending' AND next_attempt_time <= now.
// Claiming sets lease_owner and moves next_attempt_time to the lease
// expiry, so a leased delivery is simply not due, and one whose engine died
// becomes due again when its lease runs out, with no separate sweep.
// Completing clears lease_owner and sets either the retry time or a
// terminal status; a completion whose owner no longer holds the lease
// records its attempt but leaves the delivery alone. lease_time keeps the
// claim time so ReleaseDeliveries can make a delivery due again at once.
// The engine's direct path inserts fresh deliveries already leased
// (core.Delivery.LeaseOwner, next_attempt_time = lease expiry), which
// skips the claim statement entirely. They are inserted with status
// 'leased', outside deliveries_due (migration 0012: their entry would be
// read only if the lease expired first), and the publish records their
// id range and earliest expiry in lease_spans; a claim sweeps the spans
// that expire (or are a second old) back to 'pending', so should that
// engine die, the lease expires like any other. Every reader of status
// takes 'leased' for 'pending'.
//
// queue is 0 for deliveries never attempted (and for :redeliver and
// :recover) and 1 for retries. The partial index
//
//	deliveries_due (queue, next_attempt_time, dest, lease_owner) WHERE status = 'pending'
//
// holds only the pending rows, ordered by due time within each queue, so a
// claim is an index range scan that stops after LIMIT rows: a million
// retries scheduled for later cost a due first attempt nothing. The index
// also covers the dest filter (ExcludeDests), NextDueTime and QueueDepth.
// Each claim takes a quarter of its batch from the retries first, then
// first attempts, then tops up with retries, so neither queue starves.
//
// # Throughput
//
// The hot statements run once per batch where SQLite allows it: one
// transaction per PublishEvents call with 32-row INSERTs, one UPDATE ...
// RETURNING per queue per claim, one transaction per CompleteDeliveries
// batch with prepared per-row statements and one failure-run UPDATE per
// distinct webhook. storetest.RunBenchmarks measures them; the cost is
// dominated by SQLite's own b-tree work in the pure-Go build, roughly
// 15 µs of CPU per delivery for each of publish, claim and complete.
//
// # Limits
//
// Wake only sees commits made through this Store: SQLite has no
// cross-process notification, and Capabilities reports the store as not
// shared across processes (leases and migrations are still correct if two
// processes open one file, but the engine assumes one).
package sqlite
