package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestAutoDisableAndRecover: under --time-scale 3600 a webhook whose every
// delivery fails for the (compressed) 24 h becomes
// disabled_due_to_failed_deliveries, as webhooks.get shows; events for it
// are then recorded as skipped; after PATCH state=enabled, :recover
// delivers both the failed and the skipped events.
func TestAutoDisableAndRecover(t *testing.T) {
	t.Parallel()
	s := startServe(t, withFlags("--time-scale", "3600"))
	c := s.client(t)
	var healthy atomic.Bool
	rcv := newReceiver(t, func(int, received) int {
		if healthy.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	wh := c.createWebhook(t, rcv.URL("/down"), "batch.succeeded")
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/one"}})

	// 24 h at 3600× is 24 s; 11 attempts fail, then the leader disables.
	var got map[string]any
	pollUntil(t, 60*time.Second, 100*time.Millisecond, "webhook auto-disabled", func() (bool, string) {
		got = map[string]any{}
		c.call(t, "GET", "/v1beta/webhooks/"+wh.ID, nil, &got)
		st, _ := got["state"].(string)
		return st == "disabled_due_to_failed_deliveries", st
	})
	// The schedule has 11 attempts over 24 h; the leader may disable the
	// webhook just before the last one (both fall at the 24 h mark).
	if n := len(rcv.requests()); n < 10 || n > 11 {
		t.Errorf("receiver saw %d attempts before the webhook was disabled, want 10 or 11 (the 24 h schedule)", n)
	}
	seen := len(rcv.requests())

	// While disabled: recorded as skipped, not sent.
	c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/two"}})
	var list struct {
		Deliveries []deliveryResource `json:"deliveries"`
	}
	pollUntil(t, 10*time.Second, 20*time.Millisecond, "the new delivery recorded as skipped", func() (bool, string) {
		list.Deliveries = nil
		c.call(t, "GET", "/v1beta/webhooks/"+wh.ID+"/deliveries", nil, &list)
		// The first delivery failed for good, or — if the disable came just
		// before its last attempt — was skipped at that attempt.
		first := ""
		if len(list.Deliveries) == 2 {
			first = list.Deliveries[1].Status
		}
		ok := len(list.Deliveries) == 2 && list.Deliveries[0].Status == "skipped" && (first == "failed" || first == "skipped")
		return ok, fmt.Sprintf("%+v", list.Deliveries)
	})
	if n := len(rcv.requests()); n != seen {
		t.Fatalf("the disabled webhook was sent %d requests, want still %d", n, seen)
	}

	// Re-enable and recover.
	before := len(rcv.requests())
	healthy.Store(true)
	c.call(t, "PATCH", "/v1beta/webhooks/"+wh.ID+"?update_mask=state", map[string]any{"state": "enabled"}, nil)
	var rec struct {
		Count int `json:"count"`
	}
	c.call(t, "POST", "/v1beta/webhooks/"+wh.ID+":recover", map[string]any{"since": since, "dry_run": true}, &rec)
	if rec.Count != 2 {
		t.Fatalf("dry run counted %d, want 2", rec.Count)
	}
	c.call(t, "POST", "/v1beta/webhooks/"+wh.ID+":recover", map[string]any{"since": since}, &rec)
	pollUntil(t, 20*time.Second, 50*time.Millisecond, "recovered deliveries succeed", func() (bool, string) {
		list.Deliveries = nil
		c.call(t, "GET", "/v1beta/webhooks/"+wh.ID+"/deliveries?status=succeeded", nil, &list)
		return len(list.Deliveries) == 2, ""
	})
	ids := map[string]bool{}
	for _, r := range rcv.requests()[before:] {
		var data struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(r.envelope(t).Data, &data)
		ids[data.ID] = true
	}
	if !ids["batches/one"] || !ids["batches/two"] {
		t.Fatalf("after recovery the receiver got %v, want both events", ids)
	}
}
