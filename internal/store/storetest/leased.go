package storetest

import (
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// testLeasedReaders publishes deliveries already leased (the engine's
// direct path) and reads and changes them through every method that
// looks at a delivery's status: each must see a pending delivery (SQLite
// stores them with a status of their own until their lease span is swept,
// migration 0012), and the lease must still expire for a claim with any
// lease.
func testLeasedReaders(t *testing.T, b *bundle) {
	w1, w2, w3 := b.webhook(""), b.webhook(""), b.webhook("")
	until := T0.Add(time.Minute)
	leased := func(at, until time.Time, hooks ...*core.Webhook) core.NewEvent {
		ne := NewEvent(b.p.ID, core.EventBatchSucceeded, at, hooks...)
		for i := range ne.Deliveries {
			ne.Deliveries[i].LeaseOwner = "direct"
			ne.Deliveries[i].NextAttemptTime = until
		}
		b.publish(ne)
		return ne
	}
	e1 := leased(T0, until, w1, w2)
	e2 := leased(T0, until, w3)

	d, _ := b.delivery(e1.Deliveries[0].ID)
	if d.Status != core.DeliveryPending || d.LeaseOwner != "direct" || !d.NextAttemptTime.Equal(until) {
		t.Errorf("GetDelivery: status %s owner %q next %v, want pending, direct, %v", d.Status, d.LeaseOwner,
			d.NextAttemptTime, until)
	}
	list := func(status core.DeliveryStatus) int {
		t.Helper()
		ds, err := b.s.ListDeliveries(b.ctx, core.ListDeliveriesParams{ProjectID: b.p.ID, Status: status})
		if err != nil {
			t.Fatalf("ListDeliveries(%s): %v", status, err)
		}
		for _, d := range ds {
			if d.Status != status && status != "" {
				t.Errorf("ListDeliveries(%s) listed a delivery %s", status, d.Status)
			}
			if !d.Status.Valid() {
				t.Errorf("ListDeliveries(%s): status %q", status, d.Status)
			}
		}
		return len(ds)
	}
	if n := list(core.DeliveryPending); n != 3 {
		t.Errorf("ListDeliveries(pending) = %d, want 3", n)
	}
	if n := list(""); n != 3 {
		t.Errorf("ListDeliveries() = %d, want 3", n)
	}
	if next, ok, err := b.s.NextDueTime(b.ctx); err != nil || !ok || !next.Equal(until) {
		t.Errorf("NextDueTime = %v, %v, %v; want the lease expiry %v", next, ok, err, until)
	}
	if depth, err := b.s.QueueDepth(b.ctx, T0.Add(time.Second)); err != nil || depth != (core.QueueDepth{Due: 3}) {
		t.Errorf("QueueDepth = %+v, %v; want 3 due (leased)", depth, err)
	}
	// The retention sweep keeps pending deliveries and their events.
	if n, err := b.s.DeleteExpired(b.ctx, T0.Add(time.Hour), 100); err != nil || n != 0 {
		t.Errorf("DeleteExpired = %d, %v; want nothing deleted", n, err)
	}
	if _, err := b.s.GetEvent(b.ctx, b.p.ID, e1.Event.ID); err != nil {
		t.Errorf("event with pending deliveries: %v", err)
	}

	// Redeliver keeps a pending delivery on its automatic schedule.
	r, err := b.s.Redeliver(b.ctx, b.p.ID, e1.Deliveries[1].ID, T0.Add(time.Second))
	if err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	if r.Status != core.DeliveryPending || r.Manual || r.LeaseOwner != "" {
		t.Errorf("Redeliver: status %s manual %v owner %q, want pending, automatic, no lease", r.Status, r.Manual, r.LeaseOwner)
	}
	got := b.claim("other", T0.Add(time.Second), 10)
	if len(got) != 1 || got[0].ID != e1.Deliveries[1].ID {
		t.Fatalf("after Redeliver: claimed %d, want the redelivered one", len(got))
	}
	b.complete(succeeded(got[0], "other", T0.Add(time.Second)))
	// A release by the lease holder makes it due at once.
	if err := b.s.ReleaseDeliveries(b.ctx, "direct", []string{e1.Deliveries[0].ID}); err != nil {
		t.Fatal(err)
	}
	got = b.claim("other", T0.Add(2*time.Second), 10)
	if len(got) != 1 || got[0].ID != e1.Deliveries[0].ID {
		t.Fatalf("after ReleaseDeliveries: claimed %d, want the released one", len(got))
	}
	b.complete(succeeded(got[0], "other", T0.Add(2*time.Second)))
	// Deleting the webhook leaves a leased delivery to its lease holder,
	// whose completion records and counts the attempt (testDeleteWebhookMidAttempt):
	// it is still pending, not cancelled with attempt_count 0.
	if err := b.s.DeleteWebhook(b.ctx, b.p.ID, w3.ID, T0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d, _ := b.delivery(e2.Deliveries[0].ID); d.Status != core.DeliveryPending || d.LeaseOwner != "direct" {
		t.Errorf("after DeleteWebhook: status %s owner %q, want pending, direct", d.Status, d.LeaseOwner)
	}
	b.complete(succeeded(core.Claimed{Delivery: e2.Deliveries[0]}, "direct", T0.Add(3*time.Second)))
	if d, _ := b.delivery(e2.Deliveries[0].ID); d.Status != core.DeliverySucceeded || d.Attempts != 1 {
		t.Errorf("the lease holder's completion after DeleteWebhook: status %s, %d attempts; want succeeded, 1",
			d.Status, d.Attempts)
	}

	// A lease expires for a claim whose own lease is short, and not
	// before.
	until3 := T0.Add(2 * time.Minute)
	e3 := leased(T0.Add(4*time.Second), until3, w1)
	claim := func(now time.Time) []core.Claimed {
		t.Helper()
		cs, err := b.s.ClaimDeliveries(b.ctx, core.ClaimParams{Owner: "late", Now: now, Limit: 10, Lease: time.Second})
		if err != nil {
			t.Fatalf("ClaimDeliveries: %v", err)
		}
		return cs
	}
	if got := claim(until3.Add(-time.Millisecond)); len(got) != 0 {
		t.Fatalf("claimed %d before the lease expired", len(got))
	}
	if next, ok, err := b.s.NextDueTime(b.ctx); err != nil || !ok || !next.Equal(until3) {
		t.Errorf("NextDueTime = %v, %v, %v; want the lease expiry %v", next, ok, err, until3)
	}
	got = claim(until3)
	if len(got) != 1 || got[0].ID != e3.Deliveries[0].ID || got[0].Attempts != 0 {
		t.Fatalf("after the lease expired: claimed %+v, want the delivery", got)
	}
	// The first holder's late completion records its attempt only.
	b.complete(succeeded(core.Claimed{Delivery: e3.Deliveries[0]}, "direct", until3.Add(time.Second)))
	if d, _ := b.delivery(e3.Deliveries[0].ID); d.Status != core.DeliveryPending || d.LeaseOwner != "late" {
		t.Errorf("stale completion: status %s owner %q, want pending, late", d.Status, d.LeaseOwner)
	}
	if next, ok, err := b.s.NextDueTime(b.ctx); err != nil || !ok || !next.Equal(until3.Add(time.Second)) {
		t.Errorf("NextDueTime = %v, %v, %v; want the new lease's expiry", next, ok, err)
	}
}
