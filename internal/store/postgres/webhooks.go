package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// querier is what both *pgx.Conn and pgx.Tx offer for reads.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// webhookSelect reads webhooks with their secrets (newest first) in one
// statement, hence one snapshot; the caller appends WHERE/ORDER/LIMIT.
const webhookSelect = `SELECT w.id, w.project_id, w.name, w.uri, w.subscribed_events, w.state,
	w.retry_schedule, w.create_time, w.update_time, w.failing_since, w.consecutive_failures, w.rate_limit,
	w.trace_propagation,
	coalesce(s.sec_ids, '{}'), coalesce(s.sec_sealed, '{}'), coalesce(s.sec_hints, '{}'),
	coalesce(s.sec_created, '{}'), coalesce(s.sec_expires, '{}')
FROM webhooks w LEFT JOIN LATERAL (
	SELECT array_agg(id ORDER BY create_time DESC, id DESC) AS sec_ids,
		array_agg(sealed ORDER BY create_time DESC, id DESC) AS sec_sealed,
		array_agg(hint ORDER BY create_time DESC, id DESC) AS sec_hints,
		array_agg(create_time ORDER BY create_time DESC, id DESC) AS sec_created,
		array_agg(expire_time ORDER BY create_time DESC, id DESC) AS sec_expires
	FROM webhook_secrets WHERE webhook_id = w.id
) s ON true
`

func scanWebhook(r pgx.Row) (*core.Webhook, error) {
	w := &core.Webhook{}
	var state string
	var sched []int64
	var ids, hints []string
	var sealed [][]byte
	var created, expires []time.Time
	var rate string
	if err := r.Scan(&w.ID, &w.ProjectID, &w.Name, &w.URI, &w.SubscribedEvents, &state, &sched,
		&w.CreateTime, &w.UpdateTime, &w.FailingSince, &w.ConsecutiveFailures, &rate,
		&w.TracePropagation, &ids, &sealed, &hints, &created, &expires); err != nil {
		return nil, err
	}
	var err error
	if w.RateLimit, err = core.ParseRateLimitJSON(rate); err != nil {
		return nil, err
	}
	w.State = core.WebhookState(state)
	w.SubscribedEvents = orEmpty(w.SubscribedEvents)
	for _, ns := range sched {
		w.RetrySchedule = append(w.RetrySchedule, time.Duration(ns))
	}
	for i := range ids {
		w.Secrets = append(w.Secrets, core.SigningSecret{ID: ids[i], Sealed: sealed[i], Hint: hints[i],
			CreateTime: created[i], ExpireTime: expires[i]})
	}
	return w, nil
}

// queryWebhooks runs webhookSelect + tail (whose column references take
// the w. prefix).
func queryWebhooks(ctx context.Context, q querier, tail string, args ...any) ([]*core.Webhook, error) {
	rows, err := q.Query(ctx, webhookSelect+tail, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*core.Webhook, error) { return scanWebhook(r) })
}

// webhooks runs queryWebhooks on a pool connection.
func (s *Store) webhooks(ctx context.Context, tail string, args ...any) ([]*core.Webhook, error) {
	var out []*core.Webhook
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		var err error
		out, err = queryWebhooks(ctx, c, tail, args...)
		return err
	})
	return out, err
}

// writeWebhook inserts w, or updates it, and replaces its secrets.
func writeWebhook(ctx context.Context, tx pgx.Tx, w *core.Webhook, insert bool) error {
	sched := make([]int64, len(w.RetrySchedule))
	for i, d := range w.RetrySchedule {
		sched[i] = int64(d)
	}
	args := []any{w.Name, w.URI, orEmpty(w.SubscribedEvents), string(w.State), sched,
		w.CreateTime, w.UpdateTime, w.FailingSince, w.ConsecutiveFailures, w.ID, w.ProjectID,
		core.RateLimitJSON(w.RateLimit), w.TracePropagation}
	var err error
	if insert {
		_, err = tx.Exec(ctx,
			`INSERT INTO webhooks (name, uri, subscribed_events, state, retry_schedule, create_time,
			 update_time, failing_since, consecutive_failures, id, project_id, rate_limit, trace_propagation)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, args...)
	} else {
		_, err = tx.Exec(ctx,
			`UPDATE webhooks SET name = $1, uri = $2, subscribed_events = $3, state = $4, retry_schedule = $5,
			 create_time = $6, update_time = $7, failing_since = $8, consecutive_failures = $9, rate_limit = $12,
			 trace_propagation = $13 WHERE id = $10 AND project_id = $11`, args...)
	}
	if err != nil {
		return err
	}
	if !insert {
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_secrets WHERE webhook_id = $1`, w.ID); err != nil {
			return err
		}
	}
	if len(w.Secrets) == 0 {
		return nil
	}
	n := len(w.Secrets)
	ids, hints := make([]string, n), make([]string, n)
	sealed := make([][]byte, n)
	created, expires := make([]time.Time, n), make([]time.Time, n)
	for i, sec := range w.Secrets {
		ids[i], hints[i], sealed[i] = sec.ID, sec.Hint, orEmpty(sec.Sealed)
		created[i], expires[i] = sec.CreateTime, sec.ExpireTime
	}
	_, err = tx.Exec(ctx,
		`INSERT INTO webhook_secrets (webhook_id, id, sealed, hint, create_time, expire_time)
		 SELECT $1, * FROM unnest($2::text[], $3::bytea[], $4::text[], $5::timestamptz[], $6::timestamptz[])`,
		w.ID, ids, sealed, hints, created, expires)
	return err
}

