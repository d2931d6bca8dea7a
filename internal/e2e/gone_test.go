package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestGoneDisablesAtOnce (docs/contract.md §6): a 410 Gone disables the
// static webhook, and once webhooks.get shows it disabled, the next event
// is recorded as skipped (replayable with :recover) and never sent. Before,
// the publisher's subscription list and the engine's copy of the webhook
// still said "enabled" for up to a second, so an event published right
// after was attempted again (a second 410) and ended failed.
func TestGoneDisablesAtOnce(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	c := s.client(t)
	rcv := newReceiver(t, func(int, received) int { return http.StatusGone })
	wh := c.createWebhook(t, rcv.URL("/gone"), "batch.succeeded")

	c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/one"}})
	pollUntil(t, 20*time.Second, 2*time.Millisecond, "webhook disabled by the 410", func() (bool, string) {
		got := map[string]any{}
		c.call(t, "GET", "/v1beta/webhooks/"+wh.ID, nil, &got)
		st, _ := got["state"].(string)
		return st == "disabled_due_to_failed_deliveries", st
	})
	second := c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/two"}})

	var list struct {
		Deliveries []deliveryResource `json:"deliveries"`
	}
	pollUntil(t, 20*time.Second, 10*time.Millisecond, "the second event's delivery finished", func() (bool, string) {
		list.Deliveries = nil
		c.call(t, "GET", "/v1beta/webhooks/"+wh.ID+"/deliveries", nil, &list)
		for _, d := range list.Deliveries {
			if d.EventID == second.ID && d.Status != "pending" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", list.Deliveries)
	})
	for _, d := range list.Deliveries {
		if d.EventID == second.ID && (d.Status != "skipped" || d.AttemptCount != 0) {
			t.Errorf("the event published after the webhook showed disabled: delivery %s after %d attempts (%s), want skipped without an attempt", d.Status, d.AttemptCount, d.LastError)
		}
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("the receiver got %d requests, want 1 (the 410 that disabled the webhook)", n)
	}
}
