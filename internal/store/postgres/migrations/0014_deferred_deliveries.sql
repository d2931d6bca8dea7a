-- 0014_deferred_deliveries: a delivery that a publish inserts already
-- leased (the engine's direct path: handed to it in memory, attempted at
-- once) is written once, in its state after its first attempt, instead of
-- inserted and then updated milliseconds later (a completion's UPDATE is
-- never HOT here: a new tuple, two index entries and a lock record).
-- Until its completion the publish keeps it in one row per PublishEvents
-- call: data is the Go-side encoding of the deliveries exactly as the
-- publish would have inserted them (deferred.go), owner the store that
-- published them, expires the earliest of their lease expiries, n how
-- many of them belong to events the publish inserted (for operators: the
-- store reads it nowhere). lease_base is the
-- publish transaction's now() when the store keeps leases on the
-- database's clock (a lease then runs from it), NULL when the caller's
-- clock set them. A completion that finds its group here (under a row
-- lock) inserts the delivery's final row; any reader of deliveries, and
-- any store once a group is a second old or its lease expired (a dead
-- publisher), first moves groups into deliveries (DELETE … RETURNING,
-- then INSERT … ON CONFLICT DO NOTHING), so readers see what they saw
-- before. design.md, "PostgreSQL: deferred delivery rows".
CREATE TABLE deferred_deliveries (
    id         text COLLATE "C" PRIMARY KEY,
    owner      text NOT NULL,
    lease_base timestamptz,
    expires    timestamptz NOT NULL,
    n          integer NOT NULL,
    data       bytea NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_analyze_scale_factor = 0.05);
-- data is read only whole, by the store that materializes it: kept
-- uncompressed (pglz costs more CPU than the bytes it saves here).
ALTER TABLE deferred_deliveries ALTER COLUMN data SET STORAGE EXTERNAL;
