-- 0013_ids_collate_c: ids, and every column compared, joined or indexed
-- with them, are COLLATE "C" (as 0002's job and file ids already were).
--
-- Why: every B-tree probe of an index on a text column compares keys under
-- the column's collation. Under the database's default (C.UTF-8 here,
-- en_US.UTF-8 on most clusters) each comparison goes through strcoll;
-- under "C" it is memcmp. Publishes and completions probe deliveries_pkey,
-- deliveries_webhook, events_pkey and the rollup's stats_pkey with every
-- row, and those comparisons were 9-11 % of PostgreSQL's CPU in a fan-out
-- run (docs/benchmarks.md, issue 20). Ids are ASCII ([a-z0-9], "msg_"
-- and "lh-" prefixes), so "C" order is byte order: the order SQLite gives
-- and that the store already assumes for pagination cursors, the
-- retention sweep's id prefix bounds and events' delivery-id ranges
-- (0012). Equality is unchanged (both collations are deterministic).
--
-- Columns change together: a comparison of a "C" column with a
-- default-collation one is made under "C" and cannot use the other
-- column's index, so an id and every column that refers to it share the
-- collation. Literals and parameters take the column's collation.
--
-- Cost: no table is rewritten (the type stays text), but every index on a
-- changed column is rebuilt, and ALTER TABLE holds an ACCESS EXCLUSIVE
-- lock on its table meanwhile (docs/operations.md, "Upgrading"). A column
-- whose type changes loses its planner statistics, hence the ANALYZE at
-- the end.

ALTER TABLE projects ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE api_keys
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN project_id TYPE text COLLATE "C";
ALTER TABLE webhooks
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN project_id TYPE text COLLATE "C";
ALTER TABLE webhook_secrets
    ALTER COLUMN webhook_id TYPE text COLLATE "C",
    ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE events
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN project_id TYPE text COLLATE "C",
    ALTER COLUMN idempotency_key TYPE text COLLATE "C",
    ALTER COLUMN first_delivery TYPE text COLLATE "C",
    ALTER COLUMN last_delivery TYPE text COLLATE "C";
ALTER TABLE deliveries
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN event_id TYPE text COLLATE "C",
    ALTER COLUMN project_id TYPE text COLLATE "C",
    ALTER COLUMN webhook_id TYPE text COLLATE "C",
    ALTER COLUMN dest TYPE text COLLATE "C";
ALTER TABLE attempts ALTER COLUMN delivery_id TYPE text COLLATE "C";
ALTER TABLE signing_keys ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE rate_buckets ALTER COLUMN dest TYPE text COLLATE "C";
ALTER TABLE stats
    ALTER COLUMN project_id TYPE text COLLATE "C",
    ALTER COLUMN webhook_id TYPE text COLLATE "C";
ALTER TABLE jobs
    ALTER COLUMN project_id TYPE text COLLATE "C",
    ALTER COLUMN parent_id TYPE text COLLATE "C";
ALTER TABLE files ALTER COLUMN project_id TYPE text COLLATE "C";
ALTER TABLE uploads
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN project_id TYPE text COLLATE "C",
    ALTER COLUMN file_id TYPE text COLLATE "C";

-- Statistics come back only for tables that had them (rows, analyzed):
-- a table never analyzed keeps the planner's guess for it, as after 0001,
-- and an empty table analyzed now would read as empty to the generic plans
-- a connection makes later (TestCompletionPlansUseKeys).
DO $$
DECLARE t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c
        WHERE c.oid = ANY (ARRAY['projects', 'api_keys', 'webhooks', 'webhook_secrets', 'events', 'deliveries',
            'attempts', 'signing_keys', 'rate_buckets', 'stats', 'jobs', 'files', 'uploads']::regclass[])
          AND c.reltuples > 0
    LOOP
        EXECUTE format('ANALYZE %s', t);
    END LOOP;
END
$$;
