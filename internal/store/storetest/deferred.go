package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// The deferred cases pin what a store must keep when it puts off writing
// the rows of deliveries published already leased (the engine's direct
// path) until their first completion (issue 20, "a delivery is written
// once"): a completion straight after the publish leaves a delivery
// exactly as a completion after a read does, every reader and writer sees
// what it saw when the publish wrote the rows, and a lease that runs out
// or a store closed in between loses and doubles nothing. They pass on a
// store that writes every row at publish (the behaviour they pin) and
// must keep passing on one that defers them.

// direct is the lease owner of the deferred cases' publishes.
const direct = "direct"

// leasedEvent returns an event of the project accepted at at with one
// delivery per hook inserted leased by direct until until.
func leasedEvent(projectID, eventType string, at, until time.Time, hooks ...*core.Webhook) core.NewEvent {
	ne := NewEvent(projectID, eventType, at, hooks...)
	lease(&ne, until)
	return ne
}

// lease makes ne's deliveries inserted leased by direct until until.
func lease(ne *core.NewEvent, until time.Time) {
	for i := range ne.Deliveries {
		ne.Deliveries[i].LeaseOwner = direct
		ne.Deliveries[i].NextAttemptTime = until
	}
}

// asClaimed is d as its engine holds it after a leased publish.
func asClaimed(d core.Delivery) core.Claimed { return core.Claimed{Delivery: d} }

// completionKind is one way an engine completes a delivery's first
// attempt, and what today's store leaves.
type completionKind struct {
	name    string
	dynamic bool // a delivery to a dynamic URI, not to a webhook
	// comps returns the completions of d (to webhook w, nil if dynamic)
	// at at, made in one CompleteDeliveries call.
	comps func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion
	// What GetDelivery returns afterwards.
	status   core.DeliveryStatus
	attempts int // the delivery's count
	rows     int // attempts listed
	owner    string
	next     time.Duration // NextAttemptTime from T0; 0 for none
	disabled bool          // the webhook is disabled by the completion
	// unpinned: the outcome is not the same on every driver; only the
	// two deliveries are compared.
	unpinned bool
}

// kindAt is the time of the completions of completionKinds.
var kindAt = T0.Add(time.Second)

