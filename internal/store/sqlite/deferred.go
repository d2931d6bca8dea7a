package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Deferred deliveries (migration 0013, docs/design.md "Storage"). A
// delivery that PublishEvents inserts already leased (insertedLeased: the
// engine's direct path) gets no deliveries row at publish: its row, as the
// publish would have inserted it, goes into its publish's one record of
// deferred_deliveries, and the Store keeps it in memory (deferState). Its
// completion then inserts the row once, in the state the completion's
// UPDATE would have left it (finalRow). Any other reader or change of
// deliveries first settles (materializes) what is deferred: the rows are
// inserted as the publish would have inserted them and the records
// deleted. Claims settle the groups a second old or expired, and Open the
// records a crash (or another process) left.
//
// Every change of the state runs with the writer's connection held (the
// publish, the completion and settle add or drop entries after their
// commit, inside inRawTx), so a transaction never sees an entry another
// transaction is changing. A record that is gone although its group is in
// memory was settled by another process opening the file (Open settles
// every record): the completion then takes the UPDATE path, and settle
// inserts nothing for it.

// deferState is the Store's deferred deliveries.
type deferState struct {
	mu     sync.Mutex
	groups map[int64]*deferGroup
	byID   map[string]deferRef
}

// deferGroup is one publish's deferred deliveries: its record's id, the
// earliest lease expiry (unix µs), the deliveries as the publish would
// have inserted them, which of them a completion wrote, and how many are
// left.
type deferGroup struct {
	id     int64
	expire int64
	ds     []core.Delivery
	done   []bool
	left   int
}

// deferRef is a deferred delivery: its group and its index there.
type deferRef struct {
	g *deferGroup
	i int
}

// deferOf returns the deferred delivery id, if any.
func (st *deferState) deferOf(id string) (deferRef, bool) {
	st.mu.Lock()
	r, ok := st.byID[id]
	st.mu.Unlock()
	return r, ok
}

// empty reports whether nothing is deferred: the readers' barrier costs
// this check alone then.
func (st *deferState) empty() bool {
	st.mu.Lock()
	n := len(st.groups)
	st.mu.Unlock()
	return n == 0
}

// add registers a group whose record committed.
func (st *deferState) add(g *deferGroup) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.groups == nil {
		st.groups, st.byID = map[int64]*deferGroup{}, map[string]deferRef{}
	}
	st.groups[g.id] = g
	for i := range g.ds {
		st.byID[g.ds[i].ID] = deferRef{g: g, i: i}
	}
}

// drop forgets a group (settled, or found settled by another process).
func (st *deferState) drop(g *deferGroup) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dropLocked(g)
}

func (st *deferState) dropLocked(g *deferGroup) {
	if st.groups[g.id] != g {
		return
	}
	delete(st.groups, g.id)
	for i := range g.ds {
		if !g.done[i] {
			delete(st.byID, g.ds[i].ID)
		}
	}
}

// completed marks the deliveries of refs written by a completion that
// committed; a group with none left is forgotten (its record was deleted
// in the same transaction).
func (st *deferState) completed(refs []deferRef) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range refs {
		if r.g.done[r.i] {
			continue
		}
		r.g.done[r.i] = true
		r.g.left--
		delete(st.byID, r.g.ds[r.i].ID)
		if r.g.left == 0 {
			delete(st.groups, r.g.id)
		}
	}
}

// remaining returns g's deliveries no completion wrote.
func (st *deferState) remaining(g *deferGroup) []core.Delivery {
	st.mu.Lock()
	defer st.mu.Unlock()
	var ds []core.Delivery
	for i := range g.ds {
		if !g.done[i] {
			ds = append(ds, g.ds[i])
		}
	}
	return ds
}

// pick returns the groups for which keep is true.
func (st *deferState) pick(keep func(*deferGroup) bool) []*deferGroup {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*deferGroup
	for _, g := range st.groups {
		if keep(g) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *deferGroup) int { return int(a.id - b.id) })
	return out
}

// earliest returns the earliest lease expiry of the deferred deliveries
// (unix µs), 0 if none: NextDueTime adds it, as the lease span their
// publish would have written.
func (st *deferState) earliest() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	var t int64
	for _, g := range st.groups {
		if t == 0 || g.expire < t {
			t = g.expire
		}
	}
	return t
}

