package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// Deferred delivery rows (migration 0014; design.md, "PostgreSQL: deferred
// delivery rows"). A delivery that PublishEvents inserts already leased
// is attempted at once by its engine, which completes it milliseconds
// later; its row is then written once, in its state after that
// completion, and until then it lives in its publish's group record in
// deferred_deliveries (the publish's durable copy) and in the store's
// memory. Readers of deliveries first materialize every group (settle):
// they see what they saw before.

// deferLeased enables deferred delivery rows. Tests turn it off to
// compare with the rows the publish writes itself.
var deferLeased = true

// Ages at which groups are materialized although their deliveries are
// not complete: a group older than settleAge costs what it cost before
// (a row per delivery), so memory stays bounded; settleEvery is the
// period of the loop that does it and recovers expired groups of any
// store (a dead publisher's).
var (
	settleAge   = time.Second
	settleEvery = 500 * time.Millisecond
	// settleLoopOff keeps Open from starting settleLoop (tests that
	// count group records).
	settleLoopOff = false
)

// deferGroup is one of this store's group records.
type deferGroup struct {
	id   string
	left int // deliveries of it not yet taken by a completion
	// inflight counts its deliveries taken by completions not yet
	// committed: the group is done (its record to delete) when both are 0.
	inflight int
	born     time.Time // when the publish committed (this process's clock)
	// expires is its earliest lease expiry: on the callers' clock
	// (Options.CallerClock), else on this process's, from born.
	expires time.Time
	ids     []string // its deliveries
}

// deferRef is a deferred delivery, as the publish would have inserted
// it, and its group.
type deferRef struct {
	g *deferGroup
	d *core.Delivery // in the slice the group was published from
}

// deferredSet is the store's deferred deliveries.
type deferredSet struct {
	mu     sync.Mutex
	byID   map[string]deferRef
	groups map[string]*deferGroup
	// done are groups whose deliveries' rows are all committed: their
	// records are deleted by the next completion, or by settleLoop.
	done []string
}

func (ds *deferredSet) init() {
	ds.byID = map[string]deferRef{}
	ds.groups = map[string]*deferGroup{}
}

