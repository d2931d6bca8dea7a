package postgres

import (
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// lockGroupsSQL is a completion's first statement when it completes
// deferred deliveries: it locks their groups in id order (settleSQL's
// order). A group another store materialized meanwhile is gone once its
// transaction commits, and its rows are visible to the statements after
// this one (READ COMMITTED: each statement takes a new snapshot).
const lockGroupsSQL = `SELECT id FROM deferred_deliveries WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE`

// completeDeferredSQL completes deferred deliveries (x): for those whose
// group is still there (ex, locked by lockGroupsSQL) it inserts the row in
// its final state, computed in Go (finalRow) as completeSQL would leave
// the row the publish used to insert; for the others, materialized by
// then, it is completeSQL itself (the update under the lease, the attempt
// kept in the row — or, if the lease is no longer held, in attempts). It
// deletes the groups whose rows earlier completions all committed ($30,
// done; locked by lockGroupsSQL with the others). A group is not deleted
// by the completion that takes its last delivery: completions of one
// group in concurrent transactions commit in any order, and a group
// deleted before the others committed made them find it gone and update
// rows that did not exist.
const completeDeferredSQL = `WITH ex AS (SELECT id FROM deferred_deliveries WHERE id = ANY ($1::text[])),
x AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::int4[],
	$8::text[], $9::timestamptz[], $10::bool[], $11::int4[], $12::text[], $13::int8[], $14::bytea[],
	$15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::int2[], $22::int4[],
	$23::bool[], $24::int4[], $25::text[], $26::timestamptz[], $27::int4[], $28::timestamptz[], $29::text[])
	AS x(grp, id, owner, status, next, code, err, at, tried, number, uri, latency, response,
		event_id, project_id, webhook_id, duri, dest, event_type, queue, attempts,
		manual, last_code, last_err, schedule_start, schedule_base, create_time, inline_uri)),
ins AS (INSERT INTO deliveries (` + deliveryColumns + `, inline_attempt, inline_uri, inline_latency_ns,
	inline_response)
SELECT x.id, x.event_id, x.project_id, x.webhook_id, x.duri, x.dest, x.event_type, x.status, x.queue,
	x.attempts, x.next, x.manual, x.last_code, x.last_err, x.schedule_start, x.create_time,
	x.at, '', ` + zeroTime + `, x.schedule_base, x.number, x.inline_uri, x.latency, x.response
FROM x WHERE x.grp IN (SELECT id FROM ex)),
u AS (UPDATE deliveries d SET status = x.status,
	queue = CASE WHEN x.status = 'pending' THEN 1 ELSE d.queue END,
	next_attempt_time = x.next, lease_owner = '', lease_time = ` + zeroTime + `,
	attempts = d.attempts + CASE WHEN x.tried THEN 1 ELSE 0 END,
	last_status_code = CASE WHEN x.tried THEN x.code ELSE d.last_status_code END,
	last_error = CASE WHEN x.tried THEN x.err ELSE d.last_error END,
	` + inlineAttemptSet + `
FROM x
WHERE d.id = ANY ($3::text[]) AND d.id = x.id AND d.lease_owner = x.owner AND x.grp NOT IN (SELECT id FROM ex)
RETURNING d.id),
del AS (DELETE FROM deferred_deliveries WHERE id = ANY ($30::text[]))
` + insertInlineAttemptSQL + `
FROM x
WHERE x.number > 0 AND x.grp NOT IN (SELECT id FROM ex) AND NOT EXISTS (SELECT 1 FROM u WHERE u.id = x.id)`

// deferRows are completeDeferredSQL's arrays.
type deferRows struct {
	grp, id, owner, status, err                       textArray
	next, at                                          timeArray
	code                                              int32Array
	tried                                             boolArray
	inlineCols                                        // the attempt kept in the row, if any
	event, project, webhook, duri, dest, typ, lastErr textArray
	queue                                             int16Array
	attempts, lastCode, scheduleBase                  int32Array
	manual                                            boolArray
	start, created                                    timeArray
	inlineURI                                         textArray
}

// add adds the completion c of d (deferred in group grp): at is its
// attempt's time, resp its stored response, inline whether the attempt
// is kept in the row.
func (r *deferRows) add(grp string, d *core.Delivery, c *core.Completion, at time.Time, resp []byte, inline bool) {
	f := finalRow(d, c, at, inline)
	a := &c.Attempt
	r.grp = append(r.grp, grp)
	r.id = append(r.id, d.ID)
	r.owner = append(r.owner, c.Owner)
	r.status = append(r.status, string(f.Status))
	r.next = append(r.next, f.NextAttemptTime)
	r.code = append(r.code, int32(a.StatusCode))
	r.err = append(r.err, a.Error)
	r.at = append(r.at, at)
	r.tried = append(r.tried, a.Number != 0)
	if inline {
		r.inlineCols.add(a, resp)
	} else {
		r.inlineCols.none()
	}
	r.event = append(r.event, f.EventID)
	r.project = append(r.project, f.ProjectID)
	r.webhook = append(r.webhook, f.WebhookID)
	r.duri = append(r.duri, f.URI)
	r.dest = append(r.dest, f.Dest)
	r.typ = append(r.typ, f.EventType)
	r.queue = append(r.queue, f.queue)
	r.attempts = append(r.attempts, int32(f.Attempts))
	r.manual = append(r.manual, f.Manual)
	r.lastCode = append(r.lastCode, int32(f.LastStatusCode))
	r.lastErr = append(r.lastErr, f.LastError)
	r.start = append(r.start, f.ScheduleStart)
	r.scheduleBase = append(r.scheduleBase, int32(f.ScheduleBase))
	r.created = append(r.created, f.CreateTime)
	r.inlineURI = append(r.inlineURI, f.inlineURI)
}

// queueIn queues completeDeferredSQL; reap are done groups to delete.
func (r *deferRows) queueIn(b *pgx.Batch, groups, reap []string) {
	b.Queue(completeDeferredSQL, textArray(groups), r.grp, r.id, r.owner, r.status, r.next, r.code, r.err, r.at,
		r.tried, r.number, r.uri, r.latency, r.response, r.event, r.project, r.webhook, r.duri, r.dest, r.typ,
		r.queue, r.attempts, r.manual, r.lastCode, r.lastErr, r.start, r.scheduleBase, r.created, r.inlineURI,
		textArray(orEmpty(reap)))
}

// final is a delivery row after its completion; queue and inlineURI are
// columns core.Delivery does not hold (the inline attempt's other
// columns are the completion's).
type final struct {
	core.Delivery
	queue     int16
	inlineURI string
}

// finalRow is the row completeSQL leaves when it applies c (its attempt
// made at at, kept in the row if inline) to d as the publish inserted it,
// leased to c.Owner.
func finalRow(d *core.Delivery, c *core.Completion, at time.Time, inline bool) final {
	f := final{Delivery: *d, queue: queueOf(*d)}
	a := &c.Attempt
	tried := a.Number != 0
	f.Status = c.Status
	if c.Status == core.DeliveryPending {
		f.queue = 1
		f.NextAttemptTime = c.NextAttemptTime
	} else {
		f.NextAttemptTime = time.Time{}
	}
	f.LeaseOwner = ""
	if tried {
		f.Attempts++
		f.LastStatusCode = a.StatusCode
		f.LastError = a.Error
	}
	f.UpdateTime = at
	if inline && a.URI != d.URI {
		f.inlineURI = a.URI
	}
	return f
}

// completeDeferredLeanSQL is completeDeferredSQL for a batch whose
// deferred completions are all successes kept in their rows (as
// completeLeanSQL's) of fresh webhook deliveries (as insertFanSQL's
// rows, leanDeferred): 14 arrays instead of 29, the final row's other
// columns being the same for every row.
const completeDeferredLeanSQL = `WITH ex AS (SELECT id FROM deferred_deliveries WHERE id = ANY ($1::text[])),
x AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::int4[], $6::timestamptz[], $7::int4[],
	$8::text[], $9::int8[], $10::bytea[], $11::text[], $12::text[], $13::text[], $14::text[], $15::timestamptz[])
	AS x(grp, id, owner, code, at, number, uri, latency, response, event_id, project_id, webhook_id, event_type,
		create_time)),
ins AS (INSERT INTO deliveries (` + deliveryColumns + `, inline_attempt, inline_uri, inline_latency_ns,
	inline_response)
SELECT x.id, x.event_id, x.project_id, x.webhook_id, '', x.webhook_id, x.event_type, 'succeeded', 0,
	1, ` + zeroTime + `, false, x.code, '', x.create_time, x.create_time,
	x.at, '', ` + zeroTime + `, 0, x.number, x.uri, x.latency, x.response
FROM x WHERE x.grp IN (SELECT id FROM ex)),
u AS (UPDATE deliveries d SET status = 'succeeded',
	next_attempt_time = ` + zeroTime + `, lease_owner = '', lease_time = ` + zeroTime + `,
	attempts = d.attempts + 1, last_status_code = x.code, last_error = '',
	` + inlineAttemptSet + `
FROM x
WHERE d.id = ANY ($3::text[]) AND d.id = x.id AND d.lease_owner = x.owner AND x.grp NOT IN (SELECT id FROM ex)
RETURNING d.id),
del AS (DELETE FROM deferred_deliveries WHERE id = ANY ($16::text[]))
` + insertInlineAttemptSQL + `
FROM x
WHERE x.grp NOT IN (SELECT id FROM ex) AND NOT EXISTS (SELECT 1 FROM u WHERE u.id = x.id)`

// leanDeferred enables completeDeferredLeanSQL. Tests turn it off to
// compare.
var leanDeferred = true

// leanDeferredFits reports whether c, completing d, is a row
// completeDeferredLeanSQL writes exactly: a success kept in the row (an
// attempt without an error, with a URI) of a fresh delivery to a webhook
// (never attempted, not manual, no status code or error, its schedule
// starting and last updated at its creation, no uri, the webhook as its
// dest).
func leanDeferredFits(d *core.Delivery, c *core.Completion, inline bool) bool {
	return inline && c.Status == core.DeliverySucceeded && d.Status == core.DeliveryPending && d.Attempts == 0 &&
		!d.Manual && d.LastStatusCode == 0 && d.LastError == "" && d.ScheduleBase == 0 && d.URI == "" &&
		d.WebhookID != "" && d.Dest == d.WebhookID && d.ScheduleStart.Equal(d.CreateTime) &&
		d.UpdateTime.Equal(d.CreateTime)
}

// deferredCompletion is a completion of a deferred delivery (ref), its
// attempt made at at, its response stored as resp, kept in the row if
// inline.
type deferredCompletion struct {
	ref    deferRef
	c      *core.Completion
	at     time.Time
	resp   []byte
	inline bool
}

// reserveLean makes room in the arrays addLean fills for n more rows.
func (r *deferRows) reserveLean(n int) {
	for _, a := range []*textArray{&r.grp, &r.id, &r.owner, &r.uri, &r.event, &r.project, &r.webhook, &r.typ} {
		*a = slices.Grow(*a, n)
	}
	r.code, r.number = slices.Grow(r.code, n), slices.Grow(r.number, n)
	r.at, r.created = slices.Grow(r.at, n), slices.Grow(r.created, n)
	r.latency, r.response = slices.Grow(r.latency, n), slices.Grow(r.response, n)
}

// addLean adds the arrays completeDeferredLeanSQL reads (dc
// leanDeferredFits).
func (r *deferRows) addLean(dc *deferredCompletion) {
	d, a := dc.ref.d, &dc.c.Attempt
	r.grp = append(r.grp, dc.ref.g.id)
	r.id = append(r.id, d.ID)
	r.owner = append(r.owner, dc.c.Owner)
	r.code = append(r.code, int32(a.StatusCode))
	r.at = append(r.at, dc.at)
	r.inlineCols.add(a, dc.resp)
	r.event = append(r.event, d.EventID)
	r.project = append(r.project, d.ProjectID)
	r.webhook = append(r.webhook, d.WebhookID)
	r.typ = append(r.typ, d.EventType)
	r.created = append(r.created, d.CreateTime)
}

// queueLean queues completeDeferredLeanSQL's arrays, taken from r (filled
// by addLean).
func (r *deferRows) queueLean(b *pgx.Batch, groups, reap []string) {
	b.Queue(completeDeferredLeanSQL, textArray(groups), r.grp, r.id, r.owner, r.code, r.at, r.number, r.uri,
		r.latency, r.response, r.event, r.project, r.webhook, r.typ, r.created, textArray(orEmpty(reap)))
}

// lockOrder is the union of a and b (each sorted) in id order, without
// repeats: a completion's groups and the done groups it deletes, locked
// in one pass.
func lockOrder(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
