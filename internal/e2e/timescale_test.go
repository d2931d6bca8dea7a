package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// TestTimeScale: with --time-scale 3600 the retry schedule (5 s, 30 s,
// 2 min, ...) runs in milliseconds, so a receiver that fails three times
// gets the event on the fourth attempt within seconds, and the delivery
// records all four attempts.
//
// The scaling is checked on the attempts' own times, which the server
// records, not on how long the test waited: each gap is at least its
// scaled delay (the schedule is kept, attempt k+1 comes no earlier than
// attempt k's start plus the jittered delay / 3600) and below the
// unscaled delay's least value (delay − 20 % jitter), which a server that
// ignored --time-scale cannot reach whatever the machine's load; only a
// retry held up for seconds by a starved machine could. The exact factor
// is core's TestRetryTimeScale.
func TestTimeScale(t *testing.T) {
	t.Parallel()
	const scale = 3600
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
	// Unscaled, the fourth attempt comes at least 2 min 4 s (2 min 35 s
	// less the jitter) after the first: the wait is only a failure bound.
	reqs := rcv.waitFor(t, 60*time.Second, "four attempts", func(rs []received) bool { return len(rs) >= 4 })
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
	times := make([]time.Time, len(d.Attempts))
	for i, a := range d.Attempts {
		want := http.StatusInternalServerError
		if i == 3 {
			want = http.StatusOK
		}
		if a.Number != i+1 || a.StatusCode != want {
			t.Errorf("attempt %d: number %d status %d, want number %d status %d", i+1, a.Number, a.StatusCode, i+1, want)
		}
		at, err := time.Parse(time.RFC3339Nano, a.Time)
		if err != nil {
			t.Fatalf("attempt %d: time %q: %v", i+1, a.Time, err)
		}
		times[i] = at
	}
	const jitter = 0.2 // core.RetryPolicy's default
	var gaps []time.Duration
	for i := range 3 {
		step := core.DefaultRetrySchedule[i]
		gap := times[i+1].Sub(times[i])
		gaps = append(gaps, gap)
		// Stored to the microsecond: 1 µs of slack for the truncation.
		if least := time.Duration((1-jitter)*float64(step)/scale) - time.Microsecond; gap < least {
			t.Errorf("attempt %d came %v after attempt %d: sooner than its scaled delay (%v / %d, at least %v)", i+2, gap, i+1, step, scale, least)
		}
		if unscaled := time.Duration((1 - jitter) * float64(step)); gap >= unscaled {
			t.Errorf("attempt %d came %v after attempt %d: not scaled (the unscaled delay %v is at least %v)", i+2, gap, i+1, step, unscaled)
		}
	}
	if got := len(rcv.requests()); got != 4 {
		t.Errorf("receiver got %d requests, want exactly 4", got)
	}
	t.Logf("4 attempts in %v; gaps between them %v", elapsed.Round(time.Millisecond), gaps)
}
