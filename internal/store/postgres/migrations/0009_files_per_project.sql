-- 0009_files_per_project: a file's name (id) is unique within its
-- project, not across the server, so that one project can neither take a
-- name from another nor learn that another project uses it (issue 13,
-- defect 8). The primary key (project_id, id) also serves the per-project
-- listing, which files_project indexed before.
ALTER TABLE files DROP CONSTRAINT files_pkey;
ALTER TABLE files ADD PRIMARY KEY (project_id, id);
DROP INDEX files_project;
