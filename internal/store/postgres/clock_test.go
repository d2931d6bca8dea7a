package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestLeasesFollowDatabaseClock: two instances share a database, one's
// clock an hour behind and the other's ten minutes ahead. Delivery
// claims, job claims and named leases hold for their duration on the
// database's clock: the fast instance takes nothing leased, the slow one
// still sees due work as due.
func TestLeasesFollowDatabaseClock(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	slow, fast := openDBClock(t, url, schema), openDBClock(t, url, schema)
	behind, ahead := -time.Hour, 10*time.Minute
	f := newFixture(t, slow, 1)
	ctx := f.ctx
	clock := func(skew time.Duration) time.Time { return time.Now().UTC().Add(skew) }

	// The database's clock, read on a connection of the test's own.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	dbNow := func() time.Time {
		t.Helper()
		var now time.Time
		if err := conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		return now
	}

	// Deliveries: due now on the database's clock.
	f.publish(2, time.Now().UTC().Add(-time.Second))
	before := dbNow()
	got, err := slow.ClaimDeliveries(ctx, core.ClaimParams{Owner: "slow", Now: clock(behind), Limit: 1, Lease: time.Minute})
	if err != nil || len(got) != 1 {
		t.Fatalf("the slow clock's claim of due work: %d, %v; want 1", len(got), err)
	}
	after := dbNow()
	// The lease runs a minute from the claim's now() on the database,
	// which lies between the two readings around the claim.
	if exp := got[0].NextAttemptTime; exp.Before(before.Add(time.Minute)) || exp.After(after.Add(time.Minute)) {
		t.Errorf("lease expiry %v, want a minute after the claim on the database's clock: within [%v, %v]", exp, before.Add(time.Minute), after.Add(time.Minute))
	}
	got2, err := fast.ClaimDeliveries(ctx, core.ClaimParams{Owner: "fast", Now: clock(ahead), Limit: 10, Lease: time.Minute})
	if err != nil || len(got2) != 1 || got2[0].ID == got[0].ID {
		t.Fatalf("the fast clock's claim: %v, %v; want only the unleased delivery", claimedIDs(got2), err)
	}

	// A delivery the slow instance inserts already leased (the direct
	// hand-off) keeps its lease for its length on the database's clock.
	at := clock(behind)
	ne := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, at, f.hooks...)
	ne.Deliveries[0].LeaseOwner, ne.Deliveries[0].NextAttemptTime = "slow", at.Add(time.Minute)
	if _, err := slow.PublishEvents(ctx, []core.NewEvent{ne}); err != nil {
		t.Fatal(err)
	}
	if got, err := fast.ClaimDeliveries(ctx, core.ClaimParams{Owner: "fast", Now: clock(ahead), Limit: 10, Lease: time.Minute}); err != nil || len(got) != 0 {
		t.Fatalf("the fast clock took a delivery inserted leased: %v, %v", claimedIDs(got), err)
	}

	// Jobs.
	j := storetest.NewJob(f.p.ID, core.JobBatch, time.Now().UTC().Add(-time.Second))
	if err := slow.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	now := clock(behind)
	js, err := slow.ClaimJobs(ctx, core.ClaimJobsParams{Owner: "slow", Now: now, Limit: 1, LeaseUntil: now.Add(30 * time.Second)})
	if err != nil || len(js) != 1 {
		t.Fatalf("the slow clock's job claim: %d, %v; want 1", len(js), err)
	}
	now = clock(ahead)
	if js, err := fast.ClaimJobs(ctx, core.ClaimJobsParams{Owner: "fast", Now: now, Limit: 1, LeaseUntil: now.Add(30 * time.Second)}); err != nil || len(js) != 0 {
		t.Fatalf("the fast clock took a leased job: %d, %v", len(js), err)
	}
	// ExtendJobLeases takes the time left on the process's own clock
	// (time.Now here, whatever its skew).
	if lost, err := slow.ExtendJobLeases(ctx, "slow", []string{j.ID}, time.Now().Add(time.Minute)); err != nil || len(lost) != 0 {
		t.Fatalf("extend: %v, %v", lost, err)
	}
	now = clock(ahead)
	if js, err := fast.ClaimJobs(ctx, core.ClaimJobsParams{Owner: "fast", Now: now, Limit: 1, LeaseUntil: now.Add(30 * time.Second)}); err != nil || len(js) != 0 {
		t.Fatalf("the fast clock took a renewed job lease: %d, %v", len(js), err)
	}

	// Named leases (the leader's).
	if ok, err := slow.AcquireLease(ctx, "leader", "slow", clock(behind), 30*time.Second); err != nil || !ok {
		t.Fatalf("the slow clock's lease: %v, %v", ok, err)
	}
	if ok, err := fast.AcquireLease(ctx, "leader", "fast", clock(ahead), 30*time.Second); err != nil || ok {
		t.Fatalf("the fast clock took a held lease: %v, %v", ok, err)
	}
}

func claimedIDs(cs []core.Claimed) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}
