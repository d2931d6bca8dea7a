-- 0003_job_blobs: the contents of job files and of resumable uploads live
-- in the database (core.BlobStore), so that every instance sharing it
-- serves every file. See internal/store/postgres/blobs.go and
-- docs/design.md, "Job file contents".
--
-- A blob is the rows of one id, each holding the bytes from pos on (at most
-- 1 MiB; rows of a blob are contiguous from 0). Ids are prefixed by what
-- owns them:
--
--   stage/<16 hex digits: microseconds since 1970>/<random>
--       written, not yet handed to a file or an upload; the time lets
--       DeleteStaleBlobs find a crashed writer's leftovers with a range
--       scan of the primary key (hence COLLATE "C")
--   upload/<upload id>          the bytes an upload session received
--   file/<file id>/<random>     a file's contents (files.blob); a file
--                               rewritten by a resumed job gets a new id,
--                               so a reader never mixes two versions
--
-- Rows are keyed by byte position rather than chunk number so that a
-- resumable upload's chunks, which start at any byte, are appended by
-- renaming their staged rows (UPDATE ... SET id, pos = pos + offset),
-- never by rewriting a partial last row.
CREATE TABLE job_blobs (
    id   text COLLATE "C" NOT NULL,
    pos  bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (id, pos)
);

-- files.blob is the id of the file's contents ('' for a file created by
-- CreateFile without contents, e.g. uploaded before this migration).
ALTER TABLE files ADD COLUMN blob text COLLATE "C" NOT NULL DEFAULT '';

-- uploads.digest is the running SHA-256 state after the received bytes
-- (opaque to the store), so that finishing an upload reads nothing back.
ALTER TABLE uploads ADD COLUMN digest bytea NOT NULL DEFAULT '';
