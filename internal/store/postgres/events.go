package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

const eventCols = `id, project_id, type, subject, payload, dynamic, idempotency_key, delivery_count, create_time`

func scanEvent(sc pgx.Row) (*core.Event, error) {
	e := &core.Event{}
	var dyn []byte
	if err := sc.Scan(&e.ID, &e.ProjectID, &e.Type, &e.Subject, &e.Payload, &dyn,
		&e.IdempotencyKey, &e.DeliveryCount, &e.CreateTime); err != nil {
		return nil, err
	}
	cfg, err := decodeDynamic(dyn)
	if err != nil {
		return nil, err
	}
	e.Dynamic = cfg
	e.Payload = orEmpty(e.Payload)
	return e, nil
}

func decodeDynamic(b []byte) (*core.WebhookConfig, error) {
	if len(b) == 0 {
		return nil, nil
	}
	cfg := &core.WebhookConfig{}
	if err := json.Unmarshal(b, cfg); err != nil {
		return nil, fmt.Errorf("decode webhook_config: %w", err)
	}
	return cfg, nil
}

func encodeDynamic(cfg *core.WebhookConfig) (*string, error) {
	if cfg == nil {
		return nil, nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// publishEventsSQL inserts a call's events and, for each event actually
// inserted, its deliveries, and adds the inserted events to the activity
// rollup (st, in bucket order: a stable lock order; under statsEventsRow,
// a row no completion locks), in one statement: an
// event whose idempotency key exists is skipped by ON CONFLICT, and its
// deliveries and its count with it.
// It ends with the deliveries' insert, insertDeliveriesSQL or
// insertFanSQL (publishSQL and publishFan). Each comes in three forms
// (publishStatements): keyed, the usual one; plain, the same for a call
// without idempotency keys (keyConflict); retry, used after an attempt
// whose outcome is unknown (the connection broke): it also skips events
// whose id exists, so a retry of a publish that did commit changes
// nothing and reports success. With $30 ($16 in insertFanSQL: the store
// keeps leases on the database's clock, Options.CallerClock unset), a
// delivery inserted already leased gets its lease from the database's
// now(): the lease's length is what the caller set (its expiry minus its
// create time). An event records the smallest and the largest id of the
// deliveries inserted with it ($F, $L; empty for none: see migration
// 0012), where the retention sweep looks for pending ones. $T, $F and $L
// are numbered by newPublishStatements.
const publishEventsSQL = `WITH ev AS (
	INSERT INTO events (id, project_id, type, subject, payload, dynamic, idempotency_key,
		delivery_count, create_time, trace_parent, first_delivery, last_delivery)
	SELECT x.id, x.project_id, x.type, x.subject, x.payload, x.dynamic::json, x.idempotency_key,
		x.delivery_count, x.create_time, x.trace_parent, x.first_delivery, x.last_delivery
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::text[],
		$8::int4[], $9::timestamptz[], $T::text[], $F::text[], $L::text[])
		AS x(id, project_id, type, subject, payload, dynamic, idempotency_key, delivery_count, create_time,
			trace_parent, first_delivery, last_delivery)
	%s
	%s
	RETURNING id, project_id, type, create_time
), st AS (
	INSERT INTO stats (project_id, bucket, webhook_id, events)
	SELECT project_id, (floor(extract(epoch FROM create_time) / 300) * 300000000)::bigint, '` + statsEventsRow + `',
		count(*)
	FROM ev GROUP BY 1, 2 ORDER BY 1, 2
	%s
)
`

// insertDeliveriesSQL is publishEventsSQL's last part in its general
// form: every column of every delivery from an array of its own.
const insertDeliveriesSQL = `INSERT INTO deliveries (` + deliveryColumns + `)
SELECT d.id, d.event_id, d.project_id, d.webhook_id, d.uri, d.dest, d.event_type, d.status, d.queue,
	d.attempts,
	CASE WHEN $30::bool AND d.lease_owner <> '' THEN now() + (d.next_attempt_time - d.create_time)
		ELSE d.next_attempt_time END,
	d.manual, d.last_status_code, d.last_error, d.schedule_start, d.create_time, d.update_time,
	d.lease_owner, CASE WHEN $30::bool AND d.lease_owner <> '' THEN now() ELSE d.lease_time END,
	d.schedule_base
FROM unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
	$16::text[], $17::text[], $18::int2[], $19::int4[], $20::timestamptz[], $21::bool[], $22::int4[],
	$23::text[], $24::timestamptz[], $25::timestamptz[], $26::timestamptz[], $27::text[], $28::timestamptz[],
	$29::int4[])
	AS d(id, event_id, project_id, webhook_id, uri, dest, event_type, status, queue, attempts,
		next_attempt_time, manual, last_status_code, last_error, schedule_start, create_time, update_time,
		lease_owner, lease_time, schedule_base)
WHERE d.event_id IN (SELECT id FROM ev)`

// insertFanSQL is publishEventsSQL's last part for a call whose
// deliveries are all fresh webhook deliveries of their own event
// (fanRows): it takes four arrays instead of twenty — id, event, webhook
// and next attempt, and whether the delivery is leased to the call's one
// lease owner ($15) — and the columns a fresh delivery holds from its
// event (project, type, creation time) or as constants. PostgreSQL
// receives every array element through a call of the type's receive
// function and copies every array into a tuplestore before the join, so
// the arrays a delivery does not need were most of a fan-out publish's
// decoding (design.md, "PostgreSQL: fan-out publishes").
const insertFanSQL = `INSERT INTO deliveries (` + deliveryColumns + `)
SELECT d.id, d.event_id, ev.project_id, d.webhook_id, '', d.webhook_id, ev.type, 'pending', 0, 0,
	CASE WHEN $16::bool AND d.leased THEN now() + (d.next - ev.create_time) ELSE d.next END,
	false, 0, '', ev.create_time, ev.create_time, ev.create_time,
	CASE WHEN d.leased THEN $15::text ELSE '' END,
	CASE WHEN NOT d.leased THEN ` + zeroTime + ` WHEN $16::bool THEN now() ELSE ev.create_time END,
	0
FROM unnest($10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::bool[])
	AS d(id, event_id, webhook_id, next, leased)
JOIN ev ON ev.id = d.event_id`

// keyConflict skips an event whose idempotency key its project already
// holds. events_idempotency is partial (it holds only events with a
// key), so it can never skip an event without one: a call without keys uses
// the plain form, which inserts without the ON CONFLICT clause. With it,
// PostgreSQL inserts every row speculatively — it probes the arbiter
// index, takes and releases a speculative insertion lock, and writes a
// second WAL record to confirm the row — even for rows the partial index
// leaves out.
const keyConflict = `ON CONFLICT (project_id, idempotency_key) WHERE idempotency_key <> '' DO NOTHING`

// publishStatements are a publish's three forms (see publishEventsSQL)
// with one way of inserting deliveries.
type publishStatements struct{ keyed, plain, retry string }

func newPublishStatements(deliveries string, params ...string) publishStatements {
	r := strings.NewReplacer(params...)
	f := func(skip, conflict string) string {
		return r.Replace(fmt.Sprintf(publishEventsSQL, skip, conflict, statsConflict)) + deliveries
	}
	return publishStatements{
		keyed: f("", keyConflict),
		plain: f("", ""),
		retry: f(`WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = x.id)`, keyConflict),
	}
}

var (
	publishSQL = newPublishStatements(insertDeliveriesSQL, "$T", "$31", "$F", "$32", "$L", "$33")
	publishFan = newPublishStatements(insertFanSQL, "$T", "$17", "$F", "$18", "$L", "$19")
)

// eventRows and deliveryRows are the column arrays of publishSQL.
// They are arrays.go's types, which pgx sends without encoding each
// element on its own.
type eventRows struct {
	id, project, typ, subject, key textArray
	trace, first, last             textArray
	payload                        byteaArray
	dynamic                        nullTextArray
	count                          int32Array
	created                        timeArray
}

// add appends ev, published with count deliveries.
func (r *eventRows) add(ev *core.Event, count int) error {
	dyn, err := encodeDynamic(ev.Dynamic)
	if err != nil {
		return err
	}
	r.id = append(r.id, ev.ID)
	r.project = append(r.project, ev.ProjectID)
	r.typ = append(r.typ, ev.Type)
	r.subject = append(r.subject, ev.Subject)
	r.payload = append(r.payload, orEmpty(ev.Payload))
	r.dynamic = append(r.dynamic, dyn)
	r.key = append(r.key, ev.IdempotencyKey)
	r.count = append(r.count, int32(count))
	r.created = append(r.created, ev.CreateTime)
	r.trace = append(r.trace, ev.TraceParent)
	return nil
}

type deliveryRows struct {
	id, event, project, webhook, uri, dest, typ, status, lastError, leaseOwner textArray
	queue                                                                      int16Array
	attempts, lastCode, scheduleBase                                           int32Array
	next, start, created, updated, leaseTime                                   timeArray
	manual                                                                     boolArray
}

func (r *deliveryRows) add(d core.Delivery) {
	r.id = append(r.id, d.ID)
	r.event = append(r.event, d.EventID)
	r.project = append(r.project, d.ProjectID)
	r.webhook = append(r.webhook, d.WebhookID)
	r.uri = append(r.uri, d.URI)
	r.dest = append(r.dest, d.Dest)
	r.typ = append(r.typ, d.EventType)
	r.status = append(r.status, string(d.Status))
	r.queue = append(r.queue, queueOf(d))
	r.attempts = append(r.attempts, int32(d.Attempts))
	r.next = append(r.next, d.NextAttemptTime)
	r.manual = append(r.manual, d.Manual)
	r.lastCode = append(r.lastCode, int32(d.LastStatusCode))
	r.lastError = append(r.lastError, d.LastError)
	r.start = append(r.start, d.ScheduleStart)
	r.created = append(r.created, d.CreateTime)
	r.updated = append(r.updated, d.UpdateTime)
	r.leaseOwner = append(r.leaseOwner, d.LeaseOwner)
	// A delivery inserted already leased was claimed at its creation.
	lt := time.Time{}
	if d.LeaseOwner != "" {
		lt = d.CreateTime
	}
	r.leaseTime = append(r.leaseTime, lt)
	r.scheduleBase = append(r.scheduleBase, int32(d.ScheduleBase))
}

// addEvents adds the deliveries the publish of evs inserts: those of
// the events not repeating an earlier one's idempotency key (firstOf, see
// publishCall.collect), but the deferred ones.
func (r *deliveryRows) addEvents(evs []core.NewEvent, firstOf []int) {
	for i, ne := range evs {
		if firstOf[i] != i {
			continue
		}
		for _, d := range ne.Deliveries {
			if d = d.ForInsert(&ne.Event); !deferrable(&d) || d.EventID != ne.Event.ID {
				r.add(d)
			}
		}
	}
}

// fanPublish enables insertFanSQL. Tests turn it off to compare.
var fanPublish = true

// fanRows are the column arrays of insertFanSQL.
type fanRows struct {
	id, event, webhook textArray
	next               timeArray
	leased             boolArray
	owner              string // the one lease owner of the leased deliveries
}

// fits reports whether d (filled by ForInsert), a delivery published with
// ev, is a row insertFanSQL writes exactly: a fresh pending delivery
// (never attempted, not manual, no status code or error, its schedule
// starting and last updated at its creation) to a webhook (no uri, the
// webhook as its dest), of ev and with ev's project, type and creation
// time, not leased or leased to the owner of the rows before it.
func (r *fanRows) fits(d *core.Delivery, ev *core.Event) bool {
	if d.Status != core.DeliveryPending || d.Attempts != 0 || d.Manual || d.LastStatusCode != 0 || d.LastError != "" ||
		d.ScheduleBase != 0 || d.URI != "" || d.WebhookID == "" || d.Dest != d.WebhookID || d.EventID != ev.ID ||
		d.ProjectID != ev.ProjectID || d.EventType != ev.Type || !d.CreateTime.Equal(ev.CreateTime) ||
		!d.ScheduleStart.Equal(d.CreateTime) || !d.UpdateTime.Equal(d.CreateTime) {
		return false
	}
	if d.LeaseOwner != "" && r.owner != "" && d.LeaseOwner != r.owner {
		return false
	}
	return true
}

func (r *fanRows) add(d *core.Delivery) {
	r.id = append(r.id, d.ID)
	r.event = append(r.event, d.EventID)
	r.webhook = append(r.webhook, d.WebhookID)
	r.next = append(r.next, d.NextAttemptTime)
	r.leased = append(r.leased, d.LeaseOwner != "")
	if d.LeaseOwner != "" {
		r.owner = d.LeaseOwner
	}
}

// PublishEvents implements core.EventStore in one round trip: one
// statement writes the events, their deliveries and their counts in the
// rollup (arrays unnested server-side), a second reads back the events
// holding the call's idempotency keys, and the NOTIFY rides along, all in
// the batch's implicit transaction. A retry after a lost commit inserts,
// and so counts, only the events the first attempt did not write.
//
// Missing delivery fields are filled from the event as the SQLite driver
// does: EventID, ProjectID, EventType, CreateTime, ScheduleStart,
// UpdateTime, Status (pending), NextAttemptTime of a pending delivery (its
// CreateTime) and Dest. A pending delivery with a LeaseOwner is inserted
// already claimed, its lease expiring at NextAttemptTime; such deliveries
// neither signal Wake nor send a NOTIFY.
func (s *Store) PublishEvents(ctx context.Context, evs []core.NewEvent) ([]core.PublishResult, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	p := publishCall{fan: fanPublish}
	firstOf := make([]int, len(evs))
	wakes := make([]bool, len(evs))
	if err := p.collect(evs, firstOf, wakes); err != nil {
		return nil, wrap("publish", err)
	}

	var originals map[[2]string]*core.Event
	var led bool
	attempt := 0
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		attempt++
		b := &pgx.Batch{}
		originals = nil
		p.queue(b, s, attempt, &originals)
		led = p.anyWake && s.queueNotify(b)
		s.hookBatch(b, "publish")
		if err := c.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if s.afterPublish != nil {
			return s.afterPublish(attempt)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("publish", err)
	}

	results, wrote, err := publishResults(evs, originals, firstOf, wakes)
	if err != nil {
		return nil, wrap("publish", err)
	}
	if wrote {
		s.committed(led)
	}
	if len(p.dg.ds) > 0 {
		s.deferPublished(&p, evs, firstOf, results)
	}
	return results, nil
}

// publishCall is a PublishEvents call's rows, gathered from its events by
// collect before the statements are queued. The call's per-event slices
// (firstOf, wakes) are kept apart: the rows escape to the batch, and
// they need not.
type publishCall struct {
	keyProjects []string
	keys        []string
	er          eventRows
	dr          deliveryRows
	fr          fanRows
	dg          deferGroupRecord // the call's deferred deliveries
	fan         bool             // every delivery so far fits fr
	anyWake     bool
}

// collect fills the call's rows from evs. firstOf[i] is set to the event
// whose idempotency key event i repeats (i if none: a key repeated within
// the call refers to its first occurrence), and wakes[i] to whether event
// i has due work for an engine.
func (p *publishCall) collect(evs []core.NewEvent, firstOf []int, wakes []bool) error {
	seen := map[[2]string]int{}
	// The range of delivery ids of each event (migration 0012).
	spans := map[string][2]string{}
	for i, ne := range evs {
		firstOf[i] = i
		ev := ne.Event
		if ev.IdempotencyKey != "" {
			k := [2]string{ev.ProjectID, ev.IdempotencyKey}
			if j, ok := seen[k]; ok {
				firstOf[i] = j
				continue
			}
			seen[k] = i
			p.keyProjects = append(p.keyProjects, ev.ProjectID)
			p.keys = append(p.keys, ev.IdempotencyKey)
		}
		if err := p.er.add(&ev, len(ne.Deliveries)); err != nil {
			return err
		}
		for _, d := range ne.Deliveries {
			d = d.ForInsert(&ev)
			switch {
			case deferrable(&d) && d.EventID == ev.ID:
				// Its row is written by its completion (deferred_complete.go).
				if p.dg.id == "" {
					p.dg.start(evs[i:])
				}
				p.dg.add(d)
			case p.fan && p.fr.fits(&d, &ev):
				p.fr.add(&d)
			default:
				p.fan = false
			}
			if sp, ok := spans[d.EventID]; !ok {
				spans[d.EventID] = [2]string{d.ID, d.ID}
			} else {
				spans[d.EventID] = [2]string{min(sp[0], d.ID), max(sp[1], d.ID)}
			}
			// Deliveries inserted already leased are handed to their
			// engine in memory; only unleased ones need a wake-up.
			if d.LeaseOwner == "" && d.Status == core.DeliveryPending {
				wakes[i] = true
				p.anyWake = true
			}
		}
	}

	if !p.fan {
		p.dr.addEvents(evs, firstOf)
	}
	// A delivery names its event (ForInsert fills in the one it is
	// published with) and is inserted only if that event is inserted by
	// the same statement, so the call's deliveries give each event's whole
	// range.
	for _, id := range p.er.id {
		sp := spans[id]
		p.er.first = append(p.er.first, sp[0])
		p.er.last = append(p.er.last, sp[1])
	}
	return nil
}

// queue queues the call's statements for its attempt: the publish in the
// form for it (see publishEventsSQL), its deferred group's record, and
// the lookup of the events holding its idempotency keys, which fills
// *originals.
func (p *publishCall) queue(b *pgx.Batch, s *Store, attempt int, originals *map[[2]string]*core.Event) {
	ps := publishSQL
	if p.fan {
		ps = publishFan
	}
	q := ps.keyed
	switch {
	case attempt > 1:
		q = ps.retry
	case len(p.keys) == 0:
		q = ps.plain
	}
	// The keyed and plain forms' plans join their arrays and insert,
	// reading no table: their generic plans are the ones planning
	// them for every call would make. The retry form reads events, so
	// it keeps custom plans, as does the lookup of idempotency keys.
	pm := planModes{b: b, s: s}
	pm.use(q != ps.retry)
	er, dr, fr := &p.er, &p.dr, &p.fr
	if p.fan {
		b.Queue(q, er.id, er.project, er.typ, er.subject, er.payload, er.dynamic, er.key, er.count, er.created,
			orEmpty(fr.id), orEmpty(fr.event), orEmpty(fr.webhook), orEmpty(fr.next), orEmpty(fr.leased),
			fr.owner, !s.callerClock, er.trace, er.first, er.last)
	} else {
		b.Queue(q, er.id, er.project, er.typ, er.subject, er.payload, er.dynamic, er.key, er.count, er.created,
			orEmpty(dr.id), orEmpty(dr.event), orEmpty(dr.project), orEmpty(dr.webhook), orEmpty(dr.uri),
			orEmpty(dr.dest), orEmpty(dr.typ), orEmpty(dr.status), orEmpty(dr.queue), orEmpty(dr.attempts),
			orEmpty(dr.next), orEmpty(dr.manual), orEmpty(dr.lastCode), orEmpty(dr.lastError),
			orEmpty(dr.start), orEmpty(dr.created), orEmpty(dr.updated), orEmpty(dr.leaseOwner),
			orEmpty(dr.leaseTime), orEmpty(dr.scheduleBase), !s.callerClock, er.trace, er.first, er.last)
	}
	if len(p.dg.ds) > 0 {
		p.dg.queue(b, s, len(p.keys) > 0, attempt > 1)
	}
	if len(p.keys) > 0 {
		pm.use(false)
		n := len(p.keys)
		b.Queue(`SELECT `+eventCols+` FROM events WHERE (project_id, idempotency_key) IN (
				SELECT * FROM unnest($1::text[], $2::text[])) AND idempotency_key <> ''`, p.keyProjects, p.keys,
		).Query(func(rows pgx.Rows) error {
			*originals = make(map[[2]string]*core.Event, n)
			for rows.Next() {
				e, err := scanEvent(rows)
				if err != nil {
					return err
				}
				(*originals)[[2]string{e.ProjectID, e.IdempotencyKey}] = e
			}
			return rows.Err()
		})
	}
}

// publishResults are a publish's outcomes: each event written, or the
// original holding its idempotency key (a duplicate); wrote reports
// whether an event written has due work for an engine.
func publishResults(evs []core.NewEvent, originals map[[2]string]*core.Event, firstOf []int, wakes []bool) (
	[]core.PublishResult, bool, error) {
	results := make([]core.PublishResult, len(evs))
	wrote := false
	for i, ne := range evs {
		ev := ne.Event
		ev.DeliveryCount = len(ne.Deliveries)
		if ev.IdempotencyKey == "" {
			results[i] = core.PublishResult{Event: &ev}
			wrote = wrote || wakes[i]
			continue
		}
		orig := originals[[2]string{ev.ProjectID, ev.IdempotencyKey}]
		switch {
		case orig == nil: // deleted by retention between the two statements
			return nil, false, fmt.Errorf("idempotency key %q: original event vanished", ev.IdempotencyKey)
		case firstOf[i] == i && orig.ID == ev.ID:
			results[i] = core.PublishResult{Event: &ev}
			wrote = wrote || wakes[i]
		default:
			o := *orig
			results[i] = core.PublishResult{Event: &o, Duplicate: true}
		}
	}
	return results, wrote, nil
}

// deferPublished hands the call's deferred group, committed, to the
// store's tracker (deferred.go).
func (s *Store) deferPublished(p *publishCall, evs []core.NewEvent, firstOf []int, results []core.PublishResult) {
	dg := &p.dg
	// Deliveries of an event skipped for its idempotency key were
	// not inserted: their group's record holds them, but
	// materializing skips them and nothing completes them.
	ds := dg.ds
	if len(p.keys) > 0 {
		dup := map[string]bool{}
		for i, ne := range evs {
			if firstOf[i] == i && results[i].Duplicate {
				dup[ne.Event.ID] = true
			}
		}
		if len(dup) > 0 {
			ds = slices.DeleteFunc(slices.Clone(ds), func(d core.Delivery) bool { return dup[d.EventID] })
		}
	}
	born := time.Now()
	expires := dg.earliest
	if !s.callerClock {
		expires = born.Add(time.Duration(dg.minLease) * time.Microsecond)
	}
	s.deferred.add(dg.id, born, expires, ds)
}

// queueOf puts deliveries that were attempted before into the retry queue.
func queueOf(d core.Delivery) int16 {
	if d.Attempts > 0 && !d.Manual {
		return 1
	}
	return 0
}

// ListEvents implements core.EventStore: newest first by id, Limit
// defaulting to 100 and capped at 1000.
func (s *Store) ListEvents(ctx context.Context, p core.ListEventsParams) ([]*core.Event, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	q := `SELECT ` + eventCols + ` FROM events WHERE project_id = $1 AND ($2 = '' OR type = $2)
		AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4`
	out, err := query(ctx, s, true, scanEvent, q, p.ProjectID, p.Type, p.BeforeID, limit)
	if err != nil {
		return nil, wrap("list events", err)
	}
	return out, nil
}

// EventsByKeys implements core.EventStore.
func (s *Store) EventsByKeys(ctx context.Context, projectID string, keys []string) ([]*core.Event, error) {
	keys = slices.DeleteFunc(slices.Clone(keys[:min(len(keys), maxListLimit)]), func(k string) bool { return k == "" })
	if len(keys) == 0 {
		return nil, nil
	}
	out, err := query(ctx, s, true, scanEvent, `SELECT `+eventCols+` FROM events
		WHERE project_id = $1 AND idempotency_key = ANY($2::text[]) AND idempotency_key <> '' ORDER BY id`, projectID, keys)
	if err != nil {
		return nil, wrap("events by keys", err)
	}
	return out, nil
}

// GetEvent implements core.EventStore.
func (s *Store) GetEvent(ctx context.Context, projectID, id string) (*core.Event, error) {
	var e *core.Event
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		var err error
		e, err = scanEvent(c.QueryRow(ctx, `SELECT `+eventCols+` FROM events WHERE id = $1 AND project_id = $2`,
			id, projectID))
		return err
	})
	if err != nil {
		return nil, wrap("get event", err)
	}
	return e, nil
}
