-- 0010_lean_indexes: the SQLite driver's 0003_lean_indexes. Three indexes
-- that every publish (and, as a completion is not a HOT update, every
-- completion) paid for, read only by the retention sweep and by
-- project-wide listings. Delivery and event ids sort by creation time
-- (ULIDs), so the sweep ranges over the primary key instead, and project-
-- wide listings walk the primary key newest first.
DROP INDEX deliveries_project;
DROP INDEX deliveries_create_time;
DROP INDEX events_create_time;
