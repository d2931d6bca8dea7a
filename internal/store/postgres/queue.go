package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// MaxResponseBytes is how much of an attempt's response body is stored.
const MaxResponseBytes = 4 << 10

// deliveryCols are the columns scanDelivery reads, in order.
const deliveryCols = `id, event_id, project_id, webhook_id, uri, dest, event_type, status, attempts,
	next_attempt_time, manual, last_status_code, last_error, schedule_start, create_time, update_time,
	lease_owner, schedule_base`

func scanDelivery(sc pgx.Row, extra ...any) (*core.Delivery, error) {
	d := &core.Delivery{}
	var status string
	dst := append([]any{&d.ID, &d.EventID, &d.ProjectID, &d.WebhookID, &d.URI, &d.Dest, &d.EventType,
		&status, &d.Attempts, &d.NextAttemptTime, &d.Manual, &d.LastStatusCode, &d.LastError,
		&d.ScheduleStart, &d.CreateTime, &d.UpdateTime, &d.LeaseOwner, &d.ScheduleBase}, extra...)
	if err := sc.Scan(dst...); err != nil {
		return nil, err
	}
	d.Status = core.DeliveryStatus(status)
	return d, nil
}

// claimSQL leases due deliveries of both queues in one statement (one
// round trip, its own transaction):
//
//	r1: retries (queue 1) up to the retry share $6;
//	f:  first attempts (queue 0) up to what r1 left of the limit $5;
//	r2: if r1 got its whole share, more retries up to the limit.
//
// Each CTE walks the partial index deliveries_due in next_attempt_time
// order and stops after LIMIT rows; FOR UPDATE SKIP LOCKED passes over
// rows another claimer is taking, and rows another claimer took since
// this statement's snapshot fail the re-checked WHERE (their
// next_attempt_time moved to the lease expiry). The UPDATE then leases the
// chosen rows, and the payload, subject and webhook_config of each event
// come back with its first delivery only (no payload is sent twice).
//
//	$1 owner, $2 now (NULL: the database's), $3 lease in µs, $4 excluded dests, $5 limit,
//	$6 retry share
const claimSQL = `WITH now_ AS (SELECT coalesce($2::timestamptz, now()) AS t), r1 AS MATERIALIZED (
	SELECT id FROM deliveries
	WHERE status = 'pending' AND queue = 1 AND next_attempt_time <= (SELECT t FROM now_) AND dest <> ALL ($4::text[])
	ORDER BY next_attempt_time LIMIT $6::int8
	FOR UPDATE SKIP LOCKED
), f AS MATERIALIZED (
	SELECT id FROM deliveries
	WHERE status = 'pending' AND queue = 0 AND next_attempt_time <= (SELECT t FROM now_) AND dest <> ALL ($4::text[])
	ORDER BY next_attempt_time LIMIT $5::int8 - (SELECT count(*) FROM r1)
	FOR UPDATE SKIP LOCKED
), r2 AS MATERIALIZED (
	SELECT id FROM deliveries
	WHERE status = 'pending' AND queue = 1 AND next_attempt_time <= (SELECT t FROM now_) AND dest <> ALL ($4::text[])
	  AND id <> ALL (ARRAY(SELECT id FROM r1))
	ORDER BY next_attempt_time
	LIMIT CASE WHEN (SELECT count(*) FROM r1) = $6::int8
		THEN $5::int8 - $6::int8 - (SELECT count(*) FROM f) ELSE 0 END
	FOR UPDATE SKIP LOCKED
), c AS (
	UPDATE deliveries SET lease_owner = $1, lease_time = (SELECT t FROM now_),
		next_attempt_time = (SELECT t FROM now_) + $3::int8 * interval '1 microsecond'
	WHERE id = ANY (ARRAY(SELECT id FROM r1 UNION ALL SELECT id FROM f UNION ALL SELECT id FROM r2))
	RETURNING ` + deliveryCols + `
)
SELECT ` + claimedCols + `, c.first, CASE WHEN c.first THEN e.payload END, coalesce(e.subject, ''), e.dynamic,
	coalesce(e.trace_parent, '')
FROM (SELECT *, row_number() OVER (PARTITION BY event_id) = 1 AS first FROM c) AS c
LEFT JOIN events e ON e.id = c.event_id`

// claimedCols is deliveryCols qualified by the alias c.
const claimedCols = `c.id, c.event_id, c.project_id, c.webhook_id, c.uri, c.dest, c.event_type, c.status,
	c.attempts, c.next_attempt_time, c.manual, c.last_status_code, c.last_error, c.schedule_start,
	c.create_time, c.update_time, c.lease_owner, c.schedule_base`

// ClaimDeliveries implements core.DeliveryStore with claimSQL: retries
// get a quarter of the slots (spread across calls, so batches of one get
// their share too), first attempts the rest, and retries fill what first
// attempts leave. Claimed deliveries carry NextAttemptTime = the lease
// expiry. A claim whose outcome is unknown (lost connection) is retried:
// at worst the first claim's leases expire unused.
func (s *Store) ClaimDeliveries(ctx context.Context, p core.ClaimParams) ([]core.Claimed, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	if p.Owner == "" || p.Lease <= 0 {
		return nil, fmt.Errorf("postgres: claim: owner and a positive lease are required")
	}
	// This store's deferred groups in flight for over settleAge, or
	// whose lease ran out, become rows first.
	if err := s.settleStale(ctx, p.Now); err != nil {
		return nil, wrap("claim", err)
	}
	out, expired, err := s.claim(ctx, p)
	if err != nil || !expired {
		return out, err
	}
	// Another store's group whose lease ran out (its publisher did not
	// complete it: dead, or restarted): its deliveries are due, as their
	// rows' leases were before. Materialize it and claim again.
	if err := s.settleExpired(ctx, s.leaseNow(p.Now)); err != nil {
		return out, wrap("claim", err)
	}
	if p.Limit -= len(out); p.Limit <= 0 {
		return out, nil
	}
	more, _, err := s.claim(ctx, p)
	return append(out, more...), err
}

