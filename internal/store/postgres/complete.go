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
	// delivery updates (completions with an owner), with the attempt
	// kept in the row, if any (see inlineAttempts)
	dID, dOwner, dStatus, dError textArray
	dNext, dAt                   timeArray
	dCode                        int32Array
	dTried                       boolArray
	kept                         inlineCols
}

// inlineCols are the columns of an attempt kept in its delivery's row
// (inlineAttempts): its number (0: none is kept), URI, latency and
// response.
type inlineCols struct {
	number   int32Array
	uri      textArray
	latency  int64Array
	response byteaArray
}

// add adds a, its response stored as resp, to keep in its delivery's row.
func (c *inlineCols) add(a *core.Attempt, resp []byte) {
	c.number = append(c.number, int32(a.Number))
	c.uri = append(c.uri, a.URI)
	c.latency = append(c.latency, int64(a.Latency))
	c.response = append(c.response, resp)
}

// none adds a row that keeps no attempt.
func (c *inlineCols) none() {
	c.number = append(c.number, 0)
	c.uri = append(c.uri, "")
	c.latency = append(c.latency, 0)
	c.response = append(c.response, []byte{})
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
	update_time = x.at, inline_attempt = CASE WHEN x.number > 0 THEN d.attempts + 1 ELSE 0 END,
	inline_uri = CASE WHEN x.number = 0 OR x.uri = d.uri THEN '' ELSE x.uri END,
	inline_latency_ns = CASE WHEN x.number > 0 THEN x.latency ELSE 0 END,
	inline_response = CASE WHEN x.number > 0 THEN x.response ELSE '' END
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int4[], $6::text[], $7::timestamptz[],
	$8::bool[], $9::int4[], $10::text[], $11::int8[], $12::bytea[])
	AS x(id, owner, status, next, code, err, at, tried, number, uri, latency, response)
WHERE d.id = ANY ($1::text[]) AND d.id = x.id AND d.lease_owner = x.owner AND x.owner <> ''
RETURNING d.id, d.attempts AS n, x.tried AND x.number = 0 AS row), ` + lostSQL + `
` + insertAttemptsInto + `
SELECT x.id, n.n, x.at, x.uri, x.code, x.latency, x.err, x.response
FROM (SELECT id, n FROM u WHERE row UNION ALL SELECT id, n FROM l) n
	JOIN unnest($1::text[], $7::timestamptz[], $10::text[], $5::int4[], $11::int8[], $6::text[], $12::bytea[])
	AS x(id, at, uri, code, latency, err, response) ON x.id = n.id`

	// lostSQL numbers the attempts of the completions whose lease was not
	// held (not among u's rows, $1 the ids, $8 whether an attempt was
	// made): each takes the next number of its delivery's count, which
	// counts it, so every attempt recorded has a number of its own
	// whichever completion comes first. The ids are collected before the
	// UPDATE looks any row up: none when every lease was held.
	lostSQL = `l AS (UPDATE deliveries d SET attempts = d.attempts + 1
WHERE d.id = ANY (ARRAY(SELECT x.id FROM unnest($1::text[], $8::bool[]) AS x(id, tried)
	WHERE x.tried AND NOT EXISTS (SELECT 1 FROM u WHERE u.id = x.id)))
RETURNING d.id, d.attempts AS n)`

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
	update_time = x.at, inline_attempt = d.attempts + 1,
	inline_uri = CASE WHEN x.uri = d.uri THEN '' ELSE x.uri END,
	inline_latency_ns = x.latency, inline_response = x.response
FROM unnest($1::text[], $2::int4[], $3::timestamptz[], $4::int4[], $5::text[], $6::int8[], $7::bytea[],
	$8::text[])
	AS x(id, code, at, number, uri, latency, response, owner)
WHERE d.id = ANY ($1::text[]) AND d.id = x.id AND d.lease_owner = x.owner
RETURNING d.id), l AS (UPDATE deliveries d SET attempts = d.attempts + 1
WHERE d.id = ANY (ARRAY(SELECT x.id FROM unnest($1::text[]) AS x(id) WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.id = x.id)))
RETURNING d.id, d.attempts AS n)
` + insertAttemptsInto + `
SELECT x.id, l.n, x.at, x.uri, x.code, x.latency, '', x.response
FROM l JOIN unnest($1::text[], $3::timestamptz[], $5::text[], $2::int4[], $6::int8[], $7::bytea[])
	AS x(id, at, uri, code, latency, response) ON x.id = l.id`

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
	cb := completeBatch{dlean: leanDeferred, groups: groups, reap: reap}
	var dcs []deferredCompletion
	rest := cs // the completions of rows
	if taken != nil {
		ntaken := 0
		for i := range taken {
			if taken[i].d != nil {
				ntaken++
			}
		}
		rest = nil
		if ntaken < len(cs) {
			rest = untaken(make([]core.Completion, 0, len(cs)-ntaken), cs, taken)
		}
		dcs = make([]deferredCompletion, 0, ntaken)
	}
	dcs = cb.collect(cs, taken, leanCompletions(rest), dcs)
	cb.addDeferred(dcs)
	cb.deltas = core.FoldCompleted(cs)
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
		cb.queue(b, s)
		if b.Len() == n {
			return nil
		}
		s.hookBatch(b, "complete")
		return c.SendBatch(ctx, b).Close()
	})
	s.completedDeferred(ctx, groups, counts, reap, err)
	return wrap("complete", err)
}

