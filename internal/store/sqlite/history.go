package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Default and maximum page sizes of ListDeliveries.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// GetDelivery implements core.DeliveryStore; attempts are in order.
func (s *Store) GetDelivery(ctx context.Context, projectID, id string) (*core.Delivery, []core.Attempt, error) {
	// One read transaction so the delivery and its attempts agree.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, wrap("get delivery", err)
	}
	defer func() { _ = tx.Rollback() }()
	var in inlineAttempt
	d, err := scanDelivery(tx.QueryRowContext(ctx,
		`SELECT `+deliveryCols+`, `+inlineAttemptCols+` FROM deliveries WHERE id = ? AND project_id = ?`,
		id, projectID), &in.number, &in.uri, &in.latency, &in.response)
	if err != nil {
		return nil, nil, wrap("get delivery", err)
	}
	rows, err := tx.QueryContext(ctx,
		`SELECT number, time, uri, status_code, latency_ns, error, response FROM attempts
		 WHERE delivery_id = ? ORDER BY number, time, rowid`, id)
	if err != nil {
		return nil, nil, wrap("get delivery", err)
	}
	defer rows.Close()
	var as []core.Attempt
	for rows.Next() {
		a := core.Attempt{DeliveryID: id}
		var at, lat int64
		if err := rows.Scan(&a.Number, &at, &a.URI, &a.StatusCode, &lat, &a.Error, &a.Response); err != nil {
			return nil, nil, wrap("get delivery", err)
		}
		a.Time, a.Latency, a.Response = fromMicros(at), time.Duration(lat), nilIfEmpty(a.Response)
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, wrap("get delivery", err)
	}
	if in.number > 0 {
		as = core.InsertAttempt(as, core.Attempt{DeliveryID: id, Number: in.number, Time: d.UpdateTime,
			URI: in.uri, StatusCode: d.LastStatusCode, Latency: time.Duration(in.latency),
			Response: nilIfEmpty(in.response)})
	}
	return d, as, nil
}

// inlineAttemptCols reads the attempt kept in a delivery row (see
// CompleteDeliveries) into an inlineAttempt.
const inlineAttemptCols = `inline_attempt, CASE WHEN inline_uri = '' THEN uri ELSE inline_uri END,
	inline_latency_ns, inline_response`

// inlineAttempt is the part of an attempt kept in a delivery row that
// the row does not hold otherwise.
type inlineAttempt struct {
	number   int
	uri      string
	latency  int64
	response []byte
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// spillInlineSQL, completed by a condition on deliveries, moves the
// attempts kept in the rows it selects into attempts, before a replay
// changes the rows' update_time and status code; clearInlineSQL is the
// SET clause that then forgets them.
const (
	spillInlineSQL = `INSERT INTO attempts (delivery_id, number, time, uri, status_code, latency_ns, error, response)
	SELECT id, inline_attempt, update_time, CASE WHEN inline_uri = '' THEN uri ELSE inline_uri END,
		last_status_code, inline_latency_ns, '', inline_response
	FROM deliveries WHERE inline_attempt > 0 AND `
	clearInlineSQL = `inline_attempt = 0, inline_uri = '', inline_latency_ns = 0, inline_response = x''`
)

// ListDeliveries implements core.DeliveryStore: newest first by id, Limit
// defaulting to 100 and capped at 1000. Since and Until bound CreateTime
// as [Since, Until).
func (s *Store) ListDeliveries(ctx context.Context, p core.ListDeliveriesParams) ([]*core.Delivery, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	add("project_id = ?", p.ProjectID)
	indexed := "" // without a webhook: the primary key, newest first
	if p.WebhookID != "" {
		add("webhook_id = ?", p.WebhookID)
		indexed = " INDEXED BY deliveries_webhook"
	}
	switch p.Status {
	case "":
	case core.DeliveryPending:
		where = append(where, "status IN "+pendingSQL)
	default:
		add("status = ?", string(p.Status))
	}
	if p.EventType != "" {
		add("event_type = ?", p.EventType)
	}
	if !p.Since.IsZero() {
		add("create_time >= ?", micros(p.Since))
	}
	if !p.Until.IsZero() {
		add("create_time < ?", micros(p.Until))
	}
	if p.BeforeID != "" {
		add("id < ?", p.BeforeID)
	}
	if p.AfterID != "" {
		add("id > ?", p.AfterID)
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries`+indexed+
		` WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, wrap("list deliveries", err)
	}
	defer rows.Close()
	var out []*core.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, wrap("list deliveries", err)
		}
		out = append(out, d)
	}
	return out, wrap("list deliveries", rows.Err())
}

// Redeliver implements core.DeliveryStore. The delivery joins the
// first-attempt queue (a person is waiting for it); any lease is dropped,
// so a completion from an engine still holding it changes nothing.
func (s *Store) Redeliver(ctx context.Context, projectID, id string, now time.Time) (*core.Delivery, error) {
	var d *core.Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, spillInlineSQL+`id = ? AND project_id = ?`, id, projectID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, widenSpanSQL(`id = ? AND project_id = ?`), id, projectID); err != nil {
			return err
		}
		var err error
		d, err = scanDelivery(tx.QueryRowContext(ctx,
			`UPDATE deliveries SET status = 'pending', queue = 0, next_attempt_time = ?1,
			 manual = CASE WHEN status IN `+pendingSQL+` THEN manual ELSE 1 END,
			 lease_owner = '', lease_time = 0, update_time = ?1, `+clearInlineSQL+`
			 WHERE id = ?2 AND project_id = ?3
			 RETURNING `+deliveryCols, micros(now), id, projectID))
		return err
	})
	if err != nil {
		return nil, wrap("redeliver", err)
	}
	s.signal()
	return d, nil
}

