-- 0011_inline_attempts: the SQLite driver's 0010_inline_attempts. The
-- attempt that ends a delivery successfully without an error — almost
-- every delivery's only attempt — is kept in the delivery row that its
-- completion updates anyway, instead of a heap tuple of attempts and its
-- two index entries (attempts_pkey, attempts_delivery). inline_attempt is
-- its number (0: none, every attempt is in attempts); its time is
-- update_time, its status code last_status_code, its error last_error
-- (empty); inline_uri is its URI when it differs from the delivery's uri
-- ('' when the same). A replay moves the attempt into attempts before the
-- row changes again. Constant defaults: no table rewrite.
ALTER TABLE deliveries
    ADD COLUMN inline_attempt integer NOT NULL DEFAULT 0,
    ADD COLUMN inline_uri text NOT NULL DEFAULT '',
    ADD COLUMN inline_latency_ns bigint NOT NULL DEFAULT 0,
    ADD COLUMN inline_response bytea NOT NULL DEFAULT '';