// completedDeferred tells the deferred set how a completion of its groups
// (counts: how many of each it took) and of the done groups it reaped
// ended (err).
func (s *Store) completedDeferred(ctx context.Context, groups []string, counts []int, reap []string, err error) {
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
}

// untaken appends to rest the completions of cs not taken from memory
// (see takeDeferred), and returns it.
func untaken(rest, cs []core.Completion, taken []deferRef) []core.Completion {
	for i, c := range cs {
		if taken[i].d == nil {
			rest = append(rest, c)
		}
	}
	return rest
}

// completeBatch is the column arrays of one CompleteDeliveries call's
// statements, and the deferred groups it completes and reaps.
type completeBatch struct {
	r      completeRows   // the attempts of completions taken from memory
	rounds []completeRows // completions of rows, each delivery at most once a round
	l      leanRows       // lean: every completion of a row fits completeLeanSQL
	df     deferRows
	dlean  bool // every deferred completion so far fits completeDeferredLeanSQL
	// failure runs per webhook (failureRunSQL)
	runIDs      textArray
	runReset    boolArray
	runN        int32Array
	runEarliest timeArray
	// webhooks to disable (disableWebhooksSQL)
	disIDs textArray
	disAt  timeArray
	deltas []core.StatsDelta
	groups []string
	reap   []string
}

// collect adds cs's completions to the batch's rows: those taken from
// memory (taken[i].d set; taken nil: none) to dcs, which it returns, the
// others to lean's arrays or the general ones; and every attempt to its
// webhook's failure run.
func (cb *completeBatch) collect(cs []core.Completion, taken []deferRef, lean bool,
	dcs []deferredCompletion) []deferredCompletion {
	runs := map[string]*runAgg{}
	disable := map[string]time.Time{} // webhook id → time of the attempt that disables it
	round := map[string]int{}         // delivery id → the completions of it so far
	for i, c := range cs {
		a := c.Attempt
		at := attemptTime(c)
		tried := a.Number != 0
		resp := orEmpty(a.Response)
		if len(resp) > MaxResponseBytes {
			resp = resp[:MaxResponseBytes]
		}
		switch {
		case taken != nil && taken[i].d != nil:
			// The lease is held; a repetition of the completion later in
			// cs finds it held no more.
			inline := inlineAttempts && c.Status == core.DeliverySucceeded && tried && a.Error == "" && a.URI != ""
			if tried && !inline {
				cb.r.addAttempt(c.DeliveryID, a, at, resp)
			}
			cb.dlean = cb.dlean && leanDeferredFits(taken[i].d, &c, inline)
			dcs = append(dcs, deferredCompletion{ref: taken[i], c: &cs[i], at: at, resp: resp, inline: inline})
		case lean:
			cb.l.add(&c, at, resp)
		default:
			// A delivery completed more than once in cs is completed by a
			// statement a round, in order, each finding what the one
			// before left: a lease held once, an attempt count.
			// (The completions taken from memory are written before.)
			k := round[c.DeliveryID]
			round[c.DeliveryID] = k + 1
			for len(cb.rounds) <= k {
				cb.rounds = append(cb.rounds, completeRows{})
			}
			cb.rounds[k].add(&c, at, resp, tried)
		}
		foldRun(c, at, tried, runs, disable)
	}
	cb.foldRuns(runs)
	cb.disIDs = textArray(slices.Sorted(maps.Keys(disable)))
	cb.disAt = make(timeArray, len(cb.disIDs))
	for i, id := range cb.disIDs {
		cb.disAt[i] = disable[id]
	}
	return dcs
}

