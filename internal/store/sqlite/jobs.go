package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// This file implements core.JobStore: jobs, files and upload sessions
// (schema in migrations/0002_jobs.sql). Writes go through inTx on the single
// writer connection; reads use the query-only pool.

var _ core.JobStore = (*Store)(nil)

const jobCols = `id, project_id, kind, state, model, display_name, parent_id, request, result,
	error_code, error_message, webhook_config, output_file, sequence, outbox, terminal_emitted,
	runs, lease_owner, lease_expire, create_time, update_time, start_time, end_time, expire_time, trace_parent`

type jobScanner interface{ Scan(...any) error }

func scanJob(sc jobScanner) (*core.Job, error) {
	j := &core.Job{}
	var kind, state, outbox string
	var dyn []byte
	var emitted int64
	var le, ct, ut, st, et, xt int64
	if err := sc.Scan(&j.ID, &j.ProjectID, &kind, &state, &j.Model, &j.DisplayName, &j.ParentID,
		&j.Request, &j.Result, &j.ErrorCode, &j.ErrorMessage, &dyn, &j.OutputFile, &j.Sequence,
		&outbox, &emitted, &j.Runs, &j.LeaseOwner, &le, &ct, &ut, &st, &et, &xt, &j.TraceParent); err != nil {
		return nil, err
	}
	j.Kind, j.State, j.TerminalEmitted = core.JobKind(kind), core.JobState(state), emitted != 0
	cfg, err := decodeDynamic(dyn)
	if err != nil {
		return nil, err
	}
	j.WebhookConfig = cfg
	if outbox != "" {
		j.Outbox = &core.JobEvent{}
		if err := json.Unmarshal([]byte(outbox), j.Outbox); err != nil {
			return nil, fmt.Errorf("decode outbox: %w", err)
		}
	}
	if len(j.Request) == 0 {
		j.Request = nil
	}
	if len(j.Result) == 0 {
		j.Result = nil
	}
	j.LeaseExpire, j.CreateTime, j.UpdateTime = fromMicros(le), fromMicros(ct), fromMicros(ut)
	j.StartTime, j.EndTime, j.ExpireTime = fromMicros(st), fromMicros(et), fromMicros(xt)
	return j, nil
}

// jobArgs returns the column values of j in jobCols order.
func jobArgs(j *core.Job) ([]any, error) {
	dyn, err := encodeDynamic(j.WebhookConfig)
	if err != nil {
		return nil, err
	}
	outbox := ""
	if j.Outbox != nil {
		b, err := json.Marshal(j.Outbox)
		if err != nil {
			return nil, err
		}
		outbox = string(b)
	}
	return []any{j.ID, j.ProjectID, string(j.Kind), string(j.State), j.Model, j.DisplayName, j.ParentID,
		orEmpty([]byte(j.Request)), orEmpty([]byte(j.Result)), j.ErrorCode, j.ErrorMessage, dyn, j.OutputFile,
		j.Sequence, outbox, boolInt(j.TerminalEmitted), j.Runs, j.LeaseOwner, micros(j.LeaseExpire),
		micros(j.CreateTime), micros(j.UpdateTime), micros(j.StartTime), micros(j.EndTime), micros(j.ExpireTime), j.TraceParent}, nil
}

