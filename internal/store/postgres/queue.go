package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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

// completeRows are the column arrays of one CompleteDeliveries batch, as
// arrays.go's types (pgx sends them without encoding each element on its
// own).
type completeRows struct {
	// attempts recorded as rows (all but the inline candidates)
	aDelivery, aURI, aError textArray
	aNumber, aCode          int32Array
	aTime                   timeArray
	aLatency                int64Array
	aResponse               byteaArray
	// delivery updates (completions with an owner); iNumber > 0 marks
	// an attempt to keep in the row (see inlineAttempts), whose URI,
	// latency and response are iURI, iLatency, iResponse
	dID, dOwner, dStatus, dError textArray
	dNext, dAt                   timeArray
	dCode, iNumber               int32Array
	dTried                       boolArray
	iURI                         textArray
	iLatency                     int64Array
	iResponse                    byteaArray
}

const (
	insertAttemptsSQL = insertAttemptsInto + `
SELECT * FROM unnest($1::text[], $2::int4[], $3::timestamptz[], $4::text[], $5::int4[], $6::int8[],
	$7::text[], $8::bytea[])`

	// completeSQL applies each outcome whose lease is still held; x.tried
	// is false for a delivery closed without an attempt. A success kept
	// in the row (x.number > 0) sets the inline columns; every other
	// outcome writes their defaults, which is what a pending row holds.
	// The same statement records the attempts of the successes meant for
	// the row whose lease was not held (not among the updated rows u).
	// Only pending deliveries have a lease owner, so
	// there is no status test: with one, the planner, misled by stale
	// statistics after a burst of publishes, picks a partial index over
	// every pending delivery. The redundant `d.id = ANY ($1)` likewise
	// pins a primary key lookup (a join on the unnested array alone can
	// become a hash join).
	completeSQL = `WITH u AS (UPDATE deliveries d SET status = x.status,
	queue = CASE WHEN x.status = 'pending' THEN 1 ELSE d.queue END,
	next_attempt_time = x.next, lease_owner = '', lease_time = ` + zeroTime + `,
	attempts = d.attempts + CASE WHEN x.tried THEN 1 ELSE 0 END,
	last_status_code = CASE WHEN x.tried THEN x.code ELSE d.last_status_code END,
	last_error = CASE WHEN x.tried THEN x.err ELSE d.last_error END,
	` + inlineAttemptSet + `
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int4[], $6::text[], $7::timestamptz[],
	$8::bool[], $9::int4[], $10::text[], $11::int8[], $12::bytea[])
	AS x(id, owner, status, next, code, err, at, tried, number, uri, latency, response)
WHERE d.id = ANY ($1::text[]) AND d.id = x.id AND d.lease_owner = x.owner
RETURNING d.id, x.owner)
` + insertInlineAttemptSQL + `
FROM unnest($1::text[], $2::text[], $9::int4[], $7::timestamptz[], $10::text[], $5::int4[], $11::int8[], $12::bytea[])
	AS x(id, owner, number, at, uri, code, latency, response)
WHERE x.number > 0 AND NOT EXISTS (SELECT 1 FROM u WHERE u.id = x.id AND u.owner = x.owner)`

	// completeLeanSQL is completeSQL for a batch of successes that are
	// all kept in their rows, of distinct deliveries and one lease owner
	// (leanCompletions): eight arrays instead of twelve, the status, the
	// next attempt, the error and whether an attempt was made being the
	// same for every row. The owner stays an array ($8, the same value
	// throughout): compared with a scalar, the planner's estimate of the
	// rows still held drops to one and its generic plan joins the
	// unnested arrays by a nested loop, once per row. PostgreSQL receives every array element
	// through a call of the type's receive function and copies every
	// array into a tuplestore before the join (design.md, "PostgreSQL:
	// fan-out publishes").
	completeLeanSQL = `WITH u AS (UPDATE deliveries d SET status = 'succeeded',
	next_attempt_time = ` + zeroTime + `, lease_owner = '', lease_time = ` + zeroTime + `,
	attempts = d.attempts + 1, last_status_code = x.code, last_error = '',
	` + inlineAttemptSet + `
FROM unnest($1::text[], $2::int4[], $3::timestamptz[], $4::int4[], $5::text[], $6::int8[], $7::bytea[],
	$8::text[])
	AS x(id, code, at, number, uri, latency, response, owner)
WHERE d.id = ANY ($1::text[]) AND d.id = x.id AND d.lease_owner = x.owner
RETURNING d.id)
` + insertInlineAttemptSQL + `
FROM unnest($1::text[], $4::int4[], $3::timestamptz[], $5::text[], $2::int4[], $6::int8[], $7::bytea[])
	AS x(id, number, at, uri, code, latency, response)
WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.id = x.id)`

	// failureRunSQL folds a batch's attempts into webhooks' failure runs
	// (see runAgg.fold); a success on a healthy webhook writes nothing.
	failureRunSQL = `UPDATE webhooks w SET
	consecutive_failures = CASE WHEN x.reset THEN x.n ELSE w.consecutive_failures + x.n END,
	failing_since = CASE WHEN x.reset OR w.failing_since = ` + zeroTime + ` THEN x.earliest
		ELSE w.failing_since END
FROM unnest($1::text[], $2::bool[], $3::int4[], $4::timestamptz[]) AS x(id, reset, n, earliest)
WHERE w.id = ANY ($1::text[]) AND w.id = x.id AND (x.n > 0 OR w.consecutive_failures <> 0 OR w.failing_since <> ` + zeroTime + `)`

	// disableWebhooksSQL disables webhooks that answered 410, stamped
	// with the time of that attempt.
	disableWebhooksSQL = `UPDATE webhooks w SET state = 'disabled_due_to_failed_deliveries', update_time = x.at
FROM unnest($1::text[], $2::timestamptz[]) AS x(id, at)
WHERE w.id = ANY ($1::text[]) AND w.id = x.id AND w.state = 'enabled'`
)

