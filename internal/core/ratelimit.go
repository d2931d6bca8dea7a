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
	// limit and reports how many it got and when the next one is
	// available. The read-modify-write is atomic across every process
	// sharing the store; drivers with a shared clock (PostgreSQL) use it
	// instead of now, so instances' clock skew cannot add tokens.
	TakeRate(ctx context.Context, dest string, limit RateLimit, n int, now time.Time) (granted int, next time.Time, err error)
}