// deferrable reports whether the publish defers d (filled by ForInsert):
// inserted leased, and published with the event it names (a delivery
// naming another event widens that event's range from its row).
func deferrable(d core.Delivery, eventID string) bool {
	return deferDeliveries && insertedLeased(d) && d.EventID == eventID
}

// deferDeliveries enables deferred deliveries. Tests turn it off to
// compare with the rows the publish inserts.
var deferDeliveries = true

// deferGroupSQL inserts a publish's record.
const deferGroupSQL = `INSERT INTO deferred_deliveries (owner, expire, count, data) VALUES (?, ?, ?, ?)`

// addGroup writes the record of ds, deferred by the publish in tx, and
// registers them once it commits.
func addGroup(tx *rawTx, ds []core.Delivery, defs *deferState) error {
	g := &deferGroup{ds: ds, done: make([]bool, len(ds)), left: len(ds)}
	for i := range ds {
		exp := micros(ds[i].NextAttemptTime)
		if i == 0 || exp < g.expire {
			g.expire = exp
		}
	}
	res, err := tx.execResult(tx.st.deferGroup, ds[0].LeaseOwner, g.expire, len(ds), encodeDeferred(ds))
	if err != nil {
		return fmt.Errorf("deferred deliveries: %w", err)
	}
	if g.id, err = res.LastInsertId(); err != nil {
		return err
	}
	tx.onCommit(func() { defs.add(g) })
	return nil
}

// finalRow is a deliveries row as a completion leaves it: the columns of
// finalInsertSQL.
type finalRow struct {
	d          core.Delivery // Status as stored; NextAttemptTime, LeaseOwner as the row holds them
	status     string
	queue      int
	leaseTime  int64
	inlineNum  int
	inlineURI  string
	inlineLat  int64
	inlineResp []byte
}

// applyCompletion is what CompleteDeliveries' UPDATE (completeManySQL,
// succeedManySQL, or inlineManySQL when inline) makes of the row the
// publish inserted for d, leased by c.Owner, for the completion c of its
// attempt at at (attemptTime). TestFinalRowMatchesUpdate compares it
// with the UPDATE's result.
func applyCompletion(d core.Delivery, c core.Completion, at time.Time, inline bool) finalRow {
	a := c.Attempt
	if len(a.Response) > MaxResponseBytes {
		a.Response = a.Response[:MaxResponseBytes]
	}
	r := finalRow{d: d, status: insertStatus(d), queue: queueOf(d), leaseTime: leaseTime(d)}
	r.d.LeaseOwner, r.leaseTime = "", 0
	r.d.UpdateTime = at
	if inline && inlineable(c) {
		r.status = string(core.DeliverySucceeded)
		r.d.NextAttemptTime = time.Time{}
		r.d.Attempts++
		r.d.LastStatusCode, r.d.LastError = a.StatusCode, ""
		r.inlineNum, r.inlineLat, r.inlineResp = a.Number, int64(a.Latency), a.Response
		if a.URI != d.URI {
			r.inlineURI = a.URI
		}
		return r
	}
	r.status = string(c.Status)
	if c.Status == core.DeliveryPending {
		r.queue = 1
		r.d.NextAttemptTime = c.NextAttemptTime
	} else {
		r.d.NextAttemptTime = time.Time{}
	}
	if a.Number != 0 {
		r.d.Attempts++
		r.d.LastStatusCode, r.d.LastError = a.StatusCode, a.Error
	}
	return r
}

// finalCols is the number of parameters per row of finalInsertSQL.
const finalCols = 23

// finalInsertSQL inserts rows of deliveries completed while deferred.
func finalInsertSQL(rows int) string {
	return multiInsertSQL(`deliveries (id, event_id, project_id, webhook_id, uri, dest, event_type,
		status, queue, attempts, next_attempt_time, manual, last_status_code, last_error,
		schedule_start, create_time, update_time, lease_owner, lease_time,
		inline_attempt, inline_uri, inline_latency_ns, inline_response)`, finalCols, rows)
}

// finalShortCols is the number of parameters per row of finalShortSQL.
const finalShortCols = 12