// addDeferred adds the completions taken from memory to the arrays of the
// statement that writes them (only those of the statement taken).
func (cb *completeBatch) addDeferred(dcs []deferredCompletion) {
	if cb.dlean {
		cb.df.reserveLean(len(dcs))
	}
	for i := range dcs {
		if cb.dlean {
			cb.df.addLean(&dcs[i])
		} else {
			cb.df.add(dcs[i].ref.g.id, dcs[i].ref.d, dcs[i].c, dcs[i].at, dcs[i].resp, dcs[i].inline)
		}
	}
}

// foldRuns adds the webhooks whose failure run changes to the arrays of
// failureRunSQL.
func (cb *completeBatch) foldRuns(runs map[string]*runAgg) {
	for _, id := range slices.Sorted(maps.Keys(runs)) { // a stable lock order
		reset, n, earliest := runs[id].fold()
		if !reset && n == 0 {
			continue
		}
		cb.runIDs = append(cb.runIDs, id)
		cb.runReset = append(cb.runReset, reset)
		cb.runN = append(cb.runN, int32(n))
		cb.runEarliest = append(cb.runEarliest, earliest)
	}
}

// queue queues the batch's statements, each only if it has rows.
func (cb *completeBatch) queue(b *pgx.Batch, s *Store) {
	r, l, df := &cb.r, &cb.l, &cb.df
	switch {
	case len(df.id) > 0:
		// The groups first, in id order, as settleSQL locks them.
		b.Queue(lockGroupsSQL, textArray(lockOrder(cb.groups, cb.reap)))
		if cb.dlean {
			df.queueLean(b, cb.groups, cb.reap)
		} else {
			df.queueIn(b, cb.groups, cb.reap)
		}
	case len(cb.reap) > 0:
		b.Queue(reapSQL, textArray(cb.reap))
	}
	if len(r.aDelivery) > 0 {
		b.Queue(insertAttemptsSQL, r.aDelivery, r.aNumber, r.aTime, r.aURI, r.aCode, r.aLatency, r.aError,
			r.aResponse)
	}
	if len(l.id) > 0 {
		b.Queue(completeLeanSQL, l.id, l.code, l.at, l.number, l.uri, l.latency, l.response, l.owner)
	}
	for i := range cb.rounds {
		r := &cb.rounds[i]
		b.Queue(completeSQL, r.dID, r.dOwner, r.dStatus, r.dNext, r.dCode, r.dError, r.dAt, r.dTried,
			r.kept.number, r.kept.uri, r.kept.latency, r.kept.response)
	}
	if len(cb.runIDs) > 0 {
		b.Queue(failureRunSQL, cb.runIDs, cb.runReset, cb.runN, cb.runEarliest)
	}
	if len(cb.disIDs) > 0 {
		b.Queue(disableWebhooksSQL, cb.disIDs, cb.disAt)
		// Other processes' webhook caches learn of it on commit.
		b.Queue(`SELECT pg_notify($1, $2)`, s.notify.channel, hooksPayload(s.id, ""))
	}
	if len(cb.deltas) > 0 {
		b.Queue(statsDeltasSQL, statsDeltaArgs(cb.deltas)...)
	}
}

// add adds c (its attempt made at at, its response cut to resp; tried:
// an attempt was made) to the rows of completeSQL, which numbers its
// attempt and records it as a row unless it is a success kept in the
// delivery row (inlineAttempts; number > 0) because its lease is held.
func (r *completeRows) add(c *core.Completion, at time.Time, resp []byte, tried bool) {
	a := &c.Attempt
	inline := c.Owner != "" && inlineAttempts && c.Status == core.DeliverySucceeded && tried && a.Error == "" &&
		a.URI != ""
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
	r.kept.add(a, resp)
	if !inline {
		r.kept.number[len(r.kept.number)-1] = 0
	}
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
	id, owner textArray
	code      int32Array
	at        timeArray
	inlineCols
}

// add adds c, attempted at at with the response resp.
func (l *leanRows) add(c *core.Completion, at time.Time, resp []byte) {
	a := &c.Attempt
	l.id = append(l.id, c.DeliveryID)
	l.code = append(l.code, int32(a.StatusCode))
	l.at = append(l.at, at)
	l.inlineCols.add(a, resp)
	l.owner = append(l.owner, c.Owner)
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
