-- 0006_stats_totals: the rollup keyed (project, webhook, bucket), with a
-- project total row per bucket (webhook_id '*', which also holds the events)
-- so that the overview reads one row per bucket however many webhooks the
-- project has. 0004's table is dropped: it held at most minutes of
-- activity of a development build (no release had it).
DROP TABLE stats;
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
    PRIMARY KEY (project_id, webhook_id, bucket)
) WITHOUT ROWID;
