-- 0001_init: the whole longhook schema (PostgreSQL). It mirrors the SQLite
-- schema (internal/store/sqlite/migrations/0001_init.sql) table for table.
--
-- Conventions: timestamps are timestamptz (microseconds, like Go's
-- round-trip through the driver); the zero time.Time is stored as itself,
-- 0001-01-01 00:00:00+00, so "unset" sorts first and columns stay NOT NULL.
-- Durations are bigint nanoseconds; lists are arrays; secrets and private
-- keys are the ciphertext the caller sealed; payloads are the exact bytes
-- sent. Tables are created in the first schema of search_path.

CREATE TABLE projects (
    id          text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);

CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    project_id  text NOT NULL DEFAULT '',
    name        text NOT NULL DEFAULT '',
    digest      bytea NOT NULL UNIQUE,
    hint        text NOT NULL DEFAULT '',
    admin       boolean NOT NULL DEFAULT false,
    create_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    revoke_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);
CREATE INDEX api_keys_project ON api_keys (project_id, id);

CREATE TABLE webhooks (
    id                   text PRIMARY KEY,
    project_id           text NOT NULL,
    name                 text NOT NULL DEFAULT '',
    uri                  text NOT NULL,
    subscribed_events    text[] NOT NULL DEFAULT '{}',
    state                text NOT NULL,
    retry_schedule       bigint[] NOT NULL DEFAULT '{}',
    create_time          timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    update_time          timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    failing_since        timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    consecutive_failures integer NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_project ON webhooks (project_id, id);

CREATE TABLE webhook_secrets (
    webhook_id  text NOT NULL,
    id          text NOT NULL,
    sealed      bytea NOT NULL,
    hint        text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    expire_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    PRIMARY KEY (webhook_id, id)
);

-- dynamic is json, not jsonb: user_metadata must come back byte for byte.
CREATE TABLE events (
    id              text PRIMARY KEY,
    project_id      text NOT NULL,
    type            text NOT NULL,
    subject         text NOT NULL DEFAULT '',
    payload         bytea NOT NULL,
    dynamic         json,
    idempotency_key text NOT NULL DEFAULT '',
    delivery_count  integer NOT NULL DEFAULT 0,
    create_time     timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);
CREATE UNIQUE INDEX events_idempotency ON events (project_id, idempotency_key)
    WHERE idempotency_key <> '';
CREATE INDEX events_create_time ON events (create_time);

-- deliveries is the queue and its history. The lease trick: a claim sets
-- lease_owner and moves next_attempt_time to the lease expiry, so "due" is
-- always status = 'pending' AND next_attempt_time <= now. queue is 0 until
-- the first attempt fails and 1 afterwards, so first attempts and retries
-- sit in separate ranges of deliveries_due. Every claim and completion
-- rewrites an indexed column (no HOT updates), hence the eager autovacuum.
CREATE TABLE deliveries (
    id                text PRIMARY KEY,
    event_id          text NOT NULL,
    project_id        text NOT NULL,
    webhook_id        text NOT NULL DEFAULT '',
    uri               text NOT NULL DEFAULT '',
    dest              text NOT NULL,
    event_type        text NOT NULL,
    status            text NOT NULL
        CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped', 'cancelled')),
    queue             smallint NOT NULL DEFAULT 0 CHECK (queue IN (0, 1)),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    lease_owner       text NOT NULL DEFAULT '',
    lease_time        timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    manual            boolean NOT NULL DEFAULT false,
    last_status_code  integer NOT NULL DEFAULT 0,
    last_error        text NOT NULL DEFAULT '',
    schedule_start    timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    schedule_base     integer NOT NULL DEFAULT 0,
    create_time       timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    update_time       timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
) WITH (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
-- The queue: only pending rows, ordered by due time within each queue, so
-- a claim is an index range scan that stops after LIMIT rows.
CREATE INDEX deliveries_due ON deliveries (queue, next_attempt_time) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_project ON deliveries (project_id, id);
CREATE INDEX deliveries_create_time ON deliveries (create_time);
CREATE INDEX deliveries_pending_event ON deliveries (event_id) WHERE status = 'pending';

CREATE TABLE attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id text NOT NULL,
    number      integer NOT NULL,
    time        timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    uri         text NOT NULL DEFAULT '',
    status_code integer NOT NULL DEFAULT 0,
    latency_ns  bigint NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    response    bytea NOT NULL DEFAULT ''
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, number);

CREATE TABLE signing_keys (
    id          text PRIMARY KEY,
    algorithm   text NOT NULL,
    sealed      bytea NOT NULL,
    public_jwk  bytea NOT NULL,
    create_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    retire_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    expire_time timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);

CREATE TABLE leases (
    name        text PRIMARY KEY,
    owner       text NOT NULL,
    expire_time timestamptz NOT NULL
);
