package engine

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// A webhook that fails for 24 h (and at least 5 times) is disabled by the
// leader's maintenance round; events for it are then recorded as skipped,
// and after re-enabling, :recover delivers them.
func TestAutoDisableAndRecover(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	var healthy atomic.Bool
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			w.WriteHeader(200)
			return
		}
		w.WriteHeader(500)
	})
	w, _ := b.webhook(rec.srv.URL)
	m := NewMaintenance(MaintenanceConfig{Store: b.store, Clock: b.clock})
	b.publish(`{"n":1}`)
	var first string
	waitFor(t, "delivery", func() bool {
		if ds := b.deliveries(w.ID); len(ds) == 1 {
			first = ds[0].ID
		}
		return first != ""
	})
	// Drive it through the whole day of retries: 11 failures over 24 h.
	if d, _ := b.drive(first); d.Status != core.DeliveryFailed {
		t.Fatalf("status %s, want failed", d.Status)
	}
	m.round(ctx)
	got, _ := b.store.GetWebhook(ctx, b.project, w.ID)
	if got.State != core.WebhookDisabledDueToFailedDeliveries {
		t.Fatalf("state %s, want disabled_due_to_failed_deliveries", got.State)
	}
	// While disabled, events are recorded as skipped.
	// (The publisher's webhook cache may still say "enabled" for a moment;
	// the engine then skips the delivery instead of sending it.)
	b.publish(`{"n":2}`)
	waitFor(t, "the new delivery recorded as skipped", func() bool {
		ds := b.deliveries(w.ID)
		return len(ds) == 2 && ds[0].Status == core.DeliverySkipped && ds[0].Attempts == 0
	})
	// Re-enable, then recover everything since the start.
	healthy.Store(true)
	if _, err := b.store.UpdateWebhook(ctx, b.project, w.ID, func(w *core.Webhook) error { w.State = core.WebhookEnabled; return nil }); err != nil {
		t.Fatal(err)
	}
	since := b.clock.Now().Add(-48 * time.Hour)
	n, next, err := b.store.RecoverDeliveries(ctx, core.RecoverParams{ProjectID: b.project, WebhookID: w.ID, Since: since, Until: b.clock.Now().Add(time.Second), OnlyFailed: true, Limit: 100, DryRun: true, Now: b.clock.Now()})
	if err != nil || n != 2 || next != "" {
		t.Fatalf("dry run = %d, %q, %v; want 2", n, next, err)
	}
	if n, _, err = b.store.RecoverDeliveries(ctx, core.RecoverParams{ProjectID: b.project, WebhookID: w.ID, Since: since, Until: b.clock.Now().Add(time.Second), OnlyFailed: true, Limit: 100, Now: b.clock.Now()}); err != nil || n != 2 {
		t.Fatalf("recover = %d, %v", n, err)
	}
	waitFor(t, "recovered deliveries succeed", func() bool {
		ds := b.deliveries(w.ID)
		return ds[0].Status == core.DeliverySucceeded && ds[1].Status == core.DeliverySucceeded
	})
}

// One slow and one failing destination do not hold up a healthy one: every
// event reaches the healthy webhook while the others hang or fail.
func TestIsolation(t *testing.T) {
	t.Parallel()
	// The slow destination never answers during the test (its attempts outlive
	// it), so the receiver sees exactly the attempts the engine has in flight.
	b := setup(t, setupOpts{attemptTimeout: time.Minute, perDest: 4, workers: 16})
	release := make(chan struct{})
	defer close(release)
	var cur, peak atomic.Int64
	slow := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if n := cur.Add(1); n > peak.Load() {
			peak.Store(n)
		}
		defer cur.Add(-1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	failing := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	good := newRecorder(t, nil)
	b.webhook(slow.srv.URL)
	b.webhook(failing.srv.URL)
	b.webhook(good.srv.URL)
	const n = 200
	for i := range n {
		b.publish(`{"i":` + strconv.Itoa(i) + `}`)
	}
	waitFor(t, "every event at the healthy webhook", func() bool { return good.count() >= n })
	if p := peak.Load(); p > 4 {
		t.Fatalf("slow destination had %d attempts in flight, cap is 4", p)
	}
}

// A delivery claimed by an engine that died is reclaimed by another once
// the lease expires.
func TestLeaseExpiryReclaims(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.stop() // no engine running; we play the dead one by hand
	ctx := context.Background()
	rec := newRecorder(t, nil)
	w, _ := b.webhook(rec.srv.URL)
	b.publish(`{}`)
	claimed, err := b.store.ClaimDeliveries(ctx, core.ClaimParams{Owner: "dead", Now: b.clock.Now(), Limit: 10, Lease: time.Minute})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %d", err, len(claimed))
	}
	e := New(Config{Store: b.store, Cipher: b.box, Clock: b.clock, Owner: "alive",
		Sender: NewSender(SenderConfig{Policy: core.AddressPolicy{Dev: true}})})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	if n, _, _ := e.claimOnce(ctx); n != 0 {
		t.Fatalf("claimed %d deliveries still leased to a live-looking owner", n)
	}
	b.clock.Advance(61 * time.Second)
	<-rec.got
	waitFor(t, "reclaimed delivery succeeds", func() bool {
		ds := b.deliveries(w.ID)
		return ds[0].Status == core.DeliverySucceeded
	})
}

// With more due deliveries than worker slots, the claim loop claims again
// as slots free up: it waits for them (the test's clock never fires its
// poll timer), and is woken by attempts ending only then.
func TestClaimsAgainAsSlotsFree(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: 2, perDest: 8}) // slots, not the cap, hold it back
	rec := newRecorder(t, nil)
	w, _ := b.webhook(rec.srv.URL)
	const n = 50
	for i := range n {
		b.publish(`{"i":` + strconv.Itoa(i) + `}`)
	}
	waitFor(t, "every delivery succeeded", func() bool {
		for _, d := range b.deliveries(w.ID) {
			if d.Status != core.DeliverySucceeded {
				return false
			}
		}
		return true
	})
	if got := rec.count(); got < n {
		t.Fatalf("receiver got %d requests, want %d", got, n)
	}
}
