package core

import (
	"slices"
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

// TestRateLimitReserve: takes under l.Reserve(k) whose tokens are used at
// SendOffsets never send more than l allows in any window (burst + rate ×
// window), and takes up to the lookahead apart lose no token — where
// plain takes (k = 0) as far apart lose the tokens of every gap longer
// than the burst.
func TestRateLimitReserve(t *testing.T) {
	t.Parallel()
	l := RateLimit{PerSecond: 100, Burst: 10}
	iv := l.Interval()
	t0 := time.Unix(1000, 0)
	run := func(k int) (sends []time.Time) {
		tat, now := time.Time{}, t0
		// Takes 10–240 ms apart (a loaded claim loop), each asking for
		// more than it can get; 30 s in all.
		for step := 0; now.Before(t0.Add(30 * time.Second)); step++ {
			g, newTAT, next := l.Reserve(k).Take(tat, now, 1000)
			tat = newTAT
			for _, off := range l.SendOffsets(g, k, next, now) {
				sends = append(sends, now.Add(off))
			}
			now = now.Add(time.Duration(10+(step*37)%231) * time.Millisecond)
		}
		return sends
	}
	for _, k := range []int{0, 5, 24} {
		sends := run(k)
		slices.SortFunc(sends, func(a, b time.Time) int { return a.Compare(b) })
		for i := range sends {
			for j := i + 1; j < len(sends) && j < i+200; j++ {
				if allowed := l.Burst + int(sends[j].Sub(sends[i])/iv); j-i+1 > allowed {
					t.Fatalf("k=%d: %d sends in %v (from %v), over the limit's %d", k, j-i+1, sends[j].Sub(sends[i]), sends[i].Sub(t0), allowed)
				}
			}
		}
		if k == 24 && len(sends) < 2990 {
			t.Errorf("k=24: %d sends in 30 s at 100/s with takes ≤ 240 ms apart, want every token (≥ 2990)", len(sends))
		}
		if k == 0 && len(sends) > 2900 {
			t.Errorf("k=0: %d sends; gaps over the burst should have lost tokens (the reason for Reserve)", len(sends))
		}
	}
}
