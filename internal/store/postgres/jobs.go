package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// This file implements core.JobStore: jobs, files and upload sessions
// (schema in migrations/0002_jobs.sql; file contents in blobs.go), with the
// SQLite driver's semantics.
//
// UpdateJob reads the job FOR UPDATE, calls fn and writes every field back
// in one transaction, so concurrent transitions of a job serialise and each
// sees the state the previous one committed. ClaimJobs is one statement:
// a CTE picks runnable jobs in (lease_expire, id) order with LIMIT and FOR
// UPDATE SKIP LOCKED, and an UPDATE leases them. Concurrent claimers skip
// each other's locked rows; a row another claimer (or a transition) changed
// after this statement's snapshot is re-checked against the WHERE clause
// and dropped, so no job is claimed twice and no settled job is revived.

var _ core.JobStore = (*Store)(nil)

var jobColumns = []string{"id", "project_id", "kind", "state", "model", "display_name", "parent_id",
	"request", "result", "error_code", "error_message", "webhook_config", "output_file", "sequence",
	"outbox", "terminal_emitted", "runs", "lease_owner", "lease_expire", "create_time", "update_time",
	"start_time", "end_time", "expire_time", "trace_parent"}

var (
	jobCols = strings.Join(jobColumns, ", ")
	// insertJobSQL and updateJobSQL take jobArgs.
	insertJobSQL = `INSERT INTO jobs (` + jobCols + `) VALUES (` + placeholders(1, len(jobColumns)) + `)`
	updateJobSQL = func() string {
		set := make([]string, 0, len(jobColumns)-1)
		for i, c := range jobColumns[1:] {
			set = append(set, c+" = $"+strconv.Itoa(i+2))
		}
		return `UPDATE jobs SET ` + strings.Join(set, ", ") + ` WHERE id = $1`
	}()
)

// placeholders returns "$from, ..., $(from+n-1)".
func placeholders(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(from+i)
	}
	return strings.Join(ps, ", ")
}

func scanJob(r pgx.Row) (*core.Job, error) {
	j := &core.Job{}
	var kind, state string
	var req, res, dyn, outbox []byte
	if err := r.Scan(&j.ID, &j.ProjectID, &kind, &state, &j.Model, &j.DisplayName, &j.ParentID,
		&req, &res, &j.ErrorCode, &j.ErrorMessage, &dyn, &j.OutputFile, &j.Sequence,
		&outbox, &j.TerminalEmitted, &j.Runs, &j.LeaseOwner, &j.LeaseExpire, &j.CreateTime, &j.UpdateTime,
		&j.StartTime, &j.EndTime, &j.ExpireTime, &j.TraceParent); err != nil {
		return nil, err
	}
	j.Kind, j.State = core.JobKind(kind), core.JobState(state)
	cfg, err := decodeDynamic(dyn)
	if err != nil {
		return nil, err
	}
	j.WebhookConfig = cfg
	if len(outbox) > 0 {
		j.Outbox = &core.JobEvent{}
		if err := json.Unmarshal(outbox, j.Outbox); err != nil {
			return nil, fmt.Errorf("decode outbox: %w", err)
		}
	}
	if len(req) > 0 {
		j.Request = req
	}
	if len(res) > 0 {
		j.Result = res
	}
	return j, nil
}

// jobArgs returns the column values of j in jobColumns order.
func jobArgs(j *core.Job) ([]any, error) {
	dyn, err := encodeDynamic(j.WebhookConfig)
	if err != nil {
		return nil, err
	}
	var outbox *string
	if j.Outbox != nil {
		b, err := json.Marshal(j.Outbox)
		if err != nil {
			return nil, err
		}
		s := string(b)
		outbox = &s
	}
	return []any{j.ID, j.ProjectID, string(j.Kind), string(j.State), j.Model, j.DisplayName, j.ParentID,
		orEmpty([]byte(j.Request)), orEmpty([]byte(j.Result)), j.ErrorCode, j.ErrorMessage, dyn, j.OutputFile,
		j.Sequence, outbox, j.TerminalEmitted, j.Runs, j.LeaseOwner, j.LeaseExpire,
		j.CreateTime, j.UpdateTime, j.StartTime, j.EndTime, j.ExpireTime, j.TraceParent}, nil
}

