-- 0005_rate_limits: per-destination rate limits. A webhook's limit is a
-- JSON column ('' = none); a limited destination's token bucket is one row
-- holding its GCRA theoretical arrival time, updated under its row lock.
ALTER TABLE webhooks ADD COLUMN rate_limit text NOT NULL DEFAULT '';
CREATE TABLE rate_buckets (
	dest text PRIMARY KEY,
	tat  timestamptz NOT NULL
);
