-- 0006_stats_totals: the rollup keyed (project, webhook, bucket), with a
-- project total row per bucket (webhook_id '*', which also holds the events)
-- so that the overview reads one row per bucket however many webhooks the
-- project has. 0004's table is dropped: it held at most minutes of
-- activity of a development build (no release had it).
DROP TABLE stats;
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
    PRIMARY KEY (project_id, webhook_id, bucket)
);
