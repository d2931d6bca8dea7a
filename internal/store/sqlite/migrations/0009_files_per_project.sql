-- 0009_files_per_project: a file's name (id) is unique within its
-- project, not across the server, so that one project can neither take a
-- name from another nor learn that another project uses it (issue 13,
-- defect 8). SQLite cannot change a primary key in place: the table is
-- rebuilt with the same columns, rows and indexes.
CREATE TABLE files_new (
    id           TEXT NOT NULL,
    project_id   TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    mime_type    TEXT NOT NULL DEFAULT '',
    size_bytes   INTEGER NOT NULL DEFAULT 0,
    sha256       BLOB NOT NULL DEFAULT x'',
    source       TEXT NOT NULL DEFAULT '',
    create_time  INTEGER NOT NULL DEFAULT 0,
    update_time  INTEGER NOT NULL DEFAULT 0,
    expire_time  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, id)
);
INSERT INTO files_new (id, project_id, display_name, mime_type, size_bytes, sha256, source,
        create_time, update_time, expire_time)
    SELECT id, project_id, display_name, mime_type, size_bytes, sha256, source,
        create_time, update_time, expire_time FROM files;
DROP TABLE files;
ALTER TABLE files_new RENAME TO files;
CREATE INDEX files_expiring ON files (expire_time) WHERE expire_time > 0;