// RecoverDeliveries implements core.DeliveryStore. Matching deliveries
// (oldest first, after AfterID) go back to the first-attempt queue with
// ScheduleStart and NextAttemptTime at Now and Manual cleared; Attempts is
// kept as history. Until zero means no upper bound; Limit defaults to 1000.
func (s *Store) RecoverDeliveries(ctx context.Context, p core.RecoverParams) (int, string, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = maxListLimit
	}
	statuses := `'succeeded', 'failed', 'skipped', 'cancelled'`
	if p.OnlyFailed {
		statuses = `'failed', 'skipped'`
	}
	until := int64(1<<63 - 1)
	if !p.Until.IsZero() {
		until = micros(p.Until)
	}
	var n int
	var last, next string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE id = ? AND project_id = ?`,
			p.WebhookID, p.ProjectID).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return core.ErrNotFound
		}
		// ?5 is the exclusive cursor, ?6 the limit.
		match := func(cols string) string {
			return `SELECT ` + cols + ` FROM deliveries INDEXED BY deliveries_webhook
			WHERE webhook_id = ?1 AND project_id = ?2 AND create_time >= ?3 AND create_time < ?4 AND id > ?5
			  AND status IN (` + statuses + `) ORDER BY id LIMIT ?6`
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), '') FROM (`+match("id")+`)`,
			p.WebhookID, p.ProjectID, micros(p.Since), until, p.AfterID, limit).Scan(&n, &last); err != nil {
			return err
		}
		if n == limit {
			var beyond int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (`+match("1")+`)`,
				p.WebhookID, p.ProjectID, micros(p.Since), until, last, 1).Scan(&beyond); err != nil {
				return err
			}
			if beyond > 0 {
				next = last
			}
		}
		if p.DryRun || n == 0 {
			return nil
		}
		rows := `rowid IN (` + match("rowid") + `)`
		if _, err := tx.ExecContext(ctx, spillInlineSQL+rows,
			p.WebhookID, p.ProjectID, micros(p.Since), until, p.AfterID, limit); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, widenSpanSQL(rows),
			p.WebhookID, p.ProjectID, micros(p.Since), until, p.AfterID, limit); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', queue = 0, manual = 0,
			schedule_start = ?7, schedule_base = attempts, next_attempt_time = ?7, lease_owner = '', lease_time = 0, update_time = ?7,
			`+clearInlineSQL+`
			WHERE `+rows,
			p.WebhookID, p.ProjectID, micros(p.Since), until, p.AfterID, limit, micros(p.Now))
		return err
	})
	if err != nil {
		return 0, "", wrap("recover", err)
	}
	if !p.DryRun && n > 0 {
		s.signal()
	}
	return n, next, nil
}

// deleteChunk bounds each DeleteExpired transaction, so the sweep never
// holds the writer for long.
const deleteChunk = 256

// DeleteExpired implements core.DeliveryStore in transactions of at most
// deleteChunk deliveries or events. limit bounds deliveries and events
// separately; the result counts deleted deliveries and events (attempts go
// with their delivery and are not counted).
func (s *Store) DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	c, bound := micros(cutoff), core.SortableIDBound(cutoff.Add(time.Millisecond))
	total := 0
	for _, step := range []func(tx *sql.Tx, n int) (int, error){
		func(tx *sql.Tx, n int) (int, error) { return deleteDeliveries(ctx, tx, "msg_"+bound, c, n) },
		func(tx *sql.Tx, n int) (int, error) { return deleteEvents(ctx, tx, bound, c, n) },
	} {
		left := limit
		for left > 0 {
			var got int
			err := s.inTx(ctx, func(tx *sql.Tx) error {
				var err error
				got, err = step(tx, min(left, deleteChunk))
				return err
			})
			if err != nil {
				return total, wrap("delete expired", err)
			}
			total += got
			left -= got
			if got < min(left+got, deleteChunk) {
				break
			}
		}
	}
	return total, nil
}

// deleteDeliveries and deleteEvents range over the primary key up to
// bound, the id prefix of the millisecond after the cutoff (ids sort by
// creation time), and check create_time exactly. An event is kept while
// a delivery of it is pending, looked for in the range of delivery ids
// the event records (migration 0011).
func deleteDeliveries(ctx context.Context, tx *sql.Tx, bound string, cutoff int64, n int) (int, error) {
	rows, err := tx.QueryContext(ctx,
		`DELETE FROM deliveries WHERE id IN (
			SELECT id FROM deliveries
			WHERE id < ? AND create_time < ? AND status NOT IN `+pendingSQL+` ORDER BY id LIMIT ?)
		 RETURNING id`, bound, cutoff, n)
	if err != nil {
		return 0, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	_, err = tx.ExecContext(ctx,
		`DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?))`, jsonList(ids))
	return len(ids), err
}

func deleteEvents(ctx context.Context, tx *sql.Tx, bound string, cutoff int64, n int) (int, error) {
	res, err := tx.ExecContext(ctx,
		`DELETE FROM events WHERE id IN (
			SELECT e.id FROM events e
			WHERE e.id < ? AND e.create_time < ?
			  AND NOT EXISTS (SELECT 1 FROM deliveries d
			                  WHERE d.id >= e.first_delivery AND d.id <= e.last_delivery
			                    AND d.event_id = e.id AND d.status IN `+pendingSQL+`)
			ORDER BY e.id LIMIT ?)`, bound, cutoff, n)
	if err != nil {
		return 0, err
	}
	got, err := res.RowsAffected()
	return int(got), err
}
