package e2e

import (
	"slices"
	"testing"
)

// TestCLIWebhookExtensions: webhooks create and update set the longhook
// extension fields (rate limit, trace propagation, retry schedule), get
// shows them, "none" removes them, and a bad value is refused before the
// server is asked.
func TestCLIWebhookExtensions(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	cli := newCLI(t, s)
	rcv := newReceiver(t, nil)

	out := cli.run(t, "webhooks", "create", "--uri", rcv.URL("/ext"), "--events", "batch.failed",
		"--rate-limit", "2.5", "--burst", "5", "--trace-propagation", "--retry-schedule", "5s,1.5s,2m")
	mustContain(t, "create", out, "rate limit:      2.5/s, burst 5", "retry schedule:  5s, 1.500s, 120s", "traceparent:     sent to the receiver")
	id := field(t, out, "id")

	type ext struct {
		RateLimit *struct {
			PerSecond float64 `json:"per_second"`
			Burst     int     `json:"burst"`
		} `json:"rate_limit"`
		TracePropagation bool     `json:"trace_propagation"`
		RetrySchedule    []string `json:"retry_schedule"`
	}
	var got ext
	cli.json(t, &got, "webhooks", "get", id)
	if got.RateLimit == nil || got.RateLimit.PerSecond != 2.5 || got.RateLimit.Burst != 5 || !got.TracePropagation ||
		!slices.Equal(got.RetrySchedule, []string{"5s", "1.500s", "120s"}) {
		t.Fatalf("get --json after create: %+v", got)
	}

	// Each flag changes its own field only.
	got = ext{}
	cli.json(t, &got, "webhooks", "update", id, "--rate-limit", "none")
	if got.RateLimit != nil || !got.TracePropagation || len(got.RetrySchedule) != 3 {
		t.Fatalf("update --rate-limit none: %+v", got)
	}
	got = ext{}
	cli.json(t, &got, "webhooks", "update", id, "--retry-schedule", "none", "--trace-propagation=false", "--rate-limit", "10")
	if got.RateLimit == nil || got.RateLimit.PerSecond != 10 || got.RateLimit.Burst != 0 || got.TracePropagation || got.RetrySchedule != nil {
		t.Fatalf("update --retry-schedule none --trace-propagation=false --rate-limit 10: %+v", got)
	}
	if rate := field(t, cli.run(t, "webhooks", "get", id), "rate limit"); rate != "10/s" {
		t.Fatalf("get shows rate limit %q, want 10/s", rate)
	}

	cli.fails(t, 2, "--burst needs --rate-limit", "webhooks", "update", id, "--burst", "3")
	cli.fails(t, 2, `--rate-limit "fast" is not a positive number`, "webhooks", "update", id, "--rate-limit", "fast")
	cli.fails(t, 2, "--retry-schedule", "webhooks", "create", "--uri", rcv.URL("/x"), "--events", "batch.failed", "--retry-schedule", "25h")
	cli.fails(t, 6, "rate_limit.per_second", "webhooks", "update", id, "--rate-limit", "200000")
}
