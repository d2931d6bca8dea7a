-- 0012_event_delivery_span: the SQLite driver's 0011_event_delivery_span.
-- deliveries_pending_event took an entry with every delivery a publish
-- inserted (and the completion's new row version left it behind), for
-- one reader: the retention sweep of events, which keeps an event while a
-- delivery of it is pending. An event now records the smallest and the
-- largest id of its deliveries instead, and the sweep looks for pending
-- ones in that range of deliveries_pkey (an event's deliveries are made
-- in its publish, so their ids are of one millisecond). first_delivery
-- and last_delivery are '' when the event has no deliveries recorded; a
-- delivery made pending again (Redeliver, RecoverDeliveries) widens its
-- event's range. Events written before this migration get the range of
-- their pending deliveries (the only ones the sweep needs), read through
-- the index before it is dropped. Constant defaults: no table rewrite.
ALTER TABLE events
    ADD COLUMN first_delivery text NOT NULL DEFAULT '',
    ADD COLUMN last_delivery text NOT NULL DEFAULT '';
UPDATE events e SET first_delivery = s.lo, last_delivery = s.hi
FROM (SELECT event_id, min(id) AS lo, max(id) AS hi FROM deliveries WHERE status = 'pending' GROUP BY event_id) s
WHERE e.id = s.event_id;
DROP INDEX deliveries_pending_event;