// finalShortSQL inserts the rows of fresh webhook deliveries (isFresh, no
// uri, the webhook as their dest) that succeeded at their first attempt,
// kept in the row: a row binds its id, event, project, webhook, event
// type, creation time, status code, attempt time, attempt number, URI,
// latency and response (NULL for none); the other columns are constants or
// copies.
func finalShortSQL(rows int) string {
	return `INSERT OR FAIL INTO deliveries (id, event_id, project_id, webhook_id, dest, event_type,
		schedule_start, create_time, last_status_code, update_time, inline_attempt, inline_uri,
		inline_latency_ns, inline_response,
		uri, status, queue, attempts, next_attempt_time, manual, last_error, lease_owner, lease_time)
	SELECT v.column1, v.column2, v.column3, v.column4, v.column4, v.column5, v.column6, v.column6,
		v.column7, v.column8, v.column9, v.column10, v.column11, coalesce(v.column12, x''),
		'', 'succeeded', 0, 1, 0, 0, '', '', 0
	FROM (` + valuesSQL("("+strings.Repeat("?, ", finalShortCols-1)+"?)", rows) + `) AS v`
}

// finalInserter writes a completion transaction's rows of deliveries
// completed while deferred: the short statement for the common rows,
// the full one for any other.
type finalInserter struct {
	shortFull
	b *rowBoxes
}

func newFinalInserter(tx *rawTx) finalInserter {
	return finalInserter{newShortFull(tx, "deliveries", finalShortCols, famFinalShort, finalCols, famFinal), &rowBoxes{}}
}

// add buffers r's row.
func (ins finalInserter) add(r *finalRow) error {
	d := &r.d
	if shortRows && r.inlineNum != 0 && d.URI == "" && d.WebhookID != "" && d.Dest == d.WebhookID &&
		r.inlineURI != "" && d.Attempts == 1 && !d.Manual && d.ScheduleStart.Equal(d.CreateTime) {
		var resp any // NULL for none: binds without a copy into C memory
		if len(r.inlineResp) > 0 {
			resp = r.inlineResp
		}
		b := ins.b
		return ins.short.add(d.ID, b.event.box(d.EventID), b.project.box(d.ProjectID), b.hook.box(d.WebhookID),
			b.typ.box(d.EventType), b.created.box(micros(d.CreateTime)), d.LastStatusCode, b.next.box(micros(d.UpdateTime)),
			r.inlineNum, r.inlineURI, r.inlineLat, resp)
	}
	return r.add(ins.full)
}

// add buffers r's row in ins (finalInsertSQL).
func (r *finalRow) add(ins *rowInserter) error {
	d := &r.d
	return ins.add(d.ID, d.EventID, d.ProjectID, d.WebhookID, d.URI, d.Dest, d.EventType,
		r.status, r.queue, d.Attempts, micros(d.NextAttemptTime), boolInt(d.Manual), d.LastStatusCode, d.LastError,
		micros(d.ScheduleStart), micros(d.CreateTime), micros(d.UpdateTime), d.LeaseOwner, r.leaseTime,
		r.inlineNum, r.inlineURI, r.inlineLat, orEmpty(r.inlineResp))
}

// deferPlan is what a completion transaction does with the deferred
// deliveries it completes: refs[i] is completion i's deferred delivery
// (g nil: today's UPDATE path).
type deferPlan struct {
	refs []deferRef
	any  bool
}

