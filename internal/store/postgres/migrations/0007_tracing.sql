-- 0007_tracing: an event keeps the traceparent of its publish span ('' when
-- tracing was off), so attempts continue its trace after the queue; a
-- webhook may ask for that traceparent to be sent to it.
ALTER TABLE events ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN trace_propagation BOOLEAN NOT NULL DEFAULT false;
