-- 0002_jobs: long-running jobs (batches, videos, interactions), the Files
-- API and resumable upload sessions (internal/jobs, core.JobStore).
--
-- Same conventions as 0001: INTEGER unix microseconds (0 = unset), JSON
-- text for small objects, NOT NULL with defaults except webhook_config.

-- jobs.outbox holds the JSON of the one event a transition produced and
-- that is not yet confirmed published (empty otherwise): the transition and
-- its outbox commit together, the publish follows, and a restart re-publishes
-- whatever is left under the same idempotency key.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL,
    model            TEXT NOT NULL DEFAULT '',
    display_name     TEXT NOT NULL DEFAULT '',
    parent_id        TEXT NOT NULL DEFAULT '',
    request          BLOB NOT NULL DEFAULT x'',
    result           BLOB NOT NULL DEFAULT x'',
    error_code       TEXT NOT NULL DEFAULT '',
    error_message    TEXT NOT NULL DEFAULT '',
    webhook_config   TEXT,
    output_file      TEXT NOT NULL DEFAULT '',
    sequence         INTEGER NOT NULL DEFAULT 0,
    outbox           TEXT NOT NULL DEFAULT '',
    terminal_emitted INTEGER NOT NULL DEFAULT 0,
    runs             INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_expire     INTEGER NOT NULL DEFAULT 0,
    create_time      INTEGER NOT NULL DEFAULT 0,
    update_time      INTEGER NOT NULL DEFAULT 0,
    start_time       INTEGER NOT NULL DEFAULT 0,
    end_time         INTEGER NOT NULL DEFAULT 0,
    expire_time      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_project ON jobs (project_id, id);
-- Runnable jobs: pending ones (lease_expire 0) and running ones whose
-- runner's lease ran out.
CREATE INDEX jobs_runnable ON jobs (lease_expire, id) WHERE state IN ('pending', 'running');
CREATE INDEX jobs_outbox ON jobs (id) WHERE outbox != '';
CREATE INDEX jobs_expiring ON jobs (expire_time)
    WHERE expire_time > 0 AND state IN ('pending', 'running');

CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    mime_type    TEXT NOT NULL DEFAULT '',
    size_bytes   INTEGER NOT NULL DEFAULT 0,
    sha256       BLOB NOT NULL DEFAULT x'',
    source       TEXT NOT NULL DEFAULT '',
    create_time  INTEGER NOT NULL DEFAULT 0,
    update_time  INTEGER NOT NULL DEFAULT 0,
    expire_time  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX files_project ON files (project_id, id);
CREATE INDEX files_expiring ON files (expire_time) WHERE expire_time > 0;

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    file        TEXT NOT NULL,
    size        INTEGER NOT NULL DEFAULT -1,
    received    INTEGER NOT NULL DEFAULT 0,
    create_time INTEGER NOT NULL DEFAULT 0,
    update_time INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX uploads_update_time ON uploads (update_time);
