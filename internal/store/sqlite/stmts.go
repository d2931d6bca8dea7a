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

// stmts are the claim's statements, prepared once on the writer
// connection and bound to each transaction with Tx.StmtContext (which
// reuses the connection's prepared statement). The other hot statements
// are prepared by the driver itself (rawStmts).
type stmts struct {
	claim         *sql.Stmt
	claimPayloads *sql.Stmt
	// The lease spans' sweep (sweepLeaseSpans).
	spanBounds, spanRows, spanDelete *sql.Stmt
	all                              []*sql.Stmt
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

// completeCols is the number of parameters of each row of
// completeManySQL.
const completeCols = 8

// completeManySQL applies the outcomes of rows attempts whose leases are
// still held and whose deliveries' attempt counts are still the ones
// claimed: rows of eight parameters (status, next attempt, status code,
// error, update time, id, owner, the attempt's number — 0: none was
// made), joined on id. OR FAIL, as for multi-row inserts: no statement journal.
func completeManySQL(rows int) string {
	return completeRowsSQL("(?, ?, ?, ?, ?, ?, ?, ?)", rows)
}

// succeedCols is the number of parameters of each row of succeedManySQL.
const succeedCols = 5

// succeedManySQL is completeManySQL for successful attempts without an
// error: rows of five parameters (status code, update time, id, owner,
// number), the other three written in the statement.
func succeedManySQL(rows int) string {
	return completeRowsSQL("('succeeded', 0, ?, '', ?, ?, ?, ?)", rows)
}

// inlineCols is the number of parameters of each row of inlineManySQL.
const inlineCols = 7

// inlineManySQL is succeedManySQL for attempts kept in the delivery row
// (see CompleteDeliveries) of one lease owner: rows of seven parameters
// (status code, time, attempt number, URI, latency, response or NULL for
// none, id), then the owner, bound once for all the rows. The attempt's
// time is update_time, its status code last_status_code; its URI is
// stored only when it differs from the delivery's.
func inlineManySQL(rows int) string {
	return `UPDATE OR FAIL deliveries SET status = 'succeeded', next_attempt_time = 0,
	lease_owner = '', lease_time = 0, attempts = attempts + 1, last_status_code = v.column1,
	last_error = '', update_time = v.column2, inline_attempt = v.column3,
	inline_uri = CASE WHEN v.column4 = uri THEN '' ELSE v.column4 END,
	inline_latency_ns = v.column5, inline_response = coalesce(v.column6, x'')
FROM (` + valuesSQL("(?, ?, ?, ?, ?, ?, ?)", rows) + `) AS v
WHERE deliveries.id = v.column7 AND deliveries.lease_owner = ? AND deliveries.status IN ` + pendingSQL + `
	AND deliveries.attempts = v.column3 - 1`
}

// completeRowsSQL is the completion UPDATE joined on rows copies of row.
func completeRowsSQL(row string, rows int) string {
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
		b.WriteString(row)
	}
	b.WriteString(`) AS v
WHERE deliveries.id = v.column6 AND deliveries.lease_owner = v.column7 AND deliveries.status IN ` + pendingSQL + `
	AND (v.column8 = 0 OR deliveries.attempts = v.column8 - 1)`)
	return b.String()
}

// failureRunSQL folds one batch's attempts into a webhook's failure run.
// A batch of successes only (?1 and no failures after the last success)
// leaves a webhook without a failure run as it is: the row is not
// written again, so a commit of completions does not copy the webhook's
// page to the WAL for nothing.
//
//	?1 reset (a success came after the batch's earlier failures), ?2 failures
//	after the last success, ?3 earliest of those failures, ?4 webhook id
const failureRunSQL = `UPDATE webhooks SET
	consecutive_failures = CASE WHEN ?1 THEN ?2 ELSE consecutive_failures + ?2 END,
	failing_since = CASE WHEN ?1 OR failing_since = 0 THEN ?3 ELSE failing_since END
WHERE id = ?4 AND NOT (?1 AND ?2 = 0 AND consecutive_failures = 0 AND failing_since = 0)`

func (st *stmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.claim, claimSQL},
		{&st.claimPayloads, `SELECT id, payload, subject, dynamic, trace_parent FROM events
			WHERE id IN (SELECT value FROM json_each(?))`},
		{&st.spanBounds, `SELECT min(first), max(last) FROM lease_spans WHERE expire <= ?`},
		{&st.spanRows, `UPDATE OR FAIL deliveries SET status = 'pending'
			WHERE id >= ? AND id <= ? AND status = '` + statusLeased + `'`},
		{&st.spanDelete, `DELETE FROM lease_spans WHERE expire <= ?`},
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
