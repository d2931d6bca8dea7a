package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/longhook/longhook/internal/core"
)

// This file implements core.BlobStore: the contents of files and of
// resumable uploads, in job_blobs (migrations/0003_job_blobs.sql, which
// also describes the blob ids).
//
// WriteBlob streams its reader into rows of at most blobChunk bytes, each
// inserted by its own short statement: a multi-GB upload from a slow
// client holds no transaction open and no more than one chunk in memory.
// Handing a staged blob to its owner renames its rows (the bytes are not
// copied: an UPDATE that leaves a TOASTed column alone keeps its stored
// value) in the transaction that creates the file or advances the upload,
// so a file appears with all its bytes or not at all.

var _ core.BlobStore = (*Store)(nil)

// blobChunk is the size of a job_blobs row: large enough that a 2 GiB file
// is a few thousand rows and statements, small enough that a reader or
// writer holds little memory and each statement ends well within the
// statement timeout.
const blobChunk = 1 << 20

// stageID is a new staged blob's id: its write time (hex microseconds,
// fixed width, so that ids sort by it) and a random part.
func stageID(now time.Time) string {
	return stagePrefix(now) + "/" + core.NewID()[:16]
}

// stagePrefix is the id of a staged blob written at now without its random
// part: every blob staged before now sorts below it.
func stagePrefix(now time.Time) string {
	return fmt.Sprintf("stage/%016x", max(now.UnixMicro(), 0))
}

func uploadBlobID(uploadID string) string { return "upload/" + uploadID }

func fileBlobID(fileID string) string { return "file/" + fileID + "/" + core.NewID()[:16] }

// WriteBlob implements core.BlobStore.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, now time.Time) (string, int64, error) {
	id := stageID(now)
	buf := make([]byte, blobChunk)
	var n int64
	for {
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			// An upsert, so that a retry after a lost connection is safe.
			_, err := s.exec(ctx, true, `INSERT INTO job_blobs (id, pos, data) VALUES ($1, $2, $3)
				ON CONFLICT (id, pos) DO UPDATE SET data = EXCLUDED.data`, id, n, buf[:k])
			if err != nil {
				return "", 0, s.abandonBlob(ctx, id, wrap("write blob", err))
			}
			n += int64(k)
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return id, n, nil
		case rerr != nil:
			return "", 0, s.abandonBlob(ctx, id, fmt.Errorf("postgres: write blob: %w", rerr))
		}
	}
}

// abandonBlob deletes what a failed WriteBlob wrote (also when ctx is
// done: a client that went away cancels it) and returns err. If that fails
// too, DeleteStaleBlobs removes the rows later.
func (s *Store) abandonBlob(ctx context.Context, id string, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = s.DeleteBlob(ctx, id)
	return err
}

// DeleteBlob implements core.BlobStore.
func (s *Store) DeleteBlob(ctx context.Context, blob string) error {
	_, err := s.exec(ctx, true, `DELETE FROM job_blobs WHERE id = $1`, blob)
	return wrap("delete blob", err)
}

