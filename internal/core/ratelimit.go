package core

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// RateLimit caps deliveries to one destination (a webhook, or one URI of
// a webhook_config): PerSecond on average, at most Burst at once. It is
// the operator's promise to a fragile receiver and holds across every
// instance sharing the store; see docs/design.md, "Rate limits".
type RateLimit struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst,omitempty"` // default 1
}

// MaxRatePerSecond bounds RateLimit.PerSecond and Burst.
const MaxRatePerSecond = 100000

// Validate reports what is wrong with l, a field named field.
func (l RateLimit) Validate(field string) error {
	if !(l.PerSecond > 0) || l.PerSecond > MaxRatePerSecond || math.IsInf(l.PerSecond, 0) {
		return Invalid(field+".per_second", "%s.per_second must be a number in (0, %d]", field, MaxRatePerSecond)
	}
	if l.Burst < 0 || l.Burst > MaxRatePerSecond {
		return Invalid(field+".burst", "%s.burst must be in [0, %d]", field, MaxRatePerSecond)
	}
	return nil
}

// Interval is the time one delivery's token takes to come back.
func (l RateLimit) Interval() time.Duration {
	return max(time.Duration(float64(time.Second)/l.PerSecond), 1)
}

func (l RateLimit) burst() int { return max(l.Burst, 1) }

// Take applies the generic cell rate algorithm (GCRA) to a bucket whose
// theoretical arrival time is tat: it grants up to n deliveries at now and
// returns how many, the bucket's new tat, and when the next delivery will
// be allowed. A bucket is one timestamp, so the store can update it in
// one row under a lock; a zero tat is a full bucket.
func (l RateLimit) Take(tat, now time.Time, n int) (granted int, newTAT, next time.Time) {
	iv := l.Interval()
	tau := time.Duration(l.burst()) * iv
	if tat.Before(now) {
		tat = now
	}
	// tat+iv-now ≤ tau allows one more; the closed form of that loop.
	if room := now.Add(tau).Sub(tat) / iv; room > 0 {
		granted = int(min(room, time.Duration(n)))
	}
	tat = tat.Add(time.Duration(granted) * iv)
	return granted, tat, tat.Add(iv - tau)
}

// Reserve returns l with room for k tokens more than its burst: a bucket
// taken with it grants up to k tokens ahead of their time, which
// SendOffsets spaces out so that what is sent still conforms to l. It
// lets a sender whose takes are far apart (a loaded database, a slow
// claim) use every token: without it, a take arriving after the burst
// has refilled finds the tokens of the gap gone.
func (l RateLimit) Reserve(k int) RateLimit {
	l.Burst = l.burst() + k
	return l
}

// SendOffsets returns, for each of the granted tokens of a take under
// l.Reserve(k) that returned next at time at, how long after at it may be
// used so that deliveries conform to l: the tokens within l's burst at
// once, the others one interval apart. The k reserved tokens are the
// only ones delayed.
func (l RateLimit) SendOffsets(granted, k int, next, at time.Time) []time.Duration {
	iv := l.Interval()
	out := make([]time.Duration, granted)
	for j := range out {
		// Token j's theoretical arrival time under l.Reserve(k) is
		// next - iv + (burst+k)·iv - (granted-1-j)·iv; it conforms to l
		// from that minus burst·iv.
		out[j] = max(next.Add(time.Duration(k-granted+j)*iv).Sub(at), 0)
	}
	return out
}

// RateLimitJSON encodes l for a store column ("" for none).
func RateLimitJSON(l *RateLimit) string {
	if l == nil {
		return ""
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// ParseRateLimitJSON decodes a RateLimitJSON column.
func ParseRateLimitJSON(s string) (*RateLimit, error) {
	if s == "" {
		return nil, nil
	}
	var l RateLimit
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("rate limit %q: %w", s, err)
	}
	return &l, nil
}

// RateStore keeps the token buckets of rate-limited destinations.
type RateStore interface {
	// TakeRate takes up to n delivery tokens from dest's bucket under
	// limit and reports how many it got, when the next one is available,
	// and the time the limit was applied at (next is on that clock). The
	// read-modify-write is atomic across every process sharing the store;
	// drivers with a shared clock (PostgreSQL) use it instead of now, so
	// instances' clock skew cannot add tokens.
	TakeRate(ctx context.Context, dest string, limit RateLimit, n int, now time.Time) (granted int, next, at time.Time, err error)
}