// planDeferred finds which completions of cs complete a delivery still
// deferred: the only completion of it in cs, by its lease owner, its
// group's record still there. It deletes the records of the groups they
// empty. A deferred delivery completed more than once in cs is inserted
// as its publish would have inserted it, and its completions take the
// UPDATE path, which decides between them as it does for any delivery. A
// completion by another owner, or none, takes the UPDATE path too, which
// changes nothing whether it finds the row leased to another or finds no
// row (settling inserts it later).
func planDeferred(tx *rawTx, defs *deferState, cs []core.Completion) (deferPlan, error) {
	var p deferPlan
	defs.mu.Lock()
	if len(defs.groups) == 0 {
		defs.mu.Unlock()
		return p, nil
	}
	var only map[string]int // deferred id → its completion's index in cs, -1 if more than one
	for i, c := range cs {
		if _, ok := defs.byID[c.DeliveryID]; !ok {
			continue
		}
		if only == nil {
			only = make(map[string]int, len(cs))
		}
		if _, twice := only[c.DeliveryID]; twice {
			only[c.DeliveryID] = -1
		} else {
			only[c.DeliveryID] = i
		}
	}
	if only == nil {
		defs.mu.Unlock()
		return p, nil
	}
	p.refs = make([]deferRef, len(cs))
	uses := map[*deferGroup]int{}
	var now []deferRef // completed more than once in cs
	for id, i := range only {
		r := defs.byID[id]
		switch {
		case i < 0:
			now = append(now, r)
		case cs[i].Owner == "" || r.g.ds[r.i].LeaseOwner != cs[i].Owner:
			continue
		default:
			p.refs[i] = r
		}
		uses[r.g]++
	}
	type gu struct {
		g     *deferGroup
		empty bool
		now   []core.Delivery
	}
	gs := make([]gu, 0, len(uses))
	for g, n := range uses {
		x := gu{g: g, empty: n == g.left}
		for _, r := range now {
			if r.g == g {
				x.now = append(x.now, g.ds[r.i])
			}
		}
		gs = append(gs, x)
	}
	defs.mu.Unlock()
	slices.SortFunc(gs, func(a, b gu) int { return int(a.g.id - b.g.id) })
	var done []deferRef
	for _, x := range gs {
		var exists bool
		if x.empty {
			n, err := tx.execChanged(tx.st.deferDelete, x.g.id)
			if err != nil {
				return p, err
			}
			exists = n == 1
		} else {
			_, err := tx.queryRow(tx.st.deferExists, x.g.id)
			switch {
			case err == nil:
				exists = true
			case !errors.Is(err, sql.ErrNoRows):
				return p, err
			}
		}
		if !exists {
			// Settled by another process: the rows are there; the
			// completions take the UPDATE path, and the group is
			// forgotten.
			for i := range p.refs {
				if p.refs[i].g == x.g {
					p.refs[i] = deferRef{}
				}
			}
			g := x.g
			tx.onCommit(func() { defs.drop(g) })
			continue
		}
		if len(x.now) > 0 {
			if err := insertSettled(tx.exec, tx.st.settleRow, tx.st.addLeaseSpan, x.now); err != nil {
				return p, err
			}
			for _, r := range now {
				if r.g == x.g {
					done = append(done, r)
				}
			}
		}
	}
	for _, r := range p.refs {
		if r.g != nil {
			p.any = true
			done = append(done, r)
		}
	}
	if len(done) > 0 {
		tx.onCommit(func() { defs.completed(done) })
	}
	return p, nil
}

// settleAll settles every deferred delivery: the barrier before a read or
// change of deliveries that must find them as the publish would have
// written them. With nothing deferred it costs a mutex.
func (s *Store) settleAll(ctx context.Context) error {
	if s.def.empty() {
		return nil
	}
	return s.settle(ctx, func(*deferGroup) bool { return true })
}

