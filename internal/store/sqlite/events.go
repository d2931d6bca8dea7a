package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

const eventCols = `id, project_id, type, subject, payload, dynamic, idempotency_key, delivery_count, create_time`

func scanEvent(sc interface{ Scan(...any) error }) (*core.Event, error) {
	e := &core.Event{}
	var dyn []byte
	var ct int64
	if err := sc.Scan(&e.ID, &e.ProjectID, &e.Type, &e.Subject, &e.Payload, &dyn,
		&e.IdempotencyKey, &e.DeliveryCount, &ct); err != nil {
		return nil, err
	}
	cfg, err := decodeDynamic(dyn)
	if err != nil {
		return nil, err
	}
	e.Dynamic = cfg
	e.CreateTime = fromMicros(ct)
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

func encodeDynamic(cfg *core.WebhookConfig) (any, error) {
	if cfg == nil {
		return nil, nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// PublishEvents implements core.EventStore: every event and delivery of
// the call is written in one transaction with prepared statements.
//
// Missing delivery fields are filled from the event: EventID, ProjectID,
// EventType, CreateTime, ScheduleStart (the event's CreateTime), UpdateTime,
// Status (pending), NextAttemptTime of a pending delivery (its CreateTime)
// and Dest (the webhook id, or core.DynamicDest). A pending delivery with a
// LeaseOwner is inserted already claimed, its lease expiring at
// NextAttemptTime; such deliveries do not signal Wake.
func (s *Store) PublishEvents(ctx context.Context, evs []core.NewEvent) ([]core.PublishResult, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	results := make([]core.PublishResult, len(evs))
	var wrote bool
	err := s.inRawTx(ctx, func(tx *rawTx) error {
		wrote = false
		insEvents := newEventInserter(tx)
		ins := newDeliveryInserter(tx)
		var span leaseSpan
		var elsewhere []int // events with deliveries of another event
		for i, ne := range evs {
			ev := ne.Event
			if ev.IdempotencyKey != "" {
				orig, err := findOriginal(tx, &insEvents, ev.ProjectID, ev.IdempotencyKey)
				if err != nil {
					return err
				}
				if orig != nil {
					results[i] = core.PublishResult{Event: orig, Duplicate: true}
					continue
				}
			}
			ev.DeliveryCount = len(ne.Deliveries)
			first, last, others := deliverySpan(ne.Deliveries, ev.ID)
			if err := insEvents.add(&ev, first, last); err != nil {
				return err
			}
			if others {
				elsewhere = append(elsewhere, i)
			}
			for _, d := range ne.Deliveries {
				d := d.ForInsert(&ev)
				if insertedLeased(d) {
					span.add(d)
				}
				if err := ins.add(d); err != nil {
					return err
				}
				// Deliveries inserted already leased are handed to their
				// engine in memory; only unleased ones need a wake-up.
				if d.LeaseOwner == "" && d.Status == core.DeliveryPending {
					wrote = true
				}
			}
			results[i] = core.PublishResult{Event: &ev}
		}
		if err := flushPublish(tx, &insEvents, &ins, &span); err != nil {
			return err
		}
		if err := widenSpans(tx, evs, elsewhere); err != nil {
			return err
		}
		return addStats(tx, core.FoldPublished(evs, results))
	})
	if err != nil {
		return nil, wrap("publish", err)
	}
	if wrote {
		s.signal()
	}
	return results, nil
}

// findOriginal returns the event holding a publish's idempotency key in
// its project, nil if none does.
func findOriginal(tx *rawTx, insEvents *eventInserter, projectID, key string) (*core.Event, error) {
	// The events buffered so far go in first: a key repeated
	// within the call must find its first occurrence.
	if err := insEvents.flush(); err != nil {
		return nil, err
	}
	row, err := tx.queryRow(tx.st.findIdem, projectID, key)
	if err == nil {
		return scanEvent(row)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return nil, nil
}

// flushPublish writes a publish's buffered events and deliveries and the
// lease span of its deliveries inserted already leased.
func flushPublish(tx *rawTx, insEvents *eventInserter, ins *deliveryInserter, span *leaseSpan) error {
	if err := insEvents.flush(); err != nil {
		return err
	}
	if err := ins.flush(); err != nil {
		return err
	}
	if span.first != "" {
		if err := tx.exec(tx.st.addLeaseSpan, span.expire, span.first, span.last); err != nil {
			return err
		}
	}
	return nil
}

// widenSpans: deliveries that name another event than the one they were
// published with (no caller in this repository does) widen that event's
// range. elsewhere are the indexes in evs of the events with such
// deliveries.
func widenSpans(tx *rawTx, evs []core.NewEvent, elsewhere []int) error {
	for _, i := range elsewhere {
		for _, d := range evs[i].Deliveries {
			if d.EventID != "" && d.EventID != evs[i].Event.ID {
				if err := tx.exec(tx.st.widenSpan, d.ID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// rowInserter buffers rows of one table and writes them with multi-row
// statements of up to insertBatch rows (see rawStmts.sized): one statement
// per batch instead of one per row.
type rowInserter struct {
	tx   *rawTx
	cols int
	fam  family
	buf  []any
	n    int
	what string
	// shared are the values a family binds once for all its rows (see
	// fanDeliveriesSQL), bound before the rows' (after them with
	// sharedLast).
	shared     []any
	sharedLast bool
	// changed, when set, counts the rows the statements changed.
	changed *int
}

func newRowInserter(tx *rawTx, what string, cols int, fam family) *rowInserter {
	return &rowInserter{tx: tx, what: what, cols: cols, fam: fam}
}

// shortRows enables the short statements (plainEventsSQL,
// freshDeliveriesSQL, plainAttemptsSQL, succeedManySQL), which write the
// rows the full statements would with fewer bound values: binding costs
// the driver a copy into C memory per text value. Tests turn it off to
// compare.
var shortRows = true

// shortFull is a table's pair of inserters: the short statement for the
// common rows (see shortRows), the full one for any other. Rows keep
// their order within each statement; the two are flushed short first.
type shortFull struct {
	short, full *rowInserter
}

func newShortFull(tx *rawTx, table string, shortCols int, short family, fullCols int, full family) shortFull {
	return shortFull{
		short: newRowInserter(tx, table, shortCols, short),
		full:  newRowInserter(tx, table, fullCols, full),
	}
}

func (p shortFull) flush() error {
	if err := p.short.flush(); err != nil {
		return err
	}
	return p.full.flush()
}

// eventInserter writes a transaction's events: those without
// webhook_config, idempotency key and traceparent with the short
// statement, any other with the full one.
type eventInserter struct {
	shortFull
	b *rowBoxes
}

func newEventInserter(tx *rawTx) eventInserter {
	return eventInserter{newShortFull(tx, "events", plainEventCols, famPlainEvents, eventInsertCols, famEvents), &rowBoxes{}}
}

// add buffers ev's row; first and last are the smallest and the largest
// id of its deliveries (empty when it has none).
func (ins eventInserter) add(ev *core.Event, first, last string) error {
	if shortRows && ev.Dynamic == nil && ev.IdempotencyKey == "" && ev.TraceParent == "" {
		b := ins.b
		return ins.short.add(ev.ID, b.project.box(ev.ProjectID), b.typ.box(ev.Type), ev.Subject, orEmpty(ev.Payload),
			ev.DeliveryCount, b.created.box(micros(ev.CreateTime)), first, last)
	}
	dyn, err := encodeDynamic(ev.Dynamic)
	if err != nil {
		return err
	}
	return ins.full.add(ev.ID, ev.ProjectID, ev.Type, ev.Subject, orEmpty(ev.Payload), dyn,
		ev.IdempotencyKey, ev.DeliveryCount, micros(ev.CreateTime), ev.TraceParent, first, last)
}

// deliverySpan is the smallest and the largest id of the deliveries of
// ds that belong to the event eventID (a delivery names its event, or
// none for the one it is published with); others reports whether any
// names another event.
func deliverySpan(ds []core.Delivery, eventID string) (first, last string, others bool) {
	for i := range ds {
		if e := ds[i].EventID; e != "" && e != eventID {
			others = true
			continue
		}
		id := ds[i].ID
		if last == "" || id < first {
			first = id
		}
		last = max(last, id)
	}
	return first, last, others
}

// deliveryInserter writes a transaction's new deliveries: fresh ones
// (see isFresh) to a webhook with the fan statement of their project,
// event type and lease owner, other fresh ones with the short statement,
// any other with the full one.
type deliveryInserter struct {
	shortFull
	fans *[]fanInserter
	tx   *rawTx
	b    *rowBoxes
}

// fanInserter buffers the rows of fanDeliveriesSQL that share one key.
type fanInserter struct {
	key fanKey
	ins *rowInserter
}

// fanKey is what fanDeliveriesSQL binds once for all its rows.
type fanKey struct {
	project, typ, owner string
}

// maxFans is how many keys a transaction's fan statements take; the
// rows of any other key take the short statement (each key's remainder
// is written by statements of its own).
const maxFans = 4

func newDeliveryInserter(tx *rawTx) deliveryInserter {
	return deliveryInserter{
		shortFull: newShortFull(tx, "deliveries", freshInsertCols, famFresh, deliveryInsertCols, famDeliveries),
		fans:      &[]fanInserter{},
		tx:        tx,
		b:         &rowBoxes{},
	}
}

func (ins deliveryInserter) flush() error {
	for _, f := range *ins.fans {
		if err := f.ins.flush(); err != nil {
			return err
		}
	}
	return ins.shortFull.flush()
}

// fan returns the fan inserter for d's key, nil if d does not fit
// fanDeliveriesSQL or its key would be one too many.
func (ins deliveryInserter) fan(d *core.Delivery) *rowInserter {
	if !fanRows || d.URI != "" || d.WebhookID == "" || d.Dest != d.WebhookID {
		return nil
	}
	key := fanKey{project: d.ProjectID, typ: d.EventType, owner: d.LeaseOwner}
	for _, f := range *ins.fans {
		if f.key == key {
			return f.ins
		}
	}
	if len(*ins.fans) == maxFans {
		return nil
	}
	leased := int64(0)
	if key.owner != "" {
		leased = 1 // lease_time is the creation time (leaseTime)
	}
	f := newRowInserter(ins.tx, "deliveries", fanCols, famFan)
	f.shared = []any{key.project, key.typ, key.owner, leased, leased}
	*ins.fans = append(*ins.fans, fanInserter{key: key, ins: f})
	return f
}

// isFresh reports whether d (filled by ForInsert) is a new pending
// delivery that was never attempted: the columns freshDeliveriesSQL
// writes as constants or copies hold exactly those values.
func isFresh(d core.Delivery) bool {
	return shortRows && d.Status == core.DeliveryPending && d.Attempts == 0 && !d.Manual && d.LastStatusCode == 0 &&
		d.LastError == "" && d.ScheduleStart.Equal(d.CreateTime) && d.UpdateTime.Equal(d.CreateTime)
}

func (ins deliveryInserter) add(d core.Delivery) error {
	if isFresh(d) {
		b := ins.b
		ct := b.created.box(micros(d.CreateTime))
		if f := ins.fan(&d); f != nil {
			return f.add(d.ID, b.event.box(d.EventID), b.hook.box(d.WebhookID), ct, b.next.box(micros(d.NextAttemptTime)))
		}
		lt, leased := any(int64(0)), any(int64(0))
		if d.LeaseOwner != "" {
			lt, leased = ct, int64(1) // leaseTime(d), insertedLeased(d)
		}
		return ins.short.add(d.ID, b.event.box(d.EventID), b.project.box(d.ProjectID), b.hook.box(d.WebhookID), d.URI,
			b.hook.box(d.Dest), b.typ.box(d.EventType), b.next.box(micros(d.NextAttemptTime)), ct, ct, ct,
			b.owner.box(d.LeaseOwner), lt, leased)
	}
	return ins.full.add(d.ID, d.EventID, d.ProjectID, d.WebhookID, d.URI, d.Dest, d.EventType,
		insertStatus(d), queueOf(d), d.Attempts, micros(d.NextAttemptTime), boolInt(d.Manual),
		d.LastStatusCode, d.LastError, micros(d.ScheduleStart), micros(d.CreateTime), micros(d.UpdateTime),
		d.LeaseOwner, leaseTime(d))
}

// add buffers one row of ins.cols values.
func (ins *rowInserter) add(row ...any) error {
	if ins.buf == nil {
		ins.buf = make([]any, 0, insertBatch*ins.cols)
	}
	ins.buf = append(ins.buf, row...)
	ins.n++
	if ins.n < insertBatch {
		return nil
	}
	return ins.flush()
}

// flush writes the buffered rows: a full batch with one statement, a
// remainder with one statement per power of two in it (largest first).
func (ins *rowInserter) flush() error {
	rows := ins.buf
	for n := insertBatch; ins.n > 0; n /= 2 {
		if ins.n < n {
			continue
		}
		changed, err := ins.tx.execShared(ins.tx.st.sized[ins.fam][n], ins.shared, rows[:n*ins.cols], ins.sharedLast)
		if ins.changed != nil {
			*ins.changed += changed
		}
		if err != nil {
			ins.buf, ins.n = ins.buf[:0], 0
			return ins.wrap(err)
		}
		rows, ins.n = rows[n*ins.cols:], ins.n-n
	}
	ins.buf = ins.buf[:0]
	return nil
}

func (ins *rowInserter) wrap(err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", ins.what, err)
	}
	return nil
}

// queueOf puts deliveries that were attempted before into the retry queue.
func queueOf(d core.Delivery) int {
	if d.Attempts > 0 && !d.Manual {
		return 1
	}
	return 0
}

// GetEvent implements core.EventStore.
func (s *Store) GetEvent(ctx context.Context, projectID, id string) (*core.Event, error) {
	e, err := scanEvent(s.r.QueryRowContext(ctx,
		`SELECT `+eventCols+` FROM events WHERE id = ? AND project_id = ?`, id, projectID))
	if err != nil {
		return nil, wrap("get event", err)
	}
	return e, nil
}

// EventsByKeys implements core.EventStore.
func (s *Store) EventsByKeys(ctx context.Context, projectID string, keys []string) ([]*core.Event, error) {
	keys = slices.DeleteFunc(slices.Clone(keys[:min(len(keys), maxListLimit)]), func(k string) bool { return k == "" })
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(keys)+1)
	args = append(args, projectID)
	for _, k := range keys {
		args = append(args, k)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE project_id = ? AND idempotency_key IN (?`+
		strings.Repeat(", ?", len(keys)-1)+`) AND idempotency_key != '' ORDER BY id`, args...)
	if err != nil {
		return nil, wrap("events by keys", err)
	}
	defer rows.Close()
	var out []*core.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, wrap("events by keys", err)
		}
		out = append(out, e)
	}
	return out, wrap("events by keys", rows.Err())
}

// ListEvents implements core.EventStore: newest first by id, Limit
// defaulting to 100 and capped at 1000. It walks the primary key, which is
// creation order, filtering by project: events are listed by people, not
// by the delivery path.
func (s *Store) ListEvents(ctx context.Context, p core.ListEventsParams) ([]*core.Event, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	where, args := []string{"project_id = ?"}, []any{p.ProjectID}
	if p.Type != "" {
		where, args = append(where, "type = ?"), append(args, p.Type)
	}
	if p.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, p.BeforeID)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, wrap("list events", err)
	}
	defer rows.Close()
	var out []*core.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, wrap("list events", err)
		}
		out = append(out, e)
	}
	return out, wrap("list events", rows.Err())
}

// deliveryInsertCols is the number of columns per inserted delivery row.
const deliveryInsertCols = 19

// statusLeased is the status of a delivery inserted already leased
// (insertedLeased) until its completion, or until a claim sweeps its
// lease span (sweepLeaseSpans) and makes it 'pending'. It is outside
// deliveries_due's predicate: such a delivery's entry there would be
// inserted with it and deleted by its completion, and read only if its
// lease expired first (migration 0012). Every reader of status takes it
// for pending (pendingSQL, scanDelivery); the API never sees it.
const statusLeased = "leased"

// pendingSQL is the SQL list of the statuses that are pending.
const pendingSQL = `('pending', 'leased')`

// insertedLeased reports whether d (filled by ForInsert) is inserted
// with status 'leased': pending, with a lease owner.
func insertedLeased(d core.Delivery) bool {
	return d.Status == core.DeliveryPending && d.LeaseOwner != ""
}

// insertStatus is the status column d is inserted with.
func insertStatus(d core.Delivery) string {
	if insertedLeased(d) {
		return statusLeased
	}
	return string(d.Status)
}

// leaseSpan is what a publish records in lease_spans of the deliveries
// it inserted leased: the smallest and the largest id, and the earliest
// lease expiry. A claim sweeps the span once it expires (or earlier),
// making its rows still 'leased' pending again, so a delivery whose
// engine died is retried after its lease as before.
type leaseSpan struct {
	first, last string
	expire      int64
}

func (sp *leaseSpan) add(d core.Delivery) {
	exp := micros(d.NextAttemptTime)
	if sp.first == "" {
		sp.first, sp.last, sp.expire = d.ID, d.ID, exp
		return
	}
	sp.first, sp.last, sp.expire = min(sp.first, d.ID), max(sp.last, d.ID), min(sp.expire, exp)
}

// leaseTime is the claim time of a delivery inserted already leased
// (core.Delivery.LeaseOwner): its creation.
func leaseTime(d core.Delivery) int64 {
	if d.LeaseOwner == "" {
		return 0
	}
	return micros(d.CreateTime)
}

// insertBatch is the number of rows per multi-row delivery INSERT.
const insertBatch = 32

func insertDeliveriesSQL(rows int) string {
	return multiInsertSQL(`deliveries (id, event_id, project_id, webhook_id, uri, dest, event_type,
		status, queue, attempts, next_attempt_time, manual, last_status_code, last_error,
		schedule_start, create_time, update_time, lease_owner, lease_time)`, deliveryInsertCols, rows)
}

// freshInsertCols is the number of parameters per row of
// freshDeliveriesSQL.
const freshInsertCols = 14

// freshDeliveriesSQL inserts new, never attempted pending deliveries
// (isFresh): the columns such a row holds as constants are written in the
// statement, so a row binds 14 values instead of 19, the last of them 1
// for a row inserted leased (status 'leased', see insertStatus), 0 for
// 'pending'. (Numbered parameters, binding the creation time once, cost
// more: the driver reads every named parameter's name into a Go string.)
func freshDeliveriesSQL(rows int) string {
	return multiRowSQL(`deliveries (id, event_id, project_id, webhook_id, uri, dest, event_type,
		next_attempt_time, schedule_start, create_time, update_time, lease_owner, lease_time,
		status, queue, attempts, manual, last_status_code, last_error)`,
		"("+strings.Repeat("?, ", freshInsertCols-1)+"CASE WHEN ? THEN 'leased' ELSE 'pending' END, 0, 0, 0, 0, '')", rows)
}

// fanRows enables fanDeliveriesSQL. Tests turn it off to compare.
var fanRows = true

// fanCols is the number of parameters per row of fanDeliveriesSQL.
const fanCols = 5

// fanDeliveriesSQL inserts fresh deliveries (isFresh) to a webhook (no
// uri, the webhook as their dest) of one project, event type and lease
// owner: those three, and whether the rows are leased (1: lease_time is
// their creation time, see leaseTime; 0: 0), twice (the second for their
// status, see insertStatus), are bound once for all the rows (the five
// parameters before the rows'); a row binds its id, event, webhook,
// creation time and next attempt. Binding costs the driver more than the
// statement's copying values per row: each text value is copied into C
// memory and freed again.
func fanDeliveriesSQL(rows int) string {
	return `INSERT OR FAIL INTO deliveries (project_id, event_type, lease_owner, lease_time, status, id, event_id,
		webhook_id, dest, schedule_start, create_time, update_time, next_attempt_time,
		uri, queue, attempts, manual, last_status_code, last_error)
	SELECT ?, ?, ?, ? * v.column4, CASE WHEN ? THEN 'leased' ELSE 'pending' END, v.column1, v.column2, v.column3,
		v.column3, v.column4, v.column4, v.column4, v.column5, '', 0, 0, 0, 0, ''
	FROM (` + valuesSQL("(?, ?, ?, ?, ?)", rows) + `) AS v`
}

// valuesSQL is a VALUES list of rows copies of row.
func valuesSQL(row string, rows int) string {
	var b strings.Builder
	b.WriteString(`VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// plainEventCols is the number of parameters per row of
// plainEventsSQL.
const plainEventCols = 9

// plainEventsSQL inserts events without webhook_config, idempotency key
// and traceparent, those three columns written in the statement.
func plainEventsSQL(rows int) string {
	return multiRowSQL(`events (id, project_id, type, subject, payload, delivery_count, create_time,
		first_delivery, last_delivery, dynamic, idempotency_key, trace_parent)`,
		"("+strings.Repeat("?, ", plainEventCols)+"NULL, '', '')", rows)
}

// eventInsertCols is the number of columns per inserted event row.
const eventInsertCols = 12

func insertEventsSQL(rows int) string {
	return multiInsertSQL(`events (id, project_id, type, subject, payload, dynamic,
		idempotency_key, delivery_count, create_time, trace_parent, first_delivery, last_delivery)`, eventInsertCols, rows)
}

// widenSpanSQL widens an event's range of delivery ids (first_delivery,
// last_delivery; see migration 0011) to take in the delivery ids of the
// rows that cond selects from deliveries, grouped by their event. Run
// before a change that makes those deliveries pending, so that the
// retention sweep (deleteEvents) finds them.
func widenSpanSQL(cond string) string {
	return `UPDATE events SET
	first_delivery = CASE WHEN last_delivery = '' THEN s.lo ELSE min(first_delivery, s.lo) END,
	last_delivery = CASE WHEN last_delivery = '' THEN s.hi ELSE max(last_delivery, s.hi) END
FROM (SELECT event_id, min(id) AS lo, max(id) AS hi FROM deliveries WHERE ` + cond + ` GROUP BY event_id) AS s
WHERE events.id = s.event_id`
}

// attemptInsertCols is the number of columns per inserted attempt row.
const attemptInsertCols = 8

func insertAttemptsSQL(rows int) string {
	return multiInsertSQL(`attempts (delivery_id, number, time, uri, status_code, latency_ns, error, response)`,
		attemptInsertCols, rows)
}

// plainAttemptCols is the number of parameters per row of
// plainAttemptsSQL.
const plainAttemptCols = 6

// plainAttemptsSQL inserts attempts without an error and response body.
func plainAttemptsSQL(rows int) string {
	return multiRowSQL(`attempts (delivery_id, number, time, uri, status_code, latency_ns, error, response)`,
		"("+strings.Repeat("?, ", plainAttemptCols)+"'', x'')", rows)
}

// multiInsertSQL is an INSERT of rows rows into target. OR FAIL: a
// multi-row statement that may abort would keep a statement journal
// (every page it touches copied first); a failure rolls back the whole
// transaction anyway.
func multiInsertSQL(target string, cols, rows int) string {
	return multiRowSQL(target, "("+strings.Repeat("?, ", cols-1)+"?)", rows)
}

// multiRowSQL is an INSERT OR FAIL of rows copies of row into target.
func multiRowSQL(target, row string, rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR FAIL INTO ` + target + ` VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}
