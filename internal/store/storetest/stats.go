package storetest

import (
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// testStats: accepted events and attempts (with their outcome and latency)
// add to the rollup of their project, bucket and webhook; duplicates and
// completions without an attempt add nothing; steps fold buckets and
// projects stay apart.
func testStats(t *testing.T, b *bundle) {
	w := b.webhook("")
	other := b.project()
	ow := b.webhook(other.ID)

	at := T0.Truncate(time.Hour).Add(time.Hour) // a bucket and hour boundary
	ev := NewEvent(b.p.ID, core.EventBatchSucceeded, at, w)
	ev.Event.IdempotencyKey = "k"
	b.publish(ev)
	dup := NewEvent(b.p.ID, core.EventBatchSucceeded, at, w)
	dup.Event.IdempotencyKey = "k"
	b.publish(dup)                                                                     // a duplicate: not counted
	b.publish(NewEvent(b.p.ID, core.EventBatchSucceeded, at.Add(core.StatsBucket), w)) // next bucket
	b.publish(NewEvent(other.ID, core.EventBatchSucceeded, at, ow))                    // other project

	cs := b.claim("e", at.Add(time.Hour), 10)
	if len(cs) != 3 {
		t.Fatalf("claimed %d deliveries, want 3", len(cs))
	}
	var comps []core.Completion
	for i, c := range cs {
		var comp core.Completion
		switch i {
		case 0:
			comp = succeeded(c, "e", at.Add(time.Minute))
		case 1:
			comp = failed(c, "e", at.Add(2*time.Minute), core.DeliveryPending, at.Add(time.Hour))
		default:
			comp = failed(c, "e", at.Add(3*time.Minute), core.DeliveryFailed, time.Time{})
		}
		comp.ProjectID = c.ProjectID
		comps = append(comps, comp)
	}
	// No attempt: adds nothing.
	comps = append(comps, core.Completion{DeliveryID: "msg_none", Owner: "e", Status: core.DeliveryCancelled, ProjectID: b.p.ID})
	b.complete(comps...)

	rows, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, Since: at, Until: at.Add(time.Hour)})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if len(rows) != 2 || !rows[0].Start.Equal(at) || !rows[1].Start.Equal(at.Add(core.StatsBucket)) {
		t.Fatalf("Stats rows = %+v, want buckets %v and %v", rows, at, at.Add(core.StatsBucket))
	}
	var own, all core.StatsCounts // own: the 5-minute rows of the project's totals
	for _, r := range rows {
		own.Add(r.StatsCounts)
	}
	if own.Events != 2 {
		t.Errorf("events = %d, want 2 (the duplicate and the other project's are not counted)", own.Events)
	}
	var others []core.Completion
	for _, c := range comps {
		if c.ProjectID == b.p.ID && c.Attempt.Number != 0 {
			others = append(others, c)
		}
	}
	if got := own.Attempts(); got != int64(len(others)) {
		t.Errorf("attempts = %d, want %d", got, len(others))
	}

	// One step of an hour: the project's totals in one row.
	hour, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, Since: at, Until: at.Add(time.Hour), Step: time.Hour})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if len(hour) != 1 {
		t.Fatalf("hour rows = %+v, want 1", hour)
	}
	all = hour[0].StatsCounts
	if all.Events != 2 || all.Succeeded+all.Retrying+all.Failed != own.Attempts() {
		t.Errorf("hour = %+v, want 2 events and %d attempts", all, own.Attempts())
	}

	// The other project's totals: its event and attempt alone.
	theirs, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: other.ID, Since: at, Until: at.Add(time.Hour), Step: time.Hour})
	if err != nil || len(theirs) != 1 || theirs[0].Events != 1 || theirs[0].Attempts() != 1 {
		t.Errorf("other project = %+v, %v; want 1 event and 1 attempt", theirs, err)
	}

	// Latencies of all three attempts, by outcome: 1.5 ms (bucket 1) and
	// 2 ms twice (bucket 2).
	var both core.StatsCounts
	both.Add(all)
	both.Add(theirs[0].StatsCounts)
	if both.Succeeded != 1 || both.Retrying != 1 || both.Failed != 1 {
		t.Errorf("outcomes = %+v, want 1 succeeded, 1 retrying, 1 failed", both)
	}
	if both.Latency[1] != 1 || both.Latency[2] != 2 {
		t.Errorf("latency histogram = %v, want [1]=1 [2]=2", both.Latency)
	}
	if p50, ok := both.LatencyQuantile(0.5); !ok || p50 < time.Millisecond || p50 > 4*time.Millisecond {
		t.Errorf("p50 = %v, %v; want within [1ms, 4ms]", p50, ok)
	}

	// By webhook, and one webhook: the totals are not a webhook.
	byHook, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, Since: at, Until: at.Add(time.Hour), Step: time.Hour, ByWebhook: true})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if len(byHook) != 1 || byHook[0].WebhookID != w.ID || byHook[0].Attempts() != own.Attempts() || byHook[0].Events != 0 {
		t.Errorf("by webhook = %+v, want one row of %s with %d attempts", byHook, w.ID, own.Attempts())
	}
	// Without latency: the same counts, an empty histogram.
	counts, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, Since: at, Until: at.Add(time.Hour), Step: time.Hour, ByWebhook: true, NoLatency: true})
	if err != nil || len(counts) != 1 || counts[0].WebhookID != w.ID || counts[0].Attempts() != own.Attempts() {
		t.Errorf("by webhook without latency = %+v, %v; want one row of %s with %d attempts", counts, err, w.ID, own.Attempts())
	} else if counts[0].Latency != ([core.LatencyBuckets]int64{}) {
		t.Errorf("NoLatency returned a histogram: %v", counts[0].Latency)
	}
	one, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: other.ID, WebhookID: ow.ID, Since: at, Until: at.Add(time.Hour)})
	if err != nil || len(one) != 1 || one[0].Attempts() != 1 {
		t.Errorf("one webhook = %+v, %v; want its attempt", one, err)
	}

	// Outside the range: nothing.
	none, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, Since: at.Add(-time.Hour), Until: at})
	if err != nil || len(none) != 0 {
		t.Errorf("Stats before = %+v, %v; want none", none, err)
	}
}

