package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

func testWebhookRoundTrip(t *testing.T, b *bundle) {
	w := NewWebhook(b.p.ID)
	old := NewSecret(T0.Add(-time.Hour))
	old.ExpireTime = T0.Add(23 * time.Hour)
	w.Secrets = append(w.Secrets, old) // newest first
	w.RetrySchedule = []time.Duration{time.Second, 90 * time.Second, time.Hour}
	w.FailingSince = T0.Add(-time.Minute)
	w.ConsecutiveFailures = 3
	w.UpdateTime = T0.Add(time.Second)
	if err := b.s.CreateWebhook(b.ctx, w); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	wantEqual(t, "GetWebhook", b.getWebhook(w.ID), w)

	if err := b.s.CreateWebhook(b.ctx, w); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("CreateWebhook(duplicate) = %v, want ErrAlreadyExists", err)
	}
	_, err := b.s.GetWebhook(b.ctx, b.p.ID, core.NewID())
	wantNotFound(t, "GetWebhook(missing)", err)
}

func testWebhookIsolation(t *testing.T, b *bundle) {
	other := b.project()
	w := b.webhook(other.ID)
	_, err := b.s.GetWebhook(b.ctx, b.p.ID, w.ID)
	wantNotFound(t, "GetWebhook(other project)", err)
	called := false
	_, err = b.s.UpdateWebhook(b.ctx, b.p.ID, w.ID, func(*core.Webhook) error { called = true; return nil })
	wantNotFound(t, "UpdateWebhook(other project)", err)
	if called {
		t.Errorf("UpdateWebhook called fn for another project's webhook")
	}
	wantNotFound(t, "DeleteWebhook(other project)", b.s.DeleteWebhook(b.ctx, b.p.ID, w.ID, T0))
	ws, err := b.s.ListWebhooks(b.ctx, core.ListWebhooksParams{ProjectID: b.p.ID, Limit: 10})
	if err != nil || len(ws) != 0 {
		t.Errorf("ListWebhooks(other project's only) = %d, %v; want none", len(ws), err)
	}
	sub, err := b.s.SubscribedWebhooks(b.ctx, b.p.ID, []string{core.EventBatchSucceeded})
	if err != nil || len(sub) != 0 {
		t.Errorf("SubscribedWebhooks(other project's only) = %d, %v; want none", len(sub), err)
	}
	// Still there for its own project.
	if _, err := b.s.GetWebhook(b.ctx, other.ID, w.ID); err != nil {
		t.Errorf("GetWebhook(own project): %v", err)
	}
}