// ReadBlob implements core.BlobStore: the row at or before off, found by a
// backward scan of the primary key.
func (s *Store) ReadBlob(ctx context.Context, blob string, off int64, buf []byte) (int64, []byte, error) {
	var start int64
	data := pgtype.PreallocBytes(buf[:cap(buf)])
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT pos, data FROM job_blobs WHERE id = $1 AND pos <= $2
			ORDER BY pos DESC LIMIT 1`, blob, off).Scan(&start, &data)
	})
	if err == nil && off >= start+int64(len(data)) {
		err = core.ErrNotFound
	}
	if err != nil {
		return 0, nil, wrap("read blob", err)
	}
	return start, data, nil
}

// CreateFileWithBlob implements core.BlobStore.
func (s *Store) CreateFileWithBlob(ctx context.Context, f *core.File, blob string, replace bool) error {
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		if replace {
			if err := deleteFile(ctx, tx, f.ProjectID, f.ID); err != nil && !errors.Is(err, core.ErrNotFound) {
				return err
			}
		}
		return insertFileWithBlob(ctx, tx, f, blob)
	})
	return wrap("create file with blob", err)
}

// insertFileWithBlob creates f and renames blob's rows to f's contents.
func insertFileWithBlob(ctx context.Context, tx pgx.Tx, f *core.File, blob string) error {
	id := fileBlobID(f.ID)
	if _, err := tx.Exec(ctx, `INSERT INTO files (`+fileCols+`, blob) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		f.ID, f.ProjectID, f.DisplayName, f.MIMEType, f.SizeBytes, orEmpty(f.SHA256), f.Source,
		f.CreateTime, f.UpdateTime, f.ExpireTime, id); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE job_blobs SET id = $1 WHERE id = $2`, id, blob)
	return err
}

// deleteFile deletes a file of the project (the files of that id in every
// project when projectID is empty) and its contents.
func deleteFile(ctx context.Context, tx pgx.Tx, projectID, id string) error {
	where, args := fileWhere(projectID, id)
	rows, err := tx.Query(ctx, `DELETE FROM files `+where+` RETURNING blob`, args...)
	if err != nil {
		return err
	}
	blobs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(blobs) == 0 {
		return core.ErrNotFound
	}
	_, err = tx.Exec(ctx, `DELETE FROM job_blobs WHERE id = ANY($1) AND id <> ''`, blobs)
	return err
}

// FileBlob implements core.BlobStore.
func (s *Store) FileBlob(ctx context.Context, projectID, id string) (string, int64, error) {
	var blob string
	var size int64
	where, args := fileWhere(projectID, id)
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT blob, size_bytes FROM files `+where+` ORDER BY project_id LIMIT 1`,
			args...).Scan(&blob, &size)
	})
	if err != nil {
		return "", 0, wrap("file blob", err)
	}
	return blob, size, nil
}

// AppendUploadBlob implements core.BlobStore. The session's conditional
// UPDATE comes first, so that of concurrent chunks at one offset exactly
// one moves its rows; the others roll back with their blobs still staged.
func (s *Store) AppendUploadBlob(ctx context.Context, p core.AppendUploadParams) error {
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE uploads SET received = $1, update_time = $2, digest = $3
			WHERE id = $4 AND received = $5`, p.To, p.Now, orEmpty(p.Digest), p.ID, p.From)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("upload %s is not at offset %d: %w", p.ID, p.From, core.ErrFailedPrecondition)
		}
		up := uploadBlobID(p.ID)
		// Rows at or past From cannot exist (every append commits whole),
		// but make sure the renamed rows never collide.
		if _, err := tx.Exec(ctx, `DELETE FROM job_blobs WHERE id = $1 AND pos >= $2`, up, p.From); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE job_blobs SET id = $1, pos = pos + $2 WHERE id = $3`, up, p.From, p.Blob)
		return err
	})
	return wrap("append upload blob", err)
}

// UploadDigest implements core.BlobStore.
func (s *Store) UploadDigest(ctx context.Context, id string) ([]byte, error) {
	var digest []byte
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT digest FROM uploads WHERE id = $1`, id).Scan(&digest)
	})
	if err != nil {
		return nil, wrap("upload digest", err)
	}
	return digest, nil
}

// FinishUpload implements core.BlobStore.
func (s *Store) FinishUpload(ctx context.Context, id string, f *core.File) error {
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1 AND received = $2`, id, f.SizeBytes)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var received int64
			if err := tx.QueryRow(ctx, `SELECT received FROM uploads WHERE id = $1`, id).Scan(&received); err != nil {
				return err // ErrNoRows: no such session
			}
			return fmt.Errorf("upload %s received %d bytes, not %d: %w", id, received, f.SizeBytes, core.ErrFailedPrecondition)
		}
		return insertFileWithBlob(ctx, tx, f, uploadBlobID(id))
	})
	return wrap("finish upload", err)
}

// DeleteStaleBlobs implements core.BlobStore: staged ids sort by their
// write time, so the stale ones are one range of the primary key.
func (s *Store) DeleteStaleBlobs(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	var n int
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `WITH stale AS (
				SELECT DISTINCT id FROM job_blobs WHERE id >= 'stage/' AND id < $1 LIMIT $2
			), gone AS (
				DELETE FROM job_blobs b USING stale WHERE b.id = stale.id RETURNING b.id
			)
			SELECT count(DISTINCT id) FROM gone`, stagePrefix(cutoff), max(limit, 1)).Scan(&n)
	})
	return n, wrap("delete stale blobs", err)
}
