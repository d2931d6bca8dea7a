package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// testDeferredPublishMixed: one PublishEvents call holding leased
// deliveries beside unleased and skipped ones, dynamic ones, and an event
// repeated by its idempotency key (within the call and in a later call):
// only what was written exists — a claim right after the publish gets the
// unleased one, the duplicates' deliveries are nowhere, and the leased
// ones are claimed at their expiry, once.
func testDeferredPublishMixed(t *testing.T, b *bundle) {
	w1, w2, w3 := b.webhook(""), b.webhook(""), b.webhook("")
	until := T0.Add(time.Minute)
	ev1 := leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, w1, w2)
	ev1.Deliveries[1].LeaseOwner, ev1.Deliveries[1].NextAttemptTime = "", T0 // unleased
	ev2 := leasedEvent(b.p.ID, core.EventBatchFailed, T0, until, w3, w1)
	ev2.Deliveries[0].Status, ev2.Deliveries[0].LeaseOwner, ev2.Deliveries[0].NextAttemptTime = core.DeliverySkipped, "", time.Time{}
	dyn := NewDynamicEvent(b.p.ID, T0, "https://a.example/h", "https://b.example/h")
	lease(&dyn, until)
	keyed := leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, w1, w2)
	keyed.Event.IdempotencyKey = "k"
	again := leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, w1, w2) // a repeat within the call
	again.Event.IdempotencyKey = "k"
	res := b.publish(ev1, ev2, dyn, keyed, again)
	if res[3].Duplicate || !res[4].Duplicate {
		t.Fatalf("Duplicate: %v, %v; want the repeat only", res[3].Duplicate, res[4].Duplicate)
	}
	later := leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, w1, w2) // a repeat in another call
	later.Event.IdempotencyKey = "k"
	if res := b.publish(later); !res[0].Duplicate {
		t.Fatalf("a repeat in a later call: Duplicate = false")
	}

	// A claim first: the unleased delivery only.
	got := b.claim("other", T0.Add(time.Second), 100)
	wantEqual(t, "claimed straight after the publish", claimedIDs(got), map[string]bool{ev1.Deliveries[1].ID: true})

	// The lease holder completes some straight away.
	b.complete(succeeded(asClaimed(ev1.Deliveries[0]), direct, kindAt), succeeded(asClaimed(dyn.Deliveries[0]), direct, kindAt))

	for _, ne := range []core.NewEvent{again, later} {
		for _, d := range ne.Deliveries {
			_, _, err := b.s.GetDelivery(b.ctx, b.p.ID, d.ID)
			wantNotFound(t, "GetDelivery(a duplicate's delivery)", err)
		}
	}
	ds, err := b.s.ListDeliveries(b.ctx, core.ListDeliveriesParams{ProjectID: b.p.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := deliveryIDs(append(append(append(append([]core.Delivery{}, ev1.Deliveries...), ev2.Deliveries...),
		dyn.Deliveries...), keyed.Deliveries...))
	listed := map[string]bool{}
	for _, d := range ds {
		listed[d.ID] = true
	}
	wantEqual(t, "listed", listed, want)
	for id, status := range map[string]core.DeliveryStatus{
		ev1.Deliveries[0].ID: core.DeliverySucceeded, ev1.Deliveries[1].ID: core.DeliveryPending,
		ev2.Deliveries[0].ID: core.DeliverySkipped, ev2.Deliveries[1].ID: core.DeliveryPending,
		dyn.Deliveries[0].ID: core.DeliverySucceeded, dyn.Deliveries[1].ID: core.DeliveryPending,
	} {
		if d, _ := b.delivery(id); d.Status != status {
			t.Errorf("%s: %s, want %s", id, d.Status, status)
		}
	}
	if d, _ := b.delivery(ev1.Deliveries[1].ID); d.LeaseOwner != "other" {
		t.Errorf("the unleased delivery claimed: owner %q", d.LeaseOwner)
	}

	// At the expiry: every leased one not completed, once.
	wantIDs := deliveryIDs([]core.Delivery{ev2.Deliveries[1], dyn.Deliveries[1], keyed.Deliveries[0], keyed.Deliveries[1]})
	wantEqual(t, "claimed at the lease expiry", claimedIDs(b.claim("late", until, 100)), wantIDs)
	if got := b.claim("late", until, 100); len(got) != 0 {
		t.Errorf("claimed %d again", len(got))
	}
	for _, ne := range []core.NewEvent{ev1, ev2, dyn, keyed} {
		if _, err := b.s.GetEvent(b.ctx, b.p.ID, ne.Event.ID); err != nil {
			t.Errorf("GetEvent: %v", err)
		}
	}
}

// testDeferredExpire: deliveries completed straight after their leased
// publish expire with their events as any finished delivery does; a
// pending one keeps its event.
func testDeferredExpire(t *testing.T, b *bundle) {
	w1, w2 := b.webhook(""), b.webhook("")
	until := T0.Add(time.Minute)
	var evs []core.NewEvent
	for range 3 {
		evs = append(evs, leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, w1, w2))
	}
	kept := leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, w1, w2)
	b.publish(append(evs, kept)...)
	var cs []core.Completion
	for i, ne := range evs {
		for _, d := range ne.Deliveries {
			if i == 1 {
				cs = append(cs, failed(asClaimed(d), direct, kindAt, core.DeliveryFailed, time.Time{}))
			} else {
				cs = append(cs, succeeded(asClaimed(d), direct, kindAt))
			}
		}
	}
	cs = append(cs, succeeded(asClaimed(kept.Deliveries[0]), direct, kindAt),
		failed(asClaimed(kept.Deliveries[1]), direct, kindAt, core.DeliveryPending, T0.Add(2*time.Hour)))
	b.complete(cs...)

	total := 0
	for range 10 {
		n, err := b.s.DeleteExpired(b.ctx, T0.Add(time.Hour), 100)
		if err != nil {
			t.Fatalf("DeleteExpired: %v", err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 10 { // 6 + 1 deliveries, 3 events
		t.Errorf("DeleteExpired removed %d, want 7 deliveries and 3 events", total)
	}
	for _, ne := range evs {
		_, err := b.s.GetEvent(b.ctx, b.p.ID, ne.Event.ID)
		wantNotFound(t, "GetEvent(expired)", err)
		for _, d := range ne.Deliveries {
			_, _, err := b.s.GetDelivery(b.ctx, b.p.ID, d.ID)
			wantNotFound(t, "GetDelivery(expired)", err)
		}
	}
	if _, err := b.s.GetEvent(b.ctx, b.p.ID, kept.Event.ID); err != nil {
		t.Errorf("event with a pending delivery: %v", err)
	}
	_, _, err := b.s.GetDelivery(b.ctx, b.p.ID, kept.Deliveries[0].ID)
	wantNotFound(t, "GetDelivery(expired, beside a pending one)", err)
	if d, _ := b.delivery(kept.Deliveries[1].ID); d.Status != core.DeliveryPending || d.Attempts != 1 {
		t.Errorf("pending delivery: %s, %d attempts", d.Status, d.Attempts)
	}
}

// testDeferredOwners: one PublishEvents call whose leased deliveries have
// two owners and two lease expiries. Each owner's completions land on its
// own deliveries only; a completion that failed (its context cancelled)
// changes nothing; each lease expires at its own time, whatever the
// earliest of the call.
func testDeferredOwners(t *testing.T, b *bundle) {
	w1, w2 := b.webhook(""), b.webhook("")
	short, long := T0.Add(time.Second), T0.Add(time.Minute)
	var evs []core.NewEvent
	for range 4 {
		ne := NewEvent(b.p.ID, core.EventBatchSucceeded, T0, w1, w2)
		ne.Deliveries[0].LeaseOwner, ne.Deliveries[0].NextAttemptTime = "a", long
		ne.Deliveries[1].LeaseOwner, ne.Deliveries[1].NextAttemptTime = "b", short
		evs = append(evs, ne)
	}
	b.publish(evs...)
	a0, b0 := evs[0].Deliveries[0], evs[0].Deliveries[1]

	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	if err := b.s.CompleteDeliveries(ctx, []core.Completion{succeeded(asClaimed(a0), "a", kindAt)}); err == nil {
		t.Fatalf("CompleteDeliveries with a cancelled context: no error")
	}
	if d, as := b.delivery(a0.ID); d.Status != core.DeliveryPending || d.LeaseOwner != "a" || len(as) != 0 {
		t.Errorf("after a failed completion: %s, owner %q, %d attempts; want pending, a, none", d.Status, d.LeaseOwner, len(as))
	}

	b.complete(succeeded(asClaimed(a0), "a", kindAt), succeeded(asClaimed(evs[1].Deliveries[0]), "a", kindAt),
		succeeded(asClaimed(b0), "a", kindAt), // not a's
		succeeded(asClaimed(evs[1].Deliveries[1]), "b", kindAt))
	for _, c := range []struct {
		d        core.Delivery
		status   core.DeliveryStatus
		owner    string
		attempts int
		rows     int
	}{
		{a0, core.DeliverySucceeded, "", 1, 1},
		{evs[1].Deliveries[0], core.DeliverySucceeded, "", 1, 1},
		{b0, core.DeliveryPending, "b", 1, 1},
		{evs[1].Deliveries[1], core.DeliverySucceeded, "", 1, 1},
		{evs[2].Deliveries[0], core.DeliveryPending, "a", 0, 0},
	} {
		d, as := b.delivery(c.d.ID)
		if d.Status != c.status || d.LeaseOwner != c.owner || d.Attempts != c.attempts || len(as) != c.rows {
			t.Errorf("%s: %s, owner %q, %d attempts, %d listed; want %s, %q, %d, %d", c.d.ID, d.Status, d.LeaseOwner,
				d.Attempts, len(as), c.status, c.owner, c.attempts, c.rows)
		}
	}

	if got := b.claim("late", short.Add(-time.Microsecond), 100); len(got) != 0 {
		t.Errorf("claimed %d before the short lease expired", len(got))
	}
	wantEqual(t, "claimed at the short lease's expiry", claimedIDs(b.claim("late", short, 100)),
		deliveryIDs([]core.Delivery{b0, evs[2].Deliveries[1], evs[3].Deliveries[1]}))
	wantEqual(t, "claimed at the long lease's expiry", claimedIDs(b.claim("late", long, 100)),
		deliveryIDs([]core.Delivery{evs[2].Deliveries[0], evs[3].Deliveries[0]}))
}
