package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

func testClaim(t *testing.T, b *bundle) {
	w := b.webhook("")
	ds := b.events(5, T0, w)
	c1 := b.claim("a", T0.Add(time.Second), 3)
	if len(c1) != 3 {
		t.Fatalf("claim limit 3: got %d", len(c1))
	}
	c2 := b.claim("b", T0.Add(time.Second), 10)
	if len(c2) != 2 {
		t.Fatalf("second claim: got %d, want the remaining 2", len(c2))
	}
	all := claimedIDs(append(c1, c2...))
	wantEqual(t, "claimed ids", all, deliveryIDs(ds))
	if got := b.claim("c", T0.Add(2*time.Second), 10); len(got) != 0 {
		t.Errorf("leased deliveries claimed again: %d", len(got))
	}
	if got, err := b.s.ClaimDeliveries(b.ctx, core.ClaimParams{Owner: "d", Now: T0, Lease: time.Minute}); err != nil || len(got) != 0 {
		t.Errorf("claim with Limit 0 = %d, %v", len(got), err)
	}
}

func testClaimNotDue(t *testing.T, b *bundle) {
	w := b.webhook("")
	ds := b.events(1, T0.Add(time.Minute), w)
	if got := b.claim("a", T0.Add(time.Minute-time.Microsecond), 10); len(got) != 0 {
		t.Fatalf("claimed a delivery before it was due")
	}
	got := b.claim("a", T0.Add(time.Minute), 10) // due exactly now
	if len(got) != 1 || got[0].ID != ds[0].ID {
		t.Fatalf("claim at due time: got %d", len(got))
	}
}

func count(cs []core.Claimed, in map[string]bool) int {
	n := 0
	for _, c := range cs {
		if in[c.ID] {
			n++
		}
	}
	return n
}

func testClaimFirstAttemptsFirst(t *testing.T, b *bundle) {
	w := b.webhook("")
	retries := deliveryIDs(b.retries(10, T0.Add(-30*time.Minute), w)) // due before the first attempts
	firsts := deliveryIDs(b.events(6, T0, w))

	got := b.claim("a", T0.Add(time.Second), 8)
	if len(got) != 8 {
		t.Fatalf("claimed %d, want 8", len(got))
	}
	if n := count(got, firsts); n != 6 {
		t.Errorf("claimed %d first attempts of 6 due (limit 8, 10 older retries due)", n)
	}
	if n := count(got, retries); n != 2 {
		t.Errorf("claimed %d retries, want the remaining 2", n)
	}

	// Fewer first attempts than the batch: retries fill the remainder.
	firsts = deliveryIDs(b.events(3, T0.Add(time.Second), w))
	got = b.claim("a", T0.Add(2*time.Second), 8)
	if n := count(got, firsts); n != 3 {
		t.Errorf("claimed %d of 3 first attempts", n)
	}
	if n := count(got, retries); n != 5 {
		t.Errorf("claimed %d retries, want 5 to fill the batch", n)
	}
}

func testClaimRetryShare(t *testing.T, b *bundle) {
	w := b.webhook("")
	retries := deliveryIDs(b.retries(20, T0.Add(-30*time.Minute), w))
	firsts := deliveryIDs(b.events(40, T0, w))

	const limit = 8
	got := b.claim("a", T0.Add(time.Second), limit)
	if len(got) != limit {
		t.Fatalf("claimed %d, want %d", len(got), limit)
	}
	if n := count(got, retries); n < limit/4 {
		t.Errorf("retries got %d of a batch of %d, want at least a quarter", n, limit)
	}
	if n := count(got, firsts); n < limit-(limit+3)/4 {
		t.Errorf("first attempts got %d of a batch of %d, want the rest", n, limit)
	}

	// Batches of one (an engine with one free slot at a time) must still
	// give retries a quarter of the slots.
	var ones []core.Claimed
	for range 8 {
		ones = append(ones, b.claim("a", T0.Add(time.Second), 1)...)
	}
	if len(ones) != 8 {
		t.Fatalf("8 claims of 1 returned %d", len(ones))
	}
	if n := count(ones, retries); n < 2 {
		t.Errorf("8 claims of 1: retries got %d slots, want at least 2", n)
	}
	if n := count(ones, firsts); n < 4 {
		t.Errorf("8 claims of 1: first attempts got %d slots, want most", n)
	}
}