// runAgg accumulates one webhook's attempts within a CompleteDeliveries
// batch.
type runAgg struct {
	lastSuccess time.Time // latest successful attempt, zero if none
	failures    []time.Time
}

// fold returns whether the webhook's run restarts (a success was seen),
// how many failures follow the last success, and the earliest of them.
func (r *runAgg) fold() (reset bool, count int, earliest time.Time) {
	reset = !r.lastSuccess.IsZero()
	for _, f := range r.failures {
		if reset && f.Before(r.lastSuccess) {
			continue
		}
		count++
		if earliest.IsZero() || f.Before(earliest) {
			earliest = f
		}
	}
	return reset, count, earliest
}

// CompleteDeliveries implements core.DeliveryStore in one round trip: a
// batch (one implicit transaction) of four set-based statements —
// insert the attempts (none for a completion with Attempt.Number 0: the
// delivery was closed without sending), apply the outcomes whose lease is
// still held, fold failure runs per webhook (as the SQLite driver does),
// disable webhooks that answered 410. A success without an error whose
// lease is held keeps its attempt in the delivery row (migration 0011),
// not in attempts; completeSQL records it in attempts if the lease was
// not held. Only errors that guarantee nothing
// was committed are retried, so an attempt is never recorded twice.
func (s *Store) CompleteDeliveries(ctx context.Context, cs []core.Completion) error {
	if len(cs) == 0 {
		return nil
	}
	for _, c := range cs {
		if !c.Status.Valid() {
			return fmt.Errorf("postgres: complete %s: invalid status %q", c.DeliveryID, c.Status)
		}
	}
	// Deferred deliveries (deferred.go): their completions write their
	// rows. One completed by another owner than its lease's materializes
	// its group first, then takes today's path.
	taken, groups, counts, reap, mismatch := s.deferred.takeDeferred(cs)
	if len(mismatch) > 0 {
		if err := s.settleGroups(ctx, mismatch); err != nil {
			return wrap("complete", err)
		}
		taken, groups, counts, reap, _ = s.deferred.takeDeferred(cs)
	}
	var df deferRows
	var dcs []deferredCompletion
	dlean := leanDeferred // every deferred completion so far fits completeDeferredLeanSQL
	var r completeRows
	runs := map[string]*runAgg{}
	disable := map[string]time.Time{} // webhook id → time of the attempt that disables it
	held := map[[2]string]bool{}
	rest := cs // the completions of rows
	ntaken := 0
	if taken != nil {
		for i := range taken {
			if taken[i].d != nil {
				ntaken++
			}
		}
		rest = nil
		if ntaken < len(cs) {
			rest = make([]core.Completion, 0, len(cs)-ntaken)
		}
		for i, c := range cs {
			if taken[i].d == nil {
				rest = append(rest, c)
			}
		}
		dcs = make([]deferredCompletion, 0, ntaken)
	}
	lean := leanCompletions(rest)
	var l leanRows
	for i, c := range cs {
		a := c.Attempt
		at := attemptTime(c)
		tried := a.Number != 0
		resp := orEmpty(a.Response)
		if len(resp) > MaxResponseBytes {
			resp = resp[:MaxResponseBytes]
		}
		if taken != nil && taken[i].d != nil {
			// The lease is held (as update below); a repetition of the
			// completion later in cs finds it held no more.
			held[[2]string{c.DeliveryID, c.Owner}] = true
			inline := inlineAttempts && c.Status == core.DeliverySucceeded && tried && a.Error == "" && a.URI != ""
			if tried && !inline {
				r.addAttempt(c.DeliveryID, a, at, resp)
			}
			dlean = dlean && leanDeferredFits(taken[i].d, &c, inline)
			dcs = append(dcs, deferredCompletion{ref: taken[i], c: &cs[i], at: at, resp: resp, inline: inline})
			foldRun(c, at, tried, runs, disable)
			continue
		}
		if lean {
			l.id = append(l.id, c.DeliveryID)
			l.code = append(l.code, int32(a.StatusCode))
			l.at = append(l.at, at)
			l.number = append(l.number, int32(a.Number))
			l.uri = append(l.uri, a.URI)
			l.latency = append(l.latency, int64(a.Latency))
			l.response = append(l.response, resp)
			l.owner = append(l.owner, c.Owner)
			foldRun(c, at, tried, runs, disable)
			continue
		}
		// An empty owner holds no lease; of repeated (delivery, owner)
		// pairs only the first can find the lease held, as in sequence.
		update := false
		if k := [2]string{c.DeliveryID, c.Owner}; c.Owner != "" && !held[k] {
			held[k] = true
			update = true
		}
		inline := update && inlineAttempts && c.Status == core.DeliverySucceeded && tried && a.Error == "" && a.URI != ""
		if tried && !inline {
			r.addAttempt(c.DeliveryID, a, at, resp)
		}
		if update {
			next := c.NextAttemptTime
			if c.Status != core.DeliveryPending {
				next = time.Time{}
			}
			r.dID = append(r.dID, c.DeliveryID)
			r.dOwner = append(r.dOwner, c.Owner)
			r.dStatus = append(r.dStatus, string(c.Status))
			r.dNext = append(r.dNext, next)
			r.dCode = append(r.dCode, int32(a.StatusCode))
			r.dError = append(r.dError, a.Error)
			r.dAt = append(r.dAt, at)
			r.dTried = append(r.dTried, tried)
			if inline {
				r.iNumber = append(r.iNumber, int32(a.Number))
				r.iURI = append(r.iURI, a.URI)
				r.iLatency = append(r.iLatency, int64(a.Latency))
				r.iResponse = append(r.iResponse, resp)
			} else {
				r.iNumber = append(r.iNumber, 0)
				r.iURI = append(r.iURI, "")
				r.iLatency = append(r.iLatency, 0)
				r.iResponse = append(r.iResponse, []byte{})
			}
		}

		foldRun(c, at, tried, runs, disable)
	}
	// Only the arrays of the statement taken.
	if dlean {
		df.reserveLean(len(dcs))
	}
	for i := range dcs {
		if dlean {
			df.addLean(&dcs[i])
		} else {
			df.add(dcs[i].ref.g.id, dcs[i].ref.d, dcs[i].c, dcs[i].at, dcs[i].resp, dcs[i].inline)
		}
	}
	var runIDs textArray
	var runReset boolArray
	var runN int32Array
	var runEarliest timeArray
	for _, id := range slices.Sorted(maps.Keys(runs)) { // a stable lock order
		reset, n, earliest := runs[id].fold()
		if !reset && n == 0 {
			continue
		}
		runIDs = append(runIDs, id)
		runReset = append(runReset, reset)
		runN = append(runN, int32(n))
		runEarliest = append(runEarliest, earliest)
	}
	disIDs := textArray(slices.Sorted(maps.Keys(disable)))
	disAt := make(timeArray, len(disIDs))
	for i, id := range disIDs {
		disAt[i] = disable[id]
	}

	deltas := core.FoldCompleted(cs)
	err := s.run(ctx, false, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		// Every statement below runs on its generic plan, with sequential
		// scans priced out (completeSettingsSQL), unless the URL sets the
		// plan mode. The rollup comes last, so that its project total
		// row, which every publish updates too, stays locked for the
		// shortest time.
		if s.genericPlans {
			b.Queue(completeSettingsSQL)
		} else {
			b.Queue(asyncCommitSQL)
		}
		n := b.Len()
		switch {
		case len(df.id) > 0:
			// The groups first, in id order, as settleSQL locks them.
			b.Queue(lockGroupsSQL, textArray(lockOrder(groups, reap)))
			if dlean {
				df.queueLean(b, groups, reap)
			} else {
				df.queueIn(b, groups, reap)
			}
		case len(reap) > 0:
			b.Queue(reapSQL, textArray(reap))
		}
		if len(r.aDelivery) > 0 {
			b.Queue(insertAttemptsSQL, r.aDelivery, r.aNumber, r.aTime, r.aURI, r.aCode, r.aLatency, r.aError,
				r.aResponse)
		}
		if len(l.id) > 0 {
			b.Queue(completeLeanSQL, l.id, l.code, l.at, l.number, l.uri, l.latency, l.response, l.owner)
		}
		if len(r.dID) > 0 {
			b.Queue(completeSQL, r.dID, r.dOwner, r.dStatus, r.dNext, r.dCode, r.dError, r.dAt, r.dTried,
				r.iNumber, r.iURI, r.iLatency, r.iResponse)
		}
		if len(runIDs) > 0 {
			b.Queue(failureRunSQL, runIDs, runReset, runN, runEarliest)
		}
		if len(disIDs) > 0 {
			b.Queue(disableWebhooksSQL, disIDs, disAt)
			// Other processes' webhook caches learn of it on commit.
			b.Queue(`SELECT pg_notify($1, $2)`, s.notify.channel, hooksPayload(s.id, ""))
		}
		if len(deltas) > 0 {
			b.Queue(statsDeltasSQL, statsDeltaArgs(deltas)...)
		}
		if b.Len() == n {
			return nil
		}
		s.hookBatch(b, "complete")
		return c.SendBatch(ctx, b).Close()
	})
	if len(groups) > 0 || len(reap) > 0 {
		s.deferred.finished(groups, counts, reap, err == nil)
	}
	if err != nil && len(groups) > 0 {
		// The rows of the deliveries taken from memory were not written
		// (or, if the commit's outcome is unknown, maybe were): their
		// groups become rows, so that a retry finds the rows to update.
		if serr := s.settleGroups(context.WithoutCancel(ctx), groups); serr != nil {
			s.log.Warn("postgres.settle_deferred", slog.String("error", serr.Error()))
		}
	}
	return wrap("complete", err)
}

