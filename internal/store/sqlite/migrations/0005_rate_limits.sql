-- 0005_rate_limits: per-destination rate limits. A webhook's limit is a
-- JSON column ('' = none); a limited destination's token bucket is one row
-- holding its GCRA theoretical arrival time (unix µs).
ALTER TABLE webhooks ADD COLUMN rate_limit TEXT NOT NULL DEFAULT '';
CREATE TABLE rate_buckets (
	dest TEXT PRIMARY KEY,
	tat  INTEGER NOT NULL
) WITHOUT ROWID;