// CreateWebhook implements core.WebhookStore. A duplicate id is
// core.ErrAlreadyExists.
func (s *Store) CreateWebhook(ctx context.Context, w *core.Webhook) error {
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		if err := writeWebhook(ctx, tx, w, true); err != nil {
			return err
		}
		return s.notifyHooksInTx(ctx, tx, w.ProjectID)
	})
	return wrap("create webhook", err)
}

// GetWebhook implements core.WebhookStore.
func (s *Store) GetWebhook(ctx context.Context, projectID, id string) (*core.Webhook, error) {
	ws, err := s.webhooks(ctx, `WHERE w.id = $1 AND w.project_id = $2`, id, projectID)
	if err == nil && len(ws) == 0 {
		err = core.ErrNotFound
	}
	if err != nil {
		return nil, wrap("get webhook", err)
	}
	return ws[0], nil
}

// ListWebhooks implements core.WebhookStore. Limit defaults to 50.
func (s *Store) ListWebhooks(ctx context.Context, p core.ListWebhooksParams) ([]*core.Webhook, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	ws, err := s.webhooks(ctx, `WHERE w.project_id = $1 AND w.id > $2 ORDER BY w.id LIMIT $3`,
		p.ProjectID, p.AfterID, limit)
	if err != nil {
		return nil, wrap("list webhooks", err)
	}
	return ws, nil
}

// UpdateWebhook implements core.WebhookStore. The webhook row is locked
// (SELECT ... FOR UPDATE) while fn runs, so concurrent updates and
// failure-run writes from completions serialise instead of overwriting
// each other. fn should be quick and must not call the store. fn cannot
// move the webhook: its ID and ProjectID are restored before writing.
func (s *Store) UpdateWebhook(ctx context.Context, projectID, id string, fn func(*core.Webhook) error) (*core.Webhook, error) {
	var out *core.Webhook
	var fnErr error
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		ws, err := queryWebhooks(ctx, tx, `WHERE w.id = $1 AND w.project_id = $2 FOR UPDATE OF w`, id, projectID)
		if err != nil {
			return err
		}
		if len(ws) == 0 {
			return core.ErrNotFound
		}
		w := ws[0]
		if fnErr = fn(w); fnErr != nil {
			return fnErr
		}
		w.ID, w.ProjectID = id, projectID
		if err := writeWebhook(ctx, tx, w, false); err != nil {
			return err
		}
		out = w
		return s.notifyHooksInTx(ctx, tx, projectID)
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
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND project_id = $2`, id, projectID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return core.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_secrets WHERE webhook_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx,
			`UPDATE deliveries SET status = 'cancelled', lease_owner = '', lease_time = `+zeroTime+`,
			 next_attempt_time = `+zeroTime+`, update_time = $1
			 WHERE webhook_id = $2 AND status = 'pending' AND lease_owner = ''`, now, id)
		if err != nil {
			return err
		}
		return s.notifyHooksInTx(ctx, tx, projectID)
	})
	return wrap("delete webhook", err)
}

// SubscribedWebhooks implements core.WebhookStore with an array overlap.
func (s *Store) SubscribedWebhooks(ctx context.Context, projectID string, types []string) ([]*core.Webhook, error) {
	ws, err := s.webhooks(ctx, `WHERE w.project_id = $1 AND w.subscribed_events && $2::text[] ORDER BY w.id`,
		projectID, orEmpty(types))
	if err != nil {
		return nil, wrap("subscribed webhooks", err)
	}
	return ws, nil
}

// WebhooksByID implements core.WebhookStore.
func (s *Store) WebhooksByID(ctx context.Context, ids []string) (map[string]*core.Webhook, error) {
	out := make(map[string]*core.Webhook, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ws, err := s.webhooks(ctx, `WHERE w.id = ANY ($1::text[])`, ids)
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
	ids, err := query(ctx, s, false, func(r pgx.Row) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `UPDATE webhooks SET state = 'disabled_due_to_failed_deliveries', update_time = $1
		WHERE state = 'enabled' AND failing_since <> `+zeroTime+` AND failing_since <= $2
		  AND consecutive_failures >= $3
		RETURNING id`, now, failingSince, minFailures)
	if err != nil {
		return nil, wrap("disable failing webhooks", err)
	}
	if len(ids) > 0 {
		s.notifyHooks(ctx)
	}
	slices.Sort(ids)
	return ids, nil
}
