package gateway

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestSinkLimiter: concurrent forwards through a limiter of 40/s with a
// burst of 2 take at least (n - burst) intervals, whatever the scheduling;
// without a limit nothing waits.
func TestSinkLimiter(t *testing.T) {
	t.Parallel()
	l := newSinkLimiter(&SinkRateLimit{PerSecond: 40, Burst: 2})
	const n = 22
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { l.wait(context.Background()) })
	}
	wg.Wait()
	if elapsed, min := time.Since(start), time.Duration(n-2)*25*time.Millisecond; elapsed < min {
		t.Fatalf("%d forwards at 40/s, burst 2 passed in %v, want ≥ %v", n, elapsed, min)
	}
	var none *sinkLimiter
	none.wait(context.Background()) // no limit: returns at once
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := newSinkLimiter(&SinkRateLimit{PerSecond: 0.001})
	slow.wait(ctx)
	slow.wait(ctx) // would wait 1000 s: ctx ends it
}

// TestSinkRateLimitConfig: rate_limit is read from YAML and checked.
func TestSinkRateLimitConfig(t *testing.T) {
	t.Parallel()
	const base = "sources:\n  - name: s\n    verify: {hmac_secrets: [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]}\n    sinks:\n      - name: d\n        discard: {}\n"
	cfg, err := ParseConfig([]byte(base+"        rate_limit: {per_second: 2.5, burst: 3}\n"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Sources[0].Sinks[0].RateLimit; l == nil || l.PerSecond != 2.5 || l.Burst != 3 {
		t.Fatalf("rate_limit = %+v", l)
	}
	if err := cfg.withDefaults().validate(); err != nil {
		t.Fatal(err)
	}
	bad, err := ParseConfig([]byte(base+"        rate_limit: {per_second: 0}\n"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.withDefaults().validate(); err == nil {
		t.Fatal("per_second 0 accepted")
	}
}
