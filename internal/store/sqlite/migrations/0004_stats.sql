-- 0004_stats: the activity rollup behind the console's overview
-- (core.StatsStore). One row per project, 5-minute bucket and webhook
-- ('' for events and dynamic deliveries), added to in the transactions
-- that accept events and record attempts: the console reads a day as a
-- few hundred rows instead of scanning a day of deliveries.
-- lat0..lat16 is the attempt latency histogram (core.LatencyBuckets):
-- lat<i> counts latencies below 2^i ms, lat16 everything slower.
CREATE TABLE stats (
    project_id TEXT NOT NULL,
    bucket     INTEGER NOT NULL,
    webhook_id TEXT NOT NULL DEFAULT '',
    events     INTEGER NOT NULL DEFAULT 0,
    succeeded  INTEGER NOT NULL DEFAULT 0,
    retrying   INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    lat0 INTEGER NOT NULL DEFAULT 0, lat1 INTEGER NOT NULL DEFAULT 0,
    lat2 INTEGER NOT NULL DEFAULT 0, lat3 INTEGER NOT NULL DEFAULT 0,
    lat4 INTEGER NOT NULL DEFAULT 0, lat5 INTEGER NOT NULL DEFAULT 0,
    lat6 INTEGER NOT NULL DEFAULT 0, lat7 INTEGER NOT NULL DEFAULT 0,
    lat8 INTEGER NOT NULL DEFAULT 0, lat9 INTEGER NOT NULL DEFAULT 0,
    lat10 INTEGER NOT NULL DEFAULT 0, lat11 INTEGER NOT NULL DEFAULT 0,
    lat12 INTEGER NOT NULL DEFAULT 0, lat13 INTEGER NOT NULL DEFAULT 0,
    lat14 INTEGER NOT NULL DEFAULT 0, lat15 INTEGER NOT NULL DEFAULT 0,
    lat16 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, bucket, webhook_id)
) WITHOUT ROWID;