// add records a committed group.
func (ds *deferredSet) add(id string, born, expires time.Time, ds2 []core.Delivery) {
	if len(ds2) == 0 {
		return
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	g := &deferGroup{id: id, left: len(ds2), born: born, expires: expires, ids: make([]string, len(ds2))}
	ds.groups[id] = g
	for i := range ds2 {
		g.ids[i] = ds2[i].ID
		ds.byID[ds2[i].ID] = deferRef{g: g, d: &ds2[i]}
	}
}

// drop forgets groups (materialized, or gone).
func (ds *deferredSet) drop(ids []string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, id := range ids {
		g, ok := ds.groups[id]
		if !ok {
			continue
		}
		delete(ds.groups, id)
		for _, d := range g.ids {
			if r, ok := ds.byID[d]; ok && r.g == g {
				delete(ds.byID, d)
			}
		}
	}
}

// stale returns the ids of the groups born before cutoff or expired by
// now (on the clock of their expiry; zero: not compared).
func (ds *deferredSet) stale(cutoff, now time.Time) []string {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	var ids []string
	for id, g := range ds.groups {
		if g.born.Before(cutoff) || (!now.IsZero() && !g.expires.After(now)) {
			ids = append(ids, id)
		}
	}
	return ids
}

// The encoding of a group's deliveries (deferred_deliveries.data): a
// version byte and the number of deliveries, then per delivery its ten
// string fields, three integers, a flag and four times. A string is the
// index (from 1) of the same field's earlier value when it repeats one
// (project, webhook, type, owner…), else 0, the length of the prefix it
// shares with the field's previous value (ids made in one millisecond
// share 10–14 bytes) and the rest. A time is its difference in seconds
// and nanoseconds from the delivery's creation time (the creation time
// from the previous delivery's): every time comes back exactly as the
// publish had it.
const deferVersion = 2

// deferStrFields is the number of string fields of a delivery.
const deferStrFields = 10

type deferEncoder struct {
	seen [deferStrFields]map[string]uint64
	prev [deferStrFields]string
	b    []byte
}

func (e *deferEncoder) str(f int, s string) {
	m := e.seen[f]
	if i, ok := m[s]; ok {
		e.b = binary.AppendUvarint(e.b, i)
		return
	}
	if m == nil {
		m = map[string]uint64{}
		e.seen[f] = m
	}
	m[s] = uint64(len(m) + 1)
	prev := e.prev[f]
	p := 0
	for p < len(s) && p < len(prev) && s[p] == prev[p] {
		p++
	}
	e.b = binary.AppendUvarint(e.b, 0)
	e.b = binary.AppendUvarint(e.b, uint64(p))
	e.b = binary.AppendUvarint(e.b, uint64(len(s)-p))
	e.b = append(e.b, s[p:]...)
	e.prev[f] = s
}

func (e *deferEncoder) time(t, ref time.Time) {
	e.b = binary.AppendVarint(e.b, t.Unix()-ref.Unix())
	e.b = binary.AppendVarint(e.b, int64(t.Nanosecond())-int64(ref.Nanosecond()))
}

// encodeDeferred encodes deliveries (filled by ForInsert).
func encodeDeferred(ds []core.Delivery) []byte {
	e := deferEncoder{b: make([]byte, 0, 16+len(ds)*48)}
	e.b = append(e.b, deferVersion)
	e.b = binary.AppendUvarint(e.b, uint64(len(ds)))
	var prev time.Time
	for i := range ds {
		d := &ds[i]
		for f, s := range [deferStrFields]string{d.ID, d.EventID, d.ProjectID, d.WebhookID, d.URI, d.Dest,
			d.EventType, string(d.Status), d.LastError, d.LeaseOwner} {
			e.str(f, s)
		}
		e.b = binary.AppendVarint(e.b, int64(d.Attempts))
		e.b = binary.AppendVarint(e.b, int64(d.LastStatusCode))
		e.b = binary.AppendVarint(e.b, int64(d.ScheduleBase))
		m := byte(0)
		if d.Manual {
			m = 1
		}
		e.b = append(e.b, m)
		e.time(d.CreateTime, prev)
		e.time(d.NextAttemptTime, d.CreateTime)
		e.time(d.ScheduleStart, d.CreateTime)
		e.time(d.UpdateTime, d.CreateTime)
		prev = d.CreateTime
	}
	return e.b
}

var errDeferData = errors.New("postgres: deferred_deliveries: corrupt data")

type deferDecoder struct {
	b    []byte
	err  error
	seen [deferStrFields][]string
	prev [deferStrFields]string
}

func (r *deferDecoder) fail() {
	r.err = errDeferData
	r.b = nil
}

func (r *deferDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *deferDecoder) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *deferDecoder) str(f int) string {
	i := r.uvarint()
	if i > 0 {
		if i > uint64(len(r.seen[f])) {
			r.fail()
			return ""
		}
		return r.seen[f][i-1]
	}
	p, l := r.uvarint(), r.uvarint()
	if r.err != nil || p > uint64(len(r.prev[f])) || l > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := r.prev[f][:p] + string(r.b[:l])
	r.b = r.b[l:]
	r.seen[f] = append(r.seen[f], s)
	r.prev[f] = s
	return s
}

func (r *deferDecoder) time(ref time.Time) time.Time {
	sec, nsec := r.varint(), r.varint()
	return time.Unix(ref.Unix()+sec, int64(ref.Nanosecond())+nsec).UTC()
}

// decodeDeferred decodes encodeDeferred's output.
func decodeDeferred(b []byte) ([]core.Delivery, error) {
	if len(b) == 0 || b[0] != deferVersion {
		return nil, errDeferData
	}
	r := deferDecoder{b: b[1:]}
	nd := r.uvarint()
	if r.err != nil || nd > uint64(len(r.b)) {
		return nil, errDeferData
	}
	out := make([]core.Delivery, nd)
	var prev time.Time
	for i := range out {
		d := &out[i]
		d.ID, d.EventID, d.ProjectID, d.WebhookID, d.URI = r.str(0), r.str(1), r.str(2), r.str(3), r.str(4)
		d.Dest, d.EventType, d.Status = r.str(5), r.str(6), core.DeliveryStatus(r.str(7))
		d.LastError, d.LeaseOwner = r.str(8), r.str(9)
		d.Attempts = int(r.varint())
		d.LastStatusCode = int(r.varint())
		d.ScheduleBase = int(r.varint())
		if len(r.b) == 0 {
			return nil, errDeferData
		}
		d.Manual = r.b[0] == 1
		r.b = r.b[1:]
		d.CreateTime = r.time(prev)
		d.NextAttemptTime = r.time(d.CreateTime)
		d.ScheduleStart = r.time(d.CreateTime)
		d.UpdateTime = r.time(d.CreateTime)
		prev = d.CreateTime
		if r.err != nil {
			return nil, r.err
		}
	}
	if len(r.b) != 0 {
		return nil, errDeferData
	}
	return out, nil
}

