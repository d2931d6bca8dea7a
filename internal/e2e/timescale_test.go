package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestTimeScale: with --time-scale 3600 the retry schedule (5 s, 30 s,
// 2 min, ...) runs in milliseconds, so a receiver that fails three times
// gets the event on the fourth attempt within seconds, and the delivery
// records all four attempts.
func TestTimeScale(t *testing.T) {
	t.Parallel()
	s := startServe(t, withFlags("--time-scale", "3600"))
	c := s.client(t)
	rcv := newReceiver(t, func(n int, _ received) int {
		if n <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	c.createWebhook(t, rcv.URL("/flaky"), "batch.failed")
	start := time.Now()
	c.publish(t, map[string]any{"type": "batch.failed", "data": map[string]any{"id": "batches/ts", "error_code": 13, "error_message": "boom"}})
	// Unscaled, the fourth attempt comes 2 min 35 s after the first.
	reqs := rcv.waitFor(t, 10*time.Second, "four attempts", func(rs []received) bool { return len(rs) >= 4 })
	elapsed := time.Since(start)
	id := reqs[0].Header.Get("webhook-id")
	for i, r := range reqs {
		if got := r.Header.Get("webhook-id"); got != id {
			t.Fatalf("attempt %d has webhook-id %q, want %q (stable across retries)", i+1, got, id)
		}
	}
	var d deliveryResource
	pollUntil(t, 10*time.Second, 20*time.Millisecond, "delivery "+id+" succeeded", func() (bool, string) {
		d = deliveryResource{}
		c.call(t, "GET", "/v1beta/deliveries/"+id, nil, &d)
		return d.Status == "succeeded", d.Status
	})
	if d.AttemptCount != 4 || len(d.Attempts) != 4 {
		t.Fatalf("delivery has attempt_count %d and %d attempts, want 4", d.AttemptCount, len(d.Attempts))
	}
	for i, a := range d.Attempts {
		want := http.StatusInternalServerError
		if i == 3 {
			want = http.StatusOK
		}
		if a.Number != i+1 || a.StatusCode != want {
			t.Errorf("attempt %d: number %d status %d, want number %d status %d", i+1, a.Number, a.StatusCode, i+1, want)
		}
	}
	if elapsed > 5*time.Second {
		t.Errorf("four attempts took %v; --time-scale 3600 should make it a few seconds at most", elapsed)
	}
	if got := len(rcv.requests()); got != 4 {
		t.Errorf("receiver got %d requests, want exactly 4", got)
	}
	t.Logf("4 attempts in %v", elapsed.Round(time.Millisecond))
}
