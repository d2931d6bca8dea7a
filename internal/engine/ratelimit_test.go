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
		before, quiet := slow.count(), time.Now().Add(20*time.Millisecond)
		for slow.count() == before && time.Now().Before(quiet) {
			time.Sleep(time.Millisecond)
		}
		if slow.count() == before {
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
