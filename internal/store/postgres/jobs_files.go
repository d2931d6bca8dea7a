package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// Files and upload sessions of core.JobStore. Their contents are
// core.BlobStore's (blobs.go); deleting a file or a session deletes them in
// the same transaction.

const fileCols = `id, project_id, display_name, mime_type, size_bytes, sha256, source,
	create_time, update_time, expire_time`

func scanFile(r pgx.Row) (*core.File, error) {
	f := &core.File{}
	err := r.Scan(&f.ID, &f.ProjectID, &f.DisplayName, &f.MIMEType, &f.SizeBytes, &f.SHA256, &f.Source,
		&f.CreateTime, &f.UpdateTime, &f.ExpireTime)
	if err != nil {
		return nil, err
	}
	f.SHA256 = orEmpty(f.SHA256)
	return f, nil
}

// CreateFile implements core.JobStore.
func (s *Store) CreateFile(ctx context.Context, f *core.File) error {
	_, err := s.exec(ctx, false, `INSERT INTO files (`+fileCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		f.ID, f.ProjectID, f.DisplayName, f.MIMEType, f.SizeBytes, orEmpty(f.SHA256), f.Source,
		f.CreateTime, f.UpdateTime, f.ExpireTime)
	return wrap("create file", err)
}

// fileWhere selects a file by project and id (by id alone, in any
// project, when projectID is empty), as the primary key (project_id, id)
// serves it.
func fileWhere(projectID, id string) (string, []any) {
	if projectID == "" {
		return `WHERE id = $1`, []any{id}
	}
	return `WHERE project_id = $1 AND id = $2`, []any{projectID, id}
}

// GetFile implements core.JobStore (the first of any project when
// projectID is empty).
func (s *Store) GetFile(ctx context.Context, projectID, id string) (*core.File, error) {
	where, args := fileWhere(projectID, id)
	fs, err := query(ctx, s, true, scanFile, `SELECT `+fileCols+` FROM files `+where+` ORDER BY project_id LIMIT 1`, args...)
	if err == nil && len(fs) == 0 {
		err = core.ErrNotFound
	}
	if err != nil {
		return nil, wrap("get file", err)
	}
	return fs[0], nil
}

// ListFiles implements core.JobStore.
func (s *Store) ListFiles(ctx context.Context, projectID, beforeID string, limit int) ([]*core.File, error) {
	fs, err := query(ctx, s, true, scanFile, `SELECT `+fileCols+` FROM files
		WHERE project_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`,
		projectID, beforeID, max(limit, 1))
	return fs, wrap("list files", err)
}

// DeleteFile implements core.JobStore (in every project when projectID is
// empty), with the file's contents.
func (s *Store) DeleteFile(ctx context.Context, projectID, id string) error {
	err := s.inTx(ctx, false, func(tx pgx.Tx) error { return deleteFile(ctx, tx, projectID, id) })
	return wrap("delete file", err)
}

// ExpiredFiles implements core.JobStore.
func (s *Store) ExpiredFiles(ctx context.Context, now time.Time, limit int) ([]*core.File, error) {
	fs, err := query(ctx, s, true, scanFile, `SELECT `+fileCols+` FROM files
		WHERE expire_time <> `+zeroTime+` AND expire_time <= $1 ORDER BY expire_time, id LIMIT $2`,
		now, max(limit, 1))
	return fs, wrap("expired files", err)
}

const uploadCols = `id, project_id, file_id, file_display_name, file_mime_type, file_source, file_expire_time,
	size, received, create_time, update_time`

func scanUpload(r pgx.Row) (*core.Upload, error) {
	u := &core.Upload{}
	err := r.Scan(&u.ID, &u.ProjectID, &u.File.ID, &u.File.DisplayName, &u.File.MIMEType, &u.File.Source,
		&u.File.ExpireTime, &u.Size, &u.Received, &u.CreateTime, &u.UpdateTime)
	if err != nil {
		return nil, err
	}
	u.File.ProjectID = u.ProjectID
	return u, nil
}

// CreateUpload implements core.JobStore. The session keeps the file's id,
// display name, MIME type, source and expiry; the file's project is the
// session's.
func (s *Store) CreateUpload(ctx context.Context, u *core.Upload) error {
	_, err := s.exec(ctx, false, `INSERT INTO uploads (`+uploadCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		u.ID, u.ProjectID, u.File.ID, u.File.DisplayName, u.File.MIMEType, u.File.Source, u.File.ExpireTime,
		u.Size, u.Received, u.CreateTime, u.UpdateTime)
	return wrap("create upload", err)
}

// GetUpload implements core.JobStore.
func (s *Store) GetUpload(ctx context.Context, id string) (*core.Upload, error) {
	us, err := query(ctx, s, true, scanUpload, `SELECT `+uploadCols+` FROM uploads WHERE id = $1`, id)
	if err == nil && len(us) == 0 {
		err = core.ErrNotFound
	}
	if err != nil {
		return nil, wrap("get upload", err)
	}
	return us[0], nil
}

// AdvanceUpload implements core.JobStore: one conditional UPDATE, so of
// concurrent chunks at one offset exactly one is accepted.
func (s *Store) AdvanceUpload(ctx context.Context, id string, from, to int64, now time.Time) error {
	n, err := s.exec(ctx, false, `UPDATE uploads SET received = $1, update_time = $2
		WHERE id = $3 AND received = $4`, to, now, id, from)
	if err == nil && n == 0 {
		err = fmt.Errorf("upload %s is not at offset %d: %w", id, from, core.ErrFailedPrecondition)
	}
	return wrap("advance upload", err)
}

// DeleteUpload implements core.JobStore, with the bytes the session
// received.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return core.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM job_blobs WHERE id = $1`, uploadBlobID(id))
		return err
	})
	return wrap("delete upload", err)
}

// StaleUploads implements core.JobStore.
func (s *Store) StaleUploads(ctx context.Context, cutoff time.Time, limit int) ([]*core.Upload, error) {
	us, err := query(ctx, s, true, scanUpload, `SELECT `+uploadCols+` FROM uploads
		WHERE update_time < $1 ORDER BY update_time, id LIMIT $2`, cutoff, max(limit, 1))
	return us, wrap("stale uploads", err)
}
