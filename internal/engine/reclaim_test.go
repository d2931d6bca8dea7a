package engine

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// TestReclaimBeforeFinishedIsANewAttempt (issue 14, the soak's lost
// flapping deliveries): an attempt's result is written, its retry falls
// due and the claim takes the delivery again — all before the attempt's
// goroutine got round to finished. The second claim used to be taken for
// the first attempt ("already ours") and dropped, so the delivery sat
// leased, unattempted, until its lease ran out (60 s in the soak; an hour
// here): the second attempt must come at once.
func TestReclaimBeforeFinishedIsANewAttempt(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	b := setup(t, setupOpts{lease: time.Hour})
	w, _ := b.webhook(rec.srv.URL + "/hook")
	// A first event makes the destination known (an unknown one gets one
	// attempt at a time until it answers).
	b.publish(`{"id":"batches/warm-up"}`)
	waitFor(t, "the first event delivered", func() bool {
		ds := b.deliveries(w.ID)
		return len(ds) == 1 && ds[0].Status == core.DeliverySucceeded
	})
	var results, starts atomic.Int64
	restarted := make(chan struct{})
	b.engine.mu.Lock()
	b.engine.onStart = func(*task) {
		if starts.Add(1) == 2 { // the retry of the event below
			close(restarted)
		}
	}
	b.engine.afterResult = func(*task) {
		if results.Add(1) != 1 {
			return
		}
		// Hold the first attempt's goroutine here until its result is in
		// the store and the delivery, due again, has been claimed again.
		waitFor(t, "the first result written", func() bool {
			d := b.delivery(w.ID, "batches/reclaim")
			return d != nil && d.Attempts == 1 && d.LeaseOwner == ""
		})
		waitFor(t, "the delivery claimed again", func() bool {
			// The 5 s retry falls due; the fake clock moves on while the
			// claim loop waits on its timers (the lease is an hour). The
			// new attempt may be done and written between two looks (a
			// few ms on a loaded machine): succeeded counts as claimed.
			b.clock.Advance(time.Second)
			d := b.delivery(w.ID, "batches/reclaim")
			return d != nil && (d.LeaseOwner != "" || d.Status == core.DeliverySucceeded)
		})
		// Keep holding until the claim has handed the delivery on: a new
		// attempt starts (or, on the old code, never does).
		select {
		case <-restarted:
		case <-time.After(5 * time.Second):
		}
	}
	b.engine.mu.Unlock()
	b.publish(`{"id":"batches/reclaim"}`)
	waitFor(t, "the second attempt, at once rather than after the lease", func() bool {
		d := b.delivery(w.ID, "batches/reclaim")
		return d != nil && d.Status == core.DeliverySucceeded
	})
	if got := n.Load(); got != 3 {
		t.Errorf("receiver saw %d requests, want 3", got)
	}
}

// delivery returns webhookID's delivery of the event whose data.id is
// id, nil before it exists.
func (b *bundle) delivery(webhookID, id string) *core.Delivery {
	b.t.Helper()
	for _, d := range b.deliveries(webhookID) {
		ev, err := b.store.GetEvent(context.Background(), b.project, d.EventID)
		if err != nil {
			b.t.Fatal(err)
		}
		if strings.Contains(string(ev.Payload), `"id":"`+id+`"`) {
			return d
		}
	}
	return nil
}
