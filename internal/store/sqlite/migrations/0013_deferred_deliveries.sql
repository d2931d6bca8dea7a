-- 0013_deferred_deliveries: a delivery inserted already leased (the
-- engine's direct path) almost always ends with its first attempt within
-- milliseconds, and its row was written twice: inserted by the publish,
-- updated by the completion. Such a delivery is now deferred: the
-- publish writes no deliveries row for it, but one row here per publish
-- transaction, holding its deferred deliveries' rows exactly as the
-- publish would have inserted them (data: a compact encoding, see
-- deferred.go), their count and earliest lease expiry; owner is the
-- lease owner of the first. The completion writes the delivery's row
-- once, in its state after the attempt, and deletes the record when it
-- holds no delivery still deferred. Every other reader or change of
-- deliveries, a claim for the groups a second old (or expired), and Open
-- for the records a crash left, first insert the deliveries still
-- deferred as the publish would have (status 'leased', a lease_spans
-- row), ignoring rows a completion already wrote, and delete the record.
CREATE TABLE deferred_deliveries (
    id     INTEGER PRIMARY KEY,
    owner  TEXT NOT NULL,
    expire INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    data   BLOB NOT NULL
);