// deferrable reports whether d (filled by ForInsert) is deferred: a
// pending delivery inserted already leased.
func deferrable(d *core.Delivery) bool {
	return deferLeased && d.Status == core.DeliveryPending && d.LeaseOwner != ""
}

// floorMicros is t in microseconds since the Unix epoch as pgx sends a
// timestamptz (and so as PostgreSQL computes with it).
func floorMicros(t time.Time) int64 {
	return t.Unix()*1_000_000 + int64(t.Nanosecond())/1000
}

// insertGroupSQL writes a publish's group record ($1 id, $2 owner, $3 the
// database's clock, $4 the shortest lease in µs, $5 the earliest expiry
// on the caller's clock, $6 the number of deliveries, $7 data). With
// idempotency keys ($8 non-NULL: each deferred delivery's event id), n
// counts only the deliveries whose event the publish inserted (the events
// are visible to this statement, queued after the publish's).
const insertGroupSQL = `INSERT INTO deferred_deliveries (id, owner, lease_base, expires, n, data)
SELECT $1, $2, CASE WHEN $3::bool THEN now() END,
	CASE WHEN $3::bool THEN now() + $4::int8 * interval '1 microsecond' ELSE $5::timestamptz END,
	CASE WHEN $8::text[] IS NULL THEN $6::int4
		ELSE (SELECT count(*) FROM unnest($8::text[]) AS x(id) WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = x.id))
	END, $7::bytea`

// deferGroupRecord is a publish's group: its deliveries and the
// arguments of insertGroupSQL.
type deferGroupRecord struct {
	id       string
	ds       []core.Delivery
	minLease int64     // µs
	earliest time.Time // earliest expiry on the caller's clock
}

func (g *deferGroupRecord) add(d core.Delivery) {
	lease := floorMicros(d.NextAttemptTime) - floorMicros(d.CreateTime)
	if len(g.ds) == 0 || lease < g.minLease {
		g.minLease = lease
	}
	if len(g.ds) == 0 || d.NextAttemptTime.Before(g.earliest) {
		g.earliest = d.NextAttemptTime
	}
	g.ds = append(g.ds, d)
}

// queue queues the group's insert into b (retry: the publish may have
// committed it before).
func (g *deferGroupRecord) queue(b *pgx.Batch, s *Store, keyed, retry bool) {
	q := insertGroupSQL
	if retry {
		q += ` ON CONFLICT (id) DO NOTHING`
	}
	var evIDs []string
	if keyed {
		evIDs = make([]string, len(g.ds))
		for i := range g.ds {
			evIDs[i] = g.ds[i].EventID
		}
	}
	b.Queue(q, g.id, s.id, !s.callerClock, g.minLease, g.earliest, int32(len(g.ds)), encodeDeferred(g.ds),
		textArray(evIDs))
}

// settleSQL takes groups out of deferred_deliveries, locking them in id
// order (the order every completion locks its groups in: no deadlock).
const settleSQL = `DELETE FROM deferred_deliveries WHERE id IN (
	SELECT id FROM deferred_deliveries WHERE %s ORDER BY id FOR UPDATE)
RETURNING id, lease_base, data`

