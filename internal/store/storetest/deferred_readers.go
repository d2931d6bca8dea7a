package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// leasedGroup is one PublishEvents call of the deferred readers' case: in
// a project of its own, two events (batch.succeeded at T0, batch.failed
// 10 ms later) each with a delivery to two webhooks, inserted leased by
// direct.
type leasedGroup struct {
	p      core.Project
	w1, w2 *core.Webhook
	evs    []core.NewEvent
	ds     []core.Delivery // newest first, as ListDeliveries lists them
	until  time.Time
}

func (b *bundle) leasedGroup(until time.Time) *leasedGroup {
	b.t.Helper()
	g := &leasedGroup{p: b.project(), until: until}
	g.w1, g.w2 = b.webhook(g.p.ID), b.webhook(g.p.ID)
	g.evs = []core.NewEvent{
		leasedEvent(g.p.ID, core.EventBatchSucceeded, T0, until, g.w1, g.w2),
		leasedEvent(g.p.ID, core.EventBatchFailed, T0.Add(10*time.Millisecond), until, g.w1, g.w2),
	}
	b.publish(g.evs...)
	for _, ne := range g.evs {
		g.ds = append(g.ds, ne.Deliveries...)
	}
	slices.SortFunc(g.ds, func(x, y core.Delivery) int { return -cmpString(x.ID, y.ID) })
	return g
}

