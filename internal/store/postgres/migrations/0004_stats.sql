-- 0004_stats: the activity rollup behind the console's overview
-- (core.StatsStore). One row per project, 5-minute bucket and webhook
-- ('' for events and dynamic deliveries), added to in the transactions
-- that accept events and record attempts: the console reads a day as a
-- few hundred rows instead of scanning a day of deliveries.
-- lat0..lat16 is the attempt latency histogram (core.LatencyBuckets):
-- lat<i> counts latencies below 2^i ms, lat16 everything slower.
CREATE TABLE stats (
    project_id text NOT NULL,
    bucket     bigint NOT NULL,
    webhook_id text NOT NULL DEFAULT '',
    events     bigint NOT NULL DEFAULT 0,
    succeeded  bigint NOT NULL DEFAULT 0,
    retrying   bigint NOT NULL DEFAULT 0,
    failed     bigint NOT NULL DEFAULT 0,
    lat0 bigint NOT NULL DEFAULT 0, lat1 bigint NOT NULL DEFAULT 0,
    lat2 bigint NOT NULL DEFAULT 0, lat3 bigint NOT NULL DEFAULT 0,
    lat4 bigint NOT NULL DEFAULT 0, lat5 bigint NOT NULL DEFAULT 0,
    lat6 bigint NOT NULL DEFAULT 0, lat7 bigint NOT NULL DEFAULT 0,
    lat8 bigint NOT NULL DEFAULT 0, lat9 bigint NOT NULL DEFAULT 0,
    lat10 bigint NOT NULL DEFAULT 0, lat11 bigint NOT NULL DEFAULT 0,
    lat12 bigint NOT NULL DEFAULT 0, lat13 bigint NOT NULL DEFAULT 0,
    lat14 bigint NOT NULL DEFAULT 0, lat15 bigint NOT NULL DEFAULT 0,
    lat16 bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, bucket, webhook_id)
);
