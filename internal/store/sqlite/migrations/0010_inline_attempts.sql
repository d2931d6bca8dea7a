-- 0010_inline_attempts: the attempt that ends a delivery successfully
-- without an error — almost every delivery's only attempt — is kept in the
-- delivery row that its completion updates anyway, instead of a row of
-- attempts and an entry of attempts_delivery (two B-trees fewer per
-- delivery). inline_attempt is its number (0: none, every attempt is in
-- attempts). The attempt's other fields are columns the row already holds:
-- its time is update_time, its status code last_status_code, its error
-- last_error (empty); inline_uri is its URI when it differs from the
-- delivery's uri ('' when the same). A replay moves the attempt into
-- attempts before the row changes again (see docs/design.md).
ALTER TABLE deliveries ADD COLUMN inline_attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN inline_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN inline_latency_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN inline_response BLOB NOT NULL DEFAULT x'';