// testStatsManyWebhooks: a completion batch that touches more rollup rows
// than a store writes in one statement (37 webhooks and the project's
// total: 38 rows, in each of two buckets) adds each attempt to its own
// webhook's row and to the total, new rows and existing ones alike, with
// rows of different counters (successes of one latency, retries of
// another) in one batch.
func testStatsManyWebhooks(t *testing.T, b *bundle) {
	const hooks = 37
	ws := make([]*core.Webhook, hooks)
	for i := range ws {
		ws[i] = b.webhook("")
	}
	odd := map[string]bool{}
	for i, w := range ws {
		odd[w.ID] = i%2 == 1
	}
	at := T0.Truncate(time.Hour).Add(time.Hour)
	for round := range 2 { // new rows, then the same rows again
		now := at.Add(time.Duration(round) * time.Minute)
		b.publish(NewEvent(b.p.ID, core.EventBatchSucceeded, now, ws...))
		b.publish(NewEvent(b.p.ID, core.EventBatchSucceeded, now.Add(core.StatsBucket), ws...))
		cs := b.claim("e", now.Add(time.Hour), 2*hooks)
		if len(cs) != 2*hooks {
			t.Fatalf("claimed %d deliveries, want %d", len(cs), 2*hooks)
		}
		comps := make([]core.Completion, len(cs))
		for i, c := range cs {
			at := c.CreateTime.Add(time.Second)
			if odd[c.WebhookID] { // rows of another shape in the same statements
				comps[i] = failed(c, "e", at, core.DeliveryPending, at.Add(48*time.Hour))
				comps[i].ProjectID = c.ProjectID
			} else {
				comps[i] = succeeded(c, "e", at)
			}
		}
		b.complete(comps...)
	}
	rows, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, Since: at, Until: at.Add(time.Hour),
		Step: time.Hour, ByWebhook: true})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if len(rows) != hooks {
		t.Fatalf("by webhook: %d rows, want %d", len(rows), hooks)
	}
	for _, r := range rows {
		want := core.StatsCounts{Succeeded: 4}
		want.Latency[1] = 4
		if odd[r.WebhookID] {
			want = core.StatsCounts{Retrying: 4}
			want.Latency[2] = 4
		}
		if r.StatsCounts != want {
			t.Errorf("webhook %s: %+v, want %+v", r.WebhookID, r.StatsCounts, want)
		}
	}
	total, err := b.s.Stats(b.ctx, core.StatsParams{ProjectID: b.p.ID, Since: at, Until: at.Add(time.Hour)})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	var sum core.StatsCounts
	for _, r := range total {
		sum.Add(r.StatsCounts)
	}
	const even = (hooks + 1) / 2
	if len(total) != 2 || sum.Events != 4 || sum.Succeeded != 4*even || sum.Latency[1] != 4*even ||
		sum.Retrying != 4*(hooks-even) || sum.Latency[2] != 4*(hooks-even) || sum.Failed != 0 {
		t.Errorf("totals = %+v (%d rows), want 2 buckets, 4 events, %d successes (1.5 ms), %d retrying (2 ms)",
			sum, len(total), 4*even, 4*(hooks-even))
	}
}