// settleIDs settles the groups of the deliveries ids.
func (s *Store) settleIDs(ctx context.Context, ids ...string) error {
	if s.def.empty() {
		return nil
	}
	some := false
	for _, id := range ids {
		if _, ok := s.def.deferOf(id); ok {
			some = true
			break
		}
	}
	if !some {
		return nil
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	return s.settle(ctx, func(g *deferGroup) bool {
		for i := range g.ds {
			if !g.done[i] && want[g.ds[i].ID] {
				return true
			}
		}
		return false
	})
}

// settleDue settles the groups whose earliest lease expires at or before
// through: a claim's, as it sweeps the lease spans (sweepLeaseSpans).
func (s *Store) settleDue(ctx context.Context, through int64) error {
	if s.def.empty() {
		return nil
	}
	if e := s.def.earliest(); e == 0 || e > through {
		return nil
	}
	return s.settle(ctx, func(g *deferGroup) bool { return g.expire <= through })
}

// settle inserts the deliveries still deferred of the groups keep picks as
// their publish would have inserted them (each group's lease span too),
// and deletes their records, in one transaction.
func (s *Store) settle(ctx context.Context, keep func(*deferGroup) bool) error {
	err := s.inRawTx(ctx, func(tx *rawTx) error {
		// Picked with the connection held: no completion changes them now.
		for _, g := range s.def.pick(keep) {
			n, err := tx.execChanged(tx.st.deferDelete, g.id)
			if err != nil {
				return err
			}
			g := g
			tx.onCommit(func() { s.def.drop(g) })
			if n == 0 {
				continue // settled by another process
			}
			if err := insertSettled(tx.exec, tx.st.settleRow, tx.st.addLeaseSpan, s.def.remaining(g)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("settle deferred deliveries", err)
}

// settleRowSQL inserts a settled delivery as the publish would have
// (insertDeliveriesSQL), unless a completion wrote its row.
const settleRowSQL = `INSERT OR IGNORE INTO deliveries (id, event_id, project_id, webhook_id, uri, dest, event_type,
	status, queue, attempts, next_attempt_time, manual, last_status_code, last_error,
	schedule_start, create_time, update_time, lease_owner, lease_time)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertSettled inserts ds as the publish would have: rows (settleRowSQL)
// and their lease span.
func insertSettled[S any](exec func(S, ...any) error, row, span S, ds []core.Delivery) error {
	var sp leaseSpan
	for _, d := range ds {
		if err := exec(row, d.ID, d.EventID, d.ProjectID, d.WebhookID, d.URI, d.Dest, d.EventType,
			insertStatus(d), queueOf(d), d.Attempts, micros(d.NextAttemptTime), boolInt(d.Manual),
			d.LastStatusCode, d.LastError, micros(d.ScheduleStart), micros(d.CreateTime), micros(d.UpdateTime),
			d.LeaseOwner, leaseTime(d)); err != nil {
			return err
		}
		if insertedLeased(d) {
			sp.add(d)
		}
	}
	if sp.first == "" {
		return nil
	}
	return exec(span, sp.expire, sp.first, sp.last)
}

// recoverDeferred settles every record in the file (Open): those a crash
// left, or those of another process still running, whose completions
// then take the UPDATE path. Rows a completion wrote stay as they are.
func (s *Store) recoverDeferred(ctx context.Context) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, data FROM deferred_deliveries ORDER BY id`)
		if err != nil {
			return err
		}
		type rec struct {
			id   int64
			data []byte
		}
		var recs []rec
		for rows.Next() {
			var r rec
			if err := rows.Scan(&r.id, &r.data); err != nil {
				rows.Close()
				return err
			}
			recs = append(recs, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		row, err := tx.PrepareContext(ctx, settleRowSQL)
		if err != nil {
			return err
		}
		defer row.Close()
		span, err := tx.PrepareContext(ctx, `INSERT INTO lease_spans (expire, first, last) VALUES (?, ?, ?)`)
		if err != nil {
			return err
		}
		defer span.Close()
		exec := func(st *sql.Stmt, args ...any) error {
			_, err := st.ExecContext(ctx, args...)
			return err
		}
		for _, r := range recs {
			ds, err := decodeDeferred(r.data)
			if err != nil {
				return fmt.Errorf("record %d: %w", r.id, err)
			}
			if err := insertSettled(exec, row, span, ds); err != nil {
				return fmt.Errorf("record %d: %w", r.id, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM deferred_deliveries WHERE id = ?`, r.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: open: settle deferred deliveries: %w", err)
	}
	return nil
}

// The encoding of a record's data: a version byte (1), the number of
// deliveries, then per delivery a uvarint of flags and the fields they
// name, each field written only when it differs from the previous
// delivery's (the first's from the zero Delivery): strings as a uvarint
// length and bytes, numbers and times (unix µs) as varints. The id is
// always written; flagDestHook marks a dest equal to the webhook id (not
// written). Status is pending (the deliveries are leased, see
// insertedLeased); the rest is what ForInsert filled.
const (
	encVersion = 1

	flagEvent = 1 << iota
	flagProject
	flagHook
	flagURI
	flagDest
	flagDestHook
	flagType
	flagAttempts
	flagNext
	flagManual
	flagCode
	flagError
	flagStart
	flagCreate
	flagUpdate
	flagOwner
)

// encodeDeferred encodes ds for a record's data.
func encodeDeferred(ds []core.Delivery) []byte {
	b := make([]byte, 0, 64+len(ds)*96)
	b = append(b, encVersion)
	b = binary.AppendUvarint(b, uint64(len(ds)))
	var prev core.Delivery
	for i := range ds {
		d := &ds[i]
		var f uint64
		str := func(flag uint64, v, p string) {
			if v != p {
				f |= flag
			}
		}
		num := func(flag uint64, v, p int64) {
			if v != p {
				f |= flag
			}
		}
		str(flagEvent, d.EventID, prev.EventID)
		str(flagProject, d.ProjectID, prev.ProjectID)
		str(flagHook, d.WebhookID, prev.WebhookID)
		str(flagURI, d.URI, prev.URI)
		if d.Dest == d.WebhookID {
			f |= flagDestHook
		} else {
			str(flagDest, d.Dest, prev.Dest)
		}
		str(flagType, d.EventType, prev.EventType)
		num(flagAttempts, int64(d.Attempts), int64(prev.Attempts))
		num(flagNext, micros(d.NextAttemptTime), micros(prev.NextAttemptTime))
		num(flagManual, boolInt(d.Manual), boolInt(prev.Manual))
		num(flagCode, int64(d.LastStatusCode), int64(prev.LastStatusCode))
		str(flagError, d.LastError, prev.LastError)
		num(flagStart, micros(d.ScheduleStart), micros(prev.ScheduleStart))
		num(flagCreate, micros(d.CreateTime), micros(prev.CreateTime))
		num(flagUpdate, micros(d.UpdateTime), micros(prev.UpdateTime))
		str(flagOwner, d.LeaseOwner, prev.LeaseOwner)
		b = binary.AppendUvarint(b, f)
		b = appendString(b, d.ID)
		for _, x := range []struct {
			flag uint64
			s    string
		}{{flagEvent, d.EventID}, {flagProject, d.ProjectID}, {flagHook, d.WebhookID}, {flagURI, d.URI},
			{flagDest, d.Dest}, {flagType, d.EventType}} {
			if f&x.flag != 0 {
				b = appendString(b, x.s)
			}
		}
		for _, x := range []struct {
			flag uint64
			v    int64
		}{{flagAttempts, int64(d.Attempts)}, {flagNext, micros(d.NextAttemptTime)}, {flagManual, boolInt(d.Manual)},
			{flagCode, int64(d.LastStatusCode)}} {
			if f&x.flag != 0 {
				b = binary.AppendVarint(b, x.v)
			}
		}
		if f&flagError != 0 {
			b = appendString(b, d.LastError)
		}
		for _, x := range []struct {
			flag uint64
			v    int64
		}{{flagStart, micros(d.ScheduleStart)}, {flagCreate, micros(d.CreateTime)}, {flagUpdate, micros(d.UpdateTime)}} {
			if f&x.flag != 0 {
				b = binary.AppendVarint(b, x.v)
			}
		}
		if f&flagOwner != 0 {
			b = appendString(b, d.LeaseOwner)
		}
		prev = *d
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeDeferred is the inverse of encodeDeferred.
func decodeDeferred(b []byte) ([]core.Delivery, error) {
	errBad := errors.New("malformed deferred deliveries")
	if len(b) == 0 || b[0] != encVersion {
		return nil, fmt.Errorf("%w: version", errBad)
	}
	b = b[1:]
	bad := false
	uvar := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	svar := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() string {
		n := uvar()
		if bad || n > uint64(len(b)) {
			bad = true
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	n := uvar()
	if bad || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: count", errBad)
	}
	ds := make([]core.Delivery, n)
	var prev core.Delivery
	for i := range ds {
		d := prev
		f := uvar()
		d.ID = str()
		for _, x := range []struct {
			flag uint64
			s    *string
		}{{flagEvent, &d.EventID}, {flagProject, &d.ProjectID}, {flagHook, &d.WebhookID}, {flagURI, &d.URI},
			{flagDest, &d.Dest}, {flagType, &d.EventType}} {
			if f&x.flag != 0 {
				*x.s = str()
			}
		}
		if f&flagDestHook != 0 {
			d.Dest = d.WebhookID
		}
		if f&flagAttempts != 0 {
			d.Attempts = int(svar())
		}
		if f&flagNext != 0 {
			d.NextAttemptTime = fromMicros(svar())
		}
		if f&flagManual != 0 {
			d.Manual = svar() != 0
		}
		if f&flagCode != 0 {
			d.LastStatusCode = int(svar())
		}
		if f&flagError != 0 {
			d.LastError = str()
		}
		if f&flagStart != 0 {
			d.ScheduleStart = fromMicros(svar())
		}
		if f&flagCreate != 0 {
			d.CreateTime = fromMicros(svar())
		}
		if f&flagUpdate != 0 {
			d.UpdateTime = fromMicros(svar())
		}
		if f&flagOwner != 0 {
			d.LeaseOwner = str()
		}
		if bad {
			return nil, fmt.Errorf("%w: delivery %d", errBad, i)
		}
		d.Status = core.DeliveryPending
		ds[i] = d
		prev = d
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes left", errBad, len(b))
	}
	return ds, nil
}
