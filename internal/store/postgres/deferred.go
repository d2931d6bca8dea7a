package postgres

import (
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

// start names the group and sizes it for the deliveries of rest: the
// publish's events from the first with a deferred delivery on.
func (g *deferGroupRecord) start(rest []core.NewEvent) {
	g.id = core.NewSortableID(time.Now())
	n := 0
	for _, ne := range rest {
		n += len(ne.Deliveries)
	}
	g.ds = make([]core.Delivery, 0, n)
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
