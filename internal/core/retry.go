package core

import (
	"fmt"
	"time"
)

// DefaultRetrySchedule is the delay after each failed attempt (docs/contract.md
// §6); after the last step comes one final attempt at the horizon.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour,
}

// FailureKind classifies a failed attempt.
type FailureKind int

// Failure kinds. Every kind but Gone and Invalid is retryable.
const (
	FailHTTPStatus  FailureKind = iota + 1 // non-2xx, non-special status
	FailRedirect                           // 3xx: never followed
	FailGone                               // 410: permanent, disables a static webhook
	FailThrottled                          // 429
	FailUnavailable                        // 503 (honours Retry-After)
	FailTimeout                            // attempt or connect timeout
	FailConnection                         // refused, reset, DNS, TLS
	FailBlocked                            // SSRF guard refused the resolved address
	FailInvalid                            // destination unusable (bad URI): permanent
)

var failureNames = map[FailureKind]string{
	FailHTTPStatus: "http_status", FailRedirect: "redirect", FailGone: "gone",
	FailThrottled: "throttled", FailUnavailable: "unavailable", FailTimeout: "timeout",
	FailConnection: "connection", FailBlocked: "blocked", FailInvalid: "invalid",
}

func (k FailureKind) String() string { return failureNames[k] }

// Outcome is the classified result of one attempt: Success or *Failure.
type Outcome interface{ isOutcome() }

// Success is a 2xx answer.
type Success struct{ StatusCode int }

// Failure is anything else.
type Failure struct {
	Kind       FailureKind
	StatusCode int           // 0 without an HTTP response
	RetryAfter time.Duration // from Retry-After on 429/503; 0 if absent
	Err        string
}

func (Success) isOutcome()  {}
func (*Failure) isOutcome() {}

func (f *Failure) Error() string {
	if f.StatusCode != 0 {
		return fmt.Sprintf("%s: HTTP %d", f.Kind, f.StatusCode)
	}
	return fmt.Sprintf("%s: %s", f.Kind, f.Err)
}

// Permanent reports whether retrying cannot help.
func (f *Failure) Permanent() bool { return f.Kind == FailGone || f.Kind == FailInvalid }

// RetryPolicy computes when a failed delivery is tried again.
type RetryPolicy struct {
	// Schedule is the delay after attempt 1, 2, ...; default
	// DefaultRetrySchedule.
	Schedule []time.Duration
	// Horizon is when retrying ends, counted from the delivery's schedule
	// start; one last attempt is made at the horizon. Default 24 h.
	Horizon time.Duration
	// Jitter is the relative spread of each delay (default 0.2 = ±20 %).
	Jitter float64
	// ThrottleFloor is the minimum wait after a timeout or 429 (default 60 s).
	ThrottleFloor time.Duration
	// Scale divides every delay and the horizon (--time-scale); default 1.
	Scale float64
}

// WithDefaults fills zero fields.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if len(p.Schedule) == 0 {
		p.Schedule = DefaultRetrySchedule
	}
	if p.Horizon == 0 {
		p.Horizon = 24 * time.Hour
	}
	if p.Jitter == 0 {
		p.Jitter = 0.2
	}
	if p.ThrottleFloor == 0 {
		p.ThrottleFloor = 60 * time.Second
	}
	if p.Scale <= 0 {
		p.Scale = 1
	}
	return p
}

// Scaled returns d compressed by the time scale.
func (p RetryPolicy) Scaled(d time.Duration) time.Duration {
	if p.Scale <= 1 {
		return d
	}
	return time.Duration(float64(d) / p.Scale)
}

// Next decides what follows failed attempt number attempt (1-based) of a
// delivery whose schedule started at start. rnd returns a uniform value in
// [0,1) for jitter. It returns the next attempt time, or retry=false when
// the delivery has failed for good. schedule overrides p.Schedule when
// non-empty (per-webhook schedules).
func (p RetryPolicy) Next(f *Failure, attempt int, start, now time.Time, schedule []time.Duration, rnd func() float64) (next time.Time, retry bool) {
	p = p.WithDefaults()
	if len(schedule) == 0 {
		schedule = p.Schedule
	}
	if f.Permanent() {
		return time.Time{}, false
	}
	deadline := start.Add(p.Scaled(p.Horizon))
	if !now.Before(deadline) {
		return time.Time{}, false // the attempt at (or after) the horizon was the last
	}
	var step time.Duration
	if attempt <= len(schedule) {
		step = schedule[attempt-1]
	} else {
		// Past the schedule: the last attempt is at the horizon.
		return deadline, true
	}
	delay := p.Scaled(jitter(step, p.Jitter, rnd))
	if f.RetryAfter > 0 && (f.Kind == FailThrottled || f.Kind == FailUnavailable) {
		delay = min(p.Scaled(f.RetryAfter), p.Scaled(2*step))
	}
	if f.Kind == FailThrottled || f.Kind == FailTimeout {
		delay = max(delay, p.Scaled(p.ThrottleFloor))
	}
	next = now.Add(delay)
	if next.After(deadline) {
		next = deadline
	}
	return next, true
}

func jitter(d time.Duration, frac float64, rnd func() float64) time.Duration {
	if frac <= 0 || rnd == nil {
		return d
	}
	f := 1 + frac*(2*rnd()-1)
	return time.Duration(float64(d) * f)
}

// AutoDisablePolicy decides when a failing static webhook is disabled.
type AutoDisablePolicy struct {
	After       time.Duration // continuous failure for this long (default 24 h)
	MinFailures int           // and at least this many failures (default 5)
}

// WithDefaults fills zero fields.
func (p AutoDisablePolicy) WithDefaults() AutoDisablePolicy {
	if p.After == 0 {
		p.After = 24 * time.Hour
	}
	if p.MinFailures == 0 {
		p.MinFailures = 5
	}
	return p
}