// completionKinds lists the completions an engine makes of a delivery's
// first attempt (engine/attempt.go), and the ones that do not hold the
// lease, with today's outcome. Every success keeps its lease owner's
// attempt; see CompleteDeliveries in each driver for which are kept in
// the delivery row.
func completionKinds() []completionKind {
	ok := func(d core.Delivery, owner, uri string, code int, body []byte) core.Completion {
		return core.Completion{DeliveryID: d.ID, Owner: owner, ProjectID: d.ProjectID, Status: core.DeliverySucceeded,
			WebhookID: d.WebhookID, Success: true,
			Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: kindAt, URI: uri, StatusCode: code,
				Latency: 1500 * time.Microsecond, Response: body}}
	}
	fail := func(d core.Delivery, uri string, code int, errText string, status core.DeliveryStatus, next time.Time) core.Completion {
		return core.Completion{DeliveryID: d.ID, Owner: direct, ProjectID: d.ProjectID, Status: status,
			NextAttemptTime: next, WebhookID: d.WebhookID,
			Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: kindAt, URI: uri, StatusCode: code,
				Latency: 2 * time.Millisecond, Error: errText, Response: []byte("boom")}}
	}
	uri := func(d core.Delivery, w *core.Webhook) string {
		if w == nil {
			return d.URI
		}
		return w.URI
	}
	one := func(c core.Completion) []core.Completion { return []core.Completion{c} }
	retryAt := T0.Add(5 * time.Minute)
	return []completionKind{
		{name: "success", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(ok(d, direct, uri(d, w), 200, []byte("ok")))
		}, status: core.DeliverySucceeded, attempts: 1, rows: 1},
		{name: "success without body or latency", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			c := ok(d, direct, uri(d, w), 204, nil)
			c.Attempt.Latency = 0
			return one(c)
		}, status: core.DeliverySucceeded, attempts: 1, rows: 1},
		{name: "success with an error text", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			c := ok(d, direct, uri(d, w), 200, []byte("ok"))
			c.Attempt.Error = "body: read: connection reset"
			return one(c)
		}, status: core.DeliverySucceeded, attempts: 1, rows: 1},
		{name: "success with a large body", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(ok(d, direct, uri(d, w), 200, bytes.Repeat([]byte("y"), 10<<10)))
		}, status: core.DeliverySucceeded, attempts: 1, rows: 1},
		{name: "success on another URI", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(ok(d, direct, "https://example.com/moved", 200, []byte("ok")))
		}, status: core.DeliverySucceeded, attempts: 1, rows: 1},
		{name: "success without a URI", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(ok(d, direct, "", 200, nil))
		}, status: core.DeliverySucceeded, attempts: 1, rows: 1},
		{name: "dynamic success", dynamic: true, comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(ok(d, direct, d.URI, 204, nil))
		}, status: core.DeliverySucceeded, attempts: 1, rows: 1},
		{name: "dynamic success elsewhere", dynamic: true, comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(ok(d, direct, "https://elsewhere.example/x", 200, []byte("ok")))
		}, status: core.DeliverySucceeded, attempts: 1, rows: 1},
		{name: "retry", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(fail(d, uri(d, w), 500, "http_status: HTTP 500", core.DeliveryPending, retryAt))
		}, status: core.DeliveryPending, attempts: 1, rows: 1, next: 5 * time.Minute},
		{name: "retry after a connection error", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			c := fail(d, uri(d, w), 0, "connection: dial tcp: connection refused", core.DeliveryPending, retryAt)
			c.Attempt.Response, c.Attempt.Latency = nil, 0
			return one(c)
		}, status: core.DeliveryPending, attempts: 1, rows: 1, next: 5 * time.Minute},
		{name: "dynamic retry", dynamic: true, comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(fail(d, d.URI, 503, "http_status: HTTP 503", core.DeliveryPending, retryAt))
		}, status: core.DeliveryPending, attempts: 1, rows: 1, next: 5 * time.Minute},
		{name: "permanent failure", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(fail(d, uri(d, w), 400, "http_status: HTTP 400", core.DeliveryFailed, time.Time{}))
		}, status: core.DeliveryFailed, attempts: 1, rows: 1},
		{name: "retries exhausted", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(fail(d, uri(d, w), 503, "http_status: HTTP 503", core.DeliveryFailed, time.Time{}))
		}, status: core.DeliveryFailed, attempts: 1, rows: 1},
		{name: "gone", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			c := fail(d, uri(d, w), 410, "gone: HTTP 410", core.DeliveryFailed, time.Time{})
			c.DisableWebhook = true
			return one(c)
		}, status: core.DeliveryFailed, attempts: 1, rows: 1, disabled: true},
		{name: "cancelled without attempt", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(core.Completion{DeliveryID: d.ID, Owner: direct, ProjectID: d.ProjectID,
				Status: core.DeliveryCancelled, Attempt: core.Attempt{Time: kindAt}})
		}, status: core.DeliveryCancelled},
		{name: "skipped without attempt", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(core.Completion{DeliveryID: d.ID, Owner: direct, ProjectID: d.ProjectID,
				Status: core.DeliverySkipped, Attempt: core.Attempt{Time: kindAt}})
		}, status: core.DeliverySkipped},
		{name: "cancelled after an attempt", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			// The webhook was deleted during a failed attempt.
			c := fail(d, uri(d, w), 502, "http_status: HTTP 502", core.DeliveryCancelled, time.Time{})
			c.WebhookID = ""
			return one(c)
		}, status: core.DeliveryCancelled, attempts: 1, rows: 1},
		{name: "rate-limit deferral", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(core.Completion{DeliveryID: d.ID, Owner: direct, Status: core.DeliveryPending,
				NextAttemptTime: T0.Add(2 * time.Minute), Attempt: core.Attempt{Time: kindAt}})
		}, status: core.DeliveryPending, next: 2 * time.Minute},
		{name: "another owner", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(ok(d, "other", uri(d, w), 200, []byte("ok")))
		}, status: core.DeliveryPending, attempts: 1, rows: 1, owner: direct, next: time.Minute},
		{name: "no owner", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			return one(ok(d, "", uri(d, w), 200, nil))
		}, status: core.DeliveryPending, attempts: 1, rows: 1, owner: direct, next: time.Minute},
		{name: "twice in a batch", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			s1, s2 := ok(d, direct, uri(d, w), 200, nil), ok(d, direct, uri(d, w), 200, []byte("again"))
			s2.Attempt.Number = 2
			return []core.Completion{s1, s2}
		}, status: core.DeliverySucceeded, attempts: 2, rows: 2},
		{name: "retry then success in a batch", comps: func(d core.Delivery, w *core.Webhook, at time.Time) []core.Completion {
			f := fail(d, uri(d, w), 500, "http_status: HTTP 500", core.DeliveryPending, retryAt)
			s := ok(d, direct, uri(d, w), 200, nil)
			s.Attempt.Number, s.Attempt.Time = 2, kindAt.Add(time.Millisecond)
			return []core.Completion{f, s}
		}, unpinned: true},
	}
}

