-- 0012_lease_spans: a delivery inserted already leased (the engine's
-- direct path) had an entry in deliveries_due from its insert to its
-- completion, which deleted it, yet the entry was read only if the lease
-- expired first. Such a delivery is now inserted with status 'leased',
-- outside the index's predicate, and its publish records the range of
-- the ids it leased and their earliest lease expiry in lease_spans. A
-- claim sweeps the spans that expire (or are a second old, see
-- sweepLeaseSpans): their rows still 'leased' become 'pending', keeping
-- their lease owner and expiry, which is the state a leased delivery had
-- before. NextDueTime reads the earliest span. Every reader of status
-- treats 'leased' as 'pending'. Rows already in the database are
-- untouched: a pending leased row is still in deliveries_due.
CREATE TABLE lease_spans (
    expire INTEGER NOT NULL,
    first  TEXT NOT NULL,
    last   TEXT NOT NULL,
    PRIMARY KEY (expire, first)
) WITHOUT ROWID;
