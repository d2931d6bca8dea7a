-- 0002_jobs: long-running jobs (batches, videos, interactions), the Files
-- API and resumable upload sessions (internal/jobs, core.JobStore). It
-- mirrors internal/store/sqlite/migrations/0002_jobs.sql with 0001's
-- conventions: timestamptz with the zero time stored as itself, bytea for
-- opaque payloads, json (not jsonb: bytes come back as written) for small
-- objects.
--
-- Ids are COLLATE "C": lists page newest first by id (sortable ids) with
-- an exclusive cursor, in byte order as SQLite does, whatever the
-- database's collation.

-- jobs.outbox holds the JSON of the one event a transition produced and
-- that is not yet confirmed published (NULL otherwise): the transition and
-- its outbox commit together, the publish follows, and a restart
-- re-publishes whatever is left under the same idempotency key.
CREATE TABLE jobs (
    id               text COLLATE "C" PRIMARY KEY,
    project_id       text NOT NULL,
    kind             text NOT NULL,
    state            text NOT NULL,
    model            text NOT NULL DEFAULT '',
    display_name     text NOT NULL DEFAULT '',
    parent_id        text NOT NULL DEFAULT '',
    request          bytea NOT NULL DEFAULT '',
    result           bytea NOT NULL DEFAULT '',
    error_code       text NOT NULL DEFAULT '',
    error_message    text NOT NULL DEFAULT '',
    webhook_config   json,
    output_file      text NOT NULL DEFAULT '',
    sequence         integer NOT NULL DEFAULT 0,
    outbox           json,
    terminal_emitted boolean NOT NULL DEFAULT false,
    runs             integer NOT NULL DEFAULT 0,
    lease_owner      text NOT NULL DEFAULT '',
    lease_expire     timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    create_time      timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    update_time      timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    start_time       timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    end_time         timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    expire_time      timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);
CREATE INDEX jobs_project ON jobs (project_id, id);
-- Runnable jobs: pending ones (lease_expire zero) and running ones whose
-- runner's lease ran out; ClaimJobs walks it in (lease_expire, id) order.
CREATE INDEX jobs_runnable ON jobs (lease_expire, id) WHERE state IN ('pending', 'running');
-- NextJobWake: the earliest lease of a running job.
CREATE INDEX jobs_leases ON jobs (lease_expire) WHERE state = 'running';
CREATE INDEX jobs_outbox ON jobs (id) WHERE outbox IS NOT NULL;
CREATE INDEX jobs_expiring ON jobs (expire_time)
    WHERE expire_time <> '0001-01-01 00:00:00+00' AND state IN ('pending', 'running');

CREATE TABLE files (
    id           text COLLATE "C" PRIMARY KEY,
    project_id   text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    mime_type    text NOT NULL DEFAULT '',
    size_bytes   bigint NOT NULL DEFAULT 0,
    sha256       bytea NOT NULL DEFAULT '',
    source       text NOT NULL DEFAULT '',
    create_time  timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    update_time  timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    expire_time  timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);
CREATE INDEX files_project ON files (project_id, id);
CREATE INDEX files_expiring ON files (expire_time) WHERE expire_time <> '0001-01-01 00:00:00+00';

-- An upload session keeps the metadata its file will be created with
-- (file_*; the file's project is the session's).
CREATE TABLE uploads (
    id                text PRIMARY KEY,
    project_id        text NOT NULL,
    file_id           text NOT NULL,
    file_display_name text NOT NULL DEFAULT '',
    file_mime_type    text NOT NULL DEFAULT '',
    file_source       text NOT NULL DEFAULT '',
    file_expire_time  timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    size              bigint NOT NULL DEFAULT -1,
    received          bigint NOT NULL DEFAULT 0,
    create_time       timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    update_time       timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);
CREATE INDEX uploads_update_time ON uploads (update_time);
