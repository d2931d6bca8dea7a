package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// Default and maximum page sizes of ListDeliveries.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// getDeliverySQL reads a delivery and its attempts in one statement (one
// snapshot, so they agree), and the attempt kept in the delivery row if
// any (see completeSQL).
const getDeliverySQL = `SELECT ` + claimedCols + `,
	coalesce(a.numbers, '{}'), coalesce(a.times, '{}'), coalesce(a.uris, '{}'), coalesce(a.codes, '{}'),
	coalesce(a.latencies, '{}'), coalesce(a.errors, '{}'), coalesce(a.responses, '{}'),
	c.inline_attempt, CASE WHEN c.inline_uri = '' THEN c.uri ELSE c.inline_uri END, c.inline_latency_ns,
	c.inline_response
FROM deliveries c LEFT JOIN LATERAL (
	SELECT array_agg(number ORDER BY number, time, id) AS numbers,
		array_agg(time ORDER BY number, time, id) AS times,
		array_agg(uri ORDER BY number, time, id) AS uris,
		array_agg(status_code ORDER BY number, time, id) AS codes,
		array_agg(latency_ns ORDER BY number, time, id) AS latencies,
		array_agg(error ORDER BY number, time, id) AS errors,
		array_agg(response ORDER BY number, time, id) AS responses
	FROM attempts WHERE delivery_id = c.id
) a ON true
WHERE c.id = $1 AND c.project_id = $2`

// GetDelivery implements core.DeliveryStore; attempts are in order.
func (s *Store) GetDelivery(ctx context.Context, projectID, id string) (*core.Delivery, []core.Attempt, error) {
	if err := s.settleAll(ctx); err != nil {
		return nil, nil, err
	}
	var d *core.Delivery
	var as []core.Attempt
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		var numbers, codes []int32
		var times []time.Time
		var uris, errs []string
		var latencies []int64
		var responses [][]byte
		var inNumber int32
		var inURI string
		var inLatency int64
		var inResponse []byte
		var err error
		d, err = scanDelivery(c.QueryRow(ctx, getDeliverySQL, id, projectID),
			&numbers, &times, &uris, &codes, &latencies, &errs, &responses,
			&inNumber, &inURI, &inLatency, &inResponse)
		if err != nil {
			return err
		}
		as = nil
		for i := range numbers {
			a := core.Attempt{DeliveryID: id, Number: int(numbers[i]), Time: times[i], URI: uris[i],
				StatusCode: int(codes[i]), Latency: time.Duration(latencies[i]), Error: errs[i]}
			if len(responses[i]) > 0 {
				a.Response = responses[i]
			}
			as = append(as, a)
		}
		if inNumber > 0 {
			a := core.Attempt{DeliveryID: id, Number: int(inNumber), Time: d.UpdateTime, URI: inURI,
				StatusCode: d.LastStatusCode, Latency: time.Duration(inLatency)}
			if len(inResponse) > 0 {
				a.Response = inResponse
			}
			as = core.InsertAttempt(as, a)
		}
		return nil
	})
	if err != nil {
		return nil, nil, wrap("get delivery", err)
	}
	return d, as, nil
}