func testClaimExcludeDests(t *testing.T, b *bundle) {
	w1, w2 := b.webhook(""), b.webhook("")
	b.events(3, T0, w1, w2)
	dyn := NewDynamicEvent(b.p.ID, T0, "https://a.example/h", "https://b.example/h")
	b.publish(dyn)

	excluded := core.DynamicDest(b.p.ID, "https://a.example/h")
	got := b.claim("a", T0.Add(time.Second), 100, w1.ID, excluded)
	if len(got) != 4 {
		t.Fatalf("claimed %d, want 4 (w2's three and b.example)", len(got))
	}
	for _, c := range got {
		if c.Dest == w1.ID || c.Dest == excluded {
			t.Errorf("claimed excluded destination %s", c.Dest)
		}
	}
	// The excluded ones are still due.
	if got := b.claim("a", T0.Add(time.Second), 100); len(got) != 4 {
		t.Errorf("claim without exclusions: %d, want 4", len(got))
	}
}

func testLeaseExpiry(t *testing.T, b *bundle) {
	w := b.webhook("")
	ds := b.events(1, T0, w)
	a := b.claim("a", T0, 1)
	if len(a) != 1 {
		t.Fatalf("claim: %d", len(a))
	}
	if got := b.claim("b", T0.Add(30*time.Second), 1); len(got) != 0 {
		t.Fatalf("claimed while the lease is held")
	}
	bc := b.claim("b", T0.Add(61*time.Second), 1) // lease (1 min) expired
	if len(bc) != 1 || bc[0].ID != ds[0].ID {
		t.Fatalf("expired lease: claimed %d, want the delivery", len(bc))
	}
	if !bc[0].ScheduleStart.Equal(T0) || bc[0].Attempts != 0 {
		t.Errorf("re-claimed delivery changed: %+v", bc[0].Delivery)
	}

	// a finishes late: its attempt is recorded and counted, the delivery
	// is b's.
	b.complete(succeeded(a[0], "a", T0.Add(62*time.Second)))
	d, as := b.delivery(ds[0].ID)
	if d.Status != core.DeliveryPending || d.Attempts != 1 {
		t.Errorf("stale completion changed the delivery: status %s attempts %d", d.Status, d.Attempts)
	}
	if len(as) != 1 || as[0].StatusCode != 200 {
		t.Errorf("stale completion's attempt not recorded: %+v", as)
	}
	if got := b.claim("c", T0.Add(63*time.Second), 1); len(got) != 0 {
		t.Errorf("stale completion released b's lease")
	}

	b.complete(failed(bc[0], "b", T0.Add(64*time.Second), core.DeliveryPending, T0.Add(10*time.Minute)))
	d, as = b.delivery(ds[0].ID)
	if d.Status != core.DeliveryPending || d.Attempts != 2 || len(as) != 2 || as[0].Number == as[1].Number {
		t.Errorf("owner's completion: status %s attempts %d rows %d %+v", d.Status, d.Attempts, len(as), as)
	}
	wantTime(t, "NextAttemptTime", d.NextAttemptTime, T0.Add(10*time.Minute))
}

