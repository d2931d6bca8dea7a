package engine

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/publish"
)

// Deliveries handed over by the direct path go to the webhook's current
// URI even when the publisher's cached copy is stale: a change through
// this process (WebhooksChanged) makes held deliveries re-read it.
func TestDirectPathSeesWebhookChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	oldRcv, newRcv := newRecorder(t, nil), newRecorder(t, nil)
	w, _ := b.webhook(oldRcv.srv.URL)
	cat, _ := core.NewCatalog()
	pub := publish.New(publish.Config{Store: b.store, Catalog: cat, Clock: b.clock, Direct: b.engine,
		Policy: core.AddressPolicy{Dev: true}, SubscriptionTTL: time.Hour})
	send := func() {
		if _, err := pub.Publish(ctx, b.project, []publish.Input{{Type: "batch.succeeded", Data: json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	send() // fills the publisher's cache with the old URI
	<-oldRcv.got
	// Another code path changes the URI without touching the publisher's
	// cache, then tells the engine.
	if _, err := b.store.UpdateWebhook(ctx, b.project, w.ID, func(w *core.Webhook) error { w.URI = newRcv.srv.URL; return nil }); err != nil {
		t.Fatal(err)
	}
	b.engine.WebhooksChanged()
	send()
	select {
	case <-newRcv.got:
	case <-oldRcv.got:
		t.Fatal("the delivery went to the old URI after the change")
	case <-time.After(waitLimit):
		t.Fatal("the delivery never arrived")
	}
}
