-- 0011_event_delivery_span: deliveries_pending_event went into every
-- publish and every completion (an entry per delivery, inserted with it
-- and deleted when it stopped pending) for one reader, the retention
-- sweep of events, which keeps an event while a delivery of it is
-- pending. An event now records the smallest and largest id of its
-- deliveries instead, and the sweep looks for pending ones in that range
-- of the deliveries' primary key (an event's deliveries are made in its
-- publish, so their ids are of one millisecond). first_delivery and
-- last_delivery are '' when the event has no deliveries recorded; a
-- delivery made pending again (Redeliver, RecoverDeliveries) widens its
-- event's range. Events written before this migration get the range of
-- their pending deliveries (the only ones the sweep needs), read through
-- the index before it is dropped.
ALTER TABLE events ADD COLUMN first_delivery TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN last_delivery TEXT NOT NULL DEFAULT '';
UPDATE events SET (first_delivery, last_delivery) = (
    SELECT min(id), max(id) FROM deliveries WHERE event_id = events.id AND status = 'pending')
WHERE id IN (SELECT event_id FROM deliveries WHERE status = 'pending');
DROP INDEX deliveries_pending_event;