// deferredPair is a kind's two deliveries: one completed straight after
// its publish, one after a read made it visible.
type deferredPair struct {
	kind         completionKind
	direct, read core.Delivery
	dw, rw       *core.Webhook // nil for dynamic deliveries
}

// testDeferredCompletions: for each completion kind, a delivery completed
// straight after its leased publish ends exactly as one completed after a
// read (GetDelivery and ListDeliveries) — the delivery, its attempts, its
// webhook's failure run and state, its stats — and as today's store
// leaves it.
func testDeferredCompletions(t *testing.T, b *bundle) {
	kinds := completionKinds()
	until := T0.Add(time.Minute)
	pairs := make([]deferredPair, len(kinds))
	publish := func(k completionKind, n int) (core.Delivery, *core.Webhook) {
		t.Helper()
		var ne core.NewEvent
		var w *core.Webhook
		if k.dynamic {
			ne = NewDynamicEvent(b.p.ID, T0, fmt.Sprintf("https://dyn.example/%d", n))
			lease(&ne, until)
		} else {
			// Both webhooks of a pair have the same URI, which the attempts
			// name.
			w = NewWebhook(b.p.ID)
			w.URI = fmt.Sprintf("https://example.com/hooks/%d", n)
			if err := b.s.CreateWebhook(b.ctx, w); err != nil {
				t.Fatalf("CreateWebhook: %v", err)
			}
			ne = leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, w)
		}
		b.publish(ne)
		return ne.Deliveries[0], w
	}
	// Straight after the publish: no read in between, in any pair.
	for i, k := range kinds {
		d, w := publish(k, i)
		pairs[i] = deferredPair{kind: k, direct: d, dw: w}
		b.complete(k.comps(d, w, kindAt)...)
	}
	// After reads.
	for i, k := range kinds {
		d, w := publish(k, i)
		pairs[i].read, pairs[i].rw = d, w
		if got, as := b.delivery(d.ID); got.Status != core.DeliveryPending || got.LeaseOwner != direct || len(as) != 0 {
			t.Errorf("%s: read before the completion: %s, owner %q, %d attempts; want pending, %s, none",
				k.name, got.Status, got.LeaseOwner, len(as), direct)
		}
		if _, err := b.s.ListDeliveries(b.ctx, core.ListDeliveriesParams{ProjectID: b.p.ID, Limit: 1000}); err != nil {
			t.Fatalf("ListDeliveries: %v", err)
		}
		b.complete(k.comps(d, w, kindAt)...)
	}

	listed := map[string]*core.Delivery{}
	ds, err := b.s.ListDeliveries(b.ctx, core.ListDeliveriesParams{ProjectID: b.p.ID, Limit: 1000})
	if err != nil {
		t.Fatalf("ListDeliveries: %v", err)
	}
	for _, d := range ds {
		listed[d.ID] = d
	}
	if len(listed) != 2*len(kinds) {
		t.Errorf("ListDeliveries listed %d deliveries, want %d", len(listed), 2*len(kinds))
	}
	for _, p := range pairs {
		comparePair(t, b, p, listed)
	}
	claimPairs(t, b, pairs)
}