func queryJobs(ctx context.Context, q queryer, where string, args ...any) ([]*core.Job, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*core.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// CreateJob implements core.JobStore.
func (s *Store) CreateJob(ctx context.Context, j *core.Job) error {
	args, err := jobArgs(j)
	if err != nil {
		return wrap("create job", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (`+jobCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return err
	})
	return wrap("create job", err)
}

// GetJob implements core.JobStore.
func (s *Store) GetJob(ctx context.Context, projectID, id string) (*core.Job, error) {
	j, err := scanJob(s.r.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs
		WHERE id = ? AND (? = '' OR project_id = ?)`, id, projectID, projectID))
	if err != nil {
		return nil, wrap("get job", err)
	}
	return j, nil
}

// ListJobs implements core.JobStore.
func (s *Store) ListJobs(ctx context.Context, p core.ListJobsParams) ([]*core.Job, error) {
	kinds := make([]string, len(p.Kinds))
	for i, k := range p.Kinds {
		kinds[i] = string(k)
	}
	kindsJSON, _ := json.Marshal(kinds)
	js, err := queryJobs(ctx, s.r, `WHERE project_id = ?
		AND (json_array_length(?) = 0 OR kind IN (SELECT value FROM json_each(?)))
		AND (? = '' OR id < ?)
		ORDER BY id DESC LIMIT ?`,
		p.ProjectID, string(kindsJSON), string(kindsJSON), p.BeforeID, p.BeforeID, max(p.Limit, 1))
	return js, wrap("list jobs", err)
}

// UpdateJob implements core.JobStore.
func (s *Store) UpdateJob(ctx context.Context, projectID, id string, fn func(*core.Job) error) (*core.Job, error) {
	var out *core.Job
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs
			WHERE id = ? AND (? = '' OR project_id = ?)`, id, projectID, projectID))
		if err != nil {
			return err
		}
		if err := fn(j); err != nil {
			return err
		}
		j.ID, out = id, j
		args, err := jobArgs(j)
		if err != nil {
			return err
		}
		// args[0] is the id: move it to the WHERE clause.
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET project_id = ?, kind = ?, state = ?, model = ?,
			display_name = ?, parent_id = ?, request = ?, result = ?, error_code = ?, error_message = ?,
			webhook_config = ?, output_file = ?, sequence = ?, outbox = ?, terminal_emitted = ?, runs = ?,
			lease_owner = ?, lease_expire = ?, create_time = ?, update_time = ?, start_time = ?,
			end_time = ?, expire_time = ?, trace_parent = ? WHERE id = ?`, append(args[1:], id)...)
		return err
	})
	if err != nil {
		return nil, wrap("update job", err)
	}
	return out, nil
}

// DeleteJob implements core.JobStore.
func (s *Store) DeleteJob(ctx context.Context, projectID, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE id = ? AND project_id = ?`, id, projectID)
		if err != nil {
			return err
		}
		return rowsAffected(res)
	})
	return wrap("delete job", err)
}

// ClaimJobs implements core.JobStore.
func (s *Store) ClaimJobs(ctx context.Context, p core.ClaimJobsParams) ([]*core.Job, error) {
	var out []*core.Job
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		js, err := queryJobs(ctx, tx, `WHERE state IN ('pending', 'running') AND (lease_expire <= ? OR (? AND lease_owner != ?))
			ORDER BY lease_expire, id LIMIT ?`, micros(p.Now), p.TakeOver, p.Owner, max(p.Limit, 1))
		if err != nil {
			return err
		}
		for _, j := range js {
			j.State, j.LeaseOwner, j.LeaseExpire = core.JobRunning, p.Owner, p.LeaseUntil
			j.Runs++
			if j.StartTime.IsZero() {
				j.StartTime = p.Now
			}
			j.UpdateTime = p.Now
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, lease_owner = ?, lease_expire = ?,
				runs = ?, start_time = ?, update_time = ? WHERE id = ?`, string(j.State), j.LeaseOwner,
				micros(j.LeaseExpire), j.Runs, micros(j.StartTime), micros(j.UpdateTime), j.ID); err != nil {
				return err
			}
		}
		out = js
		return nil
	})
	return out, wrap("claim jobs", err)
}

// ExtendJobLeases implements core.JobStore.
func (s *Store) ExtendJobLeases(ctx context.Context, owner string, ids []string, until time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var lost []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		lost = lost[:0]
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `UPDATE jobs SET lease_expire = ?
				WHERE id = ? AND lease_owner = ? AND state = 'running'`, micros(until), id, owner)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				lost = append(lost, id)
			}
		}
		return nil
	})
	return lost, wrap("extend job leases", err)
}