func testComplete(t *testing.T, b *bundle) {
	w := b.webhook("")
	b.events(4, T0, w)
	cs := b.claim("e", T0, 4)
	if len(cs) != 4 {
		t.Fatalf("claimed %d", len(cs))
	}
	at := T0.Add(time.Second)
	ok := succeeded(cs[0], "e", at)
	retry := failed(cs[1], "e", at, core.DeliveryPending, T0.Add(5*time.Second))
	dead := failed(cs[2], "e", at, core.DeliveryFailed, time.Time{})
	dead.Attempt.StatusCode, dead.Attempt.Error = 410, "gone: HTTP 410"
	noOwner := succeeded(cs[3], "", at) // an empty owner holds no lease
	b.complete(ok, retry, dead, noOwner)

	check := func(c core.Completion, status core.DeliveryStatus, attempts int) {
		t.Helper()
		d, as := b.delivery(c.DeliveryID)
		if d.Status != status || d.Attempts != attempts {
			t.Errorf("%s: status %s attempts %d, want %s %d", c.DeliveryID, d.Status, d.Attempts, status, attempts)
		}
		if c.Owner != "" && (d.LastStatusCode != c.Attempt.StatusCode || d.LastError != c.Attempt.Error) {
			t.Errorf("%s: last %d %q, want %d %q", c.DeliveryID, d.LastStatusCode, d.LastError,
				c.Attempt.StatusCode, c.Attempt.Error)
		}
		if status != core.DeliveryPending && !d.NextAttemptTime.IsZero() {
			t.Errorf("%s: finished delivery has NextAttemptTime %v", c.DeliveryID, d.NextAttemptTime)
		}
		if len(as) != 1 {
			t.Fatalf("%s: %d attempts recorded, want 1", c.DeliveryID, len(as))
		}
		wantEqual(t, "attempt", as[0], c.Attempt)
	}
	check(ok, core.DeliverySucceeded, 1)
	check(retry, core.DeliveryPending, 1)
	check(dead, core.DeliveryFailed, 1)
	check(noOwner, core.DeliveryPending, 1) // counted, not applied

	d, _ := b.delivery(retry.DeliveryID)
	wantTime(t, "retry NextAttemptTime", d.NextAttemptTime, T0.Add(5*time.Second))
	if got := b.claim("e", T0.Add(5*time.Second-time.Microsecond), 10); len(got) != 0 {
		t.Errorf("claimed %d before the retry was due", len(got))
	}
	// The retry (and the noOwner one once its lease expires) come back;
	// finished deliveries never do.
	got := b.claim("e", T0.Add(2*time.Minute), 10)
	wantEqual(t, "claimable after completion", claimedIDs(got),
		map[string]bool{retry.DeliveryID: true, noOwner.DeliveryID: true})
	for _, c := range got {
		if c.ID == retry.DeliveryID && c.Attempts != 1 {
			t.Errorf("retry claimed with Attempts %d, want 1", c.Attempts)
		}
	}
	if err := b.s.CompleteDeliveries(b.ctx, nil); err != nil {
		t.Errorf("CompleteDeliveries(nil): %v", err)
	}
}

func testFailureRun(t *testing.T, b *bundle) {
	w, w2 := b.webhook(""), b.webhook("")
	b.events(12, T0, w)
	b.events(2, T0, w2)
	dyn := NewDynamicEvent(b.p.ID, T0, "https://a.example/h")
	b.publish(dyn)
	cs := b.claim("e", T0, 100)
	var mine, other []core.Claimed
	var dynamic core.Claimed
	for _, c := range cs {
		switch c.WebhookID {
		case w.ID:
			mine = append(mine, c)
		case w2.ID:
			other = append(other, c)
		default:
			dynamic = c
		}
	}
	if len(mine) != 12 || len(other) != 2 || dynamic.ID == "" {
		t.Fatalf("claimed %d/%d/%q", len(mine), len(other), dynamic.ID)
	}
	sec := func(n int) time.Time { return T0.Add(time.Duration(n) * time.Second) }
	fail := func(c core.Claimed, at time.Time) core.Completion {
		return failed(c, "e", at, core.DeliveryPending, T0.Add(time.Hour))
	}
	run := func(id string, failures int, since time.Time) {
		t.Helper()
		got := b.getWebhook(id)
		if got.ConsecutiveFailures != failures || !got.FailingSince.Equal(since) {
			t.Errorf("run of %s: %d failures since %v, want %d since %v", id[:6],
				got.ConsecutiveFailures, got.FailingSince, failures, since)
		}
	}

	b.complete(fail(mine[0], sec(2)), fail(mine[1], sec(1)), fail(mine[2], sec(3)),
		succeeded(other[0], "e", sec(1)), fail(dynamic, sec(1)))
	run(w.ID, 3, sec(1))
	run(w2.ID, 0, time.Time{})

	b.complete(fail(mine[3], sec(10)), fail(mine[4], sec(11)), fail(other[1], sec(12)))
	run(w.ID, 5, sec(1)) // the run continues; its start is kept
	run(w2.ID, 1, sec(12))

	b.complete(fail(mine[5], sec(20)), succeeded(mine[6], "e", sec(21)))
	run(w.ID, 0, time.Time{}) // a success after the batch's failures ends the run

	// A success followed by failures within one batch (in any order) starts
	// a new run at the first failure after the success.
	b.complete(fail(mine[7], sec(32)), succeeded(mine[8], "e", sec(30)), fail(mine[9], sec(31)))
	run(w.ID, 2, sec(31))

	// Failures before a later success in the same batch do not count.
	b.complete(fail(mine[10], sec(40)), succeeded(mine[11], "e", sec(41)))
	run(w.ID, 0, time.Time{})
}

