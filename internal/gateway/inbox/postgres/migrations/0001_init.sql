-- The gateway inbox on PostgreSQL (PostgresInbox). Every table is prefixed
-- gateway_, so an inbox may share a schema with longhook serve's tables;
-- applied versions are recorded in gateway_schema_migrations.

-- The log of accepted events, which is also the dedupe index and the
-- listen log. seq is allocated by the one writer session (see
-- inbox_postgres.go), so it grows in commit order.
CREATE TABLE gateway_events (
	seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	source      text        NOT NULL,
	-- bytea, not text: a webhook-id is whatever bytes the sender signed
	-- (HTTP allows non-UTF-8 header bytes), and text would refuse them.
	-- Look one up with webhook_id = convert_to('msg_...', 'UTF8').
	webhook_id  bytea       NOT NULL,
	type        text        NOT NULL,  -- event type, '' if unknown
	headers     bytea       NOT NULL,  -- "Name: value\r\n" lines
	body        bytea       NOT NULL,
	received_at timestamptz NOT NULL,
	expire_at   timestamptz NOT NULL,  -- end of the dedupe horizon
	CONSTRAINT gateway_events_dedupe UNIQUE (source, webhook_id)
);
CREATE INDEX gateway_events_expire ON gateway_events (source, expire_at);

-- Each sink's position in the log ("source/sink").
CREATE TABLE gateway_cursors (
	sink text   PRIMARY KEY,
	seq  bigint NOT NULL
);

-- Failed forwards waiting for a retry; dead ones are kept with next_at
-- 'infinity'.
CREATE TABLE gateway_retries (
	seq        bigint      NOT NULL,
	sink       text        NOT NULL,
	attempts   integer     NOT NULL,
	next_at    timestamptz NOT NULL,
	last_error text        NOT NULL,
	dead       boolean     NOT NULL DEFAULT false,
	PRIMARY KEY (seq, sink)
);
CREATE INDEX gateway_retries_due ON gateway_retries (sink, next_at, seq);
