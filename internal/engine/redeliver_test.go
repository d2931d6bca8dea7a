package engine

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// A manual :redeliver of a delivery that is still retrying sends it now,
// and when that attempt fails too the delivery keeps its automatic
// schedule: it goes on retrying to the 24 h horizon. (It was made manual,
// so the failed resend ended it as failed after two attempts, and the
// event was never delivered once the destination came back.)
func TestRedeliverOfARetryingDeliveryKeepsItsSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	w, _ := b.webhook(rec.srv.URL + "/hook")
	b.publish(`{"id":"batches/r"}`)
	ctx := context.Background()
	var id string
	waitFor(t, "the first attempt", func() bool {
		ds := b.deliveries(w.ID)
		if len(ds) == 1 && ds[0].Attempts == 1 {
			id = ds[0].ID
		}
		return id != ""
	})

	r, err := b.store.Redeliver(ctx, b.project, id, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.Manual {
		t.Errorf("a retrying delivery became a manual one-shot send: %+v", *r)
	}
	var d *core.Delivery
	waitFor(t, "the redelivered attempt", func() bool {
		d, _, err = b.store.GetDelivery(ctx, b.project, id)
		if err != nil {
			t.Fatal(err)
		}
		return d.Attempts == 2
	})
	if d.Status != core.DeliveryPending || !d.NextAttemptTime.After(b.clock.Now()) {
		t.Fatalf("after a failed redelivery of a retrying delivery: status %s, next attempt %v (now %v); want a scheduled retry",
			d.Status, d.NextAttemptTime, b.clock.Now())
	}
	d, as := b.drive(id)
	if d.Status != core.DeliveryFailed || len(as) < 11 {
		t.Fatalf("got %d attempts, status %s; want the whole schedule to the 24 h horizon", len(as), d.Status)
	}
}

// A :redeliver of a delivery whose attempt is in flight sends it again
// once that attempt ends, whatever the attempt got. The claim that took
// the redelivered delivery back was taken for the attempt in flight
// ("already ours") and dropped, and that attempt's result, written under
// the same owner, decided: a success ended the delivery without the
// resend, a failure put it off to the next step of the schedule (5 s
// here, hours later in it). With another instance claiming it, it was
// sent at once; now it is on one instance too.
func TestRedeliverDuringAttemptSendsAgain(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusInternalServerError, http.StatusNoContent} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{attemptTimeout: time.Minute})
			// The second request (the event's first attempt) is held
			// until the test lets it answer status; the others get 204.
			var n atomic.Int64
			release := make(chan struct{})
			rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 2 {
					select {
					case <-release:
					case <-r.Context().Done():
						return
					}
					w.WriteHeader(status)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			w, _ := b.webhook(rec.srv.URL + "/hook")
			// A first event makes the destination known: an unknown one
			// gets one attempt at a time, and the claim would leave the
			// redelivered one alone until the attempt in flight ended.
			b.publish(`{"id":"batches/warm-up"}`)
			waitFor(t, "the first event delivered", func() bool {
				ds := b.deliveries(w.ID)
				return len(ds) == 1 && ds[0].Status == core.DeliverySucceeded
			})
			b.publish(`{"id":"batches/redeliver"}`)
			waitFor(t, "the attempt in flight", func() bool { return rec.count() == 2 })
			ctx := context.Background()
			id := b.delivery(w.ID, "batches/redeliver").ID
			if _, err := b.store.Redeliver(ctx, b.project, id, b.clock.Now()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the redelivered delivery claimed", func() bool {
				d, _, err := b.store.GetDelivery(ctx, b.project, id)
				if err != nil {
					t.Fatal(err)
				}
				return d.LeaseOwner != ""
			})
			close(release) // the attempt in flight ends
			// The clock does not move: the resend is due now, not at a
			// retry.
			var d *core.Delivery
			var as []core.Attempt
			waitFor(t, "the resend", func() bool {
				var err error
				d, as, err = b.store.GetDelivery(ctx, b.project, id)
				if err != nil {
					t.Fatal(err)
				}
				return len(as) == 2
			})
			if d.Status != core.DeliverySucceeded || rec.count() != 3 {
				t.Errorf("after the resend: %s, the receiver got %d requests; want succeeded, 3", d.Status, rec.count())
			}
		})
	}
}
