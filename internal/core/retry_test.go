package core

import (
	"testing"
	"time"
)

func TestRetryScheduleFollowsProductContract(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{}.WithDefaults()
	start := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	now := start
	f := &Failure{Kind: FailHTTPStatus, StatusCode: 500}
	for _, rnd := range []float64{0, 0.5, 0.999999} {
		now = start
		var got []time.Duration
		for attempt := 1; ; attempt++ {
			next, retry := p.Next(f, attempt, start, now, nil, func() float64 { return rnd })
			if !retry {
				if attempt != 11 {
					t.Fatalf("rnd %v: gave up after attempt %d, want 11 attempts", rnd, attempt)
				}
				break
			}
			got = append(got, next.Sub(now))
			now = next
		}
		// docs/contract.md §6, written out rather than read from the
		// schedule under test.
		contract := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
			30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour}
		if len(got) != len(contract)+1 {
			t.Fatalf("rnd %v: %d retries, want the %d steps and the last attempt at 24 h", rnd, len(got), len(contract))
		}
		for i, d := range got[:len(contract)] {
			step := contract[i]
			lo, hi := time.Duration(float64(step)*0.8), time.Duration(float64(step)*1.2)
			if d < lo || d > hi {
				t.Errorf("rnd %v: delay %d = %v, want within [%v, %v]", rnd, i+1, d, lo, hi)
			}
		}
		if last := now; !last.Equal(start.Add(24 * time.Hour)) {
			t.Errorf("rnd %v: last attempt at %v, want the 24 h horizon %v", rnd, last, start.Add(24*time.Hour))
		}
	}
}

func TestRetryAfterAndFloors(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{}.WithDefaults()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mid := func() float64 { return 0.5 }
	cases := []struct {
		name    string
		f       *Failure
		attempt int
		want    time.Duration
	}{
		{"429 without Retry-After waits the 60 s floor", &Failure{Kind: FailThrottled, StatusCode: 429}, 1, 60 * time.Second},
		{"429 Retry-After bounded to 2× step, then the floor", &Failure{Kind: FailThrottled, StatusCode: 429, RetryAfter: time.Hour}, 1, 60 * time.Second},
		{"429 Retry-After within bound", &Failure{Kind: FailThrottled, StatusCode: 429, RetryAfter: 100 * time.Second}, 3, 100 * time.Second},
		{"503 Retry-After bounded to 2× step", &Failure{Kind: FailUnavailable, StatusCode: 503, RetryAfter: time.Hour}, 2, 60 * time.Second},
		{"503 short Retry-After honoured", &Failure{Kind: FailUnavailable, StatusCode: 503, RetryAfter: 2 * time.Second}, 1, 2 * time.Second},
		{"timeout waits at least 60 s", &Failure{Kind: FailTimeout}, 1, 60 * time.Second},
		{"timeout later uses the schedule", &Failure{Kind: FailTimeout}, 3, 2 * time.Minute},
		{"connection refused uses the schedule", &Failure{Kind: FailConnection}, 1, 5 * time.Second},
	}
	for _, c := range cases {
		next, retry := p.Next(c.f, c.attempt, start, start, nil, mid)
		if !retry || next.Sub(start) != c.want {
			t.Errorf("%s: got %v retry=%v, want %v", c.name, next.Sub(start), retry, c.want)
		}
	}
	if _, retry := p.Next(&Failure{Kind: FailGone, StatusCode: 410}, 1, start, start, nil, mid); retry {
		t.Error("410 Gone must not be retried")
	}
	if _, retry := p.Next(&Failure{Kind: FailHTTPStatus}, 3, start, start.Add(24*time.Hour), nil, mid); retry {
		t.Error("no retry at or past the horizon")
	}
}

func TestRetryTimeScale(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{Scale: 3600}.WithDefaults()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	next, _ := p.Next(&Failure{Kind: FailHTTPStatus}, 6, start, start, nil, func() float64 { return 0.5 })
	if d := next.Sub(start); d != time.Second {
		t.Fatalf("1 h step at scale 3600 = %v, want 1 s", d)
	}
	next, _ = p.Next(&Failure{Kind: FailHTTPStatus}, 10, start, start, nil, func() float64 { return 0.5 })
	if d := next.Sub(start); d != 24*time.Second {
		t.Fatalf("horizon at scale 3600 = %v, want 24 s", d)
	}
}

func TestPerWebhookSchedule(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{}.WithDefaults()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	next, _ := p.Next(&Failure{Kind: FailHTTPStatus}, 1, start, start, []time.Duration{time.Minute}, func() float64 { return 0.5 })
	if next.Sub(start) != time.Minute {
		t.Fatalf("custom schedule ignored: %v", next.Sub(start))
	}
	next, _ = p.Next(&Failure{Kind: FailHTTPStatus}, 2, start, start.Add(time.Minute), []time.Duration{time.Minute}, func() float64 { return 0.5 })
	if !next.Equal(start.Add(24 * time.Hour)) {
		t.Fatalf("after a custom schedule the last attempt is at the horizon, got %v", next)
	}
}
