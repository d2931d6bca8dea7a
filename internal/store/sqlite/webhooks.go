package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// queryer is what both *sql.DB and *sql.Tx offer for reads.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const webhookCols = `id, project_id, name, uri, subscribed_events, state, retry_schedule,
	create_time, update_time, failing_since, consecutive_failures, rate_limit, trace_propagation`

func scanWebhook(sc interface{ Scan(...any) error }) (*core.Webhook, error) {
	w := &core.Webhook{}
	var events, sched []byte
	var state string
	var ct, ut, fs int64
	var rate string
	if err := sc.Scan(&w.ID, &w.ProjectID, &w.Name, &w.URI, &events, &state, &sched,
		&ct, &ut, &fs, &w.ConsecutiveFailures, &rate, &w.TracePropagation); err != nil {
		return nil, err
	}
	var err error
	if w.RateLimit, err = core.ParseRateLimitJSON(rate); err != nil {
		return nil, err
	}
	w.State = core.WebhookState(state)
	if err := json.Unmarshal(events, &w.SubscribedEvents); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(sched, &w.RetrySchedule); err != nil {
		return nil, err
	}
	if len(w.RetrySchedule) == 0 {
		w.RetrySchedule = nil
	}
	w.CreateTime, w.UpdateTime, w.FailingSince = fromMicros(ct), fromMicros(ut), fromMicros(fs)
	return w, nil
}

// queryWebhooks runs a webhook query and attaches every webhook's secrets.
func queryWebhooks(ctx context.Context, q queryer, query string, args ...any) ([]*core.Webhook, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+webhookCols+` FROM webhooks `+query, args...)
	if err != nil {
		return nil, err
	}
	var out []*core.Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, len(out))
	byID := make(map[string]*core.Webhook, len(out))
	for i, w := range out {
		ids[i] = w.ID
		byID[w.ID] = w
	}
	rows, err = q.QueryContext(ctx,
		`SELECT webhook_id, id, sealed, hint, create_time, expire_time FROM webhook_secrets
		 WHERE webhook_id IN (SELECT value FROM json_each(?))
		 ORDER BY webhook_id, create_time DESC, id DESC`, jsonList(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var wid string
		var sec core.SigningSecret
		var ct, et int64
		if err := rows.Scan(&wid, &sec.ID, &sec.Sealed, &sec.Hint, &ct, &et); err != nil {
			return nil, err
		}
		sec.CreateTime, sec.ExpireTime = fromMicros(ct), fromMicros(et)
		if w := byID[wid]; w != nil {
			w.Secrets = append(w.Secrets, sec)
		}
	}
	return out, rows.Err()
}

func getWebhook(ctx context.Context, q queryer, projectID, id string) (*core.Webhook, error) {
	ws, err := queryWebhooks(ctx, q, `WHERE id = ? AND project_id = ?`, id, projectID)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, core.ErrNotFound
	}
	return ws[0], nil
}

// jsonList renders ids as a JSON array for json_each(?), so that one
// prepared statement serves any number of ids.
func jsonList(ids []string) string {
	if len(ids) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

// writeWebhook inserts or replaces w and replaces its secrets.
func writeWebhook(ctx context.Context, tx *sql.Tx, w *core.Webhook, insert bool) error {
	events, err := json.Marshal(orEmpty(w.SubscribedEvents))
	if err != nil {
		return err
	}
	sched, err := json.Marshal(orEmpty(w.RetrySchedule))
	if err != nil {
		return err
	}
	args := []any{w.Name, w.URI, string(events), string(w.State), string(sched),
		micros(w.CreateTime), micros(w.UpdateTime), micros(w.FailingSince), w.ConsecutiveFailures,
		core.RateLimitJSON(w.RateLimit), w.TracePropagation, w.ID, w.ProjectID}
	if insert {
		_, err = tx.ExecContext(ctx,
			`INSERT INTO webhooks (name, uri, subscribed_events, state, retry_schedule, create_time,
			 update_time, failing_since, consecutive_failures, rate_limit, trace_propagation, id, project_id)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	} else {
		_, err = tx.ExecContext(ctx,
			`UPDATE webhooks SET name = ?, uri = ?, subscribed_events = ?, state = ?, retry_schedule = ?,
			 create_time = ?, update_time = ?, failing_since = ?, consecutive_failures = ?, rate_limit = ?,
			 trace_propagation = ? WHERE id = ? AND project_id = ?`, args...)
	}
	if err != nil {
		return err
	}
	if !insert {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_secrets WHERE webhook_id = ?`, w.ID); err != nil {
			return err
		}
	}
	for _, sec := range w.Secrets {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO webhook_secrets (webhook_id, id, sealed, hint, create_time, expire_time)
			 VALUES (?, ?, ?, ?, ?, ?)`,
			w.ID, sec.ID, orEmpty(sec.Sealed), sec.Hint, micros(sec.CreateTime), micros(sec.ExpireTime)); err != nil {
			return err
		}
	}
	return nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// CreateWebhook implements core.WebhookStore. A duplicate id is