func (r *completeRows) addAttempt(id string, a core.Attempt, at time.Time, resp []byte) {
	r.aDelivery = append(r.aDelivery, id)
	r.aNumber = append(r.aNumber, int32(a.Number))
	r.aTime = append(r.aTime, at)
	r.aURI = append(r.aURI, a.URI)
	r.aCode = append(r.aCode, int32(a.StatusCode))
	r.aLatency = append(r.aLatency, int64(a.Latency))
	r.aError = append(r.aError, a.Error)
	r.aResponse = append(r.aResponse, resp)
}

// foldRun adds c's attempt (made at at; tried: an attempt was made) to
// its webhook's failure run and to the webhooks to disable.
func foldRun(c core.Completion, at time.Time, tried bool, runs map[string]*runAgg,
	disable map[string]time.Time) {
	if c.WebhookID == "" || !tried {
		return // no webhook, or no attempt: the failure run is unchanged
	}
	ra := runs[c.WebhookID]
	if ra == nil {
		ra = &runAgg{}
		runs[c.WebhookID] = ra
	}
	if c.Success {
		if at.After(ra.lastSuccess) {
			ra.lastSuccess = at
		}
	} else {
		ra.failures = append(ra.failures, at)
	}
	if c.DisableWebhook && at.After(disable[c.WebhookID]) {
		disable[c.WebhookID] = at
	}
}