func testListWebhooks(t *testing.T, b *bundle) {
	var want []string
	for range 5 {
		want = append(want, b.webhook("").ID)
	}
	b.webhook(b.project().ID)
	slices.Sort(want)
	var got []string
	after := ""
	for range 10 {
		page, err := b.s.ListWebhooks(b.ctx, core.ListWebhooksParams{ProjectID: b.p.ID, AfterID: after, Limit: 2})
		if err != nil {
			t.Fatalf("ListWebhooks: %v", err)
		}
		if len(page) > 2 {
			t.Fatalf("ListWebhooks returned %d > limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, w := range page {
			if len(w.Secrets) != 1 {
				t.Errorf("ListWebhooks: webhook %s has %d secrets, want 1", w.ID, len(w.Secrets))
			}
			got = append(got, w.ID)
		}
		after = page[len(page)-1].ID
	}
	wantEqual(t, "ListWebhooks pages", got, want)
}

func testUpdateWebhook(t *testing.T, b *bundle) {
	w := b.webhook("")
	rotated := NewSecret(T0.Add(time.Hour))
	got, err := b.s.UpdateWebhook(b.ctx, b.p.ID, w.ID, func(x *core.Webhook) error {
		x.Name = "renamed"
		x.URI = "https://example.org/new"
		x.SubscribedEvents = []string{core.EventVideoGenerated}
		x.State = core.WebhookDisabled
		x.Secrets[0].ExpireTime = T0.Add(25 * time.Hour)
		x.Secrets = append([]core.SigningSecret{rotated}, x.Secrets...)
		x.RetrySchedule = []time.Duration{time.Minute}
		x.UpdateTime = T0.Add(time.Hour)
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateWebhook: %v", err)
	}
	want := *w
	want.Name, want.URI = "renamed", "https://example.org/new"
	want.SubscribedEvents = []string{core.EventVideoGenerated}
	want.State = core.WebhookDisabled
	old := w.Secrets[0]
	old.ExpireTime = T0.Add(25 * time.Hour)
	want.Secrets = []core.SigningSecret{rotated, old}
	want.RetrySchedule = []time.Duration{time.Minute}
	want.UpdateTime = T0.Add(time.Hour)
	wantEqual(t, "UpdateWebhook result", got, &want)
	wantEqual(t, "GetWebhook after update", b.getWebhook(w.ID), &want)

	// Dropping secrets removes them.
	_, err = b.s.UpdateWebhook(b.ctx, b.p.ID, w.ID, func(x *core.Webhook) error {
		x.Secrets = x.Secrets[:1]
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateWebhook: %v", err)
	}
	wantEqual(t, "secrets after revoke", b.getWebhook(w.ID).Secrets, []core.SigningSecret{rotated})

	_, err = b.s.UpdateWebhook(b.ctx, b.p.ID, core.NewID(), func(*core.Webhook) error { return nil })
	wantNotFound(t, "UpdateWebhook(missing)", err)
}

func testUpdateWebhookError(t *testing.T, b *bundle) {
	w := b.webhook("")
	boom := errors.New("boom")
	_, err := b.s.UpdateWebhook(b.ctx, b.p.ID, w.ID, func(x *core.Webhook) error {
		x.Name = "changed"
		x.Secrets = nil
		x.State = core.WebhookDisabled
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateWebhook error = %v, want fn's error", err)
	}
	wantEqual(t, "webhook after failed update", b.getWebhook(w.ID), w)
}

func testDeleteWebhook(t *testing.T, b *bundle) {
	w := b.webhook("")
	keep := b.webhook("")
	ds := b.events(3, T0, w, keep)
	// One delivery of w finishes first; it must stay succeeded.
	cs := b.claim("e1", T0, 1, keep.ID)
	b.complete(succeeded(cs[0], "e1", T0.Add(time.Second)))

	if err := b.s.DeleteWebhook(b.ctx, b.p.ID, w.ID, T0.Add(time.Minute)); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	_, err := b.s.GetWebhook(b.ctx, b.p.ID, w.ID)
	wantNotFound(t, "GetWebhook(deleted)", err)
	wantNotFound(t, "DeleteWebhook(again)", b.s.DeleteWebhook(b.ctx, b.p.ID, w.ID, T0))
	if m, _ := b.s.WebhooksByID(b.ctx, []string{w.ID}); len(m) != 0 {
		t.Errorf("WebhooksByID still finds the deleted webhook")
	}

	for _, d := range ds {
		got, _ := b.delivery(d.ID) // history stays readable
		switch {
		case d.ID == cs[0].ID:
			if got.Status != core.DeliverySucceeded {
				t.Errorf("finished delivery: status %s, want succeeded", got.Status)
			}
		case d.WebhookID == w.ID:
			if got.Status != core.DeliveryCancelled {
				t.Errorf("pending delivery of deleted webhook: status %s, want cancelled", got.Status)
			}
		default:
			if got.Status != core.DeliveryPending {
				t.Errorf("other webhook's delivery: status %s, want pending", got.Status)
			}
		}
	}
	// Cancelled deliveries are never claimed.
	for _, c := range b.claim("e2", T0.Add(time.Hour), 100) {
		if c.WebhookID == w.ID {
			t.Errorf("claimed a cancelled delivery %s", c.ID)
		}
	}
}

// A webhook deleted while attempts of it are under way: their deliveries
// keep their leases, so the completions record and count the attempts
// (the engine completes a failed one as cancelled); the others are
// cancelled at once. A delivery cancelled under its attempt showed
// attempt_count 0 beside the attempt it listed.
func testDeleteWebhookMidAttempt(t *testing.T, b *bundle) {
	w := b.webhook("")
	b.events(3, T0, w)
	cs := b.claim("e1", T0, 2)
	if len(cs) != 2 {
		t.Fatalf("claimed %d deliveries, want 2", len(cs))
	}
	if err := b.s.DeleteWebhook(b.ctx, b.p.ID, w.ID, T0.Add(time.Second)); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	b.complete(succeeded(cs[0], "e1", T0.Add(2*time.Second)),
		failed(cs[1], "e1", T0.Add(2*time.Second), core.DeliveryCancelled, time.Time{}))
	ds, err := b.s.ListDeliveries(b.ctx, core.ListDeliveriesParams{ProjectID: b.p.ID, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3", len(ds))
	}
	for _, d := range ds {
		got, as := b.delivery(d.ID)
		want, attempts := core.DeliveryCancelled, 0
		switch got.ID {
		case cs[0].ID:
			want, attempts = core.DeliverySucceeded, 1
		case cs[1].ID:
			attempts = 1
		}
		if got.Status != want || got.Attempts != attempts || len(as) != attempts {
			t.Errorf("delivery %s: %s with attempt_count %d and %d attempts listed, want %s with %d",
				got.ID, got.Status, got.Attempts, len(as), want, attempts)
		}
	}
}

func testSubscribedWebhooks(t *testing.T, b *bundle) {
	a := b.webhook("")
	v := NewWebhook(b.p.ID)
	v.SubscribedEvents = []string{core.EventVideoGenerated}
	v.State = core.WebhookDisabledDueToFailedDeliveries
	if err := b.s.CreateWebhook(b.ctx, v); err != nil {
		t.Fatal(err)
	}
	b.webhook(b.project().ID) // another project's, subscribed to the same types

	check := func(types []string, want ...*core.Webhook) {
		t.Helper()
		got, err := b.s.SubscribedWebhooks(b.ctx, b.p.ID, types)
		if err != nil {
			t.Fatalf("SubscribedWebhooks: %v", err)
		}
		wantEqual(t, "SubscribedWebhooks(types)", ids(got, func(w *core.Webhook) string { return w.ID }),
			ids(want, func(w *core.Webhook) string { return w.ID }))
		for _, w := range got {
			if len(w.Secrets) == 0 {
				t.Errorf("SubscribedWebhooks: %s returned without secrets", w.ID)
			}
		}
	}
	check([]string{core.EventBatchSucceeded}, a)
	check([]string{core.EventVideoGenerated}, v) // whatever the state
	check([]string{core.EventBatchFailed, core.EventVideoGenerated}, a, v)
	check([]string{core.EventInteractionFailed})
}

func testWebhooksByID(t *testing.T, b *bundle) {
	a := b.webhook("")
	c := b.webhook(b.project().ID)
	got, err := b.s.WebhooksByID(b.ctx, []string{a.ID, c.ID, core.NewID()})
	if err != nil {
		t.Fatalf("WebhooksByID: %v", err)
	}
	wantEqual(t, "WebhooksByID", got, map[string]*core.Webhook{a.ID: a, c.ID: c})
	got, err = b.s.WebhooksByID(b.ctx, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("WebhooksByID(nil) = %v, %v", got, err)
	}
}

func testDisableFailingWebhooks(t *testing.T, b *bundle) {
	mk := func(state core.WebhookState, since time.Time, failures int) *core.Webhook {
		w := NewWebhook(b.p.ID)
		w.State, w.FailingSince, w.ConsecutiveFailures = state, since, failures
		if err := b.s.CreateWebhook(b.ctx, w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	cutoff := T0.Add(-24 * time.Hour)
	hit := mk(core.WebhookEnabled, cutoff.Add(-time.Hour), 7)
	edge := mk(core.WebhookEnabled, cutoff, 5)                      // exactly at both thresholds
	recent := mk(core.WebhookEnabled, cutoff.Add(time.Second), 100) // not failing long enough
	few := mk(core.WebhookEnabled, cutoff.Add(-time.Hour), 4)       // too few failures
	healthy := mk(core.WebhookEnabled, time.Time{}, 0)
	userOff := mk(core.WebhookDisabled, cutoff.Add(-time.Hour), 50)

	got, err := b.s.DisableFailingWebhooks(b.ctx, cutoff, 5, T0)
	if err != nil {
		t.Fatalf("DisableFailingWebhooks: %v", err)
	}
	slices.Sort(got)
	want := []string{hit.ID, edge.ID}
	slices.Sort(want)
	wantEqual(t, "disabled ids", got, want)
	for _, w := range []*core.Webhook{hit, edge} {
		g := b.getWebhook(w.ID)
		if g.State != core.WebhookDisabledDueToFailedDeliveries {
			t.Errorf("%s: state %s, want disabled_due_to_failed_deliveries", w.ID, g.State)
		}
		wantTime(t, "UpdateTime", g.UpdateTime, T0)
	}
	for _, w := range []*core.Webhook{recent, few, healthy, userOff} {
		if g := b.getWebhook(w.ID); g.State != w.State {
			t.Errorf("%s: state %s, want %s", w.ID, g.State, w.State)
		}
	}
	// Already disabled webhooks are not reported again.
	got, err = b.s.DisableFailingWebhooks(b.ctx, cutoff, 5, T0)
	if err != nil || len(got) != 0 {
		t.Errorf("second DisableFailingWebhooks = %v, %v; want none", got, err)
	}
}