// materializeSQL inserts settled deliveries as the publish would have
// (insertDeliveriesSQL, the database's clock being the group's
// lease_base: $21, where $22), skipping rows a completion already wrote and
// deliveries of events the publish did not insert (an idempotency key
// seen before).
const materializeSQL = `INSERT INTO deliveries (` + deliveryColumns + `)
SELECT d.id, d.event_id, d.project_id, d.webhook_id, d.uri, d.dest, d.event_type, d.status, d.queue,
	d.attempts,
	CASE WHEN d.based AND d.lease_owner <> '' THEN d.base + (d.next_attempt_time - d.create_time)
		ELSE d.next_attempt_time END,
	d.manual, d.last_status_code, d.last_error, d.schedule_start, d.create_time, d.update_time,
	d.lease_owner, CASE WHEN d.based AND d.lease_owner <> '' THEN d.base ELSE d.lease_time END,
	d.schedule_base
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
	$7::text[], $8::text[], $9::int2[], $10::int4[], $11::timestamptz[], $12::bool[], $13::int4[],
	$14::text[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::text[], $19::timestamptz[],
	$20::int4[], $21::timestamptz[], $22::bool[])
	AS d(id, event_id, project_id, webhook_id, uri, dest, event_type, status, queue, attempts,
		next_attempt_time, manual, last_status_code, last_error, schedule_start, create_time, update_time,
		lease_owner, lease_time, schedule_base, base, based)
WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id)
ON CONFLICT (id) DO NOTHING`

