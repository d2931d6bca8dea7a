package engine

import (
	"context"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// TestRateLimit: on a fake clock, a webhook limited to 10/s with a burst
// of 2 never receives more than 2 + 10 × (elapsed fake seconds), gets
// every event in the end, and its backlog waits in the store (pending,
// no attempts); an unlimited webhook gets all its events at once.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	slow := newRecorder(t, nil)
	fast := newRecorder(t, nil)
	limited, _ := b.webhook(slow.srv.URL)
	if _, err := b.store.UpdateWebhook(context.Background(), b.project, limited.ID, func(w *core.Webhook) error {
		w.RateLimit = &core.RateLimit{PerSecond: 10, Burst: 2}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.engine.WebhooksChanged()
	b.webhook(fast.srv.URL)
	const n = 20
	for range n {
		b.publish(`{"x":1}`)
	}
	start := b.clock.Now()
	waitFor(t, "the unlimited webhook's events with the clock stopped", func() bool { return fast.count() == n })
	if got := slow.count(); got > 2 {
		t.Fatalf("limited webhook got %d with no time passed, want at most the burst 2", got)
	}
	// The backlog is in the store, not in memory.
	waitFor(t, "the deferred deliveries written", func() bool {
		waiting := 0
		for _, d := range b.deliveries(limited.ID) {
			if d.Status == core.DeliveryPending && d.Attempts == 0 && d.NextAttemptTime.After(start) {
				waiting++
			}
		}
		return waiting >= 1
	})

	deadline := time.Now().Add(30 * time.Second)
	for slow.count() < n {
		elapsed := b.clock.Now().Sub(start)
		if bound := 2 + int(10*elapsed.Seconds()+1e-9); slow.count() > bound {
			t.Fatalf("limited webhook got %d after %v of fake time, over the limit %d", slow.count(), elapsed, bound)
		}
		if time.Now().After(deadline) {
			t.Fatalf("limited webhook got %d of %d after %v of fake time", slow.count(), n, elapsed)
		}
		// Move the fake clock on once the engine has done what it can.
		b.waitsOnClock()
		if slow.count() < n {
			b.clock.Advance(25 * time.Millisecond)
		}
	}
	if elapsed := b.clock.Now().Sub(start); elapsed < 1800*time.Millisecond {
		t.Fatalf("20 deliveries at 10/s, burst 2 took %v of fake time, want ≥ 1.8 s", elapsed)
	}
	waitFor(t, "every result written", func() bool {
		for _, d := range b.deliveries(limited.ID) {
			if d.Status != core.DeliverySucceeded {
				return false
			}
		}
		return true
	})
	for _, d := range b.deliveries(limited.ID) {
		if d.Attempts != 1 {
			t.Fatalf("delivery %s has %d attempts; deferrals must not count", d.ID, d.Attempts)
		}
	}
}

// TestSlowRateLimitKeepsPace: a limit slower than the take-ahead window
// (2/s, burst 1) delivers at its rate. Each send that starts a little
// after its token moves the bucket's schedule on by that much, while the
// deferred deliveries stay due on the earlier schedule; one claimed a few
// milliseconds before its token used to be deferred again to the back of
// the queue, leaving the token unused (at 1/s and 2/s real runs delivered
// at 65-70 % of the limit). The clock moves in 30 ms steps, so sends are
// late by up to 30 ms, as a claim loop's wake-up is.
func TestSlowRateLimitKeepsPace(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	rec := newRecorder(t, nil)
	limited, _ := b.webhook(rec.srv.URL)
	if _, err := b.store.UpdateWebhook(context.Background(), b.project, limited.ID, func(w *core.Webhook) error {
		w.RateLimit = &core.RateLimit{PerSecond: 2, Burst: 1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.engine.WebhooksChanged()
	const n = 8
	for range n {
		b.publish(`{"x":1}`)
	}
	start := b.clock.Now()
	deadline := time.Now().Add(60 * time.Second)
	for rec.count() < n {
		elapsed := b.clock.Now().Sub(start)
		if bound := 1 + int(2*elapsed.Seconds()+1e-9); rec.count() > bound {
			t.Fatalf("got %d after %v of fake time, over the limit %d", rec.count(), elapsed, bound)
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d after %v of fake time", rec.count(), n, elapsed)
		}
		b.waitsOnClock()
		if rec.count() < n {
			b.clock.Advance(30 * time.Millisecond)
		}
	}
	// 8 deliveries at 2/s: 3.5 s, plus at most 30 ms of lateness each.
	if elapsed := b.clock.Now().Sub(start); elapsed > 3500*time.Millisecond+n*30*time.Millisecond {
		t.Fatalf("%d deliveries at 2/s took %v of fake time, want at most 3.74 s", n, elapsed)
	}
}
