package postgres

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

func TestDeferredEncoding(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("x", 3600)
	ds := []core.Delivery{
		{ID: "msg_1", EventID: "ev", ProjectID: "p", WebhookID: "w", Dest: "w", EventType: "a.b",
			Status: core.DeliveryPending, NextAttemptTime: time.Date(2026, 5, 5, 12, 1, 0, 123456789, time.UTC),
			LeaseOwner: "o", ScheduleStart: time.Date(2026, 5, 5, 12, 0, 0, 1, loc),
			CreateTime: time.Date(2026, 5, 5, 12, 0, 0, 1, loc), UpdateTime: time.Date(2026, 5, 5, 12, 0, 0, 1, loc)},
		{ID: "msg_2", EventID: "ev", ProjectID: "p", URI: "https://é.example/x", Dest: "dyn", EventType: "a.b",
			Status: core.DeliveryPending, Attempts: 3, Manual: true, LastStatusCode: 503, LastError: "nope",
			ScheduleBase: 2, LeaseOwner: "o"}, // zero times
	}
	got, err := decodeDeferred(encodeDeferred(ds))
	if err != nil {
		t.Fatal(err)
	}
	for i := range ds {
		want := ds[i]
		for _, p := range []*time.Time{&want.NextAttemptTime, &want.ScheduleStart, &want.CreateTime, &want.UpdateTime} {
			if !p.IsZero() {
				*p = p.UTC()
			} else {
				*p = time.Unix(p.Unix(), 0).UTC()
			}
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("delivery %d:\n got %+v\nwant %+v", i, got[i], want)
		}
		if !got[i].CreateTime.Equal(ds[i].CreateTime) || !got[i].NextAttemptTime.Equal(ds[i].NextAttemptTime) {
			t.Errorf("delivery %d: times changed", i)
		}
	}
	b := encodeDeferred(ds)
	for _, bad := range [][]byte{nil, {9}, b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if _, err := decodeDeferred(bad); err == nil {
			t.Errorf("decodeDeferred(%x) accepted corrupt data", bad)
		}
	}
	// Every truncation, and every byte changed, fails or decodes:
	// never a panic.
	for i := range b {
		_, _ = decodeDeferred(b[:i])
		for _, v := range []byte{0, 1, 0x7f, 0x80, 0xff} {
			c := append([]byte{}, b...)
			c[i] = v
			_, _ = decodeDeferred(c)
		}
	}
}

// leasedEvents makes n events of the fixture's webhooks, their
// deliveries leased to owner until until.
func leasedEvents(f *fixture, n int, owner string, at, until time.Time) []core.NewEvent {
	evs := make([]core.NewEvent, n)
	for i := range evs {
		evs[i] = storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, at, f.hooks...)
		for j := range evs[i].Deliveries {
			evs[i].Deliveries[j].LeaseOwner = owner
			evs[i].Deliveries[j].NextAttemptTime = until
		}
	}
	return evs
}