// settle materializes the groups matching where (args its parameters)
// in one transaction and forgets the ones this store held. It returns
// how many groups it took.
func (s *Store) settle(ctx context.Context, where string, args ...any) (int, error) {
	var taken []string
	err := s.inTx(ctx, true, func(tx pgx.Tx) error {
		taken = taken[:0]
		rows, err := tx.Query(ctx, fmt.Sprintf(settleSQL, where), args...)
		if err != nil {
			return err
		}
		var dr deliveryRows
		var bases timeArray
		var based boolArray
		for rows.Next() {
			var id string
			var base *time.Time
			var data []byte
			if err := rows.Scan(&id, &base, &data); err != nil {
				rows.Close()
				return err
			}
			ds, err := decodeDeferred(data)
			if err != nil {
				rows.Close()
				return fmt.Errorf("group %s: %w", id, err)
			}
			taken = append(taken, id)
			for _, d := range ds {
				dr.add(d)
				if base != nil {
					bases, based = append(bases, *base), append(based, true)
				} else {
					bases, based = append(bases, time.Time{}), append(based, false)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(dr.id) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, materializeSQL, dr.id, dr.event, dr.project, dr.webhook, dr.uri, dr.dest, dr.typ,
			dr.status, dr.queue, dr.attempts, dr.next, dr.manual, dr.lastCode, dr.lastError, dr.start, dr.created,
			dr.updated, dr.leaseOwner, dr.leaseTime, dr.scheduleBase, bases, based)
		return err
	})
	if err != nil {
		return 0, wrap("settle deferred deliveries", err)
	}
	if len(taken) > 0 {
		s.deferred.drop(taken)
	}
	return len(taken), nil
}

// settleAll is the readers' barrier: every store's groups become rows.
func (s *Store) settleAll(ctx context.Context) error {
	_, err := s.settle(ctx, `true`)
	return err
}

// settleGroups materializes the named groups (this store's) and forgets
// them, whether this call or another store took them.
func (s *Store) settleGroups(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	if _, err := s.settle(ctx, `id = ANY ($1::text[])`, textArray(ids)); err != nil {
		return err
	}
	s.deferred.drop(ids)
	return nil
}

// settleExpired materializes every store's groups whose earliest lease
// expired by now (nil: the database's clock): their publisher did not
// complete them in time, presumably dead, and the deliveries are claimed
// as their leases expire, as before.
func (s *Store) settleExpired(ctx context.Context, now *time.Time) error {
	_, err := s.settle(ctx, `expires <= coalesce($1::timestamptz, now())`, now)
	return err
}

// settleStale materializes this store's groups older than settleAge or
// whose earliest lease expired by now (the callers' clock; zero: this
// process's).
func (s *Store) settleStale(ctx context.Context, now time.Time) error {
	local := time.Now()
	switch {
	case !s.callerClock:
		now = local
	case now.IsZero(): // no caller's time to compare expiries with
		now = time.Time{}
	}
	return s.settleGroups(ctx, s.deferred.stale(local.Add(-settleAge), now))
}

// settleLoop materializes stale and expired groups every settleEvery.
func (s *Store) settleLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(settleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, f := range []func(context.Context) error{
			s.reap,
			func(ctx context.Context) error { return s.settleStale(ctx, time.Time{}) },
			func(ctx context.Context) error { return s.settleExpired(ctx, nil) },
		} {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("postgres.settle_deferred", slog.String("error", err.Error()))
			}
		}
	}
}

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
	grp, id, owner, status, err, uri                  textArray
	next, at                                          timeArray
	code, number                                      int32Array
	tried                                             boolArray
	latency                                           int64Array
	response                                          byteaArray
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
		r.number = append(r.number, int32(a.Number))
		r.uri = append(r.uri, a.URI)
		r.latency = append(r.latency, int64(a.Latency))
		r.response = append(r.response, resp)
	} else {
		r.number = append(r.number, 0)
		r.uri = append(r.uri, "")
		r.latency = append(r.latency, 0)
		r.response = append(r.response, []byte{})
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

// takeDeferred takes the deferred deliveries that cs complete out of
// the store's memory: taken[i] is set for cs[i] when it completes one
// (its lease owner completing it, first in cs); groups are their groups
// in id order, counts how many of each cs completes (in flight until
// finished is told), reap the done groups the completion is to delete.
// A completion of a deferred delivery by another owner is in mismatch:
// its group is materialized first.
func (ds *deferredSet) takeDeferred(cs []core.Completion) (taken []deferRef, groups []string, counts []int,
	reap []string, mismatch []string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	reap, ds.done = ds.done, nil
	if len(ds.byID) == 0 {
		return nil, nil, nil, reap, nil
	}
	seen := map[string]bool{}
	for i := range cs {
		c := &cs[i]
		r, ok := ds.byID[c.DeliveryID]
		if !ok {
			continue
		}
		if c.Owner == "" || c.Owner != r.d.LeaseOwner {
			if !seen[r.g.id] {
				seen[r.g.id] = true
				mismatch = append(mismatch, r.g.id)
			}
		}
	}
	if len(mismatch) > 0 {
		ds.done = append(ds.done, reap...)
		return nil, nil, nil, nil, mismatch
	}
	n := map[string]int32{}
	for i := range cs {
		c := &cs[i]
		r, ok := ds.byID[c.DeliveryID]
		if !ok {
			continue
		}
		delete(ds.byID, c.DeliveryID)
		if taken == nil {
			taken = make([]deferRef, len(cs))
		}
		taken[i] = r
		if n[r.g.id]++; n[r.g.id] == 1 {
			groups = append(groups, r.g.id)
		}
		r.g.left--
		r.g.inflight++
	}
	slices.Sort(groups)
	counts = make([]int, len(groups))
	for i, g := range groups {
		counts[i] = int(n[g])
	}
	return taken, groups, counts, reap, nil
}

// finished tells that completions of counts of groups (takeDeferred's)
// committed; a group with nothing left to complete is done. reap were
// deleted by them (ok) or are to delete still.
func (ds *deferredSet) finished(groups []string, counts []int, reap []string, ok bool) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if !ok {
		ds.done = append(ds.done, reap...)
		return
	}
	for i, id := range groups {
		g, found := ds.groups[id]
		if !found {
			continue // materialized meanwhile
		}
		if g.inflight -= counts[i]; g.inflight == 0 && g.left == 0 {
			delete(ds.groups, id)
			ds.done = append(ds.done, id)
		}
	}
}

// takeDone returns the done groups to delete (and forgets them).
func (ds *deferredSet) takeDone() []string {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d := ds.done
	ds.done = nil
	return d
}

// reapSQL deletes done groups, locked in id order (as settleSQL).
const reapSQL = `DELETE FROM deferred_deliveries WHERE id IN (
	SELECT id FROM deferred_deliveries WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE)`

// reap deletes the done groups no completion took with it.
func (s *Store) reap(ctx context.Context) error {
	done := s.deferred.takeDone()
	if len(done) == 0 {
		return nil
	}
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(asyncCommitSQL) // a lost delete leaves a record whose rows all exist
		b.Queue(reapSQL, textArray(done))
		return c.SendBatch(ctx, b).Close()
	})
	if err != nil {
		s.deferred.finished(nil, nil, done, false)
		return wrap("delete deferred groups", err)
	}
	return nil
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
	r.number = append(r.number, int32(a.Number))
	r.uri = append(r.uri, a.URI)
	r.latency = append(r.latency, int64(a.Latency))
	r.response = append(r.response, dc.resp)
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