// claimPairs checks that the pending deliveries of the pairs are in the
// queue today's completions leave them in: a completion that holds the
// lease and leaves the delivery pending makes it a retry (queue 1); one
// that does not hold it leaves a first attempt. A claim of 4×R (R
// retries due) takes R retries and fills the rest with first attempts
// due before every pair: a retry left among first attempts, or a first
// attempt among retries, changes what is claimed.
func claimPairs(t *testing.T, b *bundle, pairs []deferredPair) {
	t.Helper()
	want := map[string]bool{}
	retries := 0
	same := map[string]bool{} // pairs that read the same (the others are reported)
	for _, p := range pairs {
		// Each delivery by its state (the unpinned kind's differs between
		// drivers; a pair that differs is reported by comparePair).
		var states [2]core.Delivery
		for i, id := range []string{p.direct.ID, p.read.ID} {
			d, _ := b.delivery(id)
			states[i] = anonymous(*d)
			if d.Status == core.DeliveryPending && d.LeaseOwner == "" {
				want[id] = true
				retries++
			}
		}
		same[p.direct.ID] = reflect.DeepEqual(states[0], states[1])
	}
	for _, d := range b.events(3*retries, T0.Add(-time.Minute), b.webhook("")) {
		want[d.ID] = true
	}
	got := b.claim("later", T0.Add(time.Hour), 4*retries)
	claimed := map[string]core.Claimed{}
	for _, c := range got {
		claimed[c.ID] = c
	}
	wantEqual(t, "claimed: the retries, then the first attempts due first", claimedIDs(got), want)
	for _, p := range pairs {
		if !same[p.direct.ID] {
			continue
		}
		dc, dok := claimed[p.direct.ID]
		rc, rok := claimed[p.read.ID]
		if dok != rok {
			t.Errorf("%s: claimed %v straight after the publish, %v after a read", p.kind.name, dok, rok)
			continue
		}
		wantEqual(t, p.kind.name+": claimed, straight after the publish vs after a read",
			anonymous(dc.Delivery), anonymous(rc.Delivery))
	}
}

// anonymous is d without what differs between the two deliveries of a
// pair: ids.
func anonymous(d core.Delivery) core.Delivery {
	d.ID, d.EventID, d.WebhookID, d.Dest = "", "", "", ""
	return d
}

func anonymousAttempts(as []core.Attempt) []core.Attempt {
	out := slices.Clone(as)
	for i := range out {
		out[i].DeliveryID = ""
	}
	return out
}

// comparePair checks that p's two deliveries read the same, and (unless
// the kind is unpinned) as today's store leaves them.
func comparePair(t *testing.T, b *bundle, p deferredPair, listed map[string]*core.Delivery) {
	t.Helper()
	k := p.kind
	dd, das := b.delivery(p.direct.ID)
	rd, ras := b.delivery(p.read.ID)
	wantEqual(t, k.name+": GetDelivery, straight after the publish vs after a read", anonymous(*dd), anonymous(*rd))
	wantEqual(t, k.name+": attempts, straight after the publish vs after a read",
		anonymousAttempts(das), anonymousAttempts(ras))
	if dl, rl := listed[p.direct.ID], listed[p.read.ID]; dl == nil || rl == nil {
		t.Errorf("%s: not listed: %v, %v", k.name, dl != nil, rl != nil)
	} else {
		wantEqual(t, k.name+": ListDeliveries, straight after the publish vs after a read", anonymous(*dl), anonymous(*rl))
	}
	if p.dw != nil {
		compareHooks(t, b, k, p.dw, p.rw)
	}
	if !k.unpinned {
		wantOutcome(t, k, p.direct, p.dw, dd, das)
	}
}

// compareHooks checks that the webhooks of a pair have the same failure
// run, state and stats.
func compareHooks(t *testing.T, b *bundle, k completionKind, dw, rw *core.Webhook) {
	t.Helper()
	dw, rw = b.getWebhook(dw.ID), b.getWebhook(rw.ID)
	if dw.ConsecutiveFailures != rw.ConsecutiveFailures || !dw.FailingSince.Equal(rw.FailingSince) ||
		dw.State != rw.State {
		t.Errorf("%s: webhook %d failures since %v, %s; after a read %d since %v, %s", k.name,
			dw.ConsecutiveFailures, dw.FailingSince, dw.State, rw.ConsecutiveFailures, rw.FailingSince, rw.State)
	}
	if disabled := dw.State == core.WebhookDisabledDueToFailedDeliveries; disabled != k.disabled && !k.unpinned {
		t.Errorf("%s: webhook state %s", k.name, dw.State)
	}
	stats := func(w *core.Webhook) []core.StatsRow {
		t.Helper()
		rows, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, WebhookID: w.ID, Since: T0.Add(-time.Hour),
			Until: T0.Add(time.Hour)})
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		for i := range rows {
			rows[i].WebhookID = ""
		}
		return rows
	}
	wantEqual(t, k.name+": stats, straight after the publish vs after a read", stats(dw), stats(rw))
}