// core.ErrAlreadyExists.
func (s *Store) CreateWebhook(ctx context.Context, w *core.Webhook) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return writeWebhook(ctx, tx, w, true) })
	return wrap("create webhook", err)
}

// GetWebhook implements core.WebhookStore.
func (s *Store) GetWebhook(ctx context.Context, projectID, id string) (*core.Webhook, error) {
	w, err := getWebhook(ctx, s.r, projectID, id)
	if err != nil {
		return nil, wrap("get webhook", err)
	}
	return w, nil
}

// ListWebhooks implements core.WebhookStore. Limit defaults to 50.
func (s *Store) ListWebhooks(ctx context.Context, p core.ListWebhooksParams) ([]*core.Webhook, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	ws, err := queryWebhooks(ctx, s.r, `WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?`,
		p.ProjectID, p.AfterID, limit)
	if err != nil {
		return nil, wrap("list webhooks", err)
	}
	return ws, nil
}

// UpdateWebhook implements core.WebhookStore. fn runs inside the write
// transaction: it must not call the store (the single writer connection
// is held) and should be quick. fn cannot move the webhook: its ID and
// ProjectID are restored before writing.
func (s *Store) UpdateWebhook(ctx context.Context, projectID, id string, fn func(*core.Webhook) error) (*core.Webhook, error) {
	var out *core.Webhook
	var fnErr error
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w, err := getWebhook(ctx, tx, projectID, id)
		if err != nil {
			return err
		}
		if fnErr = fn(w); fnErr != nil {
			return fnErr
		}
		w.ID, w.ProjectID = id, projectID
		if err := writeWebhook(ctx, tx, w, false); err != nil {
			return err
		}
		out = w
		return nil
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, wrap("update webhook", err)
	}
	return out, nil
}

// DeleteWebhook implements core.WebhookStore. The webhook's deliveries
// keep their webhook_id, so history stays readable by id. Its pending
// deliveries are cancelled, except those leased to an attempt under way:
// that attempt's completion (which needs the lease) records and counts it
// — cancelled here, it showed attempt_count 0 beside the attempt it
// listed — and the engine cancels instead of retrying it.
func (s *Store) DeleteWebhook(ctx context.Context, projectID, id string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ? AND project_id = ?`, id, projectID)
		if err != nil {
			return err
		}
		if err := rowsAffected(res); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_secrets WHERE webhook_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`UPDATE deliveries SET status = 'cancelled', lease_owner = '', lease_time = 0,
			 next_attempt_time = 0, update_time = ?
			 WHERE webhook_id = ? AND status = 'pending' AND lease_owner = ''`, micros(now), id)
		return err
	})
	return wrap("delete webhook", err)
}

// SubscribedWebhooks implements core.WebhookStore. A project has few
// webhooks, so they are filtered by type in Go.
func (s *Store) SubscribedWebhooks(ctx context.Context, projectID string, types []string) ([]*core.Webhook, error) {
	ws, err := queryWebhooks(ctx, s.r, `WHERE project_id = ? ORDER BY id`, projectID)
	if err != nil {
		return nil, wrap("subscribed webhooks", err)
	}
	out := ws[:0]
	for _, w := range ws {
		if slices.ContainsFunc(types, w.Subscribes) {
			out = append(out, w)
		}
	}
	return out, nil
}

// WebhooksByID implements core.WebhookStore.
func (s *Store) WebhooksByID(ctx context.Context, ids []string) (map[string]*core.Webhook, error) {
	out := make(map[string]*core.Webhook, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ws, err := queryWebhooks(ctx, s.r, `WHERE id IN (SELECT value FROM json_each(?))`, jsonList(ids))
	if err != nil {
		return nil, wrap("webhooks by id", err)
	}
	for _, w := range ws {
		out[w.ID] = w
	}
	return out, nil
}

// DisableFailingWebhooks implements core.WebhookStore.
func (s *Store) DisableFailingWebhooks(ctx context.Context, failingSince time.Time, minFailures int, now time.Time) ([]string, error) {
	rows, err := s.w.QueryContext(ctx,
		`UPDATE webhooks SET state = 'disabled_due_to_failed_deliveries', update_time = ?
		 WHERE state = 'enabled' AND failing_since != 0 AND failing_since <= ? AND consecutive_failures >= ?
		 RETURNING id`, micros(now), micros(failingSince), minFailures)
	if err != nil {
		return nil, wrap("disable failing webhooks", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("disable failing webhooks", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("disable failing webhooks", err)
	}
	slices.Sort(ids)
	return ids, nil
}