// queryJobs runs a read of jobs (SELECT jobCols FROM jobs + tail).
func (s *Store) queryJobs(ctx context.Context, tail string, args ...any) ([]*core.Job, error) {
	return query(ctx, s, true, scanJob, `SELECT `+jobCols+` FROM jobs `+tail, args...)
}

// CreateJob implements core.JobStore.
func (s *Store) CreateJob(ctx context.Context, j *core.Job) error {
	args, err := jobArgs(j)
	if err != nil {
		return wrap("create job", err)
	}
	_, err = s.exec(ctx, false, insertJobSQL, args...)
	return wrap("create job", err)
}

// GetJob implements core.JobStore.
func (s *Store) GetJob(ctx context.Context, projectID, id string) (*core.Job, error) {
	js, err := s.queryJobs(ctx, `WHERE id = $1 AND ($2 = '' OR project_id = $2)`, id, projectID)
	if err == nil && len(js) == 0 {
		err = core.ErrNotFound
	}
	if err != nil {
		return nil, wrap("get job", err)
	}
	return js[0], nil
}

// ListJobs implements core.JobStore.
func (s *Store) ListJobs(ctx context.Context, p core.ListJobsParams) ([]*core.Job, error) {
	kinds := make([]string, len(p.Kinds))
	for i, k := range p.Kinds {
		kinds[i] = string(k)
	}
	js, err := s.queryJobs(ctx, `WHERE project_id = $1
		AND (cardinality($2::text[]) = 0 OR kind = ANY($2::text[]))
		AND ($3 = '' OR id < $3)
		ORDER BY id DESC LIMIT $4`, p.ProjectID, kinds, p.BeforeID, max(p.Limit, 1))
	return js, wrap("list jobs", err)
}