// ListDeliveries implements core.DeliveryStore: newest first by id, Limit
// defaulting to 100 and capped at 1000. Since and Until bound CreateTime
// as [Since, Until).
func (s *Store) ListDeliveries(ctx context.Context, p core.ListDeliveriesParams) ([]*core.Delivery, error) {
	if err := s.settleAll(ctx); err != nil {
		return nil, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	add("project_id = ?", p.ProjectID)
	if p.WebhookID != "" {
		add("webhook_id = ?", p.WebhookID)
	}
	if p.Status != "" {
		add("status = ?", string(p.Status))
	}
	if p.EventType != "" {
		add("event_type = ?", p.EventType)
	}
	if !p.Since.IsZero() {
		add("create_time >= ?", p.Since)
	}
	if !p.Until.IsZero() {
		add("create_time < ?", p.Until)
	}
	if p.BeforeID != "" {
		add("id < ?", p.BeforeID)
	}
	if p.AfterID != "" {
		add("id > ?", p.AfterID)
	}
	args = append(args, limit)
	q := `SELECT ` + deliveryCols + ` FROM deliveries WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args))
	var out []*core.Delivery
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = nil
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("list deliveries", err)
	}
	return out, nil
}

// spillInlineSQL is the three CTEs, old, spill and widen, of a replay's
// UPDATE: old locks the delivery rows the condition where selects (and
// reads their latest version), spill moves the attempts kept in them (see
// completeSQL) into attempts before the UPDATE changes their update_time
// and status code, and widen widens their events' ranges of delivery ids
// (migration 0012) to take them in, as they are about to be pending again
// and the retention sweep looks for pending deliveries of an event only
// in its range; the UPDATE sets clearInlineSQL and takes its rows from
// old.
func spillInlineSQL(where string) string {
	return `old AS (
		SELECT id, event_id, uri, inline_attempt, update_time, last_status_code, inline_uri, inline_latency_ns,
			inline_response
		FROM deliveries WHERE ` + where + ` FOR UPDATE
	), spill AS (
		` + insertAttemptsInto + `
		SELECT id, inline_attempt, update_time, CASE WHEN inline_uri = '' THEN uri ELSE inline_uri END,
			last_status_code, inline_latency_ns, '', inline_response
		FROM old WHERE inline_attempt > 0
	), widen AS (
		UPDATE events e SET
			first_delivery = CASE WHEN e.last_delivery = '' THEN r.lo ELSE least(e.first_delivery, r.lo) END,
			last_delivery = greatest(e.last_delivery, r.hi)
		FROM (SELECT event_id, min(id) AS lo, max(id) AS hi FROM old GROUP BY event_id) r
		WHERE e.id = r.event_id AND (e.last_delivery = '' OR r.lo < e.first_delivery OR r.hi > e.last_delivery)
	)`
}

// clearInlineSQL forgets the attempt kept in a delivery row.
const clearInlineSQL = `inline_attempt = 0, inline_uri = '', inline_latency_ns = 0, inline_response = ''`

// Redeliver implements core.DeliveryStore. The delivery joins the
// first-attempt queue (a person is waiting for it); any lease is dropped,
// so a completion from an engine still holding it changes nothing.
func (s *Store) Redeliver(ctx context.Context, projectID, id string, now time.Time) (*core.Delivery, error) {
	if err := s.settleAll(ctx); err != nil {
		return nil, err
	}
	var d *core.Delivery
	var led bool
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(`WITH `+spillInlineSQL(`id = $2 AND project_id = $3`)+`
			UPDATE deliveries SET status = 'pending', queue = 0, next_attempt_time = $1,
			manual = CASE WHEN status = 'pending' THEN manual ELSE true END,
			lease_owner = '', lease_time = `+zeroTime+`, update_time = $1, `+clearInlineSQL+`
			WHERE id IN (SELECT id FROM old)
			RETURNING `+deliveryCols, now, id, projectID)
		led = s.queueNotify(b)
		br := c.SendBatch(ctx, b)
		var err error
		d, err = scanDelivery(br.QueryRow())
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return nil, wrap("redeliver", err)
	}
	s.committed(led)
	return d, nil
}

// RecoverDeliveries implements core.DeliveryStore. Matching deliveries
// (oldest first, after AfterID) go back to the first-attempt queue with
// ScheduleStart and NextAttemptTime at Now and Manual cleared; Attempts is
// kept as history. Until zero means no upper bound; Limit defaults to 1000.
// The update takes the ids up to the last one counted rather than the
// first Limit again: under READ COMMITTED a delivery finishing in between
// would otherwise push the last ones out of the update but not out of
// the cursor, which would then pass them by.
func (s *Store) RecoverDeliveries(ctx context.Context, p core.RecoverParams) (int, string, error) {
	if err := s.settleAll(ctx); err != nil {
		return 0, "", err
	}
	q := newRecoverQuery(p)
	var n int
	var next string
	var led bool
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		led, next = false, ""
		if err := webhookInProject(ctx, tx, p.WebhookID, p.ProjectID); err != nil {
			return err
		}
		var last string
		var err error
		if n, last, next, err = q.page(ctx, tx); err != nil {
			return err
		}
		if p.DryRun || n == 0 {
			return nil
		}
		if n, err = q.requeue(ctx, tx, last); err != nil {
			return err
		}
		led, err = s.notifyInTx(ctx, tx)
		return err
	})
	if err != nil {
		return 0, "", wrap("recover", err)
	}
	if !p.DryRun && n > 0 {
		s.committed(led)
	}
	return n, next, nil
}

// recoverMatches are the deliveries a :recover call may take ($1 to $6:
// webhook, project, since, until, statuses, after id); recoverMatch
// selects the first $7 of them in id order.
const (
	recoverMatches = `webhook_id = $1 AND project_id = $2 AND create_time >= $3 AND create_time < $4
		  AND status = ANY ($5::text[]) AND id > $6`
	recoverMatch = `SELECT id FROM deliveries WHERE ` + recoverMatches + ` ORDER BY id LIMIT $7`
)

// recoverQuery is a :recover call with its defaults applied: the page
// size, the statuses it re-queues and the end of its range.
type recoverQuery struct {
	p        core.RecoverParams
	limit    int
	statuses []string
	until    time.Time
}

func newRecoverQuery(p core.RecoverParams) recoverQuery {
	q := recoverQuery{p: p, limit: p.Limit, until: p.Until,
		statuses: []string{"succeeded", "failed", "skipped", "cancelled"}}
	if q.limit <= 0 {
		q.limit = maxListLimit
	}
	if p.OnlyFailed {
		q.statuses = []string{"failed", "skipped"}
	}
	if p.Until.IsZero() {
		q.until = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return q
}

// webhookInProject returns core.ErrNotFound unless the project has the
// webhook.
func webhookInProject(ctx context.Context, tx pgx.Tx, webhookID, projectID string) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1 AND project_id = $2)`,
		webhookID, projectID).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return core.ErrNotFound
	}
	return nil
}

