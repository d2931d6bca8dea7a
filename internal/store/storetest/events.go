package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

func testPublish(t *testing.T, b *bundle) {
	w1, w2 := b.webhook(""), b.webhook("")
	e1 := NewEvent(b.p.ID, core.EventBatchSucceeded, T0, w1, w2)
	e2 := NewEvent(b.p.ID, core.EventBatchFailed, T0.Add(time.Millisecond), w1)
	e2.Deliveries[0].Status = core.DeliverySkipped // w1 disabled when it arrived
	e2.Deliveries[0].NextAttemptTime = time.Time{}
	e3 := NewEvent(b.p.ID, core.EventBatchExpired, T0.Add(2*time.Millisecond)) // no subscribers
	res := b.publish(e1, e2, e3)

	for i, ne := range []core.NewEvent{e1, e2, e3} {
		want := ne.Event
		want.DeliveryCount = len(ne.Deliveries)
		if res[i].Duplicate {
			t.Errorf("result %d: Duplicate on first publish", i)
		}
		if res[i].Event == nil {
			t.Fatalf("result %d: nil Event", i)
		}
		wantEqual(t, "PublishResult.Event", *res[i].Event, want)
		got, err := b.s.GetEvent(b.ctx, b.p.ID, ne.Event.ID)
		if err != nil {
			t.Fatalf("GetEvent: %v", err)
		}
		wantEqual(t, "GetEvent", *got, want)
		for _, d := range ne.Deliveries {
			got, as := b.delivery(d.ID)
			wantEqual(t, "GetDelivery after publish", *got, d)
			if len(as) != 0 {
				t.Errorf("new delivery has %d attempts", len(as))
			}
		}
	}
	_, err := b.s.GetEvent(b.ctx, b.project().ID, e1.Event.ID)
	wantNotFound(t, "GetEvent(other project)", err)
	_, err = b.s.GetEvent(b.ctx, b.p.ID, "evt_missing")
	wantNotFound(t, "GetEvent(missing)", err)

	// Only the two pending deliveries are claimable, with their payload.
	cs := b.claim("e", T0.Add(time.Second), 10)
	wantEqual(t, "claimed", claimedIDs(cs), deliveryIDs(e1.Deliveries))
	for _, c := range cs {
		if !bytes.Equal(c.Payload, e1.Event.Payload) || c.Subject != e1.Event.Subject || c.Dynamic != nil {
			t.Errorf("claimed %s: payload %q subject %q dynamic %v", c.ID, c.Payload, c.Subject, c.Dynamic)
		}
		if c.WebhookID == "" || c.Dest != c.WebhookID || c.EventType != core.EventBatchSucceeded || c.Attempts != 0 {
			t.Errorf("claimed %s: %+v", c.ID, c.Delivery)
		}
		wantTime(t, "claimed ScheduleStart", c.ScheduleStart, T0)
	}
}

func testPublishDynamic(t *testing.T, b *bundle) {
	ne := NewDynamicEvent(b.p.ID, T0, "https://a.example/h", "https://b.example/h")
	res := b.publish(ne)
	wantEqual(t, "Dynamic", res[0].Event.Dynamic, ne.Event.Dynamic)
	got, err := b.s.GetEvent(b.ctx, b.p.ID, ne.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "GetEvent Dynamic", got.Dynamic, ne.Event.Dynamic)

	cs := b.claim("e", T0, 10)
	if len(cs) != 2 {
		t.Fatalf("claimed %d, want 2", len(cs))
	}
	for _, c := range cs {
		wantEqual(t, "claimed Dynamic", c.Dynamic, ne.Event.Dynamic)
		if c.WebhookID != "" || c.Dest != core.DynamicDest(b.p.ID, c.URI) || c.URI == "" {
			t.Errorf("dynamic claim: webhook %q dest %q uri %q", c.WebhookID, c.Dest, c.URI)
		}
		if !bytes.Equal(c.Payload, ne.Event.Payload) || c.Subject != ne.Event.Subject {
			t.Errorf("dynamic claim payload/subject mismatch")
		}
	}
}

