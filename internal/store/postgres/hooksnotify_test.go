package postgres

import (
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestWebhookChangesAcrossStores: every change to a project's webhooks
// committed by one store (create, update — rotation included —, delete, a
// 410 that disables one, auto-disable) is told to the other stores on the
// database through OnWebhooksChanged, so their caches drop it at once;
// before, another instance's publisher and engine kept the old webhook for
// up to their cache's second (events published there went to the old URI,
// signed with a revoked secret, or missed a new webhook). The changing
// store is not told (its process invalidated itself); a wake-up is no
// webhook change.
func TestWebhookChangesAcrossStores(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	a, b := open(t, url, schema), open(t, url, schema)
	got := make(chan string, 16)
	b.OnWebhooksChanged(func(projectID string) { got <- projectID })
	self := make(chan string, 16)
	a.OnWebhooksChanged(func(projectID string) { self <- projectID })
	f := newFixture(t, a, 0)
	want := func(what, project string) {
		t.Helper()
		select {
		case p := <-got:
			if p != project {
				t.Errorf("%s: told of project %q, want %q", what, p, project)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the other store was not told", what)
		}
	}

	w := storetest.NewWebhook(f.p.ID)
	if err := a.CreateWebhook(f.ctx, w); err != nil {
		t.Fatal(err)
	}
	want("create", f.p.ID)
	if _, err := a.UpdateWebhook(f.ctx, f.p.ID, w.ID, func(w *core.Webhook) error { w.URI = "https://example.com/new"; return nil }); err != nil {
		t.Fatal(err)
	}
	want("update", f.p.ID)

	// A 410: the completion that disables the webhook.
	f.hooks = []*core.Webhook{w}
	f.publish(1, storetest.T0)
	cs, err := a.ClaimDeliveries(f.ctx, core.ClaimParams{Owner: "a", Now: storetest.T0, Limit: 1, Lease: time.Minute})
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	err = a.CompleteDeliveries(f.ctx, []core.Completion{{DeliveryID: cs[0].ID, Owner: "a", Status: core.DeliveryFailed,
		ProjectID: f.p.ID, WebhookID: w.ID, DisableWebhook: true,
		Attempt: core.Attempt{DeliveryID: cs[0].ID, Number: 1, Time: storetest.T0, URI: w.URI, StatusCode: 410, Error: "gone: HTTP 410"}}})
	if err != nil {
		t.Fatal(err)
	}
	want("a 410 disabling the webhook", "")

	// Auto-disable of a failing webhook.
	w2 := storetest.NewWebhook(f.p.ID)
	if err := a.CreateWebhook(f.ctx, w2); err != nil {
		t.Fatal(err)
	}
	want("create", f.p.ID)
	f.hooks = []*core.Webhook{w2}
	f.publish(5, storetest.T0)
	cs, err = a.ClaimDeliveries(f.ctx, core.ClaimParams{Owner: "a", Now: storetest.T0, Limit: 5, Lease: time.Minute})
	if err != nil || len(cs) != 5 {
		t.Fatalf("claim: %d, %v", len(cs), err)
	}
	var comps []core.Completion
	for i, c := range cs {
		at := storetest.T0.Add(time.Duration(i) * time.Second)
		comps = append(comps, core.Completion{DeliveryID: c.ID, Owner: "a", Status: core.DeliveryFailed, ProjectID: f.p.ID, WebhookID: w2.ID,
			Attempt: core.Attempt{DeliveryID: c.ID, Number: 1, Time: at, URI: w2.URI, StatusCode: 500, Error: "http_status: HTTP 500"}})
	}
	if err := a.CompleteDeliveries(f.ctx, comps); err != nil {
		t.Fatal(err)
	}
	ids, err := a.DisableFailingWebhooks(f.ctx, storetest.T0.Add(time.Hour), 5, storetest.T0.Add(25*time.Hour))
	if err != nil || len(ids) != 1 {
		t.Fatalf("DisableFailingWebhooks: %v, %v; want w2", ids, err)
	}
	want("auto-disable", "")

	if err := a.DeleteWebhook(f.ctx, f.p.ID, w.ID, storetest.T0); err != nil {
		t.Fatal(err)
	}
	want("delete", f.p.ID)

	// A publish wakes b but is no webhook change; a is never told of its own.
	f.hooks = []*core.Webhook{w2}
	f.publish(1, storetest.T0)
	waitWake(t, b, "publish")
	select {
	case p := <-got:
		t.Errorf("told of a webhook change in %q after a publish", p)
	default:
	}
	select {
	case p := <-self:
		t.Errorf("the changing store was told of its own change (%q)", p)
	default:
	}
}
