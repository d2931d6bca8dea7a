package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// SpanScenario checks a driver's retention sweep of events without an
// index on deliveries.event_id (SQLite's migration 0011, PostgreSQL's
// 0012): the sweep keeps an event while a delivery of it is pending by
// looking in the range of delivery ids the event records — ranges written
// by publishes, widened by Redeliver and RecoverDeliveries, and made by
// the migration for the events written before it. The driver supplies
// its own view of the columns.
type SpanScenario struct {
	// Span is an event's recorded range, "first..last" ("..": none).
	Span func(eventID string) string
	// Clear empties an event's range, as an event written before the
	// migration whose deliveries had all finished has none.
	Clear func(eventID string)
	// Plan, when set, runs after 2,000 more deliveries are pending: the
	// driver checks the sweep's plan on a table that is not nearly empty.
	Plan func()
	// Unmigrate rewrites the store as it was before the migration (the
	// event_id index back, the range columns gone, the migration not
	// recorded), opens it again (which migrates it) and returns it; Span
	// and Clear must read the returned store from then on.
	Unmigrate func() core.Store
}

// Run runs the scenario on s, a store with no projects of the scenario's.
func (sc SpanScenario) Run(t *testing.T, s core.Store) {
	t.Helper()
	ctx := context.Background()
	p := NewProject()
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	hooks := []*core.Webhook{NewWebhook(p.ID), NewWebhook(p.ID)}
	for _, w := range hooks {
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	t0 := T0
	// Events at t0, their deliveries leased by "o". Which are completed
	// (succeeded) is up to the caller.
	publish := func(n int) []core.NewEvent {
		t.Helper()
		evs := make([]core.NewEvent, n)
		for i := range evs {
			evs[i] = NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks...)
			for j := range evs[i].Deliveries {
				evs[i].Deliveries[j].LeaseOwner = "o"
				evs[i].Deliveries[j].NextAttemptTime = t0.Add(time.Minute)
			}
		}
		if _, err := s.PublishEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		return evs
	}
	complete := func(ds ...core.Delivery) {
		t.Helper()
		cs := make([]core.Completion, len(ds))
		for i, d := range ds {
			cs[i] = core.Completion{DeliveryID: d.ID, Owner: "o", Status: core.DeliverySucceeded,
				WebhookID: d.WebhookID, Success: true,
				Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: t0.Add(time.Second),
					URI: "https://example.com/x", StatusCode: 204}}
		}
		if err := s.CompleteDeliveries(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	kept := func(what string, ev core.NewEvent, want bool) {
		t.Helper()
		_, err := s.GetEvent(ctx, p.ID, ev.Event.ID)
		if got := err == nil; got != want {
			t.Errorf("%s: event kept = %v (%v), want %v", what, got, err, want)
		}
	}
	sweep := func() {
		t.Helper()
		if _, err := s.DeleteExpired(ctx, t0.Add(time.Hour), 100); err != nil {
			t.Fatal(err)
		}
	}
	idRange := func(ds []core.Delivery) string {
		lo, hi := min(ds[0].ID, ds[1].ID), max(ds[0].ID, ds[1].ID)
		return lo + ".." + hi
	}

	// A pending; B succeeded, then one of its deliveries redelivered after
	// its range was cleared; C succeeded; D pending, its second delivery's
	// id made an hour later than the event.
	evs := publish(3)
	a, b, c := evs[0], evs[1], evs[2]
	d := NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks...)
	d.Deliveries[1].ID = core.NewMessageID(t0.Add(time.Hour))
	// X, published in the same call, has one delivery that names D: it
	// widens D's range, and X records none.
	x := NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks[0])
	x.Deliveries[0].EventID = d.Event.ID
	x.Deliveries[0].ID = core.NewMessageID(t0.Add(2 * time.Hour))
	if _, err := s.PublishEvents(ctx, []core.NewEvent{d, x}); err != nil {
		t.Fatal(err)
	}
	lo := min(d.Deliveries[0].ID, d.Deliveries[1].ID)
	if got := sc.Span(d.Event.ID); got != lo+".."+x.Deliveries[0].ID {
		t.Errorf("range of D = %s, want %s..%s", got, lo, x.Deliveries[0].ID)
	}
	if got := sc.Span(x.Event.ID); got != ".." {
		t.Errorf("range of X = %s, want none (its one delivery names D)", got)
	}
	complete(append(b.Deliveries, c.Deliveries...)...)
	sc.Clear(b.Event.ID)
	if _, err := s.Redeliver(ctx, p.ID, b.Deliveries[1].ID, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := sc.Span(b.Event.ID); got != b.Deliveries[1].ID+".."+b.Deliveries[1].ID {
		t.Errorf("range of B after Redeliver = %s, want its redelivered delivery's id", got)
	}
	// A redelivery inside the range changes nothing.
	before := sc.Span(a.Event.ID)
	if _, err := s.Redeliver(ctx, p.ID, a.Deliveries[0].ID, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := sc.Span(a.Event.ID); got != before {
		t.Errorf("range of A after Redeliver = %s, want %s", got, before)
	}
	sweep()
	kept("A (pending)", a, true)
	kept("B (redelivered)", b, true)
	kept("C (succeeded)", c, false)
	kept("D (pending, ids an hour apart)", d, true)

	// RecoverDeliveries widens the ranges of the events it re-queues.
	e := publish(1)[0]
	complete(e.Deliveries...)
	sc.Clear(e.Event.ID)
	if _, _, err := s.RecoverDeliveries(ctx, core.RecoverParams{ProjectID: p.ID, WebhookID: hooks[0].ID,
		Since: t0, Now: t0.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := sc.Span(e.Event.ID); got != e.Deliveries[0].ID+".."+e.Deliveries[0].ID {
		t.Errorf("range of E after RecoverDeliveries = %s, want its recovered delivery's id", got)
	}
	sweep()
	kept("E (recovered)", e, true)

	if sc.Plan != nil {
		for range 20 {
			publish(100)
		}
		sc.Plan()
	}

	// A store written before the migration, migrated again: pending
	// deliveries' events get their range, others none.
	f := publish(1)[0]
	complete(f.Deliveries...)
	s = sc.Unmigrate()
	if got, want := sc.Span(a.Event.ID), idRange(a.Deliveries); got != want {
		t.Errorf("range of A after the migration = %s, want %s", got, want)
	}
	if got := sc.Span(f.Event.ID); got != ".." {
		t.Errorf("range of F (no pending delivery) after the migration = %s, want none", got)
	}
	sweep()
	kept("A after the migration", a, true)
	kept("B after the migration", b, true)
	kept("D after the migration", d, true)
	kept("F after the migration", f, false)
}