func testDisableOnGone(t *testing.T, b *bundle) {
	w := b.webhook("")
	b.events(1, T0, w)
	cs := b.claim("e", T0, 1)
	c := failed(cs[0], "e", T0.Add(time.Second), core.DeliveryFailed, time.Time{})
	c.Attempt.StatusCode, c.DisableWebhook = 410, true
	b.complete(c)
	if got := b.getWebhook(w.ID); got.State != core.WebhookDisabledDueToFailedDeliveries {
		t.Errorf("state after 410 = %s, want disabled_due_to_failed_deliveries", got.State)
	}
}

func testRelease(t *testing.T, b *bundle) {
	w := b.webhook("")
	b.events(2, T0, w)
	cs := b.claim("a", T0.Add(time.Second), 2)
	if len(cs) != 2 {
		t.Fatalf("claimed %d", len(cs))
	}
	if err := b.s.ReleaseDeliveries(b.ctx, "b", []string{cs[0].ID}); err != nil {
		t.Fatalf("ReleaseDeliveries(other owner): %v", err)
	}
	if got := b.claim("c", T0.Add(2*time.Second), 10); len(got) != 0 {
		t.Fatalf("a release by a non-owner freed a lease")
	}
	if err := b.s.ReleaseDeliveries(b.ctx, "a", []string{cs[0].ID}); err != nil {
		t.Fatalf("ReleaseDeliveries: %v", err)
	}
	next, ok, err := b.s.NextDueTime(b.ctx)
	if err != nil || !ok || next.After(T0.Add(2*time.Second)) {
		t.Errorf("NextDueTime after release = %v, %v, %v; want due now", next, ok, err)
	}
	got := b.claim("c", T0.Add(2*time.Second), 10)
	if len(got) != 1 || got[0].ID != cs[0].ID || got[0].Attempts != 0 {
		t.Fatalf("after release: claimed %+v, want the released delivery", got)
	}
	if err := b.s.ReleaseDeliveries(b.ctx, "a", nil); err != nil {
		t.Errorf("ReleaseDeliveries(nil): %v", err)
	}
}