// claimExpiredSQL tells a claim whether a deferred group's lease has run
// out by its now ($1, NULL: the database's).
const claimExpiredSQL = `SELECT coalesce(min(expires) <= coalesce($1::timestamptz, now()), false)
FROM deferred_deliveries`

// claim is one claimSQL, and claimExpiredSQL in the same round trip.
func (s *Store) claim(ctx context.Context, p core.ClaimParams) ([]core.Claimed, bool, error) {
	n := int64(p.Limit)
	c := s.claimed.Add(n) - n
	reserve := (c+n)/4 - c/4
	excl := orEmpty(p.ExcludeDests)

	var out []core.Claimed
	var firsts map[string]int // event id → index of its delivery carrying the payload
	var expired bool
	err := s.run(ctx, true, func(conn *pgx.Conn) error {
		out = make([]core.Claimed, 0, p.Limit)
		firsts = make(map[string]int)
		b := &pgx.Batch{}
		b.Queue(claimExpiredSQL, s.leaseNow(p.Now)).QueryRow(func(r pgx.Row) error { return r.Scan(&expired) })
		b.Queue(claimSQL, p.Owner, s.leaseNow(p.Now), micros(p.Lease), excl, n, reserve).Query(scanClaimed(&out, firsts))
		return conn.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, false, wrap("claim", err)
	}
	// Share each event's payload, subject and config with its other
	// deliveries.
	for i := range out {
		if j, ok := firsts[out[i].EventID]; ok && j != i {
			out[i].Payload, out[i].Subject, out[i].Dynamic = out[j].Payload, out[j].Subject, out[j].Dynamic
		}
	}
	return out, expired, nil
}

// scanClaimed reads claimSQL's rows into out, and into firsts the index
// of each event's first delivery (which carries the payload).
func scanClaimed(out *[]core.Claimed, firsts map[string]int) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var cl core.Claimed
			var dyn []byte
			var first bool
			d, err := scanDelivery(rows, &first, &cl.Payload, &cl.Subject, &dyn, &cl.TraceParent)
			if err != nil {
				return err
			}
			cl.Delivery = *d
			if cl.Dynamic, err = decodeDynamic(dyn); err != nil {
				return err
			}
			if first {
				firsts[cl.EventID] = len(*out)
			}
			*out = append(*out, cl)
		}
		return rows.Err()
	}
}

// ReleaseDeliveries implements core.DeliveryStore: the deliveries become
// due again at the time they were claimed.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 || owner == "" {
		return nil
	}
	if err := s.settleAll(ctx); err != nil {
		return wrap("release", err)
	}
	var led bool
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(asyncCommitSQL) // a lost release leaves the lease to run out
		b.Queue(`UPDATE deliveries SET lease_owner = '', next_attempt_time = lease_time, lease_time = `+zeroTime+`
			WHERE id = ANY ($1::text[]) AND lease_owner = $2`, ids, owner) // leased ⇒ pending
		led = s.queueNotify(b)
		s.hookBatch(b, "release")
		return c.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return wrap("release", err)
	}
	s.committed(led)
	return nil
}

// NextDueTime implements core.DeliveryStore. Leased deliveries carry
// their lease expiry in next_attempt_time, so one minimum per queue (two
// index probes) covers both cases.
func (s *Store) NextDueTime(ctx context.Context) (time.Time, bool, error) {
	var t *time.Time
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		// Deferred groups are leased deliveries: their earliest lease
		// expiry counts.
		return c.QueryRow(ctx, `SELECT least(
			(SELECT min(next_attempt_time) FROM deliveries WHERE status = 'pending' AND queue = 0),
			(SELECT min(next_attempt_time) FROM deliveries WHERE status = 'pending' AND queue = 1),
			(SELECT min(expires) FROM deferred_deliveries))`).Scan(&t)
	})
	if err != nil {
		return time.Time{}, false, wrap("next due time", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

// QueueDepth implements core.DeliveryStore (linear in the number of
// pending deliveries).
func (s *Store) QueueDepth(ctx context.Context, now time.Time) (core.QueueDepth, error) {
	// Deferred deliveries are pending and leased (due) until completed:
	// which are is known from the rows completions wrote, so they are
	// counted as rows (the metrics' scrape is this call's reader).
	if err := s.settleAll(ctx); err != nil {
		return core.QueueDepth{}, err
	}
	var due, total int
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE next_attempt_time <= $1 OR lease_owner <> ''), count(*)
			FROM deliveries WHERE status = 'pending'`, now).Scan(&due, &total)
	})
	if err != nil {
		return core.QueueDepth{}, wrap("queue depth", err)
	}
	return core.QueueDepth{Due: due, Scheduled: total - due}, nil
}