func deferredCount(t testing.TB, s *Store) int {
	t.Helper()
	var n int
	if err := s.run(context.Background(), true, func(c *pgx.Conn) error {
		return c.QueryRow(context.Background(), `SELECT count(*) FROM deferred_deliveries`).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDeferredAcrossInstances runs two stores on one schema, as two
// processes: A publishes leased (deferred) deliveries; B's readers see
// them pending under A's lease (B materializes A's group); A's
// completion after that takes today's update and leaves the final row as
// it would have; a group A never completes (A died) is claimed by B once
// its lease has expired.
func TestDeferredAcrossInstances(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	a, b := open(t, url, schema), open(t, url, schema)
	f := newFixture(t, a, 2)
	ctx := t.Context()
	t0 := storetest.T0
	until := t0.Add(time.Minute)

	evs := leasedEvents(f, 2, "a", t0, until)
	if _, err := a.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if n := deferredCount(t, a); n != 1 {
		t.Fatalf("%d group records after a leased publish, want 1", n)
	}
	// B sees A's deliveries pending, leased to A.
	d0 := evs[0].Deliveries[0]
	d, _, err := b.GetDelivery(ctx, f.p.ID, d0.ID)
	if err != nil {
		t.Fatalf("B GetDelivery: %v", err)
	}
	if d.Status != core.DeliveryPending || d.LeaseOwner != "a" || !d.NextAttemptTime.Equal(until) {
		t.Errorf("B reads %s %q %v, want pending, leased to a until %v", d.Status, d.LeaseOwner, d.NextAttemptTime, until)
	}
	if n := deferredCount(t, a); n != 0 {
		t.Errorf("%d group records after B's read, want 0 (materialized)", n)
	}
	// A completes afterwards: the rows B wrote are updated as today.
	var cs []core.Completion
	for _, ne := range evs {
		for _, d := range ne.Deliveries {
			c := succeeded(core.Claimed{Delivery: d}, "a", t0.Add(time.Second))
			cs = append(cs, c)
		}
	}
	if err := a.CompleteDeliveries(ctx, cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		d, as, err := b.GetDelivery(ctx, f.p.ID, c.DeliveryID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != core.DeliverySucceeded || d.Attempts != 1 || d.LeaseOwner != "" || len(as) != 1 ||
			as[0].StatusCode != 200 {
			t.Errorf("%s after A's completion: %s, %d attempts, owner %q, attempts %+v", c.DeliveryID, d.Status,
				d.Attempts, d.LeaseOwner, as)
		}
	}

	// A publishes and dies: B claims the deliveries once the lease
	// expired, not before.
	evs = leasedEvents(f, 3, "a", t0, until)
	if _, err := a.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	next, ok, err := b.NextDueTime(ctx)
	if err != nil || !ok || !next.Equal(until) {
		t.Errorf("B NextDueTime = %v, %v, %v; want A's lease expiry %v", next, ok, err, until)
	}
	if depth, err := b.QueueDepth(ctx, t0); err != nil || depth != (core.QueueDepth{Due: 6}) {
		t.Errorf("B QueueDepth = %+v, %v; want 6 due (leased)", depth, err)
	}
	got, err := b.ClaimDeliveries(ctx, core.ClaimParams{Owner: "b", Now: until.Add(-time.Second), Limit: 100,
		Lease: time.Minute})
	if err != nil || len(got) != 0 {
		t.Errorf("B claimed %d (%v) before A's lease expired", len(got), err)
	}
	got, err = b.ClaimDeliveries(ctx, core.ClaimParams{Owner: "b", Now: until, Limit: 100, Lease: time.Minute})
	if err != nil || len(got) != 6 {
		t.Fatalf("B claimed %d (%v) at A's lease expiry, want 6", len(got), err)
	}
	if n := deferredCount(t, b); n != 0 {
		t.Errorf("%d group records left", n)
	}
}

// TestDeferredConcurrentMaterialize publishes deferred groups on A and
// completes them on A while B materializes every group over and over
// (its readers' barrier) and A's own barrier runs too: every delivery
// ends succeeded with its one attempt, whichever path its completion
// took, and nothing deadlocks (PostgreSQL would abort one transaction).
func TestDeferredConcurrentMaterialize(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	a := openWith(t, url, Options{Migrate: true, Schema: schema, MaxConns: 8})
	b := openWith(t, url, Options{Migrate: true, Schema: schema, MaxConns: 4})
	f := newFixture(t, a, 3)
	ctx := t.Context()

	const workers, rounds = 6, 15
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for _, s := range []*Store{b, b, a} {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: f.p.ID, Limit: 5}); err != nil {
					t.Errorf("ListDeliveries: %v", err)
					return
				}
			}
		})
	}
	var mu sync.Mutex
	var all []string
	var wg sync.WaitGroup
	for w := range workers {
		owner := fmt.Sprintf("a%d", w)
		wg.Go(func() {
			for range rounds {
				now := time.Now().UTC()
				evs := leasedEvents(f, 2, owner, now, now.Add(time.Minute))
				if _, err := a.PublishEvents(ctx, evs); err != nil {
					t.Errorf("PublishEvents: %v", err)
					return
				}
				// Completions in two batches, split across the groups.
				var cs []core.Completion
				for _, ne := range evs {
					for _, d := range ne.Deliveries {
						cs = append(cs, succeeded(core.Claimed{Delivery: d}, owner, time.Now().UTC()))
						mu.Lock()
						all = append(all, d.ID)
						mu.Unlock()
					}
				}
				for _, part := range [][]core.Completion{cs[:len(cs)/2], cs[len(cs)/2:]} {
					if err := a.CompleteDeliveries(ctx, part); err != nil {
						t.Errorf("CompleteDeliveries: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if t.Failed() {
		return
	}
	for _, id := range all {
		d, as, err := b.GetDelivery(ctx, f.p.ID, id)
		if err != nil {
			t.Fatalf("GetDelivery %s: %v", id, err)
		}
		if d.Status != core.DeliverySucceeded || d.Attempts != 1 || d.LeaseOwner != "" || len(as) != 1 {
			t.Errorf("%s: %s, %d attempts, owner %q, %d attempts listed", id, d.Status, d.Attempts, d.LeaseOwner, len(as))
		}
	}
	if n := deferredCount(t, a); n != 0 {
		t.Errorf("%d group records left", n)
	}
	a.deferred.mu.Lock()
	left := len(a.deferred.byID) + len(a.deferred.groups)
	a.deferred.mu.Unlock()
	if left != 0 {
		t.Errorf("%d deferred entries left in A's memory", left)
	}
}

// TestDeferredReopenConformance: storetest.RunDeferredReopen on one
// schema (a store closed and opened again is a process restarted).
func TestDeferredReopenConformance(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	storetest.RunDeferredReopen(t, func(t *testing.T) core.Store { return open(t, url, schema) })
}

// TestDeferredSharedConformance: storetest.RunDeferredShared with two
// stores on one schema.
func TestDeferredSharedConformance(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	storetest.RunDeferredShared(t, open(t, url, schema), open(t, url, schema))
}

// TestDeferredGroupsDeleted: a group whose rows its completions all
// committed is deleted by the next completion (or settleLoop's reap), not
// left for a reader to materialize.
func TestDeferredGroupsDeleted(t *testing.T) {
	// Not parallel: it turns settleLoop off for its store, which would
	// materialize the groups once a second old on a slow machine.
	url := pgtest.URL(t)
	settleLoopOff = true
	s := open(t, url, pgtest.Schema(t, url, "lh_test_"))
	settleLoopOff = false
	f := newFixture(t, s, 2)
	ctx := t.Context()
	t0 := storetest.T0
	complete := func(ne core.NewEvent) {
		t.Helper()
		var cs []core.Completion
		for _, d := range ne.Deliveries {
			cs = append(cs, succeeded(core.Claimed{Delivery: d}, "o", t0.Add(time.Second)))
		}
		if err := s.CompleteDeliveries(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	g1, g2 := leasedEvents(f, 1, "o", t0, t0.Add(time.Minute)), leasedEvents(f, 1, "o", t0, t0.Add(time.Minute))
	for _, g := range [][]core.NewEvent{g1, g2} {
		if _, err := s.PublishEvents(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	complete(g1[0])
	if n := deferredCount(t, s); n != 2 {
		t.Fatalf("%d group records after the first group's completion, want 2 (done, deleted with the next)", n)
	}
	complete(g2[0])
	if n := deferredCount(t, s); n != 1 {
		t.Errorf("%d group records after the second group's completion, want 1", n)
	}
	if err := s.reap(ctx); err != nil {
		t.Fatal(err)
	}
	if n := deferredCount(t, s); n != 0 {
		t.Errorf("%d group records after reap, want 0", n)
	}
}