func testNextDueTime(t *testing.T, b *bundle) {
	next := func(want time.Time) {
		t.Helper()
		got, ok, err := b.s.NextDueTime(b.ctx)
		if err != nil {
			t.Fatalf("NextDueTime: %v", err)
		}
		if want.IsZero() {
			if ok {
				t.Errorf("NextDueTime = %v, want none", got)
			}
			return
		}
		if !ok || !got.Equal(want) {
			t.Errorf("NextDueTime = %v, %v; want %v", got, ok, want)
		}
	}
	next(time.Time{})
	w := b.webhook("")
	b.events(1, T0.Add(2*time.Minute), w)
	early := b.events(1, T0.Add(time.Minute), w)
	next(T0.Add(time.Minute))

	cs, err := b.s.ClaimDeliveries(b.ctx, core.ClaimParams{Owner: "a", Now: T0.Add(time.Minute), Limit: 10, Lease: 30 * time.Second})
	if err != nil || len(cs) != 1 || cs[0].ID != early[0].ID {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	next(T0.Add(90 * time.Second)) // the lease expiry comes first
	b.complete(succeeded(cs[0], "a", T0.Add(61*time.Second)))
	next(T0.Add(2 * time.Minute))

	// Retries count as well.
	b.retries(1, T0.Add(100*time.Second), w)
	next(T0.Add(100 * time.Second))
}

func testQueueDepth(t *testing.T, b *bundle) {
	w := b.webhook("")
	depth := func(now time.Time, due, scheduled int) {
		t.Helper()
		got, err := b.s.QueueDepth(b.ctx, now)
		if err != nil {
			t.Fatalf("QueueDepth: %v", err)
		}
		wantEqual(t, "QueueDepth", got, core.QueueDepth{Due: due, Scheduled: scheduled})
	}
	depth(T0, 0, 0)
	b.events(3, T0, w)
	b.events(2, T0.Add(time.Hour), w)
	skipped := NewEvent(b.p.ID, core.EventBatchSucceeded, T0, w)
	skipped.Deliveries[0].Status = core.DeliverySkipped
	b.publish(skipped)
	depth(T0.Add(time.Second), 3, 2)

	cs := b.claim("a", T0.Add(time.Second), 1)
	depth(T0.Add(2*time.Second), 3, 2) // leased counts as due
	b.complete(succeeded(cs[0], "a", T0.Add(2*time.Second)))
	depth(T0.Add(2*time.Second), 2, 2)
	depth(T0.Add(2*time.Hour), 4, 0)
}

func testCompleteWithoutAttempt(t *testing.T, b *bundle) {
	w := b.webhook("")
	b.events(2, T0, w)
	// Give w a failure run that a closing without attempt must not touch.
	b.retries(1, T0.Add(time.Hour), w)
	before := b.getWebhook(w.ID)
	cs := b.claim("e", T0.Add(time.Second), 10)
	if len(cs) != 2 {
		t.Fatalf("claimed %d", len(cs))
	}
	b.complete(
		core.Completion{DeliveryID: cs[0].ID, Owner: "e", Status: core.DeliveryCancelled, WebhookID: w.ID},
		core.Completion{DeliveryID: cs[1].ID, Owner: "e", Status: core.DeliverySkipped, WebhookID: w.ID},
	)
	for i, want := range []core.DeliveryStatus{core.DeliveryCancelled, core.DeliverySkipped} {
		d, as := b.delivery(cs[i].ID)
		if d.Status != want || d.Attempts != 0 || len(as) != 0 || !d.NextAttemptTime.IsZero() {
			t.Errorf("closed without attempt: status %s attempts %d rows %d next %v; want %s, none",
				d.Status, d.Attempts, len(as), d.NextAttemptTime, want)
		}
	}
	after := b.getWebhook(w.ID)
	if after.ConsecutiveFailures != before.ConsecutiveFailures || !after.FailingSince.Equal(before.FailingSince) {
		t.Errorf("failure run changed by completions without attempts: %d/%v -> %d/%v",
			before.ConsecutiveFailures, before.FailingSince, after.ConsecutiveFailures, after.FailingSince)
	}
	if got := b.claim("e", T0.Add(2*time.Hour), 10); len(got) != 1 {
		t.Errorf("claimable after closing: %d, want only the retry", len(got))
	}
}

func testPublishLeased(t *testing.T, b *bundle) {
	w := b.webhook("")
	until := T0.Add(time.Minute)
	ne := NewEvent(b.p.ID, core.EventBatchSucceeded, T0, w, b.webhook(""))
	for i := range ne.Deliveries {
		ne.Deliveries[i].LeaseOwner = "direct"
		ne.Deliveries[i].NextAttemptTime = until
	}
	b.publish(ne)
	if got := b.claim("other", T0.Add(time.Second), 10); len(got) != 0 {
		t.Fatalf("claimed %d deliveries inserted already leased", len(got))
	}
	depth, err := b.s.QueueDepth(b.ctx, T0.Add(time.Second))
	if err != nil || depth.Due != 2 {
		t.Errorf("QueueDepth = %+v, %v; leased deliveries count as due", depth, err)
	}
	// The lease holder completes one.
	c0 := core.Claimed{Delivery: ne.Deliveries[0]}
	b.complete(succeeded(c0, "direct", T0.Add(2*time.Second)))
	if d, _ := b.delivery(c0.ID); d.Status != core.DeliverySucceeded || d.Attempts != 1 {
		t.Errorf("completion by the pre-lease owner: status %s attempts %d", d.Status, d.Attempts)
	}
	// The other one's lease expires: another engine takes it.
	got := b.claim("other", until, 10)
	if len(got) != 1 || got[0].ID != ne.Deliveries[1].ID {
		t.Fatalf("after the lease expired: claimed %d", len(got))
	}
	if !bytes.Equal(got[0].Payload, ne.Event.Payload) {
		t.Errorf("claimed without its payload")
	}
}
