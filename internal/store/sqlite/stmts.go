package sqlite

import (
	"context"
	"database/sql"
	"strings"
)

// deliveryCols are the columns scanDelivery reads, in order.
const deliveryCols = `id, event_id, project_id, webhook_id, uri, dest, event_type, status, attempts,
	next_attempt_time, manual, last_status_code, last_error, schedule_start, create_time, update_time,
	lease_owner, schedule_base`

// stmts are the hot-path statements, prepared once on the writer
// connection and bound to each transaction with Tx.StmtContext (which
// reuses the connection's prepared statement).
type stmts struct {
	findIdem         *sql.Stmt
	insertEvent      *sql.Stmt
	insertDelivery   *sql.Stmt
	insertDeliveries *sql.Stmt
	claim            *sql.Stmt
	claimPayloads    *sql.Stmt
	insertAttempt    *sql.Stmt
	insertAttempts   *sql.Stmt
	complete         *sql.Stmt
	completeMany     *sql.Stmt
	failureRun       *sql.Stmt
	disableWebhook   *sql.Stmt
	upsertStats      *sql.Stmt
	all              []*sql.Stmt
}

// claimSQL leases due deliveries of one queue. The subquery walks the
// partial index deliveries_due in next_attempt_time order and stops after
// LIMIT rows, so scheduled (future) rows are never visited.
//
//	?1 owner, ?2 now, ?3 lease expiry, ?4 queue, ?5 excluded dests (JSON), ?6 limit
const claimSQL = `UPDATE deliveries SET lease_owner = ?1, lease_time = ?2, next_attempt_time = ?3
WHERE rowid IN (
	SELECT rowid FROM deliveries INDEXED BY deliveries_due
	WHERE status = 'pending' AND queue = ?4 AND next_attempt_time <= ?2
	  AND dest NOT IN (SELECT value FROM json_each(?5))
	ORDER BY next_attempt_time
	LIMIT ?6)
RETURNING ` + deliveryCols

// completeSQL applies an attempt's outcome if the lease is still held.
//
//	?1 status, ?2 next attempt, ?3 status code, ?4 error, ?5 update time,
//	?6 id, ?7 owner, ?8 whether an attempt was made
const completeSQL = `UPDATE deliveries SET status = ?1,
	queue = CASE WHEN ?1 = 'pending' THEN 1 ELSE queue END,
	next_attempt_time = ?2, lease_owner = '', lease_time = 0,
	attempts = attempts + (CASE WHEN ?8 THEN 1 ELSE 0 END),
	last_status_code = CASE WHEN ?8 THEN ?3 ELSE last_status_code END,
	last_error = CASE WHEN ?8 THEN ?4 ELSE last_error END,
	update_time = ?5
WHERE id = ?6 AND lease_owner = ?7 AND status = 'pending'`

// completeCols is the number of parameters of completeSQL, and of each
// row of completeManySQL.
const completeCols = 8

// completeManySQL is completeSQL for rows deliveries at once: rows of
// completeSQL's eight parameters, joined on id. OR FAIL, as for multi-row
// inserts: no statement journal.
func completeManySQL(rows int) string {
	var b strings.Builder
	b.WriteString(`UPDATE OR FAIL deliveries SET status = v.column1,
	queue = CASE WHEN v.column1 = 'pending' THEN 1 ELSE queue END,
	next_attempt_time = v.column2, lease_owner = '', lease_time = 0,
	attempts = attempts + (CASE WHEN v.column8 THEN 1 ELSE 0 END),
	last_status_code = CASE WHEN v.column8 THEN v.column3 ELSE last_status_code END,
	last_error = CASE WHEN v.column8 THEN v.column4 ELSE last_error END,
	update_time = v.column5
FROM (VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
	}
	b.WriteString(`) AS v
WHERE deliveries.id = v.column6 AND deliveries.lease_owner = v.column7 AND deliveries.status = 'pending'`)
	return b.String()
}

// failureRunSQL folds one batch's attempts into a webhook's failure run.
//
//	?1 reset (a success came after the batch's earlier failures), ?2 failures
//	after the last success, ?3 earliest of those failures, ?4 webhook id
const failureRunSQL = `UPDATE webhooks SET
	consecutive_failures = CASE WHEN ?1 THEN ?2 ELSE consecutive_failures + ?2 END,
	failing_since = CASE WHEN ?1 OR failing_since = 0 THEN ?3 ELSE failing_since END
WHERE id = ?4`

func (st *stmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.findIdem, `SELECT ` + eventCols + ` FROM events
			WHERE project_id = ? AND idempotency_key = ? AND idempotency_key != ''`},
		{&st.insertEvent, `INSERT INTO events (id, project_id, type, subject, payload, dynamic,
			idempotency_key, delivery_count, create_time, trace_parent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.insertDelivery, insertDeliveriesSQL(1)},
		{&st.insertDeliveries, insertDeliveriesSQL(insertBatch)},
		{&st.claim, claimSQL},
		{&st.claimPayloads, `SELECT id, payload, subject, dynamic, trace_parent FROM events
			WHERE id IN (SELECT value FROM json_each(?))`},
		{&st.insertAttempt, insertAttemptsSQL(1)},
		{&st.insertAttempts, insertAttemptsSQL(insertBatch)},
		{&st.complete, completeSQL},
		{&st.completeMany, completeManySQL(insertBatch)},
		{&st.failureRun, failureRunSQL},
		{&st.disableWebhook, `UPDATE webhooks SET state = 'disabled_due_to_failed_deliveries',
			update_time = ? WHERE id = ? AND state = 'enabled'`},
		{&st.upsertStats, statsUpsertSQL},
	} {
		s, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.dst = s
		st.all = append(st.all, s)
	}
	return nil
}

func (st *stmts) close() {
	for _, s := range st.all {
		_ = s.Close() // closing the DB afterwards releases them anyway
	}
	st.all = nil
}
