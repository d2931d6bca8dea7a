package engine

import (
	"context"
	"net/http"
	"testing"

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