// leanCompletions reports whether every completion of cs is a success
// that completeLeanSQL writes exactly: kept in its row as completeSQL
// would keep it (an attempt without an error and with a URI, a lease
// owner), of distinct deliveries and all of one owner — the engine's
// batches of successes.
func leanCompletions(cs []core.Completion) bool {
	if !leanComplete || !inlineAttempts || len(cs) == 0 {
		return false
	}
	owner := cs[0].Owner
	seen := make(map[string]struct{}, len(cs))
	for _, c := range cs {
		a := c.Attempt
		if c.Owner == "" || c.Owner != owner || c.Status != core.DeliverySucceeded || a.Number == 0 || a.Error != "" ||
			a.URI == "" {
			return false
		}
		if _, ok := seen[c.DeliveryID]; ok {
			return false
		}
		seen[c.DeliveryID] = struct{}{}
	}
	return true
}

// leanComplete enables completeLeanSQL. Tests turn it off to compare.
var leanComplete = true

// leanRows are the column arrays of completeLeanSQL.
type leanRows struct {
	id, uri, owner textArray
	code, number   int32Array
	at             timeArray
	latency        int64Array
	response       byteaArray
}

// inlineAttempts keeps the attempt that ends a delivery successfully in
// the delivery row (completeSQL): a success with an attempt, no error, a
// URI (an empty inline_uri means the delivery's uri) and a lease to
// check. Tests turn it off to compare.
var inlineAttempts = true

func attemptTime(c core.Completion) time.Time {
	if c.Attempt.Time.IsZero() {
		return time.Now().UTC()
	}
	return c.Attempt.Time
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
