-- 0003_lean_indexes: three indexes that every publish paid for and only
-- the retention sweep and a project-wide listing read. Delivery and event
-- ids sort by creation time (ULIDs), so the sweep ranges over the primary
-- key instead, and deliveries are listed per webhook.
DROP INDEX deliveries_project;
DROP INDEX deliveries_create_time;
DROP INDEX events_create_time;
