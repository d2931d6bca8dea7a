package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRecoverEveryFinishedOnce: :recover of every finished delivery
// (only_failed false) over more deliveries than one call's limit, repeated
// as api.md says until has_more is false, re-queues each delivery once
// while a fast receiver answers 2xx. The test lets what one call re-queued
// succeed again before the next call: each call used to start from since
// again and re-take those (succeeded once more), so the loop never ended
// and resent the same deliveries on every call.
func TestRecoverEveryFinishedOnce(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	c := s.client(t)
	rcv := newReceiver(t, nil)
	wh := c.createWebhook(t, rcv.URL("/fast"), "batch.succeeded")
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	const n, limit = 12, 5
	for i := range n {
		c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": fmt.Sprintf("batches/%d", i)}})
	}
	// settled waits until the receiver got want requests and every
	// delivery of the webhook has succeeded (none pending).
	settled := func(what string, want int) {
		t.Helper()
		rcv.waitFor(t, 30*time.Second, what, func(rs []received) bool { return len(rs) >= want })
		pollUntil(t, 30*time.Second, 20*time.Millisecond, what+": every delivery succeeded", func() (bool, string) {
			var list struct {
				Deliveries []deliveryResource `json:"deliveries"`
			}
			c.call(t, "GET", "/v1beta/webhooks/"+wh.ID+"/deliveries?status=succeeded&page_size=100", nil, &list)
			return len(list.Deliveries) == n, fmt.Sprintf("%d of %d succeeded", len(list.Deliveries), n)
		})
	}
	settled("first deliveries", n)

	rec := "/v1beta/webhooks/" + wh.ID + ":recover"
	type result struct {
		Count         int    `json:"count"`
		HasMore       bool   `json:"has_more"`
		NextPageToken string `json:"next_page_token"`
	}
	// A dry run counts in the same steps.
	dry := map[string]any{"since": since, "only_failed": false, "limit": limit, "dry_run": true}
	var counts []int
	for range n {
		var r result
		c.call(t, "POST", rec, dry, &r)
		counts = append(counts, r.Count)
		if !r.HasMore {
			break
		}
		if r.NextPageToken != "" {
			dry["page_token"] = r.NextPageToken
		}
	}
	if fmt.Sprint(counts) != "[5 5 2]" {
		t.Errorf("dry runs counted %v, want [5 5 2]", counts)
	}

	body := map[string]any{"since": since, "only_failed": false, "limit": limit}
	calls, total := 0, 0
	for {
		var r result
		c.call(t, "POST", rec, body, &r)
		calls++
		total += r.Count
		settled(fmt.Sprintf("call %d's deliveries", calls), n+total)
		if !r.HasMore {
			break
		}
		if calls == n {
			t.Fatalf("after %d calls has_more is still true: %d deliveries re-queued, of %d", calls, total, n)
		}
		if r.NextPageToken != "" {
			body["page_token"] = r.NextPageToken
		}
	}
	if calls != 3 || total != n {
		t.Errorf("recovery took %d calls re-queuing %d, want 3 calls re-queuing %d", calls, total, n)
	}
	sent := map[string]int{}
	for _, r := range rcv.requests() {
		sent[r.Header.Get("webhook-id")]++
	}
	for id, k := range sent {
		if k != 2 {
			t.Errorf("delivery %s was sent %d times, want 2 (once, then once recovered)", id, k)
		}
	}
	if len(sent) != n {
		t.Errorf("the receiver got %d distinct deliveries, want %d", len(sent), n)
	}

	// A token goes on only with the request it came from.
	var first result
	c.call(t, "POST", rec, map[string]any{"since": since, "only_failed": false, "limit": limit, "dry_run": true}, &first)
	for name, b := range map[string]map[string]any{
		"not a dry run":     {"since": since, "only_failed": false, "limit": limit},
		"only_failed true":  {"since": since, "limit": limit, "dry_run": true},
		"another since":     {"since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "only_failed": false, "limit": limit, "dry_run": true},
		"an explicit until": {"since": since, "until": time.Now().UTC().Format(time.RFC3339), "only_failed": false, "limit": limit, "dry_run": true},
	} {
		b["page_token"] = first.NextPageToken
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, raw, err := c.do(ctx, "POST", rec, b, nil)
		cancel()
		if err != nil || st != http.StatusBadRequest || !strings.Contains(string(raw), "page_token is invalid") {
			t.Errorf("%s with another request's token: %d %s %v, want 400 naming page_token", name, st, raw, err)
		}
	}
}