// JobsWithOutbox implements core.JobStore.
func (s *Store) JobsWithOutbox(ctx context.Context, limit int) ([]*core.Job, error) {
	js, err := queryJobs(ctx, s.r, `WHERE outbox != '' ORDER BY id LIMIT ?`, max(limit, 1))
	return js, wrap("jobs with outbox", err)
}

// ExpiredJobs implements core.JobStore.
func (s *Store) ExpiredJobs(ctx context.Context, now time.Time, limit int) ([]*core.Job, error) {
	js, err := queryJobs(ctx, s.r, `WHERE expire_time > 0 AND state IN ('pending', 'running')
		AND expire_time <= ? ORDER BY expire_time LIMIT ?`, micros(now), max(limit, 1))
	return js, wrap("expired jobs", err)
}

// NextJobWake implements core.JobStore.
func (s *Store) NextJobWake(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(lease_expire) FROM jobs
		WHERE state IN ('pending', 'running')`).Scan(&v)
	if err != nil {
		return time.Time{}, false, wrap("next job wake", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(v.Int64), true, nil
}

const fileCols = `id, project_id, display_name, mime_type, size_bytes, sha256, source,
	create_time, update_time, expire_time`

func scanFile(sc jobScanner) (*core.File, error) {
	f := &core.File{}
	var ct, ut, xt int64
	if err := sc.Scan(&f.ID, &f.ProjectID, &f.DisplayName, &f.MIMEType, &f.SizeBytes, &f.SHA256,
		&f.Source, &ct, &ut, &xt); err != nil {
		return nil, err
	}
	f.CreateTime, f.UpdateTime, f.ExpireTime = fromMicros(ct), fromMicros(ut), fromMicros(xt)
	return f, nil
}

func queryFiles(ctx context.Context, q queryer, where string, args ...any) ([]*core.File, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+fileCols+` FROM files `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*core.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// CreateFile implements core.JobStore.
func (s *Store) CreateFile(ctx context.Context, f *core.File) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO files (`+fileCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			f.ID, f.ProjectID, f.DisplayName, f.MIMEType, f.SizeBytes, orEmpty(f.SHA256), f.Source,
			micros(f.CreateTime), micros(f.UpdateTime), micros(f.ExpireTime))
		return err
	})
	return wrap("create file", err)
}

// fileWhere selects a file by project and id (by id alone, in any
// project, when projectID is empty), as the primary key (project_id, id)
// serves it.
func fileWhere(projectID, id string) (string, []any) {
	if projectID == "" {
		return `WHERE id = ?`, []any{id}
	}
	return `WHERE project_id = ? AND id = ?`, []any{projectID, id}
}

// GetFile implements core.JobStore (the first of any project when
// projectID is empty).
func (s *Store) GetFile(ctx context.Context, projectID, id string) (*core.File, error) {
	where, args := fileWhere(projectID, id)
	f, err := scanFile(s.r.QueryRowContext(ctx, `SELECT `+fileCols+` FROM files `+where+` ORDER BY project_id LIMIT 1`, args...))
	if err != nil {
		return nil, wrap("get file", err)
	}
	return f, nil
}

// ListFiles implements core.JobStore.
func (s *Store) ListFiles(ctx context.Context, projectID, beforeID string, limit int) ([]*core.File, error) {
	fs, err := queryFiles(ctx, s.r, `WHERE project_id = ? AND (? = '' OR id < ?) ORDER BY id DESC LIMIT ?`,
		projectID, beforeID, beforeID, max(limit, 1))
	return fs, wrap("list files", err)
}