// wantOutcome checks that d (published as pub to w, then completed as k) and
// its attempts as read are what today's store leaves.
func wantOutcome(t *testing.T, k completionKind, pub core.Delivery, w *core.Webhook, d *core.Delivery, got []core.Attempt) {
	t.Helper()
	next := time.Time{}
	if k.next != 0 {
		next = T0.Add(k.next)
	}
	if d.Status != k.status || d.Attempts != k.attempts || len(got) != k.rows || d.LeaseOwner != k.owner ||
		!d.NextAttemptTime.Equal(next) {
		t.Errorf("%s: status %s, %d attempts, %d listed, owner %q, next %v; want %s, %d, %d, %q, %v", k.name,
			d.Status, d.Attempts, len(got), d.LeaseOwner, d.NextAttemptTime,
			k.status, k.attempts, k.rows, k.owner, next)
	}
	// A completion that holds the lease changes the delivery at its
	// time; the first one of a batch does, the others find the lease gone.
	comps := k.comps(pub, w, kindAt)
	want := pub
	want.Status, want.Attempts, want.LeaseOwner, want.NextAttemptTime = k.status, k.attempts, k.owner, next
	if k.owner == "" {
		want.UpdateTime = kindAt
		if a := comps[0].Attempt; a.Number != 0 {
			want.LastStatusCode, want.LastError = a.StatusCode, a.Error
		}
	}
	wantEqual(t, k.name+": GetDelivery", *d, want)
	var as []core.Attempt
	for _, c := range comps {
		if c.Attempt.Number == 0 {
			continue
		}
		a := c.Attempt
		if len(a.Response) > 4<<10 {
			a.Response = a.Response[:4<<10]
		}
		if len(a.Response) == 0 {
			a.Response = nil
		}
		as = append(as, a)
	}
	wantEqual(t, k.name+": attempts", got, as)
}

// singleKinds are the pinned kinds made of one completion, for the cases
// that mix them.
func singleKinds() []completionKind {
	var out []completionKind
	for _, k := range completionKinds() {
		if !k.unpinned && !k.dynamic && len(k.comps(core.Delivery{}, nil, kindAt)) == 1 {
			out = append(out, k)
		}
	}
	return out
}

// testDeferredMixed: one PublishEvents call of 10 events with 3 leased
// deliveries each; half are completed (in two calls, kinds mixed), the
// deliveries are read, another group is published, and the rest of the
// first group and all of the second are completed in one call: every
// delivery ends in its completion's state and every attempt is counted
// once.
func testDeferredMixed(t *testing.T, b *bundle) {
	hooks := []*core.Webhook{b.webhook(""), b.webhook(""), b.webhook("")}
	until := T0.Add(time.Minute)
	group := func(n int) []core.Delivery {
		var evs []core.NewEvent
		for range n {
			evs = append(evs, leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, hooks...))
		}
		b.publish(evs...)
		var ds []core.Delivery
		for _, ne := range evs {
			ds = append(ds, ne.Deliveries...)
		}
		return ds
	}
	kinds := singleKinds()
	hook := func(d core.Delivery) *core.Webhook {
		for _, w := range hooks {
			if w.ID == d.WebhookID {
				return w
			}
		}
		return nil
	}
	kindOf := map[string]completionKind{}
	var all []core.Delivery
	attempts := 0
	comps := func(ds []core.Delivery) []core.Completion {
		var cs []core.Completion
		for _, d := range ds {
			k := kinds[len(kindOf)%len(kinds)]
			kindOf[d.ID] = k
			all = append(all, d)
			for _, c := range k.comps(d, hook(d), kindAt) {
				if c.Attempt.Number != 0 {
					attempts++
				}
				c.ProjectID = b.p.ID
				cs = append(cs, c)
			}
		}
		return cs
	}

	first := group(10)
	b.complete(comps(first[:8])...)
	b.complete(comps(first[8:15])...)
	ds, err := b.s.ListDeliveries(b.ctx, core.ListDeliveriesParams{ProjectID: b.p.ID, Limit: 100})
	if err != nil || len(ds) != 30 {
		t.Fatalf("ListDeliveries = %d, %v; want 30", len(ds), err)
	}
	second := group(5)
	b.complete(append(comps(first[15:]), comps(second)...)...)

	for _, d := range all {
		k := kindOf[d.ID]
		got, as := b.delivery(d.ID)
		wantOutcome(t, k, d, hook(d), got, as)
	}
	if len(all) != 45 {
		t.Fatalf("completed %d deliveries, want 45", len(all))
	}
	rows, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, Since: T0.Add(-time.Hour), Until: T0.Add(time.Hour)})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	var total core.StatsCounts
	for _, r := range rows {
		total.Add(r.StatsCounts)
	}
	if total.Events != 15 || total.Attempts() != int64(attempts) {
		t.Errorf("stats: %d events, %d attempts; want 15, %d", total.Events, total.Attempts(), attempts)
	}
	if depth, err := b.s.QueueDepth(b.ctx, kindAt); err != nil {
		t.Fatal(err)
	} else {
		pending := 0
		for _, d := range all {
			if kindOf[d.ID].status == core.DeliveryPending {
				pending++
			}
		}
		if depth.Due+depth.Scheduled != pending {
			t.Errorf("QueueDepth = %+v, want %d pending", depth, pending)
		}
	}
}