// page counts the deliveries of this call's page and returns the last
// one's id, and as next that id again when a delivery beyond the page
// matches (the caller's next page starts after it).
func (q recoverQuery) page(ctx context.Context, tx pgx.Tx) (n int, last, next string, err error) {
	p := q.p
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(max(id), '') FROM (`+recoverMatch+`) m`,
		p.WebhookID, p.ProjectID, p.Since, q.until, q.statuses, p.AfterID, q.limit).Scan(&n, &last); err != nil {
		return 0, "", "", err
	}
	if n == q.limit {
		var beyond bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (`+recoverMatch+`)`,
			p.WebhookID, p.ProjectID, p.Since, q.until, q.statuses, last, 1).Scan(&beyond); err != nil {
			return 0, "", "", err
		}
		if beyond {
			next = last
		}
	}
	return n, last, next, nil
}

// requeue makes the page's deliveries, up to and including last, pending
// again from p.Now, and returns how many it changed.
func (q recoverQuery) requeue(ctx context.Context, tx pgx.Tx, last string) (int, error) {
	p := q.p
	tag, err := tx.Exec(ctx, `WITH `+spillInlineSQL(recoverMatches+` AND id <= $7`)+`
			UPDATE deliveries SET status = 'pending', queue = 0, manual = false,
			schedule_start = $8, schedule_base = attempts, next_attempt_time = $8, lease_owner = '', lease_time = `+zeroTime+`,
			update_time = $8, `+clearInlineSQL+`
			WHERE id IN (SELECT id FROM old)`,
		p.WebhookID, p.ProjectID, p.Since, q.until, q.statuses, p.AfterID, last, p.Now)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// deleteChunk bounds each DeleteExpired statement, so the sweep never
// holds many row locks for long.
const deleteChunk = 256

// DeleteExpired implements core.DeliveryStore in statements of at most
// deleteChunk deliveries or events. limit bounds deliveries and events
// separately; the result counts deleted deliveries and events (attempts go
// with their delivery and are not counted). Ids sort by creation time, so
// both statements range over the primary key up to the id prefix of the
// millisecond after the cutoff ($3) and check create_time exactly, as the
// SQLite driver does: no index on create_time is kept for the sweep alone.
// An event is kept while a delivery of it is pending, looked for in the
// range of delivery ids the event records (migration 0012), not through an
// index on event_id.
func (s *Store) DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if err := s.settleAll(ctx); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, nil
	}
	bound := core.SortableIDBound(cutoff.Add(time.Millisecond))
	total := 0
	for _, step := range []struct {
		q     string
		bound string
	}{
		// Deliveries with their attempts, in one statement.
		{`WITH d AS (
			DELETE FROM deliveries WHERE id IN (
				SELECT id FROM deliveries
				WHERE id < $3 AND create_time < $1 AND status <> 'pending' ORDER BY id LIMIT $2)
			RETURNING id
		), a AS (
			DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM d)
		)
		SELECT count(*) FROM d`, "msg_" + bound},
		{`WITH e AS (
			DELETE FROM events WHERE id IN (
				SELECT e.id FROM events e
				WHERE e.id < $3 AND e.create_time < $1
				  AND NOT EXISTS (SELECT 1 FROM deliveries d
					WHERE d.id >= e.first_delivery AND d.id <= e.last_delivery
					  AND d.event_id = e.id AND d.status = 'pending')
				ORDER BY e.id LIMIT $2)
			RETURNING 1
		)
		SELECT count(*) FROM e`, bound},
	} {
		left := limit
		for left > 0 {
			chunk := min(left, deleteChunk)
			var got int
			err := s.run(ctx, false, func(c *pgx.Conn) error {
				return c.QueryRow(ctx, step.q, cutoff, chunk, step.bound).Scan(&got)
			})
			if err != nil {
				return total, wrap("delete expired", err)
			}
			total += got
			left -= got
			if got < chunk {
				break
			}
		}
	}
	return total, nil
}