// DeleteFile implements core.JobStore (in every project when projectID is
// empty).
func (s *Store) DeleteFile(ctx context.Context, projectID, id string) error {
	where, args := fileWhere(projectID, id)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM files `+where, args...)
		if err != nil {
			return err
		}
		return rowsAffected(res)
	})
	return wrap("delete file", err)
}

// ExpiredFiles implements core.JobStore.
func (s *Store) ExpiredFiles(ctx context.Context, now time.Time, limit int) ([]*core.File, error) {
	fs, err := queryFiles(ctx, s.r, `WHERE expire_time > 0 AND expire_time <= ? ORDER BY expire_time LIMIT ?`,
		micros(now), max(limit, 1))
	return fs, wrap("expired files", err)
}

// uploadFile is the JSON form of an upload's pending file metadata.
type uploadFile struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name,omitempty"`
	MIMEType    string `json:"mime_type,omitempty"`
	Source      string `json:"source,omitempty"`
	ExpireTime  int64  `json:"expire_time,omitempty"`
}

func scanUpload(sc jobScanner) (*core.Upload, error) {
	u := &core.Upload{}
	var file string
	var ct, ut int64
	if err := sc.Scan(&u.ID, &u.ProjectID, &file, &u.Size, &u.Received, &ct, &ut); err != nil {
		return nil, err
	}
	var uf uploadFile
	if err := json.Unmarshal([]byte(file), &uf); err != nil {
		return nil, fmt.Errorf("decode upload file: %w", err)
	}
	u.File = core.File{ID: uf.ID, ProjectID: u.ProjectID, DisplayName: uf.DisplayName, MIMEType: uf.MIMEType,
		Source: uf.Source, ExpireTime: fromMicros(uf.ExpireTime)}
	u.CreateTime, u.UpdateTime = fromMicros(ct), fromMicros(ut)
	return u, nil
}

const uploadCols = `id, project_id, file, size, received, create_time, update_time`

// CreateUpload implements core.JobStore.
func (s *Store) CreateUpload(ctx context.Context, u *core.Upload) error {
	file, err := json.Marshal(uploadFile{ID: u.File.ID, DisplayName: u.File.DisplayName, MIMEType: u.File.MIMEType,
		Source: u.File.Source, ExpireTime: micros(u.File.ExpireTime)})
	if err != nil {
		return wrap("create upload", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO uploads (`+uploadCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.ProjectID, string(file), u.Size, u.Received, micros(u.CreateTime), micros(u.UpdateTime))
		return err
	})
	return wrap("create upload", err)
}

// GetUpload implements core.JobStore.
func (s *Store) GetUpload(ctx context.Context, id string) (*core.Upload, error) {
	u, err := scanUpload(s.r.QueryRowContext(ctx, `SELECT `+uploadCols+` FROM uploads WHERE id = ?`, id))
	if err != nil {
		return nil, wrap("get upload", err)
	}
	return u, nil
}

// AdvanceUpload implements core.JobStore.
func (s *Store) AdvanceUpload(ctx context.Context, id string, from, to int64, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE uploads SET received = ?, update_time = ?
			WHERE id = ? AND received = ?`, to, micros(now), id, from)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("upload %s is not at offset %d: %w", id, from, core.ErrFailedPrecondition)
		}
		return nil
	})
	return wrap("advance upload", err)
}

// DeleteUpload implements core.JobStore.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return rowsAffected(res)
	})
	return wrap("delete upload", err)
}

// StaleUploads implements core.JobStore.
func (s *Store) StaleUploads(ctx context.Context, cutoff time.Time, limit int) ([]*core.Upload, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+uploadCols+` FROM uploads WHERE update_time < ?
		ORDER BY update_time LIMIT ?`, micros(cutoff), max(limit, 1))
	if err != nil {
		return nil, wrap("stale uploads", err)
	}
	defer rows.Close()
	var out []*core.Upload
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, wrap("stale uploads", err)
		}
		out = append(out, u)
	}
	return out, wrap("stale uploads", rows.Err())
}
