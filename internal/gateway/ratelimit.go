package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// sinkLimiter spaces a sink's forwards by its rate limit (GCRA with
// reservations). One gateway process owns an inbox, so the limiter lives
// in memory; what waits for it is at most Concurrency forwards, whose
// events stay in the inbox (below the cursor or in the retry table) until
// the sink took them.
type sinkLimiter struct {
	limit core.RateLimit
	mu    sync.Mutex
	tat   time.Time
}

func newSinkLimiter(l *SinkRateLimit) *sinkLimiter {
	if l == nil {
		return nil
	}
	return &sinkLimiter{limit: l.core()}
}

// wait reserves the next slot and sleeps until it (or until ctx is done:
// the attempt then fails as any aborted one, and is retried).
func (s *sinkLimiter) wait(ctx context.Context) {
	if s == nil {
		return
	}
	iv := s.limit.Interval()
	tau := time.Duration(max(s.limit.Burst, 1)) * iv
	s.mu.Lock()
	now := time.Now()
	if s.tat.Before(now) {
		s.tat = now
	}
	at := s.tat.Add(iv - tau)
	s.tat = s.tat.Add(iv)
	s.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		core.Sleep(ctx, d)
	}
}
