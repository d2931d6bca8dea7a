-- 0008_job_tracing: a job keeps the traceparent of the request that
-- created it ('' when tracing was off), so each execution of the job —
-- later, after a restart or on another instance — continues that trace.
ALTER TABLE jobs ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