func testIdempotency(t *testing.T, b *bundle) {
	w := b.webhook("")
	first := NewEvent(b.p.ID, core.EventBatchSucceeded, T0, w)
	first.Event.IdempotencyKey = "key-1"
	again := NewEvent(b.p.ID, core.EventBatchSucceeded, T0.Add(time.Millisecond), w)
	again.Event.IdempotencyKey = "key-1"
	plain1 := NewEvent(b.p.ID, core.EventBatchSucceeded, T0.Add(2*time.Millisecond), w)
	plain2 := NewEvent(b.p.ID, core.EventBatchSucceeded, T0.Add(3*time.Millisecond), w)

	// Within one call.
	res := b.publish(first, again, plain1, plain2)
	want := first.Event
	want.DeliveryCount = 1
	wantEqual(t, "first", *res[0].Event, want)
	if res[0].Duplicate || res[2].Duplicate || res[3].Duplicate {
		t.Errorf("Duplicate set on a new event")
	}
	if !res[1].Duplicate {
		t.Fatalf("repeat within a call: Duplicate = false")
	}
	wantEqual(t, "duplicate within a call returns the original", *res[1].Event, want)
	_, err := b.s.GetEvent(b.ctx, b.p.ID, again.Event.ID)
	wantNotFound(t, "GetEvent(duplicate)", err)
	_, _, err = b.s.GetDelivery(b.ctx, b.p.ID, again.Deliveries[0].ID)
	wantNotFound(t, "GetDelivery(duplicate's delivery)", err)

	// Across calls.
	later := NewEvent(b.p.ID, core.EventBatchFailed, T0.Add(time.Hour), w)
	later.Event.IdempotencyKey = "key-1"
	res = b.publish(later)
	if !res[0].Duplicate {
		t.Fatalf("repeat across calls: Duplicate = false")
	}
	wantEqual(t, "duplicate across calls returns the original", *res[0].Event, want)
	_, err = b.s.GetEvent(b.ctx, b.p.ID, later.Event.ID)
	wantNotFound(t, "GetEvent(later duplicate)", err)

	// Keys are per project.
	other := b.project()
	ow := b.webhook(other.ID)
	elsewhere := NewEvent(other.ID, core.EventBatchSucceeded, T0, ow)
	elsewhere.Event.IdempotencyKey = "key-1"
	if res := b.publish(elsewhere); res[0].Duplicate {
		t.Errorf("same key in another project reported as duplicate")
	}

	// Nothing was written for duplicates: 3 deliveries of this project.
	ds, err := b.s.ListDeliveries(b.ctx, core.ListDeliveriesParams{ProjectID: b.p.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Errorf("project has %d deliveries, want 3", len(ds))
	}
}

func testEventsByKeys(t *testing.T, b *bundle) {
	w := b.webhook("")
	var evs []core.NewEvent
	for i, k := range []string{"job:a:1", "job:a:terminal", "job:b:1", ""} {
		e := NewEvent(b.p.ID, core.EventBatchSucceeded, T0.Add(time.Duration(i)*time.Millisecond), w)
		e.Event.IdempotencyKey = k
		evs = append(evs, e)
	}
	other := b.project()
	elsewhere := NewEvent(other.ID, core.EventBatchSucceeded, T0, b.webhook(other.ID))
	elsewhere.Event.IdempotencyKey = "job:a:2"
	b.publish(append(evs, elsewhere)...)

	got, err := b.s.EventsByKeys(b.ctx, b.p.ID, []string{"job:a:terminal", "job:a:2", "job:a:1", "job:a:3", ""})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	// Oldest first; another project's key and the empty key match nothing.
	if want := []string{evs[0].Event.ID, evs[1].Event.ID}; !slices.Equal(ids, want) {
		t.Errorf("EventsByKeys = %v, want %v", ids, want)
	}
	want := evs[0].Event
	want.DeliveryCount = 1
	if len(got) > 0 {
		wantEqual(t, "EventsByKeys[0]", *got[0], want)
	}
	if got, err := b.s.EventsByKeys(b.ctx, b.p.ID, nil); err != nil || len(got) != 0 {
		t.Errorf("EventsByKeys(nil) = %v, %v", got, err)
	}
}

func testWake(t *testing.T, b *bundle) {
	w := b.webhook("")
	drain := func() {
		for {
			select {
			case <-b.s.Wake():
			default:
				return
			}
		}
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-b.s.Wake():
		case <-time.After(5 * time.Second):
			t.Errorf("no wake-up after %s", what)
		}
	}
	drain()
	ds := b.events(2, T0, w)
	expect("PublishEvents")

	cs := b.claim("e", T0.Add(time.Second), 10)
	if len(cs) != 2 {
		t.Fatalf("claimed %d", len(cs))
	}
	b.complete(failed(cs[0], "e", T0, core.DeliveryFailed, time.Time{}),
		failed(cs[1], "e", T0, core.DeliveryFailed, time.Time{}))
	drain()
	if _, err := b.s.Redeliver(b.ctx, b.p.ID, ds[0].ID, T0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	expect("Redeliver")

	drain()
	n, _, err := b.s.RecoverDeliveries(b.ctx, core.RecoverParams{ProjectID: b.p.ID, WebhookID: w.ID,
		Since: T0.Add(-time.Hour), OnlyFailed: true, Limit: 10, Now: T0.Add(time.Hour)})
	if err != nil || n != 1 {
		t.Fatalf("RecoverDeliveries = %d, %v; want 1", n, err)
	}
	expect("RecoverDeliveries")

	// Wake-ups are coalesced: many publishes, one pending signal at most.
	drain()
	for i := range 5 {
		b.events(1, T0.Add(time.Duration(i)*time.Second), w)
	}
	expect("several publishes")
	select {
	case <-b.s.Wake():
		t.Errorf("wake-ups were not coalesced")
	default:
	}
}

func testListEvents(t *testing.T, b *bundle) {
	w := b.webhook("")
	var want []core.Event // newest first
	for i, typ := range []string{core.EventBatchSucceeded, core.EventBatchFailed, core.EventBatchSucceeded} {
		ne := NewEvent(b.p.ID, typ, T0.Add(time.Duration(i)*time.Millisecond), w)
		b.publish(ne)
		ne.Event.DeliveryCount = 1
		want = append([]core.Event{ne.Event}, want...)
	}
	other := b.project()
	b.publish(NewEvent(other.ID, core.EventBatchSucceeded, T0))

	list := func(p core.ListEventsParams) []core.Event {
		t.Helper()
		p.ProjectID = b.p.ID
		evs, err := b.s.ListEvents(b.ctx, p)
		if err != nil {
			t.Fatalf("ListEvents(%+v): %v", p, err)
		}
		out := make([]core.Event, len(evs))
		for i, e := range evs {
			out[i] = *e
		}
		return out
	}
	wantEqual(t, "ListEvents", list(core.ListEventsParams{}), want)
	wantEqual(t, "ListEvents(limit 2)", list(core.ListEventsParams{Limit: 2}), want[:2])
	wantEqual(t, "ListEvents(before)", list(core.ListEventsParams{BeforeID: want[1].ID}), want[2:])
	wantEqual(t, "ListEvents(type)", list(core.ListEventsParams{Type: core.EventBatchFailed}), want[1:2])
}