func cmpString(x, y string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// ids returns the ids of g's deliveries selected by keep (nil: all).
func (g *leasedGroup) ids(keep func(core.Delivery) bool) []string {
	var out []string
	for _, d := range g.ds {
		if keep == nil || keep(d) {
			out = append(out, d.ID)
		}
	}
	return out
}

func (g *leasedGroup) hook(w *core.Webhook) func(core.Delivery) bool {
	return func(d core.Delivery) bool { return d.WebhookID == w.ID }
}

// get reads a delivery of g.
func (b *bundle) get(g *leasedGroup, id string) (*core.Delivery, []core.Attempt) {
	b.t.Helper()
	d, as, err := b.s.GetDelivery(b.ctx, g.p.ID, id)
	if err != nil {
		b.t.Fatalf("GetDelivery(%s): %v", id, err)
	}
	return d, as
}

// wantHeld checks that every delivery of g named is pending, leased by
// direct until g.until, with no attempt: as published.
func (b *bundle) wantHeld(what string, g *leasedGroup, ids ...string) {
	b.t.Helper()
	for _, d := range g.ds {
		if !slices.Contains(ids, d.ID) {
			continue
		}
		got, as := b.get(g, d.ID)
		if len(as) != 0 {
			b.t.Errorf("%s: %s has %d attempts, want none", what, d.ID, len(as))
		}
		wantEqual(b.t, what+": "+d.ID, *got, d)
	}
}

// completeAll completes g's deliveries named with a success by direct at
// at, and checks that each succeeded with one attempt.
func (b *bundle) completeAll(what string, g *leasedGroup, at time.Time, ids ...string) {
	b.t.Helper()
	var cs []core.Completion
	for _, id := range ids {
		d := core.Delivery{ID: id, ProjectID: g.p.ID}
		for _, x := range g.ds {
			if x.ID == id {
				d = x
			}
		}
		cs = append(cs, succeeded(asClaimed(d), direct, at))
	}
	b.complete(cs...)
	for _, id := range ids {
		if d, as := b.get(g, id); d.Status != core.DeliverySucceeded || d.Attempts != 1 || len(as) != 1 {
			b.t.Errorf("%s: the lease holder's completion of %s: %s, %d attempts, %d listed; want succeeded, 1, 1",
				what, id, d.Status, d.Attempts, len(as))
		}
	}
}

// claimIDs claims for owner at now with a lease of a minute and returns
// the ids claimed, checking none twice.
func (b *bundle) claimIDs(owner string, now time.Time) []string {
	b.t.Helper()
	var out []string
	for _, c := range b.claim(owner, now, 1000) {
		if slices.Contains(out, c.ID) {
			b.t.Errorf("claim by %s at %v: %s twice", owner, now, c.ID)
		}
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

// testDeferredReaders publishes a leased group before each reader and
// writer of deliveries and calls it first (testLeasedReaders calls them
// one after the other on the same deliveries: only its first read comes
// straight after a publish): each sees the deliveries pending with their
// lease owner and expiry, as published, and a change leaves them as it
// does today.
func testDeferredReaders(t *testing.T, b *bundle) {
	now := T0.Add(10 * time.Second) // before every lease expiry
	until := T0.Add(time.Minute)

	// NextDueTime: the earliest lease expiry, the group's.
	if _, ok, err := b.s.NextDueTime(b.ctx); err != nil || ok {
		t.Fatalf("NextDueTime on an empty store: %v, %v", ok, err)
	}
	first := b.leasedGroup(T0.Add(30 * time.Second))
	if next, ok, err := b.s.NextDueTime(b.ctx); err != nil || !ok || !next.Equal(first.until) {
		t.Errorf("NextDueTime = %v, %v, %v; want the lease expiry %v", next, ok, err, first.until)
	}

	// QueueDepth: leased counts as due.
	before, err := b.s.QueueDepth(b.ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	b.leasedGroup(until)
	if depth, err := b.s.QueueDepth(b.ctx, now); err != nil || depth != (core.QueueDepth{Due: before.Due + 4, Scheduled: before.Scheduled}) {
		t.Errorf("QueueDepth = %+v, %v; want %+v and 4 due", depth, err, before)
	}
	if depth, err := b.s.QueueDepth(b.ctx, T0); err != nil || depth != (core.QueueDepth{Due: before.Due + 4, Scheduled: before.Scheduled}) {
		t.Errorf("QueueDepth at T0 = %+v, %v; want %+v and 4 due", depth, err, before)
	}

	// DeleteExpired keeps pending deliveries and their events.
	g := b.leasedGroup(until)
	if n, err := b.s.DeleteExpired(b.ctx, T0.Add(time.Hour), 1000); err != nil || n != 0 {
		t.Errorf("DeleteExpired = %d, %v; want nothing deleted (every delivery is pending)", n, err)
	}
	b.wantHeld("after DeleteExpired", g, g.ids(nil)...)
	for _, ne := range g.evs {
		if _, err := b.s.GetEvent(b.ctx, g.p.ID, ne.Event.ID); err != nil {
			t.Errorf("event with pending deliveries after DeleteExpired: %v", err)
		}
	}

	// GetDelivery: as published.
	g = b.leasedGroup(until)
	b.wantHeld("GetDelivery", g, g.ds[len(g.ds)-1].ID)
	b.wantHeld("GetDelivery", g, g.ids(nil)...)
	_, _, err = b.s.GetDelivery(b.ctx, b.p.ID, g.ds[0].ID)
	wantNotFound(t, "GetDelivery(another project's)", err)

	// ListDeliveries, by every filter, each first after its publish.
	list := func(what string, g *leasedGroup, p core.ListDeliveriesParams, want []string) {
		t.Helper()
		p.ProjectID = g.p.ID
		if p.Limit == 0 {
			p.Limit = 100
		}
		ds, err := b.s.ListDeliveries(b.ctx, p)
		if err != nil {
			t.Fatalf("ListDeliveries(%s): %v", what, err)
		}
		got := []string{}
		for _, d := range ds {
			got = append(got, d.ID)
			for _, x := range g.ds {
				if x.ID == d.ID {
					wantEqual(t, "ListDeliveries("+what+"): "+d.ID, *d, x)
				}
			}
		}
		if want == nil {
			want = []string{}
		}
		wantEqual(t, "ListDeliveries("+what+")", got, want)
	}
	g = b.leasedGroup(until)
	list("project", g, core.ListDeliveriesParams{}, g.ids(nil))
	g = b.leasedGroup(until)
	list("webhook", g, core.ListDeliveriesParams{WebhookID: g.w1.ID}, g.ids(g.hook(g.w1)))
	g = b.leasedGroup(until)
	list("pending", g, core.ListDeliveriesParams{Status: core.DeliveryPending}, g.ids(nil))
	g = b.leasedGroup(until)
	list("succeeded", g, core.ListDeliveriesParams{Status: core.DeliverySucceeded}, nil)
	list("pending, after a read", g, core.ListDeliveriesParams{WebhookID: g.w2.ID, Status: core.DeliveryPending},
		g.ids(g.hook(g.w2)))
	failedType := func(d core.Delivery) bool { return d.EventType == core.EventBatchFailed }
	g = b.leasedGroup(until)
	list("event type", g, core.ListDeliveriesParams{EventType: core.EventBatchFailed}, g.ids(failedType))
	g = b.leasedGroup(until)
	list("time range", g, core.ListDeliveriesParams{Since: T0.Add(5 * time.Millisecond), Until: T0.Add(20 * time.Millisecond)},
		g.ids(failedType))
	g = b.leasedGroup(until)
	list("before the event", g, core.ListDeliveriesParams{Until: T0.Add(5 * time.Millisecond)},
		g.ids(func(d core.Delivery) bool { return d.EventType == core.EventBatchSucceeded }))
	g = b.leasedGroup(until)
	list("paged", g, core.ListDeliveriesParams{BeforeID: g.ds[0].ID, Limit: 2}, g.ids(nil)[1:3])
	g = b.leasedGroup(until)
	list("between ids", g, core.ListDeliveriesParams{AfterID: g.ds[3].ID, BeforeID: g.ds[0].ID}, g.ids(nil)[1:3])

	// Redeliver: the redelivered one is due now, on its automatic
	// schedule, without a lease; the others keep theirs.
	g = b.leasedGroup(until)
	r, err := b.s.Redeliver(b.ctx, g.p.ID, g.ds[1].ID, now)
	if err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	if r.Status != core.DeliveryPending || r.Manual || r.LeaseOwner != "" || !r.NextAttemptTime.Equal(now) {
		t.Errorf("Redeliver: %+v; want pending, automatic, no lease, due %v", *r, now)
	}
	if got, _ := b.get(g, g.ds[1].ID); got.LeaseOwner != "" || !got.NextAttemptTime.Equal(now) || got.Status != core.DeliveryPending {
		t.Errorf("after Redeliver: %+v", *got)
	}
	b.wantHeld("after another's Redeliver", g, g.ds[0].ID, g.ds[2].ID, g.ds[3].ID)
	// The first holder's completion comes after the Redeliver took its
	// lease: recorded and counted, not applied.
	b.complete(succeeded(asClaimed(g.ds[1]), direct, now))
	if got, as := b.get(g, g.ds[1].ID); got.Status != core.DeliveryPending || got.Attempts != 1 || len(as) != 1 {
		t.Errorf("the first holder's completion after Redeliver: %s, %d attempts, %d listed; want pending, 1, 1",
			got.Status, got.Attempts, len(as))
	}
	if got := b.claimIDs("other", now); !slices.Equal(got, []string{g.ds[1].ID}) {
		t.Errorf("after Redeliver: claimed %v, want the redelivered one", got)
	}
	b.complete(succeeded(asClaimed(g.ds[1]), "other", now))
	if got, as := b.get(g, g.ds[1].ID); got.Status != core.DeliverySucceeded || got.Attempts != 2 || len(as) != 2 {
		t.Errorf("the new holder's completion after Redeliver: %s, %d attempts, %d listed; want succeeded, 2, 2",
			got.Status, got.Attempts, len(as))
	}
	b.completeAll("after Redeliver", g, now, g.ds[0].ID, g.ds[2].ID, g.ds[3].ID)

	// RecoverDeliveries re-queues finished deliveries only: none here.
	g = b.leasedGroup(until)
	for _, p := range []core.RecoverParams{
		{ProjectID: g.p.ID, WebhookID: g.w1.ID, Since: T0.Add(-time.Hour), OnlyFailed: true, DryRun: true, Limit: 100, Now: now},
		{ProjectID: g.p.ID, WebhookID: g.w1.ID, Since: T0.Add(-time.Hour), Limit: 100, Now: now},
	} {
		if n, next, err := b.s.RecoverDeliveries(b.ctx, p); err != nil || n != 0 || next != "" {
			t.Errorf("RecoverDeliveries(%+v) = %d, %q, %v; want none", p, n, next, err)
		}
	}
	b.wantHeld("after RecoverDeliveries", g, g.ids(nil)...)
	b.completeAll("after RecoverDeliveries", g, now, g.ids(nil)...)

	// DeleteWebhook leaves a leased delivery to its lease holder, whose
	// completion lands (testDeleteWebhookMidAttempt).
	g = b.leasedGroup(until)
	if err := b.s.DeleteWebhook(b.ctx, g.p.ID, g.w1.ID, now); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	b.wantHeld("after DeleteWebhook", g, g.ids(nil)...)
	b.completeAll("after DeleteWebhook", g, now.Add(time.Second), g.ids(nil)...)

	// ReleaseDeliveries: by another owner, nothing; by the owner, due
	// at once.
	g = b.leasedGroup(until)
	if err := b.s.ReleaseDeliveries(b.ctx, "other", g.ids(nil)); err != nil {
		t.Fatalf("ReleaseDeliveries: %v", err)
	}
	b.wantHeld("after another owner's release", g, g.ids(nil)...)
	if got := b.claimIDs("other", now); len(got) != 0 {
		t.Errorf("after another owner's release: claimed %v", got)
	}
	if err := b.s.ReleaseDeliveries(b.ctx, direct, g.ids(nil)); err != nil {
		t.Fatalf("ReleaseDeliveries: %v", err)
	}
	b.claimReleased("after the owner's release, after a read", g, now)

	g = b.leasedGroup(until)
	if err := b.s.ReleaseDeliveries(b.ctx, direct, g.ids(g.hook(g.w1))); err != nil {
		t.Fatalf("ReleaseDeliveries: %v", err)
	}
	for _, id := range g.ids(g.hook(g.w1)) {
		if got, _ := b.get(g, id); got.LeaseOwner != "" || got.NextAttemptTime.After(now) {
			t.Errorf("after the owner's release: owner %q, due %v; want none, due by %v", got.LeaseOwner, got.NextAttemptTime, now)
		}
	}
	b.wantHeld("beside released ones", g, g.ids(g.hook(g.w2))...)
	if got := b.claimIDs("other", now); !slices.Equal(got, sorted(g.ids(g.hook(g.w1)))) {
		t.Errorf("after the owner's release: claimed %v, want %v", got, sorted(g.ids(g.hook(g.w1))))
	}
	b.completeAll("the rest after a release", g, now, g.ids(g.hook(g.w2))...)

	// ClaimDeliveries: nothing before the lease expires, every delivery
	// once after.
	g = b.leasedGroup(T0.Add(20 * time.Second)) // before first's
	if got := b.claimIDs("other", now); len(got) != 0 {
		t.Errorf("claimed %v before the lease expired", got)
	}
	if got := b.claimIDs("other", g.until); !slices.Equal(got, sorted(g.ids(nil))) {
		t.Errorf("claimed %v when the lease expired, want %v", got, sorted(g.ids(nil)))
	}
}

// claimReleased claims g's released deliveries for another owner at now
// and checks that they come whole (payload, no attempt) and once.
func (b *bundle) claimReleased(what string, g *leasedGroup, now time.Time) {
	b.t.Helper()
	got := b.claim("other", now, 1000)
	if !slices.Equal(sorted(mapIDs(got)), sorted(g.ids(nil))) {
		b.t.Errorf("%s: claimed %v, want %v", what, sorted(mapIDs(got)), sorted(g.ids(nil)))
	}
	for _, c := range got {
		ne := g.evs[0]
		if c.EventID == g.evs[1].Event.ID {
			ne = g.evs[1]
		}
		if c.Attempts != 0 || !bytes.Equal(c.Payload, ne.Event.Payload) || c.LeaseOwner != "other" {
			b.t.Errorf("%s: claimed %+v", what, c.Delivery)
		}
	}
}

func mapIDs(cs []core.Claimed) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}