// testDeferredLeaseExpiry: deliveries published leased with a short
// lease and never completed are claimed by another owner once the lease
// expires, every one exactly once, and not before; completed ones are not
// claimed again; the first owner's late completion is recorded as an
// attempt and leaves the delivery to its new holder.
func testDeferredLeaseExpiry(t *testing.T, b *bundle) {
	w1, w2 := b.webhook(""), b.webhook("")
	var a, c []core.NewEvent
	for range 6 {
		a = append(a, leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, T0.Add(time.Second), w1, w2))
	}
	for range 4 {
		c = append(c, leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, T0.Add(2*time.Second), w1))
	}
	b.publish(a...)
	b.publish(c...)
	var as, cs []core.Delivery
	for _, ne := range a {
		as = append(as, ne.Deliveries...)
	}
	for _, ne := range c {
		cs = append(cs, ne.Deliveries...)
	}
	// The first owner completes two of c's before the lease expires.
	done := cs[:2]
	b.complete(succeeded(asClaimed(done[0]), direct, T0.Add(500*time.Millisecond)),
		failed(asClaimed(done[1]), direct, T0.Add(500*time.Millisecond), core.DeliveryFailed, time.Time{}))

	claimAll := func(now time.Time) []string {
		t.Helper()
		var got []string
		for range 20 {
			cl := b.claim("late", now, 5)
			if len(cl) == 0 {
				break
			}
			for _, x := range cl {
				if slices.Contains(got, x.ID) {
					t.Errorf("claim at %v: %s twice", now, x.ID)
				}
				if x.Attempts != 0 {
					t.Errorf("claim at %v: %s with %d attempts", now, x.ID, x.Attempts)
				}
				got = append(got, x.ID)
			}
		}
		return sorted(got)
	}
	ids := func(ds []core.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return sorted(out)
	}
	if got := claimAll(T0.Add(time.Second - time.Microsecond)); len(got) != 0 {
		t.Fatalf("claimed %d before the lease expired", len(got))
	}
	wantEqual(t, "claimed at the first lease's expiry", claimAll(T0.Add(time.Second)), ids(as))
	wantEqual(t, "claimed at the second lease's expiry", claimAll(T0.Add(2*time.Second)), ids(cs[2:]))

	// The first owner's completions come late: recorded and counted, not
	// applied.
	late := append(slices.Clone(as), cs[2:]...)
	var comps []core.Completion
	for _, d := range late {
		comps = append(comps, succeeded(asClaimed(d), direct, T0.Add(3*time.Second)))
	}
	b.complete(comps...)
	for _, d := range late {
		got, att := b.delivery(d.ID)
		if got.Status != core.DeliveryPending || got.LeaseOwner != "late" || got.Attempts != 1 || len(att) != 1 {
			t.Errorf("after a late completion: %s, owner %q, %d attempts, %d listed; want pending, late, 1, 1",
				got.Status, got.LeaseOwner, got.Attempts, len(att))
		}
	}
	comps = comps[:0]
	for _, d := range late {
		comps = append(comps, succeeded(asClaimed(d), "late", T0.Add(4*time.Second)))
	}
	b.complete(comps...)
	for _, d := range late {
		if got, att := b.delivery(d.ID); got.Status != core.DeliverySucceeded || got.Attempts != 2 || len(att) != 2 {
			t.Errorf("the new holder's completion: %s, %d attempts, %d listed; want succeeded, 2, 2",
				got.Status, got.Attempts, len(att))
		}
	}
	for i, d := range done {
		got, att := b.delivery(d.ID)
		want := []core.DeliveryStatus{core.DeliverySucceeded, core.DeliveryFailed}[i]
		if got.Status != want || got.Attempts != 1 || len(att) != 1 {
			t.Errorf("completed before the expiry: %s, %d attempts, %d listed; want %s, 1, 1",
				got.Status, got.Attempts, len(att), want)
		}
	}
}
