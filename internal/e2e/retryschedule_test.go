package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestRetrySchedules: serve --retry-schedule replaces the default
// schedule, and a webhook's own retry_schedule replaces the server's —
// both under --time-scale, against real receivers that answer 500 twice.
//
// The server's schedule here is 12m,24m (200 ms and 400 ms at 3600×), the
// webhook's 1800s,1800s (500 ms each); the default's first steps are 5 s
// and 30 s (1.4 ms and 8 ms). Each gap is checked against its step's
// least jittered value (−20 %), on the attempt times the server records,
// so a server that followed the default (the flag or the field ignored)
// cannot pass whatever the load; and the webhook's first gap is above
// what the server's schedule could give (200 ms + 20 %). Only lower
// bounds: a starved machine delays retries, it never hastens them.
func TestRetrySchedules(t *testing.T) {
	t.Parallel()
	const scale = 3600
	s := startServe(t, withFlags("--time-scale", "3600", "--retry-schedule", "12m,24m"))
	c := s.client(t)
	failTwice := func(n int, _ received) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	server, own := newReceiver(t, failTwice), newReceiver(t, failTwice)
	c.createWebhook(t, server.URL("/server"), "batch.failed")
	var w webhookResource
	c.call(t, "POST", "/v1beta/webhooks", map[string]any{"name": "own", "uri": own.URL("/own"),
		"subscribed_events": []string{"batch.failed"}, "retry_schedule": []string{"1800s", "1800s"}}, &w)
	c.publish(t, map[string]any{"type": "batch.failed", "data": map[string]any{"id": "batches/rs", "error_code": 13, "error_message": "boom"}})

	for _, x := range []struct {
		name  string
		rcv   *receiver
		steps []time.Duration
	}{
		{"server --retry-schedule", server, []time.Duration{12 * time.Minute, 24 * time.Minute}},
		{"webhook retry_schedule", own, []time.Duration{1800 * time.Second, 1800 * time.Second}},
	} {
		reqs := x.rcv.waitFor(t, 60*time.Second, x.name+": three attempts", func(rs []received) bool { return len(rs) >= 3 })
		times := attemptTimes(t, c, reqs[0].Header.Get("webhook-id"), 3)
		for i, step := range x.steps {
			gap := times[i+1].Sub(times[i])
			// Stored to the microsecond: 1 µs of slack for the truncation.
			if least := time.Duration(0.8*float64(step)/scale) - time.Microsecond; gap < least {
				t.Errorf("%s: attempt %d came %v after attempt %d, sooner than its step %v / %d allows (at least %v)", x.name, i+2, gap, i+1, step, scale, least)
			}
		}
		if x.rcv == own {
			if most := time.Duration(1.2 * float64(12*time.Minute) / scale); times[1].Sub(times[0]) <= most {
				t.Errorf("%s: first retry after %v, within the server's schedule (at most %v): the webhook's own did not apply", x.name, times[1].Sub(times[0]), most)
			}
		}
		t.Logf("%s: gaps %v, %v", x.name, times[1].Sub(times[0]), times[2].Sub(times[1]))
	}
}

// attemptTimes waits until delivery id has succeeded after want attempts
// and returns the times the server recorded for them.
func attemptTimes(t *testing.T, c *apiClient, id string, want int) []time.Time {
	t.Helper()
	var d deliveryResource
	pollUntil(t, 10*time.Second, 20*time.Millisecond, "delivery "+id+" succeeded", func() (bool, string) {
		d = deliveryResource{}
		c.call(t, "GET", "/v1beta/deliveries/"+id, nil, &d)
		return d.Status == "succeeded", d.Status
	})
	if len(d.Attempts) != want {
		t.Fatalf("delivery %s has %d attempts, want %d", id, len(d.Attempts), want)
	}
	times := make([]time.Time, want)
	for i, a := range d.Attempts {
		at, err := time.Parse(time.RFC3339Nano, a.Time)
		if err != nil {
			t.Fatalf("attempt %d: time %q: %v", i+1, a.Time, err)
		}
		times[i] = at
	}
	return times
}
