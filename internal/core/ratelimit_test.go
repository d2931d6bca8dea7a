package core

import (
	"testing"
	"time"
)

func TestRateLimitTake(t *testing.T) {
	t.Parallel()
	l := RateLimit{PerSecond: 10, Burst: 3}
	t0 := time.Unix(1000, 0)
	g, tat, next := l.Take(time.Time{}, t0, 5)
	if g != 3 || !next.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("full bucket: granted %d next %v; want 3 at +100ms", g, next.Sub(t0))
	}
	if g, _, _ := l.Take(tat, t0.Add(99*time.Millisecond), 5); g != 0 {
		t.Fatalf("granted %d before the next token", g)
	}
	if g, _, _ := l.Take(tat, t0.Add(100*time.Millisecond), 5); g != 1 {
		t.Fatalf("granted %d at the next token, want 1", g)
	}
	// Over a long run the grants never exceed burst + rate × time.
	total, tat := 0, time.Time{}
	for ms := 0; ms <= 10000; ms += 7 {
		var got int
		got, tat, _ = l.Take(tat, t0.Add(time.Duration(ms)*time.Millisecond), 4)
		total += got
	}
	if total > 3+100 || total < 98 {
		t.Fatalf("granted %d over 10 s at 10/s burst 3", total)
	}
	if err := (RateLimit{PerSecond: 0}).Validate("rate_limit"); err == nil {
		t.Fatal("per_second 0 accepted")
	}
	if err := (RateLimit{PerSecond: 1, Burst: -1}).Validate("rate_limit"); err == nil {
		t.Fatal("negative burst accepted")
	}
}
