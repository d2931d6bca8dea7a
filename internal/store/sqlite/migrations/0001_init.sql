-- 0001_init: the whole longhook schema.
--
-- Conventions: every timestamp is INTEGER unix microseconds (UTC), 0 for
-- "unset"; durations are INTEGER nanoseconds; lists and small objects are
-- JSON text; secrets are ciphertext BLOBs. Columns are NOT NULL with
-- defaults so scanning never meets NULL (except events.dynamic).

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL DEFAULT '',
    digest      BLOB NOT NULL UNIQUE,
    hint        TEXT NOT NULL DEFAULT '',
    admin       INTEGER NOT NULL DEFAULT 0,
    create_time INTEGER NOT NULL DEFAULT 0,
    revoke_time INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_project ON api_keys (project_id, id);

CREATE TABLE webhooks (
    id                   TEXT PRIMARY KEY,
    project_id           TEXT NOT NULL,
    name                 TEXT NOT NULL DEFAULT '',
    uri                  TEXT NOT NULL,
    subscribed_events    TEXT NOT NULL DEFAULT '[]',
    state                TEXT NOT NULL,
    retry_schedule       TEXT NOT NULL DEFAULT '[]',
    create_time          INTEGER NOT NULL DEFAULT 0,
    update_time          INTEGER NOT NULL DEFAULT 0,
    failing_since        INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_project ON webhooks (project_id, id);

CREATE TABLE webhook_secrets (
    webhook_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    hint        TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL DEFAULT 0,
    expire_time INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, id)
);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    type            TEXT NOT NULL,
    subject         TEXT NOT NULL DEFAULT '',
    payload         BLOB NOT NULL,
    dynamic         TEXT,
    idempotency_key TEXT NOT NULL DEFAULT '',
    delivery_count  INTEGER NOT NULL DEFAULT 0,
    create_time     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX events_idempotency ON events (project_id, idempotency_key)
    WHERE idempotency_key != '';
CREATE INDEX events_create_time ON events (create_time);

-- deliveries is the queue and its history. The lease trick: a claim sets
-- lease_owner and moves next_attempt_time to the lease expiry, so "due" is
-- always status = 'pending' AND next_attempt_time <= now. queue is 0 until
-- the first attempt fails and 1 afterwards, so first attempts and retries
-- sit in separate ranges of deliveries_due.
CREATE TABLE deliveries (
    id                TEXT PRIMARY KEY,
    event_id          TEXT NOT NULL,
    project_id        TEXT NOT NULL,
    webhook_id        TEXT NOT NULL DEFAULT '',
    uri               TEXT NOT NULL DEFAULT '',
    dest              TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    status            TEXT NOT NULL,
    queue             INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_time INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT NOT NULL DEFAULT '',
    lease_time        INTEGER NOT NULL DEFAULT 0,
    manual            INTEGER NOT NULL DEFAULT 0,
    last_status_code  INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT NOT NULL DEFAULT '',
    schedule_start    INTEGER NOT NULL DEFAULT 0,
    schedule_base     INTEGER NOT NULL DEFAULT 0,
    create_time       INTEGER NOT NULL DEFAULT 0,
    update_time       INTEGER NOT NULL DEFAULT 0
);
-- Covering index of the queue: claims, NextDueTime and QueueDepth read
-- only this index, and only its pending rows exist in it.
CREATE INDEX deliveries_due ON deliveries (queue, next_attempt_time, dest, lease_owner)
    WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_project ON deliveries (project_id, id);
CREATE INDEX deliveries_create_time ON deliveries (create_time);
CREATE INDEX deliveries_pending_event ON deliveries (event_id) WHERE status = 'pending';

CREATE TABLE attempts (
    delivery_id TEXT NOT NULL,
    number      INTEGER NOT NULL,
    time        INTEGER NOT NULL DEFAULT 0,
    uri         TEXT NOT NULL DEFAULT '',
    status_code INTEGER NOT NULL DEFAULT 0,
    latency_ns  INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    response    BLOB NOT NULL DEFAULT x''
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, number);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    public_jwk  BLOB NOT NULL,
    create_time INTEGER NOT NULL DEFAULT 0,
    retire_time INTEGER NOT NULL DEFAULT 0,
    expire_time INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    expire_time INTEGER NOT NULL
);
