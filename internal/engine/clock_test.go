package engine

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// waitAttempt nudges the fake clock forward by the safety poll until
// delivery id has n attempts recorded.
func (b *bundle) waitAttempt(id string, n int) (*core.Delivery, []core.Attempt) {
	b.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		d, as, err := b.store.GetDelivery(context.Background(), b.project, id)
		if err != nil {
			b.t.Fatal(err)
		}
		if len(as) >= n {
			return d, as
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("attempt %d never came", n)
		}
		b.clock.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
}

// Wall-clock jumps (a fake clock set back and forth): a retry scheduled
// before the clock went back an hour still comes at its time; a jump
// forward makes due retries run at once; 23 hours after the first
// attempt the delivery is still retried (the 24 h horizon has not
// passed), and after the clock goes back again the retry at the horizon
// still comes and delivers.
func TestClockJumps(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var healthy atomic.Bool
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	w, _ := b.webhook(rec.srv.URL)
	b.publish(`{}`)
	id := b.deliveries(w.ID)[0].ID
	d, _ := b.attemptsOf(id, 1)
	start := d.ScheduleStart

	// Back an hour: the retry keeps its time and comes then.
	b.clock.Set(b.clock.Now().Add(-time.Hour))
	b.retryNow(d, 2)

	// Forward to 23 h after the start: the due retry runs at once, fails,
	// and is retried again before the horizon.
	b.clock.Set(start.Add(23 * time.Hour))
	d, as := b.waitAttempt(id, 3)
	waitFor(t, "the third attempt's outcome", func() bool {
		var err error
		d, as, err = b.store.GetDelivery(context.Background(), b.project, id)
		return err == nil && d.Attempts == 3
	})
	if d.Status != core.DeliveryPending || d.NextAttemptTime.After(start.Add(24*time.Hour)) {
		t.Fatalf("23 h after the start: %s, next attempt %v; want pending, at the latest at the 24 h horizon %v",
			d.Status, d.NextAttemptTime, start.Add(24*time.Hour))
	}

	// Back two hours again; the receiver recovers. The scheduled retry
	// still comes when the clock reaches it, and delivers.
	b.clock.Set(b.clock.Now().Add(-2 * time.Hour))
	healthy.Store(true)
	d, as = b.retryNow(d, 4)
	waitFor(t, "the delivery settles", func() bool {
		var err error
		d, as, err = b.store.GetDelivery(context.Background(), b.project, id)
		return err == nil && d.Status != core.DeliveryPending
	})
	if d.Status != core.DeliverySucceeded || len(as) != 4 {
		t.Fatalf("after the jumps: %s with %d attempts; want succeeded with 4", d.Status, len(as))
	}
}