// UpdateJob implements core.JobStore. fn runs on the row locked FOR
// UPDATE; it may run again if the transaction is retried (a deadlock or a
// failure before anything was sent), each time on the job as stored.
func (s *Store) UpdateJob(ctx context.Context, projectID, id string, fn func(*core.Job) error) (*core.Job, error) {
	var out *core.Job
	var fnErr error
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		j, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs
			WHERE id = $1 AND ($2 = '' OR project_id = $2) FOR UPDATE`, id, projectID))
		if err != nil {
			return err
		}
		if fnErr = fn(j); fnErr != nil {
			return fnErr
		}
		j.ID = id
		args, err := jobArgs(j)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, updateJobSQL, args...); err != nil {
			return err
		}
		out = j
		return nil
	})
	if fnErr != nil && err == fnErr {
		return nil, fmt.Errorf("postgres: update job: %w", fnErr) // fn's error as is, not mapped by wrap
	}
	if err != nil {
		return nil, wrap("update job", err)
	}
	return out, nil
}

// DeleteJob implements core.JobStore.
func (s *Store) DeleteJob(ctx context.Context, projectID, id string) error {
	n, err := s.exec(ctx, false, `DELETE FROM jobs WHERE id = $1 AND project_id = $2`, id, projectID)
	if err == nil && n == 0 {
		err = core.ErrNotFound
	}
	return wrap("delete job", err)
}

// claimJobsSQL leases runnable jobs ($1 now, NULL for the database's; $2
// take over, $3 owner, $4 limit, $5 lease in µs) and returns them in claim
// order. The CTE's
// columns are named apart from jobs' so that RETURNING reads the updated
// row.
var claimJobsSQL = `WITH now_ AS (SELECT coalesce($1::timestamptz, now()) AS t), c AS (
	SELECT id AS claim_id, lease_expire AS old_lease FROM jobs
	WHERE state IN ('pending', 'running') AND (lease_expire <= (SELECT t FROM now_) OR ($2 AND lease_owner <> $3))
	ORDER BY lease_expire, id
	LIMIT $4
	FOR UPDATE SKIP LOCKED
), u AS (
	UPDATE jobs SET state = 'running', lease_owner = $3, lease_expire = (SELECT t FROM now_) + $5::int8 * interval '1 microsecond', runs = runs + 1,
		start_time = CASE WHEN start_time = ` + zeroTime + ` THEN now_.t ELSE start_time END, update_time = now_.t
	FROM c, now_ WHERE id = c.claim_id
	RETURNING old_lease, ` + jobCols + `
)
SELECT ` + jobCols + ` FROM u ORDER BY old_lease, id`

// ClaimJobs implements core.JobStore in one statement (see the file
// comment). A claim whose outcome is lost with the connection is retried:
// the jobs it may have leased are resumed when their lease runs out.
func (s *Store) ClaimJobs(ctx context.Context, p core.ClaimJobsParams) ([]*core.Job, error) {
	js, err := query(ctx, s, true, scanJob, claimJobsSQL,
		s.leaseNow(p.Now), p.TakeOver, p.Owner, max(p.Limit, 1), micros(p.LeaseUntil.Sub(p.Now)))
	return js, wrap("claim jobs", err)
}

// ExtendJobLeases implements core.JobStore in one statement; it can run
// twice with the same effect. The new expiry is the database's now() plus
// the time until `until` on this process's clock (see
// Options.CallerClock).
func (s *Store) ExtendJobLeases(ctx context.Context, owner string, ids []string, until time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	extended, err := query(ctx, s, true, func(r pgx.Row) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	}, `UPDATE jobs SET lease_expire = coalesce($1::timestamptz, now() + $4::int8 * interval '1 microsecond')
		WHERE id = ANY($2) AND lease_owner = $3 AND state = 'running'
		RETURNING id`, s.leaseUntil(until), ids, owner, micros(time.Until(until)))
	if err != nil {
		return nil, wrap("extend job leases", err)
	}
	done := make(map[string]bool, len(extended))
	for _, id := range extended {
		done[id] = true
	}
	var lost []string
	for _, id := range ids {
		if !done[id] {
			lost = append(lost, id)
		}
	}
	return lost, nil
}

// JobsWithOutbox implements core.JobStore.
func (s *Store) JobsWithOutbox(ctx context.Context, limit int) ([]*core.Job, error) {
	js, err := s.queryJobs(ctx, `WHERE outbox IS NOT NULL ORDER BY id LIMIT $1`, max(limit, 1))
	return js, wrap("jobs with outbox", err)
}

// ExpiredJobs implements core.JobStore.
func (s *Store) ExpiredJobs(ctx context.Context, now time.Time, limit int) ([]*core.Job, error) {
	js, err := s.queryJobs(ctx, `WHERE expire_time <> `+zeroTime+` AND state IN ('pending', 'running')
		AND expire_time <= $1 ORDER BY expire_time, id LIMIT $2`, now, max(limit, 1))
	return js, wrap("expired jobs", err)
}

// NextJobWake implements core.JobStore.
func (s *Store) NextJobWake(ctx context.Context) (time.Time, bool, error) {
	ts, err := query(ctx, s, true, func(r pgx.Row) (*time.Time, error) {
		var t *time.Time
		err := r.Scan(&t)
		return t, err
	}, `SELECT min(lease_expire) FROM jobs WHERE state = 'running'`)
	if err != nil {
		return time.Time{}, false, wrap("next job wake", err)
	}
	if len(ts) == 0 || ts[0] == nil {
		return time.Time{}, false, nil
	}
	return ts[0].UTC(), true, nil
}
